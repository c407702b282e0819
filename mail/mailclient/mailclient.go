// Package mailclient is the client of Mail's internal API
// (mail/api/openapi.yaml, docs/mail.md): deliveries listed, read, created
// and resent. It declares the API's types itself and uses none of Mail's
// code, so a change of Mail's JSON shows where the two are checked against
// the OpenAPI document. Its callers are galaxyctl, the test harness and the
// load tools.
package mailclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"galaxy/platform/apiclient"
)

// Delivery is Mail's delivery as its API shows it: every field of the list
// item and of the detail. A list item leaves the detail's fields at their
// zero value. It is decoded leniently: the contract may add fields.
type Delivery struct {
	DeliveryID     string   `json:"delivery_id"`
	Source         string   `json:"source"`
	PayloadMode    string   `json:"payload_mode"`
	TemplateID     string   `json:"template_id"`
	Locale         string   `json:"locale"`
	To             []string `json:"to"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotency_key"`
	ErrorCode      string   `json:"error_code"`
	RequestedAtMS  int64    `json:"requested_at_ms"`
	CreatedAtMS    int64    `json:"created_at_ms"`
	UpdatedAtMS    int64    `json:"updated_at_ms"`
	// SentAtMS is nil until the delivery was sent.
	SentAtMS *int64 `json:"sent_at_ms"`

	// The detail's fields.
	Cc             []string `json:"cc"`
	Bcc            []string `json:"bcc"`
	ReplyTo        string   `json:"reply_to"`
	ResolvedLocale string   `json:"resolved_locale"`
	Subject        string   `json:"subject"`
	TextBody       string   `json:"text_body"`
	HTMLBody       string   `json:"html_body"`
	// TemplateVariables is the object as received (nil in rendered mode);
	// numbers decode as float64.
	TemplateVariables map[string]any `json:"template_variables"`
	ErrorMessage      string         `json:"error_message"`
	Attempts          []Attempt      `json:"attempts"`
	// Sequence is 1 for the original sending, +1 per operator resend.
	Sequence int `json:"sequence"`
	// StreamEntryID is empty for a command that came over HTTP.
	StreamEntryID string `json:"stream_entry_id"`
}

// Attempt is one attempt to send a delivery.
type Attempt struct {
	Attempt      int    `json:"attempt"`
	Sequence     int    `json:"sequence"`
	StartedAtMS  int64  `json:"started_at_ms"`
	FinishedAtMS int64  `json:"finished_at_ms"`
	Outcome      string `json:"outcome"`
	Error        string `json:"error"`
	// SMTPCode is the server's reply code of a failed attempt, 0 when it
	// gave none.
	SMTPCode int `json:"smtp_code"`
}

// Query is the list's filters and paging; empty fields are not sent (the
// service refuses unknown and repeated parameters).
type Query struct {
	Source         string
	Status         string
	Recipient      string
	TemplateID     string
	IdempotencyKey string
	Limit          int // 1–MaxPage; 0 leaves the service's default (50)
	Cursor         string
}

// Values is q as the list's query string.
func (q Query) Values() url.Values {
	v := url.Values{}
	set := func(k, s string) {
		if s != "" {
			v.Set(k, s)
		}
	}
	set("source", q.Source)
	set("status", q.Status)
	set("recipient", q.Recipient)
	set("template_id", q.TemplateID)
	set("idempotency_key", q.IdempotencyKey)
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	set("cursor", q.Cursor)
	return v
}

// Command is a mail command as POST /api/v1/internal/deliveries takes it:
// the stream's command with to, cc and bcc as arrays and
// template_variables as an object. Empty optional fields are left out, as
// the service refuses fields of the other payload mode.
type Command struct {
	Source            string         `json:"source"`
	PayloadMode       string         `json:"payload_mode"`
	TemplateID        string         `json:"template_id,omitempty"`
	Locale            string         `json:"locale,omitempty"`
	TemplateVariables map[string]any `json:"template_variables,omitempty"`
	Subject           string         `json:"subject,omitempty"`
	TextBody          string         `json:"text_body,omitempty"`
	HTMLBody          string         `json:"html_body,omitempty"`
	To                []string       `json:"to"`
	Cc                []string       `json:"cc,omitempty"`
	Bcc               []string       `json:"bcc,omitempty"`
	ReplyTo           string         `json:"reply_to,omitempty"`
	IdempotencyKey    string         `json:"idempotency_key"`
	RequestedAtMS     int64          `json:"requested_at_ms"`
}

// Created is the answer to a command posted over HTTP.
type Created struct {
	Delivery
	// HTTPStatus is 202 for a new delivery, 200 for the existing one of a
	// repeated command. (Delivery.Status is the delivery's own status.)
	HTTPStatus int
	// Replayed is the answer's Idempotency-Replayed: true.
	Replayed bool
}

// ReplayedHeader is the header Mail sets on the answer to a repeated command.
const ReplayedHeader = "Idempotency-Replayed"

// MaxPage is the most items Mail's list gives a page.
const MaxPage = 500

const deliveriesPath = "/api/v1/internal/deliveries"

// Client calls Mail's internal API. Its apiclient.Client's Do and DoJSON
// are there for requests the typed methods do not make (a 400 on purpose,
// an answer's headers).
type Client struct{ apiclient.Client }

// New returns a client of the Mail API at baseURL (http://host:port) that
// sends token (MAIL_INTERNAL_API_TOKEN; empty sends none) through hc (nil:
// http.DefaultClient).
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{apiclient.Client{Service: "mail", BaseURL: baseURL, Token: token, HTTP: hc}}
}

// ListDeliveries returns one page of the deliveries matching query (raw
// query parameters, sent as they are), newest first, and the cursor of the
// next page ("" on the last one).
func (c *Client) ListDeliveries(ctx context.Context, query url.Values) ([]Delivery, string, error) {
	return apiclient.ListPage[Delivery](ctx, &c.Client, deliveriesPath, query)
}

// Deliveries returns one page of the deliveries matching q, newest first,
// and the cursor of the next page ("" on the last one).
func (c *Client) Deliveries(ctx context.Context, q Query) ([]Delivery, string, error) {
	return c.ListDeliveries(ctx, q.Values())
}

// AllDeliveries returns every delivery matching q, following next_cursor
// from q.Cursor to the last page (MaxPage a page unless q.Limit says
// otherwise).
func (c *Client) AllDeliveries(ctx context.Context, q Query) ([]Delivery, error) {
	if q.Limit == 0 {
		q.Limit = MaxPage
	}
	return apiclient.AllPages("mail deliveries", q.Cursor, func(cursor string) ([]Delivery, string, error) {
		q.Cursor = cursor
		return c.Deliveries(ctx, q)
	})
}

// Delivery returns one delivery's detail; an unknown ID is an
// *apiclient.Error with status 404.
func (c *Client) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	_, err := c.DoJSON(ctx, apiclient.Request{Path: deliveriesPath + "/" + url.PathEscape(id)}, &d)
	return d, err
}

// CreateDelivery posts cmd. A new delivery (202) and the existing one of a
// repeated command (200, Replayed) are answers; anything else, such as 409
// idempotency_conflict or 400 invalid_request, is an *apiclient.Error.
func (c *Client) CreateDelivery(ctx context.Context, cmd Command) (Created, error) {
	var created Created
	resp, err := c.DoJSON(ctx, apiclient.Request{Method: http.MethodPost, Path: deliveriesPath, Body: cmd},
		&created.Delivery, http.StatusAccepted, http.StatusOK)
	if err != nil {
		return created, err
	}
	created.HTTPStatus = resp.Status
	created.Replayed = resp.Header.Get(ReplayedHeader) == "true"
	return created, nil
}

// Resend asks for an operator resend of delivery id. It returns the
// delivery and whether the new sequence's first attempt finished within the
// request (200, settled) or not yet (202). 409 delivery_in_progress and 404
// are *apiclient.Errors.
func (c *Client) Resend(ctx context.Context, id string) (Delivery, bool, error) {
	return c.ResendIfSequence(ctx, id, 0)
}

// ResendIfSequence is Resend with the precondition that the delivery is
// still at sequence (0: none), the one the caller read: a delivery resent
// since is a 409 sequence_changed *apiclient.Error, so two operators who
// both saw it failed mail it once.
func (c *Client) ResendIfSequence(ctx context.Context, id string, sequence int) (Delivery, bool, error) {
	var body struct {
		Delivery
		Settled bool `json:"settled"`
	}
	r := apiclient.Request{Method: http.MethodPost, Path: deliveriesPath + "/" + url.PathEscape(id) + "/resend"}
	if sequence != 0 {
		r.Query = url.Values{"if_sequence": {strconv.Itoa(sequence)}}
	}
	_, err := c.DoJSON(ctx, r, &body, http.StatusOK, http.StatusAccepted)
	return body.Delivery, body.Settled, err
}

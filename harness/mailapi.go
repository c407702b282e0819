package harness

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Delivery is Mail's delivery as its API shows it: every field of the list
// item and of the detail (CONTRACTS §5, docs/mail.md). A list item leaves the
// detail's fields at their zero value. It is decoded leniently: the contract
// may add fields.
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
	TemplateVariables map[string]any    `json:"template_variables"`
	ErrorMessage      string            `json:"error_message"`
	Attempts          []DeliveryAttempt `json:"attempts"`
	// Sequence is 1 for the original sending, +1 per operator resend.
	Sequence int `json:"sequence"`
	// StreamEntryID is empty for a command that came over HTTP.
	StreamEntryID string `json:"stream_entry_id"`
}

// DeliveryAttempt is one attempt to send a delivery.
type DeliveryAttempt struct {
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

// DeliveryQuery is the list's filters and paging; empty fields are not sent.
type DeliveryQuery struct {
	Source         string
	Status         string
	Recipient      string
	TemplateID     string
	IdempotencyKey string
	Limit          int // 1–500; 0 leaves the service's default (50)
	Cursor         string
}

// Values is q as the list's query string.
func (q DeliveryQuery) Values() url.Values {
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

// DeliveryCommand is a mail command as POST /api/v1/internal/deliveries
// takes it: the stream's command with to, cc and bcc as arrays and
// template_variables as an object. Empty optional fields are left out, as
// the service refuses fields of the other payload mode.
type DeliveryCommand struct {
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

// CreatedDelivery is the answer to a command posted over HTTP.
type CreatedDelivery struct {
	Delivery
	// HTTPStatus is 202 for a new delivery, 200 for the existing one of a
	// repeated command. (Delivery.Status is the delivery's own status.)
	HTTPStatus int
	// Replayed is the answer's Idempotency-Replayed: true.
	Replayed bool
}

// MailClient calls Mail's internal API.
type MailClient struct {
	BaseURL string // http://host:port
	Token   string // MAIL_INTERNAL_API_TOKEN, when the service has one
}

// ReplayedHeader is the header Mail sets on the answer to a repeated command.
const ReplayedHeader = "Idempotency-Replayed"

// Mail's list takes at most this many items a page.
const maxDeliveryPage = 500

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *MailClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return Do(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "mail", Body: body})
}

func (c *MailClient) doJSON(ctx context.Context, method, path string, body, out any, want ...int) (Response, error) {
	return DoJSON(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "mail", Body: body}, out, want...)
}

// ListDeliveries returns one page of the deliveries matching query (raw
// query parameters, sent as they are), newest first, and the cursor of the
// next page ("" on the last one).
func (c *MailClient) ListDeliveries(ctx context.Context, query url.Values) ([]Delivery, string, error) {
	return listPage[Delivery](ctx, "mail", c.BaseURL, c.Token, "/api/v1/internal/deliveries", query)
}

// Deliveries returns one page of the deliveries matching q, newest first,
// and the cursor of the next page ("" on the last one).
func (c *MailClient) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error) {
	return c.ListDeliveries(ctx, q.Values())
}

// AllDeliveries returns every delivery matching q, following next_cursor
// from q.Cursor to the last page (500 a page unless q.Limit says otherwise).
func (c *MailClient) AllDeliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	if q.Limit == 0 {
		q.Limit = maxDeliveryPage
	}
	return allPages("mail deliveries", q.Cursor, func(cursor string) ([]Delivery, string, error) {
		q.Cursor = cursor
		return c.Deliveries(ctx, q)
	})
}

// Delivery returns one delivery's detail; an unknown ID is an *APIError
// with status 404.
func (c *MailClient) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	_, err := c.doJSON(ctx, http.MethodGet, "/api/v1/internal/deliveries/"+url.PathEscape(id), nil, &d)
	return d, err
}

// CreateDelivery posts cmd. A new delivery (202) and the existing one of a
// repeated command (200, Replayed) are answers; anything else, such as 409
// idempotency_conflict or 400 invalid_request, is an *APIError.
func (c *MailClient) CreateDelivery(ctx context.Context, cmd DeliveryCommand) (CreatedDelivery, error) {
	var created CreatedDelivery
	resp, err := c.doJSON(ctx, http.MethodPost, "/api/v1/internal/deliveries", cmd, &created.Delivery,
		http.StatusAccepted, http.StatusOK)
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
// are *APIErrors.
func (c *MailClient) Resend(ctx context.Context, id string) (Delivery, bool, error) {
	return c.ResendIfSequence(ctx, id, 0)
}

// ResendIfSequence is Resend with the precondition that the delivery is
// still at sequence (0: none); a delivery resent since is a 409
// sequence_changed *APIError.
func (c *MailClient) ResendIfSequence(ctx context.Context, id string, sequence int) (Delivery, bool, error) {
	var body struct {
		Delivery
		Settled bool `json:"settled"`
	}
	path := "/api/v1/internal/deliveries/" + url.PathEscape(id) + "/resend"
	if sequence != 0 {
		path += "?if_sequence=" + strconv.Itoa(sequence)
	}
	_, err := c.doJSON(ctx, http.MethodPost, path, nil, &body, http.StatusOK, http.StatusAccepted)
	return body.Delivery, body.Settled, err
}

// MailClient returns a client of the pipeline's Mail.
func (p *Pipeline) MailClient() *MailClient {
	return &MailClient{BaseURL: p.MailURL, Token: p.Tokens.Mail}
}

// Deliveries lists one page of Mail's deliveries matching query (source,
// status, recipient, template_id, idempotency_key, limit, cursor), newest
// first.
func (p *Pipeline) Deliveries(ctx context.Context, query url.Values) ([]Delivery, error) {
	items, _, err := p.MailClient().ListDeliveries(ctx, query)
	return items, err
}

// Delivery returns one delivery's detail.
func (p *Pipeline) Delivery(ctx context.Context, id string) (Delivery, error) {
	return p.MailClient().Delivery(ctx, id)
}

// AdminRouteKey is the idempotency key Notification gives the mail command of
// the admin route to address for the intent with entry ID intentEntryID.
func AdminRouteKey(intentEntryID, address string) string {
	return "notification:" + intentEntryID + "/email:email:" + address
}

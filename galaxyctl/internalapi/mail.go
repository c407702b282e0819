package internalapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Delivery is Mail's delivery as its API shows it (mail/api/openapi.yaml):
// the list item's fields, and the detail's that an operator reads. Fields
// galaxyctl does not show are not decoded.
type Delivery struct {
	DeliveryID     string   `json:"delivery_id"`
	Source         string   `json:"source"`
	TemplateID     string   `json:"template_id"`
	Locale         string   `json:"locale"`
	To             []string `json:"to"`
	Status         string   `json:"status"`
	IdempotencyKey string   `json:"idempotency_key"`
	ErrorCode      string   `json:"error_code"`
	CreatedAtMS    int64    `json:"created_at_ms"`
	UpdatedAtMS    int64    `json:"updated_at_ms"`
	SentAtMS       *int64   `json:"sent_at_ms"`

	// The detail's fields (empty in a list item).
	Subject      string    `json:"subject,omitempty"`
	ErrorMessage string    `json:"error_message,omitempty"`
	Sequence     int       `json:"sequence,omitempty"`
	Attempts     []Attempt `json:"attempts,omitempty"`
}

// Attempt is one attempt to send a delivery.
type Attempt struct {
	Attempt      int    `json:"attempt"`
	Sequence     int    `json:"sequence"`
	StartedAtMS  int64  `json:"started_at_ms"`
	FinishedAtMS int64  `json:"finished_at_ms"`
	Outcome      string `json:"outcome"`
	Error        string `json:"error"`
	SMTPCode     int    `json:"smtp_code"`
}

// DeliveryFilter selects deliveries; empty fields are not sent.
type DeliveryFilter struct {
	Status     string
	Recipient  string
	TemplateID string
	Limit      int
	Cursor     string
}

// Mail is a client of Mail's API.
type Mail struct{ Client }

// NewMail returns a client of the Mail API at baseURL.
func NewMail(baseURL, token string, hc *http.Client) *Mail {
	return &Mail{Client{Service: "mail", BaseURL: baseURL, Token: token, HTTP: hc}}
}

// Deliveries returns one page of deliveries matching f, newest first, and
// the cursor of the next page ("" on the last).
func (m *Mail) Deliveries(ctx context.Context, f DeliveryFilter) ([]Delivery, string, error) {
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "recipient": f.Recipient, "template_id": f.TemplateID, "cursor": f.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page struct {
		Items      []Delivery `json:"items"`
		NextCursor string     `json:"next_cursor"`
	}
	_, err := m.do(ctx, http.MethodGet, "/api/v1/internal/deliveries", q, &page, http.StatusOK)
	return page.Items, page.NextCursor, err
}

// Delivery returns one delivery's detail; an unknown one is an *Error
// with status 404.
func (m *Mail) Delivery(ctx context.Context, id string) (Delivery, error) {
	var d Delivery
	_, err := m.do(ctx, http.MethodGet, "/api/v1/internal/deliveries/"+url.PathEscape(id), nil, &d, http.StatusOK)
	return d, err
}

// Resend asks for an operator resend of delivery id, if it is still at
// sequence ifSequence (what the caller read). settled is true when the new
// sequence's first attempt finished within the request (200), false when it
// is still under way (202). A delivery in progress, or resent since, is an
// *Error with status 409.
func (m *Mail) Resend(ctx context.Context, id string, ifSequence int) (d Delivery, settled bool, err error) {
	var body struct {
		Delivery
		Settled bool `json:"settled"`
	}
	path := "/api/v1/internal/deliveries/" + url.PathEscape(id) + "/resend?if_sequence=" + strconv.Itoa(ifSequence)
	_, err = m.do(ctx, http.MethodPost, path, nil, &body,
		http.StatusOK, http.StatusAccepted)
	return body.Delivery, body.Settled, err
}

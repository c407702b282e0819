package harness

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// MailpitAddress is an address of a received message.
type MailpitAddress struct {
	Name    string `json:"Name"`
	Address string `json:"Address"`
}

// MailpitMessage is Mailpit's summary of a received message, an item of its
// list and search answers.
type MailpitMessage struct {
	ID        string           `json:"ID"`
	MessageID string           `json:"MessageID"` // without angle brackets
	Subject   string           `json:"Subject"`
	From      *MailpitAddress  `json:"From"`
	To        []MailpitAddress `json:"To"`
	Cc        []MailpitAddress `json:"Cc"`
	Bcc       []MailpitAddress `json:"Bcc"`
	ReplyTo   []MailpitAddress `json:"ReplyTo"`
	Snippet   string           `json:"Snippet"`
	Created   time.Time        `json:"Created"`
}

// MailpitFullMessage is one received message as Mailpit parsed it, bodies
// included. From is a value, not a pointer: a message without one decodes
// to the zero address instead of panicking a spec that reads it.
type MailpitFullMessage struct {
	ID         string           `json:"ID"`
	MessageID  string           `json:"MessageID"` // without angle brackets
	From       MailpitAddress   `json:"From"`
	To         []MailpitAddress `json:"To"`
	Cc         []MailpitAddress `json:"Cc"`
	Bcc        []MailpitAddress `json:"Bcc"`
	ReplyTo    []MailpitAddress `json:"ReplyTo"`
	ReturnPath string           `json:"ReturnPath"`
	Subject    string           `json:"Subject"`
	Date       time.Time        `json:"Date"`
	Text       string           `json:"Text"`
	HTML       string           `json:"HTML"`
	Size       uint64           `json:"Size"`
}

// MailpitChaos is Mailpit's set of SMTP failure triggers (it must run with
// MP_ENABLE_CHAOS). A PUT replaces all three: a trigger left zero is off.
type MailpitChaos struct {
	Sender         MailpitChaosTrigger `json:"Sender"`         // on MAIL FROM
	Recipient      MailpitChaosTrigger `json:"Recipient"`      // on RCPT TO
	Authentication MailpitChaosTrigger `json:"Authentication"` // on AUTH
}

// MailpitChaosTrigger answers ErrorCode (400–599; 0 is Mailpit's default
// for the trigger) with Probability percent chance (0 is off).
type MailpitChaosTrigger struct {
	ErrorCode   int `json:"ErrorCode"`
	Probability int `json:"Probability"`
}

// MailpitClient calls Mailpit's HTTP API.
type MailpitClient struct {
	APIURL string // http://host:port
}

// A page of Mailpit's list and search answers. Mailpit takes any limit;
// this keeps each answer small while a test's mailbox is read in few calls.
const mailpitPage = 500

func (c *MailpitClient) url(path string) string { return joinURL(c.APIURL, path) }

// Info returns Mailpit's application information; it answers once the API
// is up.
func (c *MailpitClient) Info(ctx context.Context) (map[string]any, error) {
	var info map[string]any
	_, err := DoJSON(ctx, Request{URL: c.url("/api/v1/info")}, &info)
	return info, err
}

// Messages returns every message Mailpit holds, newest first.
func (c *MailpitClient) Messages(ctx context.Context) ([]MailpitMessage, error) {
	msgs, err := c.pages(ctx, "/api/v1/messages", url.Values{})
	if err != nil {
		return nil, fmt.Errorf("mailpit messages: %w", err)
	}
	return msgs, nil
}

// Search returns every message matching query (Mailpit's search syntax,
// e.g. "to:ops@example.com"), newest first.
func (c *MailpitClient) Search(ctx context.Context, query string) ([]MailpitMessage, error) {
	msgs, err := c.pages(ctx, "/api/v1/search", url.Values{"query": {query}})
	if err != nil {
		return nil, fmt.Errorf("mailpit search %q: %w", query, err)
	}
	return msgs, nil
}

// pages reads a list or search answer page by page. messages_count is the
// number of matching messages; a page shorter than asked for also ends the
// walk, so a message arriving meanwhile cannot keep it going.
func (c *MailpitClient) pages(ctx context.Context, path string, q url.Values) ([]MailpitMessage, error) {
	var out []MailpitMessage
	for {
		var page struct {
			MessagesCount int              `json:"messages_count"`
			Messages      []MailpitMessage `json:"messages"`
		}
		q.Set("start", strconv.Itoa(len(out)))
		q.Set("limit", strconv.Itoa(mailpitPage))
		if _, err := DoJSON(ctx, Request{URL: c.url(path + "?" + q.Encode())}, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Messages...)
		if len(page.Messages) < mailpitPage || len(out) >= page.MessagesCount {
			return out, nil
		}
	}
}

// Message returns message id (the ID of a list item, not its MessageID)
// in full.
func (c *MailpitClient) Message(ctx context.Context, id string) (MailpitFullMessage, error) {
	var m MailpitFullMessage
	_, err := DoJSON(ctx, Request{URL: c.url("/api/v1/message/" + url.PathEscape(id))}, &m)
	return m, err
}

// Headers returns the headers of message id as received, each with every
// value it had.
func (c *MailpitClient) Headers(ctx context.Context, id string) (http.Header, error) {
	var h map[string][]string
	_, err := DoJSON(ctx, Request{URL: c.url("/api/v1/message/" + url.PathEscape(id) + "/headers")}, &h)
	return http.Header(h), err
}

// SetChaos replaces Mailpit's failure triggers with chaos and returns the
// triggers now in force.
func (c *MailpitClient) SetChaos(ctx context.Context, chaos MailpitChaos) (MailpitChaos, error) {
	var now MailpitChaos
	_, err := DoJSON(ctx, Request{Method: http.MethodPut, URL: c.url("/api/v1/chaos"), Body: chaos}, &now)
	return now, err
}

// ClearChaos turns every failure trigger off.
func (c *MailpitClient) ClearChaos(ctx context.Context) error {
	_, err := c.SetChaos(ctx, MailpitChaos{})
	return err
}

// DeleteAll deletes every message Mailpit holds.
func (c *MailpitClient) DeleteAll(ctx context.Context) error {
	_, err := DoJSON(ctx, Request{Method: http.MethodDelete, URL: c.url("/api/v1/messages")}, nil)
	return err
}

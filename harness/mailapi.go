package harness

import (
	"context"
	"net/url"

	"galaxy/mail/mailclient"
)

// Mail's API types (mail/mailclient).
type (
	// Delivery is Mail's delivery: every field of the list item and of
	// the detail.
	Delivery        = mailclient.Delivery
	DeliveryAttempt = mailclient.Attempt
	DeliveryQuery   = mailclient.Query
	DeliveryCommand = mailclient.Command
	CreatedDelivery = mailclient.Created
)

// ReplayedHeader is the header Mail sets on the answer to a repeated command.
const ReplayedHeader = mailclient.ReplayedHeader

// MailClient is Mail's client (mailclient) with every answer checked
// against the service's OpenAPI document and each call bounded by
// DefaultRequestTimeout: its methods are mailclient.Client's, and Do
// sends a raw request.
type MailClient struct {
	*mailclient.Client
}

// NewMailClient returns a client of the Mail API at baseURL
// (http://host:port), sending token (MAIL_INTERNAL_API_TOKEN; "" for none).
func NewMailClient(baseURL, token string) *MailClient {
	return &MailClient{&mailclient.Client{Client: checkedAPI("mail", baseURL, token)}}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *MailClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.Client.Client, method, path, body)
}

// MailClient returns a client of the pipeline's Mail.
func (p *Pipeline) MailClient() *MailClient {
	return NewMailClient(p.MailURL, p.Tokens.Mail)
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

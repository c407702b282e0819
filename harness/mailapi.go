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

// MailClient calls Mail's internal API through mail/mailclient, every
// answer checked against Mail's OpenAPI document.
type MailClient struct {
	BaseURL string // http://host:port
	Token   string // MAIL_INTERNAL_API_TOKEN, when the service has one
}

func (c *MailClient) api() *mailclient.Client {
	return &mailclient.Client{Client: checkedAPI("mail", c.BaseURL, c.Token)}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *MailClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.api().Client, method, path, body)
}

// ListDeliveries is mailclient.Client.ListDeliveries: one page, raw query
// parameters sent as they are.
func (c *MailClient) ListDeliveries(ctx context.Context, query url.Values) ([]Delivery, string, error) {
	return c.api().ListDeliveries(ctx, query)
}

// Deliveries is mailclient.Client.Deliveries: one page matching q.
func (c *MailClient) Deliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, string, error) {
	return c.api().Deliveries(ctx, q)
}

// AllDeliveries is mailclient.Client.AllDeliveries: every page matching q.
func (c *MailClient) AllDeliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	return c.api().AllDeliveries(ctx, q)
}

// Delivery is mailclient.Client.Delivery: one delivery's detail.
func (c *MailClient) Delivery(ctx context.Context, id string) (Delivery, error) {
	return c.api().Delivery(ctx, id)
}

// CreateDelivery is mailclient.Client.CreateDelivery: 202 new, 200
// replayed, anything else an *APIError.
func (c *MailClient) CreateDelivery(ctx context.Context, cmd DeliveryCommand) (CreatedDelivery, error) {
	return c.api().CreateDelivery(ctx, cmd)
}

// Resend is mailclient.Client.Resend: an operator resend, and whether its
// first attempt finished within the request.
func (c *MailClient) Resend(ctx context.Context, id string) (Delivery, bool, error) {
	return c.api().Resend(ctx, id)
}

// ResendIfSequence is mailclient.Client.ResendIfSequence: Resend on the
// condition that the delivery is still at sequence.
func (c *MailClient) ResendIfSequence(ctx context.Context, id string, sequence int) (Delivery, bool, error) {
	return c.api().ResendIfSequence(ctx, id, sequence)
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

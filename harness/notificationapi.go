package harness

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Notification is Notification's record of an intent as its API shows it
// (CONTRACTS §5, docs/notification.md): the intent, its status and its
// routes. Fields the service writes as null are pointers, so a spec can
// tell null from empty. It is decoded leniently: the contract may add
// fields.
type Notification struct {
	IntentEntryID    string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	AudienceKind     string `json:"audience_kind"`
	// Audience and Payload are the intent's JSON objects (valid intents
	// only); numbers decode as float64.
	Audience       map[string]any `json:"audience"`
	Payload        map[string]any `json:"payload"`
	OccurredAtMS   *int64         `json:"occurred_at_ms"`
	IdempotencyKey *string        `json:"idempotency_key"`
	// Status is pending, routed, partially_routed, skipped, rejected or dead.
	Status string `json:"status"`
	// Reason says why a notification was skipped or rejected.
	Reason      *string `json:"reason"`
	DuplicateOf *string `json:"duplicate_of"`
	// RawFields are a rejected intent's stream fields as received.
	RawFields       map[string]string   `json:"raw_fields"`
	NextAttemptAtMS *int64              `json:"next_attempt_at_ms"`
	CreatedAtMS     int64               `json:"created_at_ms"`
	UpdatedAtMS     int64               `json:"updated_at_ms"`
	Routes          []NotificationRoute `json:"routes"`
}

// NotificationRoute is one recipient of a notification.
type NotificationRoute struct {
	// RouteID is email:email:<address> (admin) or email:user:<user_id>.
	RouteID   string  `json:"route_id"`
	UserID    *string `json:"user_id"`
	Recipient *string `json:"recipient"`
	Locale    *string `json:"locale"`
	Status    string  `json:"status"`
	Reason    *string `json:"reason"`
	Attempts  int     `json:"attempts"`
	LastError *string `json:"last_error"`
	// IdempotencyKey is the key of the route's mail command.
	IdempotencyKey  string  `json:"idempotency_key"`
	MailEntryID     *string `json:"mail_entry_id"`
	NextAttemptAtMS *int64  `json:"next_attempt_at_ms"`
	LastAttemptAtMS *int64  `json:"last_attempt_at_ms"`
	RoutedAtMS      *int64  `json:"routed_at_ms"`
	CreatedAtMS     int64   `json:"created_at_ms"`
	UpdatedAtMS     int64   `json:"updated_at_ms"`
}

// NotificationQuery is the list's filters and paging; empty fields are not
// sent (the service refuses unknown and repeated parameters).
type NotificationQuery struct {
	Type   string
	Status string
	Limit  int // 1–500; 0 leaves the service's default (50)
	Cursor string
}

// Values is q as the list's query string.
func (q NotificationQuery) Values() url.Values {
	v := url.Values{}
	if q.Type != "" {
		v.Set("type", q.Type)
	}
	if q.Status != "" {
		v.Set("status", q.Status)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	return v
}

// NotificationClient calls Notification's internal API.
type NotificationClient struct {
	BaseURL string // http://host:port
	Token   string // NOTIFICATION_INTERNAL_API_TOKEN, when the service has one
}

const maxNotificationPage = 500

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *NotificationClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return Do(ctx, Request{Method: method, URL: joinURL(c.BaseURL, path), Token: c.Token, Service: "notification", Body: body})
}

// Notifications returns one page of the notifications matching q, newest
// first, and the cursor of the next page ("" on the last one).
func (c *NotificationClient) Notifications(ctx context.Context, q NotificationQuery) ([]Notification, string, error) {
	return listPage[Notification](ctx, "notification", c.BaseURL, c.Token, "/api/v1/internal/notifications", q.Values())
}

// AllNotifications returns every notification matching q, following
// next_cursor from q.Cursor to the last page (500 a page unless q.Limit
// says otherwise).
func (c *NotificationClient) AllNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error) {
	if q.Limit == 0 {
		q.Limit = maxNotificationPage
	}
	return allPages("notifications", q.Cursor, func(cursor string) ([]Notification, string, error) {
		q.Cursor = cursor
		return c.Notifications(ctx, q)
	})
}

// Notification returns the record of the intent with entry ID
// intentEntryID; an unknown one is an *APIError with status 404, a
// malformed one 400.
func (c *NotificationClient) Notification(ctx context.Context, intentEntryID string) (Notification, error) {
	var n Notification
	_, err := DoJSON(ctx, Request{
		URL:   joinURL(c.BaseURL, "/api/v1/internal/notifications/"+url.PathEscape(intentEntryID)),
		Token: c.Token, Service: "notification",
	}, &n)
	return n, err
}

// DeadRoute is one item of Notification's dead routes list: the route and
// the notification it belongs to.
type DeadRoute struct {
	IntentEntryID    string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	NotificationRoute
}

// DeadRoutes returns one page of the dead routes (GET
// /api/v1/internal/routes?status=dead), newest notification first, and the
// cursor of the next page ("" on the last one); limit 0 leaves the
// service's default.
func (c *NotificationClient) DeadRoutes(ctx context.Context, limit int, cursor string) ([]DeadRoute, string, error) {
	v := url.Values{"status": {"dead"}}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return listPage[DeadRoute](ctx, "notification", c.BaseURL, c.Token, "/api/v1/internal/routes", v)
}

// RetryRoute retries the dead route routeID of the notification of
// intentEntryID and returns the notification as the retry left it. A route
// that is not dead is an *APIError with status 409 (route_not_dead), an
// unknown one 404.
func (c *NotificationClient) RetryRoute(ctx context.Context, intentEntryID, routeID string) (Notification, error) {
	var n Notification
	_, err := DoJSON(ctx, Request{
		Method: http.MethodPost,
		URL: joinURL(c.BaseURL, "/api/v1/internal/notifications/"+url.PathEscape(intentEntryID)+
			"/routes/"+url.PathEscape(routeID)+"/retry"),
		Token: c.Token, Service: "notification",
	}, &n)
	return n, err
}

// NotificationClient returns a client of the pipeline's Notification.
func (p *Pipeline) NotificationClient() *NotificationClient {
	return &NotificationClient{BaseURL: p.NotificationURL, Token: p.Tokens.Notification}
}

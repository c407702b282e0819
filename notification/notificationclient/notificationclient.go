// Package notificationclient is the client of Notification's internal API
// (notification/api/openapi.yaml, docs/notification.md): notifications and
// their routes listed and read, dead routes listed and retried. It declares
// the API's types itself and uses none of Notification's code. Its callers
// are galaxyctl and the test harness.
package notificationclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"galaxy/platform/apiclient"
)

// Notification is Notification's record of an intent as its API shows it:
// the intent, its status and its routes. Fields the service writes as null
// are pointers, so a caller can tell null from empty. It is decoded
// leniently: the contract may add fields.
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
	RawFields       map[string]string `json:"raw_fields"`
	NextAttemptAtMS *int64            `json:"next_attempt_at_ms"`
	CreatedAtMS     int64             `json:"created_at_ms"`
	UpdatedAtMS     int64             `json:"updated_at_ms"`
	Routes          []Route           `json:"routes"`
}

// Route returns n's route routeID, or false.
func (n Notification) Route(routeID string) (Route, bool) {
	for _, r := range n.Routes {
		if r.RouteID == routeID {
			return r, true
		}
	}
	return Route{}, false
}

// Route is one recipient of a notification.
type Route struct {
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

// DeadRoute is one item of the dead routes list: the route and the
// notification it belongs to.
type DeadRoute struct {
	IntentEntryID    string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	Route
}

// Query is the notifications list's filters and paging; empty fields are
// not sent (the service refuses unknown and repeated parameters).
type Query struct {
	Type   string
	Status string
	Limit  int // 1–MaxPage; 0 leaves the service's default (50)
	Cursor string
}

// Values is q as the list's query string.
func (q Query) Values() url.Values {
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

// MaxPage is the most items Notification's lists give a page.
const MaxPage = 500

const notificationsPath = "/api/v1/internal/notifications"

// Client calls Notification's internal API. Its apiclient.Client's Do and
// DoJSON are there for requests the typed methods do not make.
type Client struct{ apiclient.Client }

// New returns a client of the Notification API at baseURL (http://host:port)
// that sends token (NOTIFICATION_INTERNAL_API_TOKEN; empty sends none)
// through hc (nil: http.DefaultClient).
func New(baseURL, token string, hc *http.Client) *Client {
	return &Client{apiclient.Client{Service: "notification", BaseURL: baseURL, Token: token, HTTP: hc}}
}

// Notifications returns one page of the notifications matching q, newest
// first, and the cursor of the next page ("" on the last one).
func (c *Client) Notifications(ctx context.Context, q Query) ([]Notification, string, error) {
	return apiclient.ListPage[Notification](ctx, &c.Client, notificationsPath, q.Values())
}

// AllNotifications returns every notification matching q, following
// next_cursor from q.Cursor to the last page (MaxPage a page unless q.Limit
// says otherwise).
func (c *Client) AllNotifications(ctx context.Context, q Query) ([]Notification, error) {
	if q.Limit == 0 {
		q.Limit = MaxPage
	}
	return apiclient.AllPages("notifications", q.Cursor, func(cursor string) ([]Notification, string, error) {
		q.Cursor = cursor
		return c.Notifications(ctx, q)
	})
}

// Notification returns the record of the intent with entry ID
// intentEntryID; an unknown one is an *apiclient.Error with status 404, a
// malformed one 400.
func (c *Client) Notification(ctx context.Context, intentEntryID string) (Notification, error) {
	var n Notification
	_, err := c.DoJSON(ctx, apiclient.Request{Path: notificationsPath + "/" + url.PathEscape(intentEntryID)}, &n)
	return n, err
}

// DeadRoutes returns one page of the dead routes (GET
// /api/v1/internal/routes?status=dead), newest notification first, and the
// cursor of the next page ("" on the last one); limit 0 leaves the
// service's default.
func (c *Client) DeadRoutes(ctx context.Context, limit int, cursor string) ([]DeadRoute, string, error) {
	v := url.Values{"status": {"dead"}}
	if limit != 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	return apiclient.ListPage[DeadRoute](ctx, &c.Client, "/api/v1/internal/routes", v)
}

// AllDeadRoutes returns every dead route, following next_cursor to the
// last page, MaxPage a page.
func (c *Client) AllDeadRoutes(ctx context.Context) ([]DeadRoute, error) {
	return apiclient.AllPages("dead routes", "", func(cursor string) ([]DeadRoute, string, error) {
		return c.DeadRoutes(ctx, MaxPage, cursor)
	})
}

// RetryRoute retries the dead route routeID of the notification of
// intentEntryID and returns the notification as the retry left it. A route
// that is not dead is an *apiclient.Error with status 409 (route_not_dead),
// an unknown one 404.
func (c *Client) RetryRoute(ctx context.Context, intentEntryID, routeID string) (Notification, error) {
	var n Notification
	_, err := c.DoJSON(ctx, apiclient.Request{
		Method: http.MethodPost,
		Path:   notificationsPath + "/" + url.PathEscape(intentEntryID) + "/routes/" + url.PathEscape(routeID) + "/retry",
	}, &n)
	return n, err
}

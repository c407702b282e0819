package internalapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// Route is one route of a notification (notification/api/openapi.yaml).
type Route struct {
	RouteID         string  `json:"route_id"`
	UserID          *string `json:"user_id,omitempty"`
	Recipient       *string `json:"recipient"`
	Status          string  `json:"status"`
	Reason          *string `json:"reason,omitempty"`
	Attempts        int     `json:"attempts"`
	LastError       *string `json:"last_error"`
	IdempotencyKey  string  `json:"idempotency_key"`
	MailEntryID     *string `json:"mail_entry_id,omitempty"`
	LastAttemptAtMS *int64  `json:"last_attempt_at_ms,omitempty"`
	RoutedAtMS      *int64  `json:"routed_at_ms,omitempty"`
	UpdatedAtMS     int64   `json:"updated_at_ms"`
}

// DeadRoute is an item of the dead routes list: a route and its
// notification.
type DeadRoute struct {
	IntentEntryID    string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	Route
}

// Notification is a notification with its routes, as far as galaxyctl
// shows it.
type Notification struct {
	IntentEntryID    string  `json:"intent_entry_id"`
	NotificationType string  `json:"notification_type"`
	Status           string  `json:"status"`
	Reason           *string `json:"reason"`
	Routes           []Route `json:"routes"`
}

// Route returns n's route id, or false.
func (n Notification) Route(id string) (Route, bool) {
	for _, r := range n.Routes {
		if r.RouteID == id {
			return r, true
		}
	}
	return Route{}, false
}

// NotificationAPI is a client of Notification's API.
type NotificationAPI struct{ Client }

// NewNotification returns a client of the Notification API at baseURL.
func NewNotification(baseURL, token string, hc *http.Client) *NotificationAPI {
	return &NotificationAPI{Client{Service: "notification", BaseURL: baseURL, Token: token, HTTP: hc}}
}

// DeadRoutes returns one page of dead routes, newest notification first,
// and the cursor of the next page ("" on the last).
func (n *NotificationAPI) DeadRoutes(ctx context.Context, limit int, cursor string) ([]DeadRoute, string, error) {
	q := url.Values{"status": {"dead"}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var page struct {
		Items      []DeadRoute `json:"items"`
		NextCursor string      `json:"next_cursor"`
	}
	_, err := n.do(ctx, http.MethodGet, "/api/v1/internal/routes", q, &page, http.StatusOK)
	return page.Items, page.NextCursor, err
}

// Notification returns the notification of intent entry id.
func (n *NotificationAPI) Notification(ctx context.Context, id string) (Notification, error) {
	var out Notification
	_, err := n.do(ctx, http.MethodGet, "/api/v1/internal/notifications/"+url.PathEscape(id), nil, &out, http.StatusOK)
	return out, err
}

// RetryRoute retries a dead route and returns its notification as the
// retry left it. A route that is not dead is an *Error with status 409
// (code route_not_dead).
func (n *NotificationAPI) RetryRoute(ctx context.Context, intentID, routeID string) (Notification, error) {
	var out Notification
	_, err := n.do(ctx, http.MethodPost,
		"/api/v1/internal/notifications/"+url.PathEscape(intentID)+"/routes/"+url.PathEscape(routeID)+"/retry",
		nil, &out, http.StatusOK)
	return out, err
}

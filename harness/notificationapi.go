package harness

import (
	"context"

	"galaxy/notification/notificationclient"
)

// Notification's API types (notification/notificationclient).
type (
	// Notification is Notification's record of an intent: the intent, its
	// status and its routes.
	Notification      = notificationclient.Notification
	NotificationRoute = notificationclient.Route
	NotificationQuery = notificationclient.Query
	DeadRoute         = notificationclient.DeadRoute
)

// NotificationClient is Notification's client (notificationclient) with every answer checked
// against the service's OpenAPI document and each call bounded by
// DefaultRequestTimeout: its methods are notificationclient.Client's, and Do
// sends a raw request.
type NotificationClient struct {
	*notificationclient.Client
}

// NewNotificationClient returns a client of the Notification API at baseURL
// (http://host:port), sending token (NOTIFICATION_INTERNAL_API_TOKEN; "" for none).
func NewNotificationClient(baseURL, token string) *NotificationClient {
	return &NotificationClient{&notificationclient.Client{Client: checkedAPI("notification", baseURL, token)}}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status, for specs about a 400,
// a header or the exact body.
func (c *NotificationClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.Client.Client, method, path, body)
}

// NotificationClient returns a client of the pipeline's Notification.
func (p *Pipeline) NotificationClient() *NotificationClient {
	return NewNotificationClient(p.NotificationURL, p.Tokens.Notification)
}

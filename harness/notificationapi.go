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

// NotificationClient calls Notification's internal API through
// notification/notificationclient, every answer checked against
// Notification's OpenAPI document.
type NotificationClient struct {
	BaseURL string // http://host:port
	Token   string // NOTIFICATION_INTERNAL_API_TOKEN, when the service has one
}

func (c *NotificationClient) api() *notificationclient.Client {
	return &notificationclient.Client{Client: checkedAPI("notification", c.BaseURL, c.Token)}
}

// Do sends one request to the API (path from /api/…) with the client's
// token and returns the answer whatever its status.
func (c *NotificationClient) Do(ctx context.Context, method, path string, body any) (Response, error) {
	return rawDo(ctx, c.api().Client, method, path, body)
}

// Notifications is notificationclient.Client.Notifications: one page
// matching q.
func (c *NotificationClient) Notifications(ctx context.Context, q NotificationQuery) ([]Notification, string, error) {
	return c.api().Notifications(ctx, q)
}

// AllNotifications is notificationclient.Client.AllNotifications: every
// page matching q.
func (c *NotificationClient) AllNotifications(ctx context.Context, q NotificationQuery) ([]Notification, error) {
	return c.api().AllNotifications(ctx, q)
}

// Notification is notificationclient.Client.Notification: the record of
// one intent.
func (c *NotificationClient) Notification(ctx context.Context, intentEntryID string) (Notification, error) {
	return c.api().Notification(ctx, intentEntryID)
}

// DeadRoutes is notificationclient.Client.DeadRoutes: one page of the dead
// routes.
func (c *NotificationClient) DeadRoutes(ctx context.Context, limit int, cursor string) ([]DeadRoute, string, error) {
	return c.api().DeadRoutes(ctx, limit, cursor)
}

// RetryRoute is notificationclient.Client.RetryRoute: a dead route made
// pending again.
func (c *NotificationClient) RetryRoute(ctx context.Context, intentEntryID, routeID string) (Notification, error) {
	return c.api().RetryRoute(ctx, intentEntryID, routeID)
}

// NotificationClient returns a client of the pipeline's Notification.
func (p *Pipeline) NotificationClient() *NotificationClient {
	return &NotificationClient{BaseURL: p.NotificationURL, Token: p.Tokens.Notification}
}

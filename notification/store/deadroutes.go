package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"galaxy/notification/routing"
)

// DeadRoute is a dead route with what an operator needs of its
// notification to judge it, as the routes list shows it.
type DeadRoute struct {
	IntentID         string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	Route
}

// RouteCursor is the position after the last route of a page: routes are
// listed newest notification first, then by route ID.
type RouteCursor struct {
	IntentID string
	RouteID  string
}

// String is the cursor as the API writes it: <intent entry ID>/<route ID>
// (an entry ID has no slash, so the first one separates them).
func (c RouteCursor) String() string { return c.IntentID + "/" + c.RouteID }

// ParseRouteCursor reads a cursor written by RouteCursor.String.
func ParseRouteCursor(s string) (RouteCursor, bool) {
	id, route, ok := strings.Cut(s, "/")
	if !ok || route == "" {
		return RouteCursor{}, false
	}
	if _, _, ok := SplitEntryID(id); !ok {
		return RouteCursor{}, false
	}
	return RouteCursor{IntentID: id, RouteID: route}, true
}

// deadRoutesSQL reads dead routes through the notifications that can hold
// one: a dead route makes its notification dead or partially_routed once
// every route is final, and leaves it pending while another route still
// waits (routing.Summarize). The status index of notifications gives those
// newest first, so a page reads the notifications it shows and the routed
// and skipped majority of the history is never scanned.
const deadRoutesSQL = `
SELECT n.intent_id, n.notification_type, n.producer,
	r.route_id, r.user_id, r.recipient, r.locale, r.status, r.reason, r.attempts, r.last_error, r.idempotency_key,
	r.mail_entry_id, r.next_attempt_at_ms, r.last_attempt_at_ms, r.routed_at_ms, r.created_at_ms, r.updated_at_ms
FROM notifications n JOIN routes r ON r.intent_id = n.intent_id
WHERE n.status IN ('dead', 'partially_routed', 'pending') AND r.status = 'dead'
	AND ($1::bigint IS NULL OR (n.id_ms, n.id_seq) < ($1, $2) OR ((n.id_ms, n.id_seq) = ($1, $2) AND r.route_id > $3))
ORDER BY n.id_ms DESC, n.id_seq DESC, r.route_id
LIMIT $4`

// DeadRoutes returns up to limit dead routes after cursor (nil: from the
// newest), and the cursor of the next page (nil on the last one).
func (s *Store) DeadRoutes(ctx context.Context, cursor *RouteCursor, limit int) ([]DeadRoute, *RouteCursor, error) {
	var ms, seq *int64
	var after *string
	if cursor != nil {
		m, q, ok := SplitEntryID(cursor.IntentID)
		if !ok {
			return nil, nil, fmt.Errorf("list dead routes: bad cursor %q", cursor.String())
		}
		ms, seq, after = &m, &q, &cursor.RouteID
	}
	rows, err := s.pool.Query(ctx, deadRoutesSQL, oneShot, ms, seq, after, limit+1)
	if err != nil {
		return nil, nil, fmt.Errorf("list dead routes: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (DeadRoute, error) {
		var d DeadRoute
		r := &d.Route
		err := row.Scan(&d.IntentID, &d.NotificationType, &d.Producer,
			&r.RouteID, &r.UserID, &r.Recipient, &r.Locale, &r.Status, &r.Reason, &r.Attempts, &r.LastError,
			&r.IdempotencyKey, &r.MailEntryID, &r.NextAttemptAtMS, &r.LastAttemptAtMS, &r.RoutedAtMS,
			&r.CreatedAtMS, &r.UpdatedAtMS)
		return d, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list dead routes: %w", err)
	}
	if len(items) <= limit {
		return items, nil, nil
	}
	items = items[:limit]
	last := items[len(items)-1]
	return items, &RouteCursor{IntentID: last.IntentID, RouteID: last.RouteID}, nil
}

// ErrRouteNotFound is returned by RetryDeadRoute for a notification that has
// no route of that ID.
var ErrRouteNotFound = errors.New("route not found")

// NotDeadError is returned by RetryDeadRoute for a route that is not dead:
// nothing was changed.
type NotDeadError struct {
	Status string
}

func (e NotDeadError) Error() string { return "the route is " + e.Status + ", not dead" }

// RetryDeadRoute makes a dead route pending again with its attempts reset
// and its next attempt due now, and its notification pending, so the retry
// loop hands it to Mail again with the same idempotency key. What the route
// knows of an earlier hand-off is kept (maybe_sent_since_ms): the loop
// looks for a command that may already be in the mail stream before adding
// one, and Mail drops a repeated key, so a retry mails a recipient at most
// once. Its last_error is kept too, until the next attempt replaces it.
//
// It holds the notification's row lock, as a hand-off does, so it never
// changes a route under a hand-off in progress. It returns the
// notification as it is now; ErrNotFound or ErrRouteNotFound for unknown
// IDs, NotDeadError when the route is not dead.
func (s *Store) RetryDeadRoute(ctx context.Context, intentID, routeID string, now time.Time) (Notification, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return Notification{}, fmt.Errorf("retry route: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	var found bool
	err = tx.QueryRow(ctx, `SELECT true FROM notifications WHERE intent_id = $1 FOR UPDATE`, oneShot, intentID).Scan(&found)
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, ErrNotFound
	}
	if err != nil {
		return Notification{}, fmt.Errorf("retry route: lock notification %s: %w", intentID, err)
	}
	var status string
	err = tx.QueryRow(ctx, `SELECT status FROM routes WHERE intent_id = $1 AND route_id = $2`, oneShot, intentID, routeID).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, ErrRouteNotFound
	}
	if err != nil {
		return Notification{}, fmt.Errorf("retry route: read route %s: %w", routeID, err)
	}
	if status != routing.RouteDead {
		return Notification{}, NotDeadError{Status: status}
	}
	nowMS := now.UnixMilli()
	_, err = tx.Exec(ctx, `
		WITH route AS (
			UPDATE routes SET status = 'pending', attempts = 0, reason = NULL, next_attempt_at_ms = $3, updated_at_ms = $3
			WHERE intent_id = $1 AND route_id = $2
		)
		UPDATE notifications SET status = 'pending', reason = NULL,
			next_attempt_at_ms = least(coalesce(next_attempt_at_ms, $3), $3), updated_at_ms = $3
		WHERE intent_id = $1`, oneShot, intentID, routeID, nowMS)
	if err != nil {
		return Notification{}, fmt.Errorf("retry route %s of %s: %w", routeID, intentID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Notification{}, fmt.Errorf("retry route: commit: %w", err)
	}
	return s.Get(ctx, intentID)
}

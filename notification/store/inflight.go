package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// InFlight counts the routes still waiting to be handed to Mail, and the
// notifications they belong to.
type InFlight struct {
	// Notifications is the number of pending notifications.
	Notifications int64
	// FirstAttempt counts routes never attempted: recorded, their hand-off
	// not yet done (or cut short by a crash and due for recovery).
	FirstAttempt int64
	// Retry counts routes whose hand-off failed and waits for its backoff.
	Retry int64
	// OldestWaitingMS is when the oldest pending notification was recorded
	// (Unix milliseconds): how long its routes have waited; 0 when none.
	OldestWaitingMS int64
}

// Routes is the number of waiting routes.
func (f InFlight) Routes() int64 { return f.FirstAttempt + f.Retry }

// inFlightSQL starts from the pending notifications: a route is pending only
// while its notification is (both are written by one statement, see write
// and Record), and the partial index notifications_due_idx holds exactly
// those, so the count reads the unfinished work only and not the history.
const inFlightSQL = `
SELECT count(DISTINCT n.intent_id),
	count(*) FILTER (WHERE r.attempts = 0),
	count(*) FILTER (WHERE r.attempts > 0),
	coalesce(min(n.created_at_ms), 0)
FROM notifications n JOIN routes r ON r.intent_id = n.intent_id
WHERE n.status = 'pending' AND r.status = 'pending'`

// InFlight counts the waiting routes in one statement (one snapshot).
func (s *Store) InFlight(ctx context.Context) (InFlight, error) {
	var f InFlight
	rows, err := s.pool.Query(ctx, inFlightSQL, oneShot)
	if err != nil {
		return f, fmt.Errorf("count waiting routes: %w", err)
	}
	f, err = pgx.CollectExactlyOneRow(rows, func(row pgx.CollectableRow) (InFlight, error) {
		var f InFlight
		err := row.Scan(&f.Notifications, &f.FirstAttempt, &f.Retry, &f.OldestWaitingMS)
		return f, err
	})
	if err != nil {
		return f, fmt.Errorf("count waiting routes: %w", err)
	}
	return f, nil
}

// DeadRoutesCap bounds DeadRouteCount: dead routes stay until an operator
// retries them or retention deletes their notification, so the count is
// capped to keep every scrape's read bounded. A count at the cap means at
// least that many.
const DeadRoutesCap = 10000

// DeadRouteCount counts the dead routes, up to DeadRoutesCap, through the
// partial index routes_dead_idx.
func (s *Store) DeadRouteCount(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM routes WHERE status = 'dead' LIMIT $1) capped`,
		oneShot, DeadRoutesCap).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count dead routes: %w", err)
	}
	return n, nil
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// InFlight counts the deliveries whose outcome is not settled yet: what the
// senders still have to do or are doing.
type InFlight struct {
	Queued   int64
	Sending  int64
	Retrying int64
	// OldestWaiting is when the oldest queued or retrying delivery was
	// created — how long the oldest mail has waited to be sent; zero when
	// none waits.
	OldestWaiting time.Time
}

// Total is the number of unfinished deliveries.
func (f InFlight) Total() int64 { return f.Queued + f.Sending + f.Retrying }

// inFlightSQL names exactly the predicate of the partial index
// mail_deliveries_due, and the status index covers the same rows: either
// way the count reads only unfinished deliveries, however many were sent
// before, so it stays cheap enough to poll.
const inFlightSQL = `
SELECT status, count(*), min(created_at) FROM mail_deliveries
WHERE status IN ('queued', 'retrying', 'sending')
GROUP BY status`

// InFlight counts queued, sending and retrying deliveries. The counts come
// from one statement, so they are one consistent snapshot.
func (s *Store) InFlight(ctx context.Context) (InFlight, error) {
	var f InFlight
	// Planned for each call (see Claim): a plan cached while the table was
	// empty would keep scanning it whole.
	rows, err := s.pool.Query(ctx, inFlightSQL, pgx.QueryExecModeExec)
	if err != nil {
		return f, fmt.Errorf("count unfinished deliveries: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var status string
		var n int64
		var oldest time.Time
		if err := rows.Scan(&status, &n, &oldest); err != nil {
			return f, fmt.Errorf("count unfinished deliveries: %w", err)
		}
		switch status {
		case StatusQueued:
			f.Queued = n
		case StatusSending:
			f.Sending = n
		case StatusRetrying:
			f.Retrying = n
		}
		if status != StatusSending && (f.OldestWaiting.IsZero() || oldest.Before(f.OldestWaiting)) {
			f.OldestWaiting = oldest
		}
	}
	if err := rows.Err(); err != nil {
		return f, fmt.Errorf("count unfinished deliveries: %w", err)
	}
	return f, nil
}

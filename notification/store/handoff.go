package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"galaxy/notification/routing"
)

// PendingRoute is a route locked for a hand-off, with what the hand-off needs
// of its notification.
type PendingRoute struct {
	IntentID       string
	RouteID        string
	UserID         string // user routes
	Recipient      string // admin routes (and user routes resolved before)
	IdempotencyKey string
	Attempts       int
	// MaybeSentSinceMS is when a mail command of this route may have been
	// added to the stream without being recorded (0: certainly not).
	MaybeSentSinceMS int64
	NotificationType string
	PayloadJSON      string
	Traceparent      string
	// IntentAtMS is when the intent entered its stream (its entry ID).
	IntentAtMS int64
}

// RouteUpdate is the outcome of one hand-off attempt for a route.
type RouteUpdate struct {
	IntentID  string
	RouteID   string
	Status    string
	Attempts  int
	LastError string
	Reason    string
	// Recipient and Locale are recorded when known (kept when empty).
	Recipient        string
	Locale           string
	NextAttemptAtMS  int64 // pending routes: when to try again
	LastAttemptAtMS  int64
	MaybeSentSinceMS int64
	MailEntryID      string
	RoutedAtMS       int64
}

// HandOffFunc attempts the hand-off of routes and returns one update per
// route it decided on (a route left out stays as it was).
type HandOffFunc func(ctx context.Context, routes []PendingRoute) []RouteUpdate

// HandOffRecorded hands off the pending routes of the given notifications
// that were never attempted or are due. Notifications another transaction
// holds are skipped: their holder will finish them. It returns the number of
// routes handed to fn.
func (s *Store) HandOffRecorded(ctx context.Context, intentIDs []string, now time.Time, fn HandOffFunc) (int, error) {
	return s.handOff(ctx, now, fn, `
		SELECT intent_id FROM notifications
		WHERE intent_id = ANY($1) AND status = 'pending'
		ORDER BY intent_id FOR UPDATE SKIP LOCKED`,
		[]any{intentIDs}, true)
}

// HandOffDue hands off routes whose next attempt is due, taking at most
// limit notifications. It returns the number of notifications taken, so the
// caller knows whether to go on at once.
func (s *Store) HandOffDue(ctx context.Context, now time.Time, limit int, fn HandOffFunc) (int, error) {
	return s.handOff(ctx, now, fn, `
		SELECT intent_id FROM notifications
		WHERE status = 'pending' AND next_attempt_at_ms <= $1
		ORDER BY next_attempt_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED`,
		[]any{now.UnixMilli(), limit}, false)
}

func (s *Store) handOff(ctx context.Context, now time.Time, fn HandOffFunc, lockSQL string, lockArgs []any, includeUnattempted bool) (int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("hand off: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, lockSQL, lockArgs...)
	if err != nil {
		return 0, fmt.Errorf("hand off: lock notifications: %w", err)
	}
	locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, fmt.Errorf("hand off: lock notifications: %w", err)
	}
	if len(locked) == 0 {
		return 0, nil
	}
	rows, err = tx.Query(ctx, `
		SELECT r.intent_id, r.route_id, coalesce(r.user_id, ''), coalesce(r.recipient, ''), r.idempotency_key,
			r.attempts, coalesce(r.maybe_sent_since_ms, 0), n.notification_type, coalesce(n.payload_json, '{}'),
			coalesce(n.traceparent, ''), n.id_ms
		FROM routes r JOIN notifications n ON n.intent_id = r.intent_id
		WHERE r.intent_id = ANY($1) AND r.status = 'pending'
			AND (r.next_attempt_at_ms <= $2 OR ($3 AND r.attempts = 0))
		ORDER BY r.intent_id, r.route_id`,
		locked, now.UnixMilli(), includeUnattempted)
	if err != nil {
		return 0, fmt.Errorf("hand off: select routes: %w", err)
	}
	var routes []PendingRoute
	var p PendingRoute
	_, err = pgx.ForEachRow(rows, []any{&p.IntentID, &p.RouteID, &p.UserID, &p.Recipient, &p.IdempotencyKey,
		&p.Attempts, &p.MaybeSentSinceMS, &p.NotificationType, &p.PayloadJSON, &p.Traceparent, &p.IntentAtMS}, func() error {
		routes = append(routes, p)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("hand off: select routes: %w", err)
	}
	var updates []RouteUpdate
	if len(routes) > 0 {
		updates = fn(ctx, routes)
	}
	if err := applyRouteUpdates(ctx, tx, updates, now); err != nil {
		return 0, err
	}
	if err := summarize(ctx, tx, locked, now); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("hand off: commit: %w", err)
	}
	if includeUnattempted {
		return len(routes), nil
	}
	return len(locked), nil
}

func applyRouteUpdates(ctx context.Context, tx pgx.Tx, updates []RouteUpdate, now time.Time) error {
	if len(updates) == 0 {
		return nil
	}
	var (
		intentID, routeID, status                       = make([]string, 0, len(updates)), make([]string, 0, len(updates)), make([]string, 0, len(updates))
		attempts                                        = make([]int32, 0, len(updates))
		lastError, reason, recipient, locale, mailEntry []*string
		next, lastAttempt, maybeSent, routedAt          []*int64
	)
	for _, u := range updates {
		intentID = append(intentID, u.IntentID)
		routeID = append(routeID, u.RouteID)
		status = append(status, u.Status)
		attempts = append(attempts, int32(u.Attempts))
		lastError = append(lastError, nullable(u.LastError))
		reason = append(reason, nullable(u.Reason))
		recipient = append(recipient, nullable(u.Recipient))
		locale = append(locale, nullable(u.Locale))
		mailEntry = append(mailEntry, nullable(u.MailEntryID))
		next = append(next, nonZero(u.NextAttemptAtMS))
		lastAttempt = append(lastAttempt, nonZero(u.LastAttemptAtMS))
		maybeSent = append(maybeSent, nonZero(u.MaybeSentSinceMS))
		routedAt = append(routedAt, nonZero(u.RoutedAtMS))
	}
	_, err := tx.Exec(ctx, `
		UPDATE routes r SET status = u.status, attempts = u.attempts, last_error = coalesce(u.last_error, r.last_error),
			reason = u.reason, recipient = coalesce(u.recipient, r.recipient), locale = coalesce(u.locale, r.locale),
			mail_entry_id = coalesce(u.mail_entry, r.mail_entry_id), next_attempt_at_ms = u.next,
			last_attempt_at_ms = coalesce(u.last_attempt, r.last_attempt_at_ms), maybe_sent_since_ms = u.maybe_sent,
			routed_at_ms = coalesce(u.routed_at, r.routed_at_ms), updated_at_ms = $14
		FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
			AS u(intent_id, route_id, status, attempts, last_error, reason, recipient, locale, mail_entry, next,
				last_attempt, maybe_sent, routed_at)
		WHERE r.intent_id = u.intent_id AND r.route_id = u.route_id`,
		intentID, routeID, status, attempts, lastError, reason, recipient, locale, mailEntry, next, lastAttempt,
		maybeSent, routedAt, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("hand off: update %d routes: %w", len(updates), err)
	}
	return nil
}

// summarize recomputes the status, reason and next attempt of the given
// notifications from all their routes.
func summarize(ctx context.Context, tx pgx.Tx, intentIDs []string, now time.Time) error {
	rows, err := tx.Query(ctx, `
		SELECT intent_id, status, coalesce(reason, ''), coalesce(next_attempt_at_ms, 0)
		FROM routes WHERE intent_id = ANY($1)`, intentIDs)
	if err != nil {
		return fmt.Errorf("hand off: read route states: %w", err)
	}
	states := map[string][]routing.RouteState{}
	nextDue := map[string]int64{}
	var id, st, reason string
	var next int64
	_, err = pgx.ForEachRow(rows, []any{&id, &st, &reason, &next}, func() error {
		states[id] = append(states[id], routing.RouteState{Status: st, Reason: reason})
		if st == routing.RoutePending && (nextDue[id] == 0 || next < nextDue[id]) {
			nextDue[id] = next
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hand off: read route states: %w", err)
	}
	var (
		ids, statuses []string
		reasons       []*string
		nexts         []*int64
	)
	for _, id := range intentIDs {
		rs, ok := states[id]
		if !ok {
			continue
		}
		status, reason := routing.Summarize(rs)
		ids = append(ids, id)
		statuses = append(statuses, status)
		reasons = append(reasons, nullable(reason))
		var n *int64
		if status == routing.StatusPending {
			n = ptr(nextDue[id])
		}
		nexts = append(nexts, n)
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = tx.Exec(ctx, `
		UPDATE notifications n SET status = u.status, reason = u.reason, next_attempt_at_ms = u.next, updated_at_ms = $5
		FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS u(intent_id, status, reason, next)
		WHERE n.intent_id = u.intent_id`,
		ids, statuses, reasons, nexts, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("hand off: update %d notifications: %w", len(ids), err)
	}
	return nil
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

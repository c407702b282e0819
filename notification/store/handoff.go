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
	// TraceContext is the intent's consume span (streams.EncodeTrace), ""
	// when the intent had no trace.
	TraceContext string
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
		SELECT `+routeColumnsSQL+`
		FROM notifications n JOIN routes r ON r.intent_id = n.intent_id
		WHERE n.intent_id = ANY($1) AND n.status = 'pending'
		ORDER BY n.intent_id, r.route_id
		FOR UPDATE OF n SKIP LOCKED`,
		[]any{intentIDs, now.UnixMilli(), true}, true)
}

// HandOffDue hands off routes whose next attempt is due, taking at most
// limit notifications. It returns the number of notifications taken, so the
// caller knows whether to go on at once.
func (s *Store) HandOffDue(ctx context.Context, now time.Time, limit int, fn HandOffFunc) (int, error) {
	return s.handOff(ctx, now, fn, `
		WITH due AS (
			SELECT intent_id FROM notifications
			WHERE status = 'pending' AND next_attempt_at_ms <= $2
			ORDER BY next_attempt_at_ms LIMIT $1 FOR UPDATE SKIP LOCKED
		)
		SELECT `+routeColumnsSQL+`
		FROM due JOIN notifications n ON n.intent_id = due.intent_id JOIN routes r ON r.intent_id = n.intent_id
		ORDER BY n.intent_id, r.route_id`,
		[]any{limit, now.UnixMilli(), false}, false)
}

// routeColumnsSQL selects every route of a locked notification with what a
// hand-off needs; "due" marks the routes to attempt now ($2: now, $3: whether
// never-attempted routes count as due).
const routeColumnsSQL = `r.intent_id, r.route_id, coalesce(r.user_id, ''), coalesce(r.recipient, ''), r.idempotency_key,
	r.attempts, coalesce(r.maybe_sent_since_ms, 0), n.notification_type, coalesce(n.payload_json, '{}'),
	coalesce(n.trace_context, CASE WHEN n.traceparent IS NOT NULL THEN json_build_object('traceparent', n.traceparent)::text END, ''), n.id_ms, r.status, coalesce(r.reason, ''), coalesce(r.next_attempt_at_ms, 0),
	(r.status = 'pending' AND (r.next_attempt_at_ms <= $2 OR ($3 AND r.attempts = 0))) AS due`

// handOff runs one hand-off transaction: lock notifications and read all
// their routes (one statement), let fn attempt the due ones, then write the
// route outcomes and the notifications' new summaries (one statement).
func (s *Store) handOff(ctx context.Context, now time.Time, fn HandOffFunc, selectSQL string, args []any, countRoutes bool) (int, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, fmt.Errorf("hand off: begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	rows, err := tx.Query(ctx, selectSQL, append([]any{oneShot}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("hand off: lock notifications: %w", err)
	}
	type state struct {
		routing.RouteState
		next int64
	}
	var (
		due    []PendingRoute
		order  []string // locked notifications, in lock order
		states = map[string]map[string]*state{}
		p      PendingRoute
		st     state
		isDue  bool
	)
	_, err = pgx.ForEachRow(rows, []any{&p.IntentID, &p.RouteID, &p.UserID, &p.Recipient, &p.IdempotencyKey,
		&p.Attempts, &p.MaybeSentSinceMS, &p.NotificationType, &p.PayloadJSON, &p.TraceContext, &p.IntentAtMS,
		&st.Status, &st.Reason, &st.next, &isDue}, func() error {
		if _, ok := states[p.IntentID]; !ok {
			states[p.IntentID] = map[string]*state{}
			order = append(order, p.IntentID)
		}
		cp := st
		states[p.IntentID][p.RouteID] = &cp
		if isDue {
			due = append(due, p)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("hand off: lock notifications: %w", err)
	}
	if len(order) == 0 {
		return 0, nil
	}
	var updates []RouteUpdate
	if len(due) > 0 {
		updates = fn(ctx, due)
	}
	for _, u := range updates {
		if rs := states[u.IntentID][u.RouteID]; rs != nil {
			rs.Status, rs.Reason, rs.next = u.Status, u.Reason, u.NextAttemptAtMS
		}
	}
	var sums []summary
	for _, id := range order {
		var rs []routing.RouteState
		var next int64
		for _, st := range states[id] {
			rs = append(rs, st.RouteState)
			if st.Status == routing.RoutePending && (next == 0 || st.next < next) {
				next = st.next
			}
		}
		status, reason := routing.Summarize(rs)
		if status != routing.StatusPending {
			next = 0
		}
		sums = append(sums, summary{id, status, reason, next})
	}
	if err := write(ctx, tx, updates, sums, now); err != nil {
		return 0, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("hand off: commit: %w", err)
	}
	if countRoutes {
		return len(due), nil
	}
	return len(order), nil
}

// summary is a notification's status derived from its routes.
type summary struct {
	intentID, status, reason string
	next                     int64
}

// write records route outcomes and notification summaries in one statement.
func write(ctx context.Context, tx pgx.Tx, updates []RouteUpdate, sums []summary, now time.Time) error {
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
	var (
		sumID, sumStatus = make([]string, 0, len(sums)), make([]string, 0, len(sums))
		sumReason        []*string
		sumNext          []*int64
	)
	for _, s := range sums {
		sumID = append(sumID, s.intentID)
		sumStatus = append(sumStatus, s.status)
		sumReason = append(sumReason, nullable(s.reason))
		sumNext = append(sumNext, nonZero(s.next))
	}
	_, err := tx.Exec(ctx, `
		WITH route_updates AS (
			UPDATE routes r SET status = u.status, attempts = u.attempts, last_error = coalesce(u.last_error, r.last_error),
				reason = u.reason, recipient = coalesce(u.recipient, r.recipient), locale = coalesce(u.locale, r.locale),
				mail_entry_id = coalesce(u.mail_entry, r.mail_entry_id), next_attempt_at_ms = u.next,
				last_attempt_at_ms = coalesce(u.last_attempt, r.last_attempt_at_ms), maybe_sent_since_ms = u.maybe_sent,
				routed_at_ms = coalesce(u.routed_at, r.routed_at_ms), updated_at_ms = $14
			FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::text[],
				$9::text[], $10::bigint[], $11::bigint[], $12::bigint[], $13::bigint[])
				AS u(intent_id, route_id, status, attempts, last_error, reason, recipient, locale, mail_entry, next,
					last_attempt, maybe_sent, routed_at)
			WHERE r.intent_id = u.intent_id AND r.route_id = u.route_id
		)
		UPDATE notifications n SET status = s.status, reason = s.reason, next_attempt_at_ms = s.next, updated_at_ms = $14
		FROM unnest($15::text[], $16::text[], $17::text[], $18::bigint[]) AS s(intent_id, status, reason, next)
		WHERE n.intent_id = s.intent_id`, oneShot,
		intentID, routeID, status, attempts, lastError, reason, recipient, locale, mailEntry, next, lastAttempt,
		maybeSent, routedAt, now.UnixMilli(), sumID, sumStatus, sumReason, sumNext)
	if err != nil {
		return fmt.Errorf("hand off: record %d route outcomes: %w", len(updates), err)
	}
	return nil
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// Package store keeps notifications, their routes and producers'
// idempotency keys in PostgreSQL.
//
// Writes come in batches (one statement per table per batch, arrays through
// unnest) because the intent stream is consumed in groups; a hand-off runs
// inside a transaction that holds the row lock of each notification it
// works on (FOR UPDATE SKIP LOCKED), so two processes never hand off the same
// route at once.
package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"galaxy/notification/routing"
)

// Store is the Notification Service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a store over pool (migrated by database.Open).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// ErrNotFound is returned by Get for an unknown intent entry ID.
var ErrNotFound = errors.New("notification not found")

// SplitEntryID splits a stream entry ID ("1700000000000-3") into its numbers.
func SplitEntryID(id string) (ms, seq int64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	if !found {
		return 0, 0, false
	}
	ms, err1 := strconv.ParseInt(a, 10, 64)
	seq, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ms < 0 || seq < 0 {
		return 0, 0, false
	}
	return ms, seq, true
}

// NewNotification is one intent entry to record.
type NewNotification struct {
	IntentID         string
	NotificationType string
	Producer         string
	AudienceKind     string
	// AudienceJSON and PayloadJSON are empty for rejected intents, whose
	// fields are kept in RawFields instead.
	AudienceJSON   string
	PayloadJSON    string
	OccurredAtMS   int64 // 0: unknown (rejected)
	IdempotencyKey string
	// TraceContext is the intent's consume span (streams.EncodeTrace).
	TraceContext string
	// Status is pending (Routes is not empty), skipped or rejected.
	Status    string
	Reason    string
	RawFields string
	Routes    []routing.Route
}

// Recorded is the outcome of recording one NewNotification.
type Recorded struct {
	// Fresh is false when the entry had been recorded before (redelivery).
	Fresh bool
	// Status is the status recorded now; it differs from the requested one
	// for a duplicate (skipped). Unset when not Fresh.
	Status string
	// DuplicateOf names the intent that first carried the producer's key.
	DuplicateOf string
}

// KeyRetention is how long a producer's idempotency key counts.
const KeyRetention = 7 * 24 * time.Hour

// Record writes a batch of notifications and their routes atomically. An
// entry recorded before is left as it is (Fresh false). A valid intent whose
// producer and idempotency key were seen within KeyRetention is recorded
// skipped with reason duplicate and no routes. New routes are pending, due at
// firstDue: until then only the process that recorded them (or the entry's
// redelivery) hands them off; later the retry loop takes over.
//
// Notifications and routes go in one statement; with idempotency keys the
// key claims share a transaction with it.
func (s *Store) Record(ctx context.Context, batch []NewNotification, now time.Time, firstDue time.Time) ([]Recorded, error) {
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	// A fixed lock order (keys, then notifications, each sorted) keeps
	// concurrent batches from deadlocking on one another.
	sort.Slice(order, func(a, b int) bool { return entryLess(batch[order[a]].IntentID, batch[order[b]].IntentID) })

	var q querier = s.pool
	var tx pgx.Tx
	if hasKeys(batch) {
		var err error
		tx, err = s.pool.BeginTx(ctx, pgx.TxOptions{})
		if err != nil {
			return nil, fmt.Errorf("record %d notifications: begin: %w", len(batch), err)
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
		q = tx
	}
	owners, err := claimKeys(ctx, q, batch, order, now)
	if err != nil {
		return nil, fmt.Errorf("record %d notifications: %w", len(batch), err)
	}
	out := make([]Recorded, len(batch))
	nowMS := now.UnixMilli()
	var n notificationColumns
	var r routeColumns
	for _, i := range order {
		nn := batch[i]
		status, reason, dupOf := nn.Status, nn.Reason, ""
		if owner, ok := owners[i]; ok && owner != nn.IntentID {
			status, reason, dupOf = routing.StatusSkipped, routing.ReasonDuplicate, owner
		}
		out[i] = Recorded{Status: status, DuplicateOf: dupOf}
		var next *int64
		if status == routing.StatusPending {
			next = ptr(firstDue.UnixMilli())
			for _, rt := range nn.Routes {
				r.intentID = append(r.intentID, nn.IntentID)
				r.routeID = append(r.routeID, rt.ID)
				r.userID = append(r.userID, nullable(rt.UserID))
				r.recipient = append(r.recipient, nullable(rt.Address))
				r.key = append(r.key, rt.IdempotencyKey)
			}
		}
		n.add(nn, status, reason, dupOf, next)
	}
	// Routes are inserted only for notifications this statement inserted:
	// a redelivered entry keeps the routes it has. maybe_sent_since_ms
	// starts at creation: until an attempt is recorded, whoever recovers a
	// route cannot know whether the recording process handed it off.
	rows, err := q.Query(ctx, `
		WITH ins AS (
			INSERT INTO notifications (intent_id, id_ms, id_seq, notification_type, producer, audience_kind,
				audience_json, payload_json, occurred_at_ms, idempotency_key, trace_context, status, reason,
				duplicate_of, raw_fields, next_attempt_at_ms, created_at_ms, updated_at_ms)
			SELECT u.*, $17, $17 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
				$7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[], $13::text[],
				$14::text[], $15::text[], $16::bigint[]) AS u
			ON CONFLICT (intent_id) DO NOTHING
			RETURNING intent_id, status
		), new_routes AS (
			INSERT INTO routes (intent_id, route_id, user_id, recipient, status, attempts, idempotency_key,
				next_attempt_at_ms, maybe_sent_since_ms, created_at_ms, updated_at_ms)
			SELECT r.intent_id, r.route_id, r.user_id, r.recipient, 'pending', 0, r.key, $23, $17, $17, $17
			FROM unnest($18::text[], $19::text[], $20::text[], $21::text[], $22::text[])
				AS r(intent_id, route_id, user_id, recipient, key)
			JOIN ins ON ins.intent_id = r.intent_id AND ins.status = 'pending'
		)
		SELECT intent_id FROM ins`, oneShot,
		n.intentID, n.idMS, n.idSeq, n.ntype, n.producer, n.audienceKind,
		n.audienceJSON, n.payloadJSON, n.occurredAt, n.key, n.traceContext, n.status, n.reason,
		n.duplicateOf, n.rawFields, n.next, nowMS,
		r.intentID, r.routeID, r.userID, r.recipient, r.key, firstDue.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("record %d notifications: %w", len(batch), err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("record %d notifications: %w", len(batch), err)
	}
	isFresh := make(map[string]bool, len(fresh))
	for _, id := range fresh {
		isFresh[id] = true
	}
	for i, nn := range batch {
		if isFresh[nn.IntentID] {
			out[i].Fresh = true
		} else {
			out[i] = Recorded{}
		}
	}
	if tx != nil {
		if err := tx.Commit(ctx); err != nil {
			return nil, fmt.Errorf("record %d notifications: commit: %w", len(batch), err)
		}
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func hasKeys(batch []NewNotification) bool {
	for _, nn := range batch {
		if nn.IdempotencyKey != "" && nn.Status != routing.StatusRejected {
			return true
		}
	}
	return false
}

// claimKeys registers the producers' idempotency keys of the batch's valid
// intents and returns, by batch index, the intent that owns each key: the
// intent itself when it is the first within KeyRetention.
func claimKeys(ctx context.Context, tx querier, batch []NewNotification, order []int, now time.Time) (map[int]string, error) {
	type pk struct{ producer, key string }
	first := map[pk]int{}
	var keys []pk
	for _, i := range order {
		nn := batch[i]
		if nn.IdempotencyKey == "" || nn.Status == routing.StatusRejected {
			continue
		}
		k := pk{nn.Producer, nn.IdempotencyKey}
		if _, ok := first[k]; !ok {
			first[k] = i
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	sort.Slice(keys, func(a, b int) bool {
		if keys[a].producer != keys[b].producer {
			return keys[a].producer < keys[b].producer
		}
		return keys[a].key < keys[b].key
	})
	producers := make([]string, len(keys))
	ks := make([]string, len(keys))
	intents := make([]string, len(keys))
	for j, k := range keys {
		producers[j], ks[j], intents[j] = k.producer, k.key, batch[first[k]].IntentID
	}
	nowMS := now.UnixMilli()
	cutoff := now.Add(-KeyRetention).UnixMilli()
	rows, err := tx.Query(ctx, `
		INSERT INTO producer_keys (producer, idempotency_key, intent_id, created_at_ms)
		SELECT u.producer, u.key, u.intent_id, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS u(producer, key, intent_id)
		ON CONFLICT (producer, idempotency_key) DO UPDATE SET
			intent_id = CASE WHEN producer_keys.created_at_ms < $5 THEN excluded.intent_id ELSE producer_keys.intent_id END,
			created_at_ms = CASE WHEN producer_keys.created_at_ms < $5 THEN excluded.created_at_ms ELSE producer_keys.created_at_ms END
		RETURNING producer, idempotency_key, intent_id`, oneShot,
		producers, ks, intents, nowMS, cutoff)
	if err != nil {
		return nil, fmt.Errorf("claim idempotency keys: %w", err)
	}
	owner := map[pk]string{}
	var p, k, id string
	_, err = pgx.ForEachRow(rows, []any{&p, &k, &id}, func() error {
		owner[pk{p, k}] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim idempotency keys: %w", err)
	}
	out := map[int]string{}
	for _, i := range order {
		nn := batch[i]
		if nn.IdempotencyKey == "" || nn.Status == routing.StatusRejected {
			continue
		}
		out[i] = owner[pk{nn.Producer, nn.IdempotencyKey}]
	}
	return out, nil
}

// PurgeKeys deletes idempotency keys older than KeyRetention.
func (s *Store) PurgeKeys(ctx context.Context, now time.Time) (int64, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM producer_keys WHERE created_at_ms < $1`, oneShot, now.Add(-KeyRetention).UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("purge idempotency keys: %w", err)
	}
	return tag.RowsAffected(), nil
}

type notificationColumns struct {
	intentID, ntype, producer, audienceKind, status []string
	idMS, idSeq                                     []int64
	audienceJSON, payloadJSON, key, traceContext    []*string
	reason, duplicateOf, rawFields                  []*string
	occurredAt, next                                []*int64
}

func (c *notificationColumns) add(nn NewNotification, status, reason, dupOf string, next *int64) {
	ms, seq, _ := SplitEntryID(nn.IntentID)
	c.intentID = append(c.intentID, nn.IntentID)
	c.idMS = append(c.idMS, ms)
	c.idSeq = append(c.idSeq, seq)
	c.ntype = append(c.ntype, nn.NotificationType)
	c.producer = append(c.producer, nn.Producer)
	c.audienceKind = append(c.audienceKind, nn.AudienceKind)
	c.audienceJSON = append(c.audienceJSON, nullable(nn.AudienceJSON))
	c.payloadJSON = append(c.payloadJSON, nullable(nn.PayloadJSON))
	var occ *int64
	if nn.Status != routing.StatusRejected {
		occ = ptr(nn.OccurredAtMS)
	}
	c.occurredAt = append(c.occurredAt, occ)
	c.key = append(c.key, nullable(nn.IdempotencyKey))
	c.traceContext = append(c.traceContext, nullable(nn.TraceContext))
	c.status = append(c.status, status)
	c.reason = append(c.reason, nullable(reason))
	c.duplicateOf = append(c.duplicateOf, nullable(dupOf))
	c.rawFields = append(c.rawFields, nullable(nn.RawFields))
	c.next = append(c.next, next)
}

type routeColumns struct {
	intentID, routeID, key []string
	userID, recipient      []*string
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func ptr[T any](v T) *T { return &v }

// entryLess orders stream entry IDs numerically.
func entryLess(a, b string) bool {
	am, as, _ := SplitEntryID(a)
	bm, bs, _ := SplitEntryID(b)
	if am != bm {
		return am < bm
	}
	if as != bs {
		return as < bs
	}
	return a < b
}

// oneShot runs a statement as an unnamed prepared statement (one round trip,
// description cached), so PostgreSQL plans it with the actual arrays every
// time. With cached named statements it settles on a generic plan while the
// tables are small — sequential scans — and keeps it as they grow.
const oneShot = pgx.QueryExecModeCacheDescribe

// PurgeFinished deletes up to limit notifications that are no longer
// pending and whose intent entered the stream before cutoff, oldest first,
// with their routes, and returns how many it deleted.
func (s *Store) PurgeFinished(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
DELETE FROM notifications WHERE intent_id IN (
	SELECT intent_id FROM notifications
	WHERE id_ms < $1 AND status <> 'pending'
	ORDER BY id_ms LIMIT $2)`, oneShot, cutoff.UnixMilli(), limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

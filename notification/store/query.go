package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Notification is a recorded intent with its status and routes, as the API
// shows it.
type Notification struct {
	IntentID         string `json:"intent_entry_id"`
	NotificationType string `json:"notification_type"`
	Producer         string `json:"producer"`
	AudienceKind     string `json:"audience_kind"`
	// Audience and Payload are the intent's JSON fields (valid intents).
	Audience       json.RawMessage `json:"audience,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	OccurredAtMS   *int64          `json:"occurred_at_ms,omitempty"`
	IdempotencyKey *string         `json:"idempotency_key"`
	Status         string          `json:"status"`
	Reason         *string         `json:"reason"`
	DuplicateOf    *string         `json:"duplicate_of,omitempty"`
	// RawFields holds a rejected intent's fields as received.
	RawFields       json.RawMessage `json:"raw_fields,omitempty"`
	NextAttemptAtMS *int64          `json:"next_attempt_at_ms,omitempty"`
	CreatedAtMS     int64           `json:"created_at_ms"`
	UpdatedAtMS     int64           `json:"updated_at_ms"`
	Routes          []Route         `json:"routes"`
}

// Route is one recipient of a notification, as the API shows it.
type Route struct {
	RouteID         string  `json:"route_id"`
	UserID          *string `json:"user_id,omitempty"`
	Recipient       *string `json:"recipient"`
	Locale          *string `json:"locale,omitempty"`
	Status          string  `json:"status"`
	Reason          *string `json:"reason,omitempty"`
	Attempts        int     `json:"attempts"`
	LastError       *string `json:"last_error"`
	IdempotencyKey  string  `json:"idempotency_key"`
	MailEntryID     *string `json:"mail_entry_id,omitempty"`
	NextAttemptAtMS *int64  `json:"next_attempt_at_ms,omitempty"`
	LastAttemptAtMS *int64  `json:"last_attempt_at_ms,omitempty"`
	RoutedAtMS      *int64  `json:"routed_at_ms,omitempty"`
	CreatedAtMS     int64   `json:"created_at_ms"`
	UpdatedAtMS     int64   `json:"updated_at_ms"`
}

// Filter selects notifications for List. Cursor is the intent entry ID of the
// last item of the previous page ("" for the first page).
type Filter struct {
	Type   string
	Status string
	Cursor string
	Limit  int
}

const notificationColumnsSQL = `intent_id, notification_type, producer, audience_kind, audience_json, payload_json,
	occurred_at_ms, idempotency_key, status, reason, duplicate_of, raw_fields, next_attempt_at_ms,
	created_at_ms, updated_at_ms`

// List returns notifications newest first (by stream order) and the cursor of
// the next page ("" when this is the last).
func (s *Store) List(ctx context.Context, f Filter) ([]Notification, string, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Type != "" {
		where = append(where, "notification_type = "+arg(f.Type))
	}
	if f.Status != "" {
		where = append(where, "status = "+arg(f.Status))
	}
	if f.Cursor != "" {
		ms, seq, ok := SplitEntryID(f.Cursor)
		if !ok {
			return nil, "", fmt.Errorf("list notifications: bad cursor %q", f.Cursor)
		}
		where = append(where, fmt.Sprintf("(id_ms, id_seq) < (%s, %s)", arg(ms), arg(seq)))
	}
	q := "SELECT " + notificationColumnsSQL + " FROM notifications"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id_ms DESC, id_seq DESC LIMIT " + arg(f.Limit+1)
	rows, err := s.pool.Query(ctx, q, append([]any{oneShot}, args...)...)
	if err != nil {
		return nil, "", fmt.Errorf("list notifications: %w", err)
	}
	items, err := pgx.CollectRows(rows, scanNotification)
	if err != nil {
		return nil, "", fmt.Errorf("list notifications: %w", err)
	}
	next := ""
	if len(items) > f.Limit {
		items = items[:f.Limit]
		next = items[len(items)-1].IntentID
	}
	if err := s.attachRoutes(ctx, items); err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// Get returns one notification by its intent entry ID, or ErrNotFound.
func (s *Store) Get(ctx context.Context, intentID string) (Notification, error) {
	rows, err := s.pool.Query(ctx, "SELECT "+notificationColumnsSQL+" FROM notifications WHERE intent_id = $1", oneShot, intentID)
	if err != nil {
		return Notification{}, fmt.Errorf("get notification %s: %w", intentID, err)
	}
	n, err := pgx.CollectExactlyOneRow(rows, scanNotification)
	if errors.Is(err, pgx.ErrNoRows) {
		return Notification{}, ErrNotFound
	}
	if err != nil {
		return Notification{}, fmt.Errorf("get notification %s: %w", intentID, err)
	}
	items := []Notification{n}
	if err := s.attachRoutes(ctx, items); err != nil {
		return Notification{}, err
	}
	return items[0], nil
}

func scanNotification(row pgx.CollectableRow) (Notification, error) {
	var n Notification
	var audience, payload, raw *string
	err := row.Scan(&n.IntentID, &n.NotificationType, &n.Producer, &n.AudienceKind, &audience, &payload,
		&n.OccurredAtMS, &n.IdempotencyKey, &n.Status, &n.Reason, &n.DuplicateOf, &raw, &n.NextAttemptAtMS,
		&n.CreatedAtMS, &n.UpdatedAtMS)
	n.Audience = rawJSON(audience)
	n.Payload = rawJSON(payload)
	n.RawFields = rawJSON(raw)
	n.Routes = []Route{}
	return n, err
}

// rawJSON passes stored JSON through; anything stored is validated JSON, but
// a value that is not is shown as a string rather than breaking the response.
func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	if !json.Valid([]byte(*s)) {
		b, _ := json.Marshal(*s)
		return b
	}
	return json.RawMessage(*s)
}

func (s *Store) attachRoutes(ctx context.Context, items []Notification) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]string, len(items))
	index := make(map[string]int, len(items))
	for i, n := range items {
		ids[i] = n.IntentID
		index[n.IntentID] = i
	}
	rows, err := s.pool.Query(ctx, `
		SELECT intent_id, route_id, user_id, recipient, locale, status, reason, attempts, last_error, idempotency_key,
			mail_entry_id, next_attempt_at_ms, last_attempt_at_ms, routed_at_ms, created_at_ms, updated_at_ms
		FROM routes WHERE intent_id = ANY($1) ORDER BY intent_id, route_id`, oneShot, ids)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	var id string
	var r Route
	_, err = pgx.ForEachRow(rows, []any{&id, &r.RouteID, &r.UserID, &r.Recipient, &r.Locale, &r.Status, &r.Reason,
		&r.Attempts, &r.LastError, &r.IdempotencyKey, &r.MailEntryID, &r.NextAttemptAtMS, &r.LastAttemptAtMS,
		&r.RoutedAtMS, &r.CreatedAtMS, &r.UpdatedAtMS}, func() error {
		i := index[id]
		items[i].Routes = append(items[i].Routes, r)
		r = Route{}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	return nil
}

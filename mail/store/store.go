// Package store keeps mail deliveries in PostgreSQL.
//
// The table is also the senders' work queue: a delivery that is queued,
// retrying, or sending with an expired claim is due, and senders take due
// deliveries with SELECT … FOR UPDATE SKIP LOCKED, so replicas share the work
// without taking the same delivery twice, and a sender that dies mid-attempt
// loses nothing (its claim expires and another sender takes the delivery).
//
// Idempotency is the table's UNIQUE idempotency_key: inserts use ON CONFLICT
// DO NOTHING, so the database, not a process, decides which command of a
// duplicate pair creates the delivery.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"galaxy/mail/command"
)

// Statuses of a delivery.
const (
	StatusQueued   = "queued"
	StatusSending  = "sending"
	StatusRetrying = "retrying"
	StatusSent     = "sent"
	StatusFailed   = "failed"
)

// ValidStatus reports whether s is one of the five statuses.
func ValidStatus(s string) bool {
	switch s {
	case StatusQueued, StatusSending, StatusRetrying, StatusSent, StatusFailed:
		return true
	}
	return false
}

// Error codes of deliveries that failed to send (the render failures are
// render.CodeNotFound and render.CodeRenderFailed).
const (
	// CodeRejected: the server refused the message for good (5xx), or the
	// message could not be built (an invalid header).
	CodeRejected = "smtp_rejected"
	// CodeTransient: the last attempt failed for a reason that may pass; set
	// while retrying.
	CodeTransient = "smtp_transient_failure"
	// CodeAttemptsExhausted: every attempt of the sequence failed temporarily.
	CodeAttemptsExhausted = "attempts_exhausted"
)

// Attempt outcomes.
const (
	OutcomeSent             = "sent"
	OutcomeTransientFailure = "transient_failure"
	OutcomePermanentFailure = "permanent_failure"
	// OutcomeInterrupted is an attempt whose sender stopped answering before
	// it recorded a result; its claim expired and the delivery was taken
	// again. The message may or may not have reached the SMTP server.
	OutcomeInterrupted = "interrupted"
)

// Attempt is one try at handing a delivery to the transport.
type Attempt struct {
	// Attempt numbers every attempt of the delivery from 1, across sequences.
	Attempt int `json:"attempt"`
	// Sequence is 1 for the original sending and grows with each resend.
	Sequence     int    `json:"sequence"`
	StartedAtMS  int64  `json:"started_at_ms"`
	FinishedAtMS int64  `json:"finished_at_ms"`
	Outcome      string `json:"outcome"`
	Error        string `json:"error"`
	// SMTPCode is the server's reply code of a failed attempt, when it gave one.
	SMTPCode int `json:"smtp_code,omitempty"`
}

// Delivery is one stored delivery.
type Delivery struct {
	ID             string
	Seq            int64
	IdempotencyKey string
	CommandHash    string
	Source         string
	PayloadMode    string
	TemplateID     string
	Locale         string
	ResolvedLocale string
	// Variables is the template_variables object as stored (nil in rendered mode).
	Variables     json.RawMessage
	To, Cc, Bcc   []string
	ReplyTo       string
	Subject       string
	TextBody      string
	HTMLBody      string
	Status        string
	ErrorCode     string
	ErrorMessage  string
	Attempts      []Attempt
	AttemptCount  int
	Sequence      int
	StreamEntryID string
	RequestedAtMS int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	SentAt        *time.Time
	DueAt         *time.Time
	ClaimedAt     *time.Time
	ClaimToken    string
	// TraceContext is the trace the delivery's attempts continue
	// (streams.EncodeTrace; "" for none).
	TraceContext string
}

// ErrNotFound is returned for an unknown delivery.
var ErrNotFound = errors.New("delivery not found")

// Store is the Mail Service's PostgreSQL storage.
type Store struct {
	pool *pgxpool.Pool
	// finished counts deliveries that reached sent or failed, once each
	// sending: the store is where every path to a final status (the
	// sender's outcomes, intake's rendering failures and stub sends)
	// becomes true, so counting here misses none and counts no duplicate.
	finished *prometheus.CounterVec
}

// New returns a store over pool (migrated by database.Open).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// RegisterMetrics registers with reg mail_deliveries_finished_total{status},
// which the store counts from then on.
func (s *Store) RegisterMetrics(reg prometheus.Registerer) {
	s.finished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mail_deliveries_finished_total",
		Help: "Deliveries that reached a final status (sent, failed), once per sending (a resend counts again).",
	}, []string{"status"})
	for _, status := range []string{StatusSent, StatusFailed} {
		s.finished.WithLabelValues(status) // both series from the start, so rate() sees the first one
	}
	reg.MustRegister(s.finished)
}

// countFinished counts a recorded status if it is a final one.
func (s *Store) countFinished(status string) {
	if s.finished != nil && (status == StatusSent || status == StatusFailed) {
		s.finished.WithLabelValues(status).Inc()
	}
}

// NewDelivery is a delivery about to be inserted.
type NewDelivery struct {
	ID             string
	Command        command.Command
	Hash           string
	ResolvedLocale string
	Subject        string
	TextBody       string
	HTMLBody       string
	// Status is queued; failed when the command could not be rendered; sent
	// when the delivery was completed before the insert (stub mode).
	Status        string
	ErrorCode     string
	ErrorMessage  string
	StreamEntryID string
	// Attempts and SentAt are set when the delivery is stored already sent
	// (stub mode completes its no-op attempt before the insert).
	Attempts []Attempt
	SentAt   time.Time
	// TraceContext is the creator's trace (streams.EncodeTrace).
	TraceContext string
}

const insertSQL = `
INSERT INTO mail_deliveries (
    delivery_id, idempotency_key, command_hash, source, payload_mode, template_id,
    locale, resolved_locale, template_variables, to_addrs, cc_addrs, bcc_addrs,
    reply_to, recipients, subject, text_body, html_body, status, error_code,
    error_message, due_at, stream_entry_id, requested_at_ms, attempts, attempt_count, sent_at, trace_context)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11, $12, $13, $14, $15, $16, $17,
    $18, $19, $20, CASE WHEN $18 = 'queued' THEN now() END, $21, $22, $23::jsonb,
    jsonb_array_length($23::jsonb), CASE WHEN $18 = 'sent' THEN $24::timestamptz END, $25)
ON CONFLICT (idempotency_key) DO NOTHING`

// Insert stores deliveries in one transaction and reports, for each, whether
// it was created (false: its idempotency key already had a delivery, which
// is left as it is).
func (s *Store) Insert(ctx context.Context, batch []NewDelivery) ([]bool, error) {
	created := make([]bool, len(batch))
	if len(batch) == 0 {
		return created, nil
	}
	// Rows are inserted in key order: two transactions inserting the same
	// keys then wait for each other in one order and never deadlock.
	order := make([]int, len(batch))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		return batch[order[a]].Command.IdempotencyKey < batch[order[b]].Command.IdempotencyKey
	})
	b := &pgx.Batch{}
	for _, i := range order {
		d := batch[i]
		c := d.Command
		var vars any
		if c.PayloadMode == command.ModeTemplate {
			raw, err := json.Marshal(c.Variables)
			if err != nil {
				return nil, fmt.Errorf("insert delivery %s: encode variables: %w", c.IdempotencyKey, err)
			}
			vars = string(raw)
		}
		attempts := []byte("[]")
		if len(d.Attempts) > 0 {
			var err error
			if attempts, err = json.Marshal(d.Attempts); err != nil {
				return nil, fmt.Errorf("insert delivery %s: encode attempts: %w", c.IdempotencyKey, err)
			}
		}
		b.Queue(insertSQL,
			d.ID, c.IdempotencyKey, d.Hash, c.Source, c.PayloadMode, c.TemplateID,
			c.Locale, d.ResolvedLocale, vars, nonNil(c.To), nonNil(c.Cc), nonNil(c.Bcc),
			c.ReplyTo, recipientKeys(c), d.Subject, d.TextBody, d.HTMLBody, d.Status, d.ErrorCode,
			d.ErrorMessage, d.StreamEntryID, c.RequestedAtMS, string(attempts), d.SentAt, d.TraceContext)
	}
	// A batch outside an explicit transaction runs as one implicit
	// transaction (one Sync for the whole pipeline): all rows or none, in
	// one round trip.
	br := s.pool.SendBatch(ctx, b)
	for _, i := range order {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("insert delivery %s: %w", batch[i].Command.IdempotencyKey, err)
		}
		created[i] = tag.RowsAffected() == 1
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("insert %d deliveries: %w", len(batch), err)
	}
	for i, d := range batch {
		if created[i] {
			s.countFinished(d.Status)
		}
	}
	return created, nil
}

func recipientKeys(c command.Command) []string {
	seen := map[string]bool{}
	var out []string
	for _, list := range [][]string{c.To, c.Cc, c.Bcc} {
		for _, a := range list {
			k := command.RecipientKey(a)
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	return nonNil(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

const fullColumns = `delivery_id, seq, idempotency_key, command_hash, source, payload_mode,
    template_id, locale, resolved_locale, template_variables, to_addrs, cc_addrs, bcc_addrs,
    reply_to, subject, text_body, html_body, status, error_code, error_message, attempts,
    attempt_count, sequence, stream_entry_id, requested_at_ms, created_at, updated_at,
    sent_at, due_at, claimed_at, claim_token, trace_context`

func scanFull(row pgx.Row) (Delivery, error) {
	var d Delivery
	var attempts []byte
	err := row.Scan(&d.ID, &d.Seq, &d.IdempotencyKey, &d.CommandHash, &d.Source, &d.PayloadMode,
		&d.TemplateID, &d.Locale, &d.ResolvedLocale, &d.Variables, &d.To, &d.Cc, &d.Bcc,
		&d.ReplyTo, &d.Subject, &d.TextBody, &d.HTMLBody, &d.Status, &d.ErrorCode, &d.ErrorMessage, &attempts,
		&d.AttemptCount, &d.Sequence, &d.StreamEntryID, &d.RequestedAtMS, &d.CreatedAt, &d.UpdatedAt,
		&d.SentAt, &d.DueAt, &d.ClaimedAt, &d.ClaimToken, &d.TraceContext)
	if err != nil {
		return d, err
	}
	if err := json.Unmarshal(attempts, &d.Attempts); err != nil {
		return d, fmt.Errorf("decode attempts of %s: %w", d.ID, err)
	}
	return d, nil
}

// Get returns one delivery.
func (s *Store) Get(ctx context.Context, id string) (Delivery, error) {
	d, err := scanFull(s.pool.QueryRow(ctx, `SELECT `+fullColumns+` FROM mail_deliveries WHERE delivery_id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery %s: %w", id, err)
	}
	return d, nil
}

// GetByKey returns the delivery of an idempotency key.
func (s *Store) GetByKey(ctx context.Context, key string) (Delivery, error) {
	d, err := scanFull(s.pool.QueryRow(ctx, `SELECT `+fullColumns+` FROM mail_deliveries WHERE idempotency_key = $1`, key))
	if errors.Is(err, pgx.ErrNoRows) {
		return d, ErrNotFound
	}
	if err != nil {
		return d, fmt.Errorf("get delivery by key %q: %w", key, err)
	}
	return d, nil
}

// Filter selects deliveries for List. Empty fields do not filter.
type Filter struct {
	Source         string
	Status         string
	Recipient      string
	TemplateID     string
	IdempotencyKey string
	// BeforeSeq continues a listing after the row with this seq (0: from the newest).
	BeforeSeq int64
	Limit     int
}

const summaryColumns = `delivery_id, seq, idempotency_key, source, payload_mode, template_id,
    locale, to_addrs, status, error_code, requested_at_ms, created_at, updated_at, sent_at`

// List returns deliveries newest first, and whether more follow.
func (s *Store) List(ctx context.Context, f Filter) ([]Delivery, bool, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Source != "" {
		add("source = $%d", f.Source)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if f.Recipient != "" {
		add("recipients @> ARRAY[$%d::text]", command.RecipientKey(f.Recipient))
	}
	if f.TemplateID != "" {
		add("template_id = $%d", f.TemplateID)
	}
	if f.IdempotencyKey != "" {
		add("idempotency_key = $%d", f.IdempotencyKey)
	}
	if f.BeforeSeq > 0 {
		add("seq < $%d", f.BeforeSeq)
	}
	q := `SELECT ` + summaryColumns + ` FROM mail_deliveries`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit+1)
	q += fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args))
	// Planned with the actual filter values each time (see Claim).
	rows, err := s.pool.Query(ctx, q, append([]any{pgx.QueryExecModeExec}, args...)...)
	if err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	defer rows.Close()
	out := make([]Delivery, 0, f.Limit)
	for rows.Next() {
		var d Delivery
		if err := rows.Scan(&d.ID, &d.Seq, &d.IdempotencyKey, &d.Source, &d.PayloadMode, &d.TemplateID,
			&d.Locale, &d.To, &d.Status, &d.ErrorCode, &d.RequestedAtMS, &d.CreatedAt, &d.UpdatedAt, &d.SentAt); err != nil {
			return nil, false, fmt.Errorf("list deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("list deliveries: %w", err)
	}
	more := len(out) > f.Limit
	if more {
		out = out[:f.Limit]
	}
	return out, more, nil
}

// PurgeFinished deletes up to limit deliveries that are sent or failed and
// were accepted before cutoff, oldest first, and returns how many it deleted.
// Queued, sending and retrying deliveries are kept whatever their age.
func (s *Store) PurgeFinished(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
DELETE FROM mail_deliveries WHERE delivery_id IN (
	SELECT delivery_id FROM mail_deliveries
	WHERE created_at < $1 AND status IN ('sent', 'failed')
	ORDER BY created_at LIMIT $2)`, pgx.QueryExecModeExec, cutoff, limit)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}

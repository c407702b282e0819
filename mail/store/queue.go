package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"galaxy/platform/streams"
)

// Claimed is a delivery a sender has taken for one attempt.
type Claimed struct {
	Delivery
	// Token identifies this claim; Finish only applies with it, so a sender
	// whose claim expired and was taken over cannot overwrite the newer
	// attempt's result.
	Token string
	// Interrupted is set when the delivery was taken from a sender whose
	// claim expired: that sender's attempt never recorded a result.
	Interrupted *Attempt
}

// claimSQL takes up to $1 due deliveries. The CTE locks them (SKIP LOCKED:
// rows another sender is claiming right now are left to it) and remembers
// their previous status and claim time, which the UPDATE overwrites.
const claimSQL = `
WITH due AS (
    SELECT delivery_id, status AS prev_status, claimed_at AS prev_claimed_at
    FROM mail_deliveries
    WHERE status IN ('queued', 'retrying', 'sending') AND due_at <= now()
    ORDER BY due_at
    LIMIT $1
    FOR UPDATE SKIP LOCKED
)
UPDATE mail_deliveries d
SET status = 'sending',
    due_at = now() + make_interval(secs => $2),
    claim_token = $3,
    claimed_at = now(),
    attempt_count = d.attempt_count + 1,
    updated_at = now()
FROM due
WHERE d.delivery_id = due.delivery_id
RETURNING ` + fullColumnsD + `, due.prev_status, due.prev_claimed_at`

// fullColumnsD is fullColumns qualified with the table alias d, as the
// UPDATE … FROM in claimSQL needs.
const fullColumnsD = `d.delivery_id, d.seq, d.idempotency_key, d.command_hash, d.source, d.payload_mode,
    d.template_id, d.locale, d.resolved_locale, d.template_variables, d.to_addrs, d.cc_addrs, d.bcc_addrs,
    d.reply_to, d.subject, d.text_body, d.html_body, d.status, d.error_code, d.error_message, d.attempts,
    d.attempt_count, d.sequence, d.stream_entry_id, d.requested_at_ms, d.created_at, d.updated_at,
    d.sent_at, d.due_at, d.claimed_at, d.claim_token, d.trace_context`

// Claim takes up to n due deliveries for lease: until the lease ends no other
// sender takes them; after it, they are due again.
func (s *Store) Claim(ctx context.Context, n int, lease time.Duration) ([]Claimed, error) {
	token := rand.Text()
	// Planned for each call (no cached generic plan): a plan chosen while
	// the table was empty would keep scanning it whole once it is not.
	rows, err := s.pool.Query(ctx, claimSQL, pgx.QueryExecModeExec, n, lease.Seconds(), token)
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	defer rows.Close()
	var out []Claimed
	now := time.Now()
	for rows.Next() {
		var c Claimed
		var prevStatus string
		var prevClaimedAt *time.Time
		var attempts []byte
		d := &c.Delivery
		err := rows.Scan(&d.ID, &d.Seq, &d.IdempotencyKey, &d.CommandHash, &d.Source, &d.PayloadMode,
			&d.TemplateID, &d.Locale, &d.ResolvedLocale, &d.Variables, &d.To, &d.Cc, &d.Bcc,
			&d.ReplyTo, &d.Subject, &d.TextBody, &d.HTMLBody, &d.Status, &d.ErrorCode, &d.ErrorMessage, &attempts,
			&d.AttemptCount, &d.Sequence, &d.StreamEntryID, &d.RequestedAtMS, &d.CreatedAt, &d.UpdatedAt,
			&d.SentAt, &d.DueAt, &d.ClaimedAt, &d.ClaimToken, &d.TraceContext, &prevStatus, &prevClaimedAt)
		if err != nil {
			return nil, fmt.Errorf("claim deliveries: %w", err)
		}
		if err := json.Unmarshal(attempts, &d.Attempts); err != nil {
			return nil, fmt.Errorf("claim deliveries: decode attempts of %s: %w", d.ID, err)
		}
		c.Token = token
		if prevStatus == StatusSending {
			started := now
			if prevClaimedAt != nil {
				started = *prevClaimedAt
			}
			c.Interrupted = &Attempt{
				Attempt:      len(d.Attempts) + 1,
				Sequence:     d.Sequence,
				StartedAtMS:  started.UnixMilli(),
				FinishedAtMS: now.UnixMilli(),
				Outcome:      OutcomeInterrupted,
				Error:        "the sender's claim expired before it recorded a result",
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// Outcome is the result of one claimed attempt.
type Outcome struct {
	ID    string
	Token string
	// Status is sent, retrying or failed.
	Status string
	// Attempts are appended to the delivery's history (an interrupted
	// attempt found at claim time, then this one).
	Attempts []Attempt
	// RetryIn is the delay before the next attempt (retrying only).
	RetryIn      time.Duration
	ErrorCode    string
	ErrorMessage string
	SentAt       time.Time
}

const finishSQL = `
UPDATE mail_deliveries
SET status = $3,
    attempts = attempts || $4::jsonb,
    due_at = CASE WHEN $3 = 'retrying' THEN now() + make_interval(secs => $5) END,
    error_code = $6,
    error_message = $7,
    sent_at = CASE WHEN $3 = 'sent' THEN $8 ELSE sent_at END,
    claim_token = '',
    updated_at = now()
WHERE delivery_id = $1 AND claim_token = $2 AND status = 'sending'`

// Finish records the outcomes of claimed attempts in one transaction. It
// returns the IDs whose claim was lost meanwhile (expired and taken over);
// their outcome was not recorded.
func (s *Store) Finish(ctx context.Context, outcomes []Outcome) (lost []string, err error) {
	if len(outcomes) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	for _, o := range outcomes {
		attempts, err := json.Marshal(o.Attempts)
		if err != nil {
			return nil, fmt.Errorf("finish delivery %s: %w", o.ID, err)
		}
		b.Queue(finishSQL, o.ID, o.Token, o.Status, string(attempts), o.RetryIn.Seconds(),
			o.ErrorCode, o.ErrorMessage, o.SentAt)
	}
	// One implicit transaction, one round trip (see Insert).
	br := s.pool.SendBatch(ctx, b)
	for _, o := range outcomes {
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return nil, fmt.Errorf("finish delivery %s: %w", o.ID, err)
		}
		if tag.RowsAffected() == 0 {
			lost = append(lost, o.ID)
		}
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("finish %d deliveries: %w", len(outcomes), err)
	}
	for _, o := range outcomes {
		if !slices.Contains(lost, o.ID) {
			s.countFinished(o.Status)
		}
	}
	return lost, nil
}

// ErrNotResendable is returned by Resend for a delivery whose current
// sequence is still being worked on (queued or sending).
var ErrNotResendable = errors.New("delivery is queued or being sent; wait for its outcome before resending")

// ErrSequenceChanged is returned by Resend when the caller's precondition
// names a sequence the delivery is no longer at: someone else resent it
// since the caller looked.
var ErrSequenceChanged = errors.New("delivery was resent since; its current sequence differs from the one named")

// Resendable reports whether an operator may resend a delivery in status.
func Resendable(status string) bool {
	return status == StatusSent || status == StatusFailed || status == StatusRetrying
}

// ResendPlan is what a resend changes besides starting a new sequence: a
// template-mode delivery is rendered again, so a fixed template takes effect.
type ResendPlan struct {
	Rerendered     bool
	ResolvedLocale string
	Subject        string
	TextBody       string
	HTMLBody       string
	// FailCode, when set, fails the new sequence at once (the template could
	// not be rendered) instead of queueing it.
	FailCode    string
	FailMessage string
}

// Resend starts a new sequence of attempts on a sent, failed or retrying
// delivery: attempt budget reset, due now. ifSequence, when not 0, is the
// sequence the caller saw: a delivery at another one is left alone
// (ErrSequenceChanged), so two operators resending what they both saw fail
// mail it once. plan is called with the locked delivery and decides what
// else changes.
func (s *Store) Resend(ctx context.Context, id string, ifSequence int, plan func(Delivery) ResendPlan) (Delivery, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return Delivery{}, fmt.Errorf("resend %s: %w", id, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	d, err := scanFull(tx.QueryRow(ctx, `SELECT `+fullColumns+` FROM mail_deliveries WHERE delivery_id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("resend %s: %w", id, err)
	}
	if ifSequence != 0 && d.Sequence != ifSequence {
		return d, ErrSequenceChanged
	}
	if !Resendable(d.Status) {
		return d, ErrNotResendable
	}
	p := plan(d)
	if !p.Rerendered {
		p.ResolvedLocale, p.Subject, p.TextBody, p.HTMLBody = d.ResolvedLocale, d.Subject, d.TextBody, d.HTMLBody
	}
	status := StatusQueued
	if p.FailCode != "" {
		status = StatusFailed
	}
	_, err = tx.Exec(ctx, `
UPDATE mail_deliveries
SET status = $2, sequence = sequence + 1, attempt_count = 0,
    due_at = CASE WHEN $2 = 'queued' THEN now() END,
    error_code = $3, error_message = $4, claim_token = '',
    resolved_locale = $5, subject = $6, text_body = $7, html_body = $8,
    trace_context = $9, updated_at = now()
WHERE delivery_id = $1`, id, status, p.FailCode, p.FailMessage, p.ResolvedLocale, p.Subject, p.TextBody, p.HTMLBody,
		streams.EncodeTrace(ctx)) // the new sequence's attempts belong to the resend's trace
	if err != nil {
		return Delivery{}, fmt.Errorf("resend %s: %w", id, err)
	}
	d, err = scanFull(tx.QueryRow(ctx, `SELECT `+fullColumns+` FROM mail_deliveries WHERE delivery_id = $1`, id))
	if err != nil {
		return Delivery{}, fmt.Errorf("resend %s: %w", id, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Delivery{}, fmt.Errorf("resend %s: commit: %w", id, err)
	}
	return d, nil
}

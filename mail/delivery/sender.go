// Package delivery sends stored deliveries: a sender loop claims due
// deliveries from PostgreSQL, hands each to the transport, and records the
// attempt and the delivery's next status.
//
//	queued ──claim──▶ sending ──ok──────────────────▶ sent
//	                     │  ──temporary, budget left─▶ retrying ──due──▶ sending
//	                     │  ──temporary, budget spent▶ failed
//	                     │  ──permanent─────────────▶ failed
//	                     └─ claim expired (sender died) ─▶ taken again (attempt "interrupted")
//	sent / failed / retrying ──operator resend──▶ queued (new sequence, fresh budget)
//
// Every replica runs a sender; they share the queue through SELECT … FOR
// UPDATE SKIP LOCKED and never take the same delivery at once.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"galaxy/mail/smtpsend"
	"galaxy/mail/store"
	"galaxy/platform/database"
)

// Error codes recorded on deliveries that failed to send.
const (
	CodeRejected          = store.CodeRejected
	CodeTransient         = store.CodeTransient
	CodeAttemptsExhausted = store.CodeAttemptsExhausted
)

// Backoff is the delay before a retry: Min after the first failure, doubling
// with each failure of the sequence up to Max, with jitter so that
// deliveries that failed together do not all retry together.
type Backoff struct {
	Min time.Duration
	Max time.Duration
}

// Delay is the wait after the failures-th consecutive failure (1-based).
func (b Backoff) Delay(failures int) time.Duration {
	d := b.Min
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	// Jitter in [3/4 d, d], never below Min.
	if span := d / 4; span > 0 {
		d -= time.Duration(rand.Int64N(int64(span) + 1))
	}
	if d < b.Min {
		d = b.Min
	}
	return d
}

// Metrics counts attempts by outcome.
type Metrics struct {
	attempts *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewMetrics registers the sender metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_delivery_attempts_total",
			Help: "Send attempts by outcome (sent, transient_failure, permanent_failure, interrupted).",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mail_delivery_send_seconds",
			Help:    "Duration of one send attempt.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
	}
	reg.MustRegister(m.attempts, m.latency)
	return m
}

func (m *Metrics) observe(outcome string, d time.Duration) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(outcome).Inc()
	if outcome != store.OutcomeInterrupted {
		m.latency.Observe(d.Seconds())
	}
}

// Sender is the sender loop.
type Sender struct {
	Store     *store.Store
	Transport smtpsend.Transport
	Logger    *slog.Logger
	Metrics   *Metrics
	Backoff   Backoff
	// MaxAttempts is the attempt budget of one sequence.
	MaxAttempts int
	// Lease is how long a claim keeps other senders away; it must outlast
	// the sending of a whole claimed batch.
	Lease time.Duration
	// Batch is how many deliveries one claim takes.
	Batch int
	// Concurrency is how many sends of a batch run at once.
	Concurrency int
	// Poll is how often the queue is checked without a wake-up; it also
	// bounds how late a retry or another replica's work is picked up.
	Poll time.Duration
	// SendTimeout bounds one send.
	SendTimeout time.Duration

	once sync.Once
	wake chan struct{}
}

func (s *Sender) init() {
	s.once.Do(func() {
		s.wake = make(chan struct{}, 1)
		if s.Logger == nil {
			s.Logger = slog.Default()
		}
		if s.Batch <= 0 {
			s.Batch = 64
		}
		if s.Concurrency <= 0 {
			s.Concurrency = 1
		}
		if s.Poll <= 0 {
			s.Poll = 250 * time.Millisecond
		}
		if s.Lease <= 0 {
			s.Lease = 2 * time.Minute
		}
		if s.MaxAttempts <= 0 {
			s.MaxAttempts = 1
		}
		if s.SendTimeout <= 0 {
			s.SendTimeout = 30 * time.Second
		}
	})
}

// Wake makes the loop look at the queue now (new deliveries were stored).
func (s *Sender) Wake() {
	s.init()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends until ctx ends.
func (s *Sender) Run(ctx context.Context) error {
	s.init()
	for ctx.Err() == nil {
		n, err := s.RunOnce(ctx)
		if err != nil && ctx.Err() == nil {
			s.Logger.Warn("sender round failed", "err", err)
		}
		if err == nil && n >= s.Batch {
			continue // probably more work waiting
		}
		t := time.NewTimer(s.Poll)
		select {
		case <-ctx.Done():
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}

// RunOnce claims one batch, sends it and records the outcomes. It returns
// how many deliveries it claimed.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	s.init()
	claimed, err := s.Store.Claim(ctx, s.Batch, s.Lease)
	if err != nil || len(claimed) == 0 {
		return 0, err
	}
	// Claimed deliveries are finished even when shutdown starts meanwhile:
	// an unrecorded attempt would be repeated after the lease.
	wctx := context.WithoutCancel(ctx)
	outcomes := make([]store.Outcome, len(claimed))
	sem := make(chan struct{}, s.Concurrency)
	var wg sync.WaitGroup
	for i := range claimed {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			outcomes[i] = s.attempt(wctx, claimed[i])
		}()
	}
	wg.Wait()
	lost, err := s.finish(wctx, outcomes)
	if err != nil {
		return len(claimed), err
	}
	for _, id := range lost {
		s.Logger.Warn("claim lost before the attempt was recorded; another sender took the delivery", "delivery_id", id)
	}
	return len(claimed), nil
}

// finish records outcomes, retrying while PostgreSQL is unreachable for up
// to half the lease: an outcome that is never recorded makes the message go
// out a second time once the claim expires.
func (s *Sender) finish(ctx context.Context, outcomes []store.Outcome) ([]string, error) {
	deadline := time.Now().Add(s.Lease / 2)
	wait := 100 * time.Millisecond
	for {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		lost, err := s.Store.Finish(fctx, outcomes)
		cancel()
		if err == nil || database.IsDataError(err) || time.Now().Add(wait).After(deadline) {
			return lost, err
		}
		s.Logger.Warn("recording send outcomes failed; retrying", "deliveries", len(outcomes), "in", wait.String(), "err", err)
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}

func (s *Sender) attempt(ctx context.Context, c store.Claimed) store.Outcome {
	o := store.Outcome{ID: c.ID, Token: c.Token}
	next := len(c.Attempts) + 1
	if c.Interrupted != nil {
		o.Attempts = append(o.Attempts, *c.Interrupted)
		s.Metrics.observe(store.OutcomeInterrupted, 0)
		next++
		// The interrupted attempt counted against the budget at its claim;
		// a delivery that keeps killing its sender must not loop forever.
		if c.AttemptCount > s.MaxAttempts {
			o.Status = store.StatusFailed
			o.ErrorCode = CodeAttemptsExhausted
			o.ErrorMessage = c.Interrupted.Error
			return o
		}
	}
	started := time.Now()
	// A span per SMTP attempt, in the trace of whoever created the delivery
	// (its command's stream entry, an HTTP request) or last resent it.
	ctx, span := otel.Tracer("galaxy/mail/delivery").Start(c.Traced(ctx), "smtp send",
		trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(
			attribute.String("galaxy.mail.delivery_id", c.ID),
			attribute.Int("galaxy.mail.attempt", next),
			attribute.Int("galaxy.mail.sequence", c.Sequence),
		))
	defer span.End()
	sctx, cancel := context.WithTimeout(ctx, s.SendTimeout)
	err := s.Transport.Send(sctx, smtpsend.Message{
		MessageID: messageID(c.Delivery),
		To:        c.To,
		Cc:        c.Cc,
		Bcc:       c.Bcc,
		ReplyTo:   c.ReplyTo,
		Subject:   c.Subject,
		Text:      c.TextBody,
		HTML:      c.HTMLBody,
	})
	cancel()
	finished := time.Now()
	a := store.Attempt{
		Attempt:      next,
		Sequence:     c.Sequence,
		StartedAtMS:  started.UnixMilli(),
		FinishedAtMS: finished.UnixMilli(),
	}
	var after *smtpsend.AfterAcceptance
	if err == nil || errors.As(err, &after) {
		a.Outcome = store.OutcomeSent
		o.Status = store.StatusSent
		o.SentAt = finished
		if after != nil {
			a.Error = after.Detail
			s.Logger.WarnContext(ctx, "message accepted, then the connection failed; recorded as sent", "delivery_id", c.ID, "attempt", a.Attempt, "err", after.Detail)
		}
		o.Attempts = append(o.Attempts, a)
		s.Metrics.observe(a.Outcome, finished.Sub(started))
		return o
	}
	se := smtpsend.Classify(err)
	a.Error, a.SMTPCode = se.Detail, se.Code
	switch {
	case !se.Temporary:
		a.Outcome = store.OutcomePermanentFailure
		o.Status, o.ErrorCode, o.ErrorMessage = store.StatusFailed, CodeRejected, se.Detail
	case c.AttemptCount >= s.MaxAttempts:
		a.Outcome = store.OutcomeTransientFailure
		o.Status, o.ErrorCode, o.ErrorMessage = store.StatusFailed, CodeAttemptsExhausted, se.Detail
	default:
		a.Outcome = store.OutcomeTransientFailure
		o.Status, o.ErrorCode, o.ErrorMessage = store.StatusRetrying, CodeTransient, se.Detail
		o.RetryIn = s.Backoff.Delay(c.AttemptCount)
	}
	o.Attempts = append(o.Attempts, a)
	s.Metrics.observe(a.Outcome, finished.Sub(started))
	span.SetAttributes(attribute.String("error.type", o.ErrorCode), attribute.Int("galaxy.mail.smtp_code", se.Code))
	span.RecordError(err, trace.WithAttributes(attribute.Bool("galaxy.mail.temporary", se.Temporary)))
	span.SetStatus(codes.Error, se.Detail)
	s.Logger.InfoContext(ctx, "send attempt failed", "delivery_id", c.ID, "attempt", a.Attempt, "sequence", c.Sequence,
		"status", o.Status, "smtp_code", se.Code, "err", se.Detail)
	return o
}

// messageID is stable within a sequence (retries of one sending carry the
// same Message-ID) and new with each resend.
func messageID(d store.Delivery) string {
	return d.ID + "." + strconv.Itoa(d.Sequence) + "@galaxy-mail"
}

// Package intake turns delivery commands into stored deliveries: it renders
// template-mode commands and inserts the results, many at a time.
//
// The platform's stream worker calls its handler one entry at a time, so
// the service runs several workers in the consumer group and their handlers
// meet here: each handler submits its delivery and waits, and a flusher
// inserts whatever is waiting in one transaction (group commit). An entry is
// acknowledged only after that transaction committed.
package intake

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/mail/command"
	"galaxy/mail/render"
	"galaxy/mail/smtpsend"
	"galaxy/mail/store"
	"galaxy/platform/crashpoint"
	"galaxy/platform/database"
	"galaxy/platform/streams"
)

// Group is the consumer group of the command stream.
const Group = "mail"

// NewID returns a new delivery ID.
func NewID() string { return "dlv_" + rand.Text() }

// Prepare builds the delivery of a valid command: rendered when the command
// is in template mode, failed (with the render error's code) when it cannot
// be rendered. entryID is the stream entry ID, empty for HTTP commands.
func Prepare(cat *render.Catalog, cmd command.Command, entryID string) store.NewDelivery {
	nd := store.NewDelivery{
		ID:            NewID(),
		Command:       cmd,
		Hash:          cmd.Hash(),
		Status:        store.StatusQueued,
		StreamEntryID: entryID,
	}
	if cmd.PayloadMode == command.ModeRendered {
		nd.Subject, nd.TextBody, nd.HTMLBody = cmd.Subject, cmd.TextBody, cmd.HTMLBody
		return nd
	}
	msg, err := RenderChecked(cat, cmd.TemplateID, cmd.Locale, cmd.Variables)
	if err != nil {
		nd.Status = store.StatusFailed
		nd.ErrorCode, nd.ErrorMessage = err.Code, err.Err.Error()
		return nd
	}
	nd.ResolvedLocale, nd.Subject, nd.TextBody, nd.HTMLBody = msg.Locale, msg.Subject, msg.Text, msg.HTML
	return nd
}

// RenderChecked renders a template and checks that the result is fit to
// send and to store: a subject a header can carry, and no NUL character.
func RenderChecked(cat *render.Catalog, templateID, locale string, vars map[string]any) (render.Message, *render.Error) {
	msg, err := cat.Render(templateID, locale, vars)
	if err != nil {
		var re *render.Error
		if errors.As(err, &re) {
			return msg, re
		}
		return msg, &render.Error{Code: render.CodeRenderFailed, Err: err}
	}
	if err := command.CheckHeaderValue(msg.Subject, command.MaxSubjectLen); err != nil {
		return msg, &render.Error{Code: render.CodeRenderFailed, Err: fmt.Errorf("%s/%s: rendered subject: %v", templateID, msg.Locale, err)}
	}
	if len(msg.Text) > command.MaxBodyBytes || len(msg.HTML) > command.MaxBodyBytes {
		return msg, &render.Error{Code: render.CodeRenderFailed, Err: fmt.Errorf("%s/%s: rendered body larger than %d bytes", templateID, msg.Locale, command.MaxBodyBytes)}
	}
	return msg, nil
}

// complete sends a freshly prepared delivery through an inline transport
// (the stub) and records the attempt on it, so it is stored already sent:
// there is nothing to wait for, and one write instead of three (insert,
// claim, outcome) is what lets stub mode keep up with the stream.
func complete(t smtpsend.Transport, d *store.NewDelivery) {
	if d.Status != store.StatusQueued {
		return
	}
	c := d.Command
	started := time.Now()
	err := t.Send(context.Background(), smtpsend.Message{
		MessageID: d.ID + ".1@galaxy-mail",
		To:        c.To, Cc: c.Cc, Bcc: c.Bcc, ReplyTo: c.ReplyTo,
		Subject: d.Subject, Text: d.TextBody, HTML: d.HTMLBody,
	})
	finished := time.Now()
	a := store.Attempt{Attempt: 1, Sequence: 1, StartedAtMS: started.UnixMilli(), FinishedAtMS: finished.UnixMilli()}
	if err == nil {
		a.Outcome = store.OutcomeSent
		d.Status, d.SentAt = store.StatusSent, finished
	} else {
		// The stub only refuses what no retry can fix (an invalid header).
		se := smtpsend.Classify(err)
		a.Outcome, a.Error, a.SMTPCode = store.OutcomePermanentFailure, se.Detail, se.Code
		d.Status, d.ErrorCode, d.ErrorMessage = store.StatusFailed, store.CodeRejected, se.Detail
	}
	d.Attempts = []store.Attempt{a}
}

// Metrics counts commands by result.
type Metrics struct {
	commands *prometheus.CounterVec
	batch    prometheus.Histogram
}

// NewMetrics registers the intake metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mail_commands_total",
			Help: "Delivery commands by door (stream, http) and result (created, render_failed, duplicate, malformed).",
		}, []string{"door", "result"}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mail_intake_batch_size",
			Help:    "Deliveries inserted per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
	}
	reg.MustRegister(m.commands, m.batch)
	return m
}

// Count records one command's result.
func (m *Metrics) Count(door, result string) {
	if m != nil {
		m.commands.WithLabelValues(door, result).Inc()
	}
}

// Intake consumes the command stream.
type Intake struct {
	Store   *store.Store
	Catalog *render.Catalog
	Logger  *slog.Logger
	Metrics *Metrics
	// Created is called after a batch that created queued deliveries
	// committed; the service wakes its sender with it.
	Created func()
	// MaxBatch bounds the deliveries of one transaction (default 256).
	MaxBatch int
	// Flushers is how many transactions may be in flight at once (default
	// 2): while one waits on PostgreSQL the next gathers deliveries.
	Flushers int
	// FlushTimeout bounds one transaction (default 30s).
	FlushTimeout time.Duration
	// RetryFor is how long a batch is retried while PostgreSQL is
	// unreachable before its entries are left pending for the stream's
	// reclaim (default 10s): a short outage then costs seconds, not a
	// claim-idle period.
	RetryFor time.Duration
	// Inline, when set, sends each new delivery before it is stored. Only
	// a transport that never waits (the stub) belongs here.
	Inline smtpsend.Transport

	once sync.Once
	jobs chan *job
}

type job struct {
	d    store.NewDelivery
	done chan result
}

type result struct {
	created bool
	err     error
}

func (in *Intake) init() {
	in.once.Do(func() {
		if in.MaxBatch <= 0 {
			in.MaxBatch = 256
		}
		if in.Flushers <= 0 {
			in.Flushers = 2
		}
		if in.FlushTimeout <= 0 {
			in.FlushTimeout = 30 * time.Second
		}
		if in.RetryFor <= 0 {
			in.RetryFor = 10 * time.Second
		}
		if in.Logger == nil {
			in.Logger = slog.Default()
		}
		in.jobs = make(chan *job)
	})
}

// Handle is the stream worker's handler. A malformed command is a permanent
// error (dead letter with the reason); a database failure is an Unavailable
// error, so the worker retries the entry without spending its deliveries.
func (in *Intake) Handle(ctx context.Context, msg streams.Message) error {
	in.init()
	cmd, err := command.FromStream(msg.Values)
	if err != nil {
		in.Metrics.Count("stream", "malformed")
		return streams.Permanent(fmt.Errorf("malformed mail command: %w", err))
	}
	d := in.Prepare(ctx, cmd, msg.ID)
	created, err := in.submit(ctx, d)
	if err != nil {
		return err
	}
	switch {
	case !created:
		in.Metrics.Count("stream", "duplicate")
		in.Logger.Debug("duplicate mail command acknowledged", "entry", msg.ID, "idempotency_key", cmd.IdempotencyKey)
	case d.Status == store.StatusFailed && len(d.Attempts) == 0:
		in.Metrics.Count("stream", "render_failed")
		in.Logger.Warn("mail command could not be rendered", "entry", msg.ID, "delivery_id", d.ID,
			"template_id", cmd.TemplateID, "locale", cmd.Locale, "error_code", d.ErrorCode, "err", d.ErrorMessage)
	default:
		in.Metrics.Count("stream", "created")
	}
	return nil
}

// Prepare is the package's Prepare plus ctx's trace, which the delivery's
// attempts continue, and, with an Inline transport, the inline send.
func (in *Intake) Prepare(ctx context.Context, cmd command.Command, entryID string) store.NewDelivery {
	d := Prepare(in.Catalog, cmd, entryID)
	d.TraceContext = streams.EncodeTrace(ctx)
	if in.Inline != nil {
		complete(in.Inline, &d)
	}
	return d
}

func (in *Intake) submit(ctx context.Context, d store.NewDelivery) (bool, error) {
	j := &job{d: d, done: make(chan result, 1)}
	select {
	case in.jobs <- j:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case r := <-j.done:
		return r.created, r.err
	case <-ctx.Done():
		// The transaction may still commit; the entry is then redelivered
		// and found to be a duplicate.
		return false, ctx.Err()
	}
}

// Run runs the flushers until ctx ends.
func (in *Intake) Run(ctx context.Context) error {
	in.init()
	var wg sync.WaitGroup
	for range in.Flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.loop(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (in *Intake) loop(ctx context.Context) {
	for {
		var first *job
		select {
		case first = <-in.jobs:
		case <-ctx.Done():
			return
		}
		batch := []*job{first}
	gather:
		for len(batch) < in.MaxBatch {
			select {
			case j := <-in.jobs:
				batch = append(batch, j)
			default:
				break gather
			}
		}
		in.flush(ctx, batch)
	}
}

func (in *Intake) flush(ctx context.Context, batch []*job) {
	// A batch already taken is finished even during shutdown, within the
	// flush budget: its handlers are waiting for the answer.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.FlushTimeout)
	defer cancel()
	ds := make([]store.NewDelivery, len(batch))
	for i, j := range batch {
		ds[i] = j.d
	}
	crashpoint.Here("mail.intake.before-commit")
	created, err := in.insert(fctx, ds)
	if err != nil && database.IsDataError(err) && len(batch) > 1 {
		// One row PostgreSQL refuses must not hold back its neighbours:
		// insert them one by one, so only the bad one fails.
		in.Logger.Warn("batch insert refused; inserting one by one", "size", len(batch), "err", err)
		for _, j := range batch {
			c, err := in.Store.Insert(fctx, []store.NewDelivery{j.d})
			if err != nil {
				j.done <- result{err: dataErr(err)}
				continue
			}
			j.done <- result{created: c[0]}
			if c[0] && j.d.Status == store.StatusQueued && in.Created != nil {
				in.Created()
			}
		}
		return
	}
	if err != nil {
		for _, j := range batch {
			j.done <- result{err: dataErr(err)}
		}
		return
	}
	if in.Metrics != nil {
		in.Metrics.batch.Observe(float64(len(batch)))
	}
	wake := false
	for i, j := range batch {
		j.done <- result{created: created[i]}
		if created[i] && j.d.Status == store.StatusQueued {
			wake = true
		}
	}
	if wake && in.Created != nil {
		in.Created()
	}
}

// insert inserts a batch, retrying for RetryFor while the failure is not
// PostgreSQL refusing the data (connection lost, server restarting).
func (in *Intake) insert(ctx context.Context, ds []store.NewDelivery) ([]bool, error) {
	deadline := time.Now().Add(in.RetryFor)
	wait := 100 * time.Millisecond
	for {
		created, err := in.Store.Insert(ctx, ds)
		if err == nil || database.IsDataError(err) || time.Now().Add(wait).After(deadline) {
			return created, err
		}
		in.Logger.Warn("insert failed; retrying", "size", len(ds), "in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second)
	}
}

// dataErr classifies an insert's failure for the stream worker: PostgreSQL
// refusing one command's data is permanent (redelivering the same entry
// cannot succeed); anything else means the database is unavailable, and the
// worker retries the entry in place.
func dataErr(err error) error {
	if database.IsDataError(err) {
		return streams.Permanent(fmt.Errorf("delivery refused by the database: %w", err))
	}
	return streams.Unavailable(err)
}

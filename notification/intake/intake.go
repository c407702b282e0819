// Package intake consumes the intent stream: it validates each entry, records
// it with its routes, hands the routes off, and only then lets the stream
// worker acknowledge the entry.
//
// The platform's stream worker calls its handler one entry at a time, so the
// service runs several workers in the consumer group and their handlers meet
// here: each handler submits its entry and waits, and a few processors take
// whatever entries are waiting as one batch — one transaction to record them,
// one pipeline to the mail stream, one transaction to mark the routes. That
// grouping is what makes thousands of intents per second affordable.
package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"galaxy/notification/dispatch"
	"galaxy/notification/intent"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/platform/crashpoint"
	"galaxy/platform/database"
	"galaxy/platform/streams"
)

// Group is the consumer group of the intent stream.
const Group = "notification"

// Intake records and routes intent entries.
type Intake struct {
	Store      *store.Store
	Dispatcher *dispatch.Dispatcher
	Admins     routing.AdminRecipients
	Metrics    *dispatch.Metrics
	Logger     *slog.Logger
	// MaxBatch bounds the entries of one batch.
	MaxBatch int
	// Processors is how many batches may be in flight at once; while one
	// waits on PostgreSQL the next one gathers entries.
	Processors int
	// FirstHandOffGrace is how long fresh routes belong to the process that
	// recorded them before the retry loop may take them (see store.Record).
	FirstHandOffGrace time.Duration
	// BatchTimeout bounds the work on one batch, shutdown included.
	BatchTimeout time.Duration
	// Linger is how long a batch waits for more entries after its first.
	Linger time.Duration

	once sync.Once
	jobs chan *job
}

type job struct {
	msg          streams.Message
	traceContext string
	done         chan error
}

func (in *Intake) init() {
	in.once.Do(func() {
		if in.MaxBatch <= 0 {
			in.MaxBatch = 256
		}
		if in.Processors <= 0 {
			in.Processors = 2
		}
		if in.Linger <= 0 {
			in.Linger = 2 * time.Millisecond
		}
		if in.BatchTimeout <= 0 {
			in.BatchTimeout = 30 * time.Second
		}
		in.jobs = make(chan *job)
	})
}

// Handle is the stream worker's handler: it returns once the entry is
// recorded and its routes were handed off or scheduled for retry. An entry
// too large to record returns a permanent error (dead letter).
func (in *Intake) Handle(ctx context.Context, msg streams.Message) error {
	in.init()
	// The consume span's context, through the configured propagator as the
	// streams carry it, is stored with the intent: its hand-off, maybe a
	// retry from PostgreSQL, continues the trace.
	j := &job{msg: msg, traceContext: streams.EncodeTrace(ctx), done: make(chan error, 1)}
	select {
	case in.jobs <- j:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-j.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run processes submitted entries until ctx ends.
func (in *Intake) Run(ctx context.Context) error {
	in.init()
	var wg sync.WaitGroup
	for range in.Processors {
		wg.Go(func() { in.loop(ctx) })
	}
	wg.Wait()
	return nil
}

func (in *Intake) loop(ctx context.Context) {
	for {
		var batch []*job
		select {
		case j := <-in.jobs:
			batch = append(batch, j)
		case <-ctx.Done():
			return
		}
		// Gather what is waiting, then linger briefly for more: at moderate
		// rates entries trickle in, and a few milliseconds of waiting turn
		// many tiny transactions into a few larger ones.
		linger := time.NewTimer(in.Linger)
	gather:
		for len(batch) < in.MaxBatch {
			select {
			case j := <-in.jobs:
				batch = append(batch, j)
			case <-linger.C:
				break gather
			case <-ctx.Done():
				break gather
			}
		}
		linger.Stop()
		// A batch that started is finished even during shutdown, so its
		// records and hand-offs are not cut in the middle.
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.BatchTimeout)
		in.process(bctx, batch)
		cancel()
	}
}

func (in *Intake) process(ctx context.Context, batch []*job) {
	now := time.Now()
	recs := make([]store.NewNotification, 0, len(batch))
	owners := make([]*job, 0, len(batch))
	for _, j := range batch {
		rec, err := in.decode(j)
		if err != nil {
			in.Metrics.Intents.WithLabelValues("dead_lettered").Inc()
			j.done <- err
			continue
		}
		recs = append(recs, rec)
		owners = append(owners, j)
	}
	if len(recs) == 0 {
		return
	}
	in.Metrics.BatchSize.Observe(float64(len(recs)))
	firstDue := now.Add(in.FirstHandOffGrace)
	crashpoint.Here("notification.intake.before-commit")
	recorded, err := in.Store.Record(ctx, recs, now, firstDue)
	if err != nil && database.IsDataError(err) && len(recs) > 1 {
		// One entry's data spoiled the batch: record them one by one and
		// dead-letter only what cannot be recorded at all.
		in.Logger.Warn("batch refused by PostgreSQL; recording entries one by one", "entries", len(recs), "err", err)
		recorded, err = in.recordEach(ctx, recs, owners, now, firstDue), nil
	}
	if err != nil {
		in.Logger.Warn("record intents failed; the entries are retried", "entries", len(recs), "err", err)
		for _, j := range owners {
			j.done <- streams.Unavailable(err)
		}
		return
	}

	var handOff []string
	fresh := map[string]bool{}
	for i, rec := range recs {
		if owners[i] == nil {
			// recordEach could not record it; its handler has its error.
			continue
		}
		r := recorded[i]
		in.count(rec, r)
		if r.Fresh {
			fresh[rec.IntentID] = true
		}
		if len(rec.Routes) > 0 && (!r.Fresh || r.Status == routing.StatusPending) {
			handOff = append(handOff, rec.IntentID)
		}
	}
	if len(handOff) > 0 {
		// Failure here leaves the routes pending and due soon: recorded and
		// scheduled, so the entries may be acknowledged all the same.
		if _, err := in.Store.HandOffRecorded(ctx, handOff, now, in.Dispatcher.HandOff(func(id string) bool { return fresh[id] })); err != nil {
			in.Logger.Warn("hand-off failed; routes stay scheduled for the retry loop", "intents", len(handOff), "err", err)
		}
	}
	for _, j := range owners {
		if j != nil {
			j.done <- nil
		}
	}
}

// recordEach records entries one transaction each. An entry PostgreSQL
// refuses on its own is dead-lettered (its owner slot is cleared).
func (in *Intake) recordEach(ctx context.Context, recs []store.NewNotification, owners []*job, now, firstDue time.Time) []store.Recorded {
	out := make([]store.Recorded, len(recs))
	for i := range recs {
		r, err := in.Store.Record(ctx, recs[i:i+1], now, firstDue)
		if err != nil {
			if database.IsDataError(err) {
				in.Metrics.Intents.WithLabelValues("dead_lettered").Inc()
				owners[i].done <- streams.Permanent(fmt.Errorf("record intent %s: %w", recs[i].IntentID, err))
			} else {
				owners[i].done <- streams.Unavailable(err)
			}
			owners[i] = nil
			continue
		}
		out[i] = r[0]
	}
	return out
}

func (in *Intake) count(rec store.NewNotification, r store.Recorded) {
	outcome := "accepted"
	switch {
	case !r.Fresh:
		outcome = "redelivered"
	case r.DuplicateOf != "":
		outcome = "duplicate"
		in.Logger.Info("intent is a duplicate", "intent_entry_id", rec.IntentID, "producer", rec.Producer,
			"idempotency_key", rec.IdempotencyKey, "duplicate_of", r.DuplicateOf)
	case r.Status == routing.StatusRejected:
		outcome = "rejected"
		in.Logger.Info("intent rejected", "intent_entry_id", rec.IntentID, "reason", rec.Reason)
	case r.Status == routing.StatusSkipped:
		outcome = "skipped"
	}
	in.Metrics.Intents.WithLabelValues(outcome).Inc()
}

// decode turns an entry into its record: valid (with its planned routes),
// or rejected with the reason. Only an entry too large to record is an error.
func (in *Intake) decode(j *job) (store.NewNotification, error) {
	id, values := j.msg.ID, j.msg.Values
	it, err := intent.Decode(values)
	if errors.Is(err, intent.ErrTooLarge) {
		return store.NewNotification{}, streams.Permanent(fmt.Errorf("intent %s: %d bytes: %w", id, intent.Size(values), err))
	}
	if err != nil {
		const limit = 256
		return store.NewNotification{
			IntentID:         id,
			NotificationType: intent.Sanitize(values[intent.FieldType], limit),
			Producer:         intent.Sanitize(values[intent.FieldProducer], limit),
			AudienceKind:     intent.Sanitize(values[intent.FieldAudienceKind], limit),
			TraceContext:     j.traceContext,
			Status:           routing.StatusRejected,
			Reason:           err.Error(),
			RawFields:        intent.RawFields(values),
		}, nil
	}
	rec := store.NewNotification{
		IntentID:         id,
		NotificationType: it.NotificationType,
		Producer:         it.Producer,
		AudienceKind:     it.AudienceKind,
		AudienceJSON:     it.AudienceJSON,
		PayloadJSON:      it.PayloadJSON,
		OccurredAtMS:     it.OccurredAtMS,
		IdempotencyKey:   it.IdempotencyKey,
		TraceContext:     j.traceContext,
		Status:           routing.StatusPending,
	}
	routes, skip := routing.Plan(id, it, in.Admins)
	if len(routes) == 0 {
		rec.Status, rec.Reason = routing.StatusSkipped, skip
	}
	rec.Routes = routes
	return rec, nil
}

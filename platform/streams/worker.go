// Package streams runs Redis Streams consumer groups the way every service
// here needs them: at-least-once delivery with acknowledgement only after the
// handler's effect is durable, reclaiming of entries a dead consumer left
// pending, and a dead-letter stream for entries that keep failing.
//
// Handlers must be idempotent: an entry whose handler succeeded but whose
// XACK was lost is delivered again.
//
// Claims. A worker reads a batch (XREADGROUP, or XAUTOCLAIM of entries idle
// longer than ClaimIdle) and handles its entries one at a time. While it
// works through the batch it keeps the claim of every entry it has not
// finished fresh (XCLAIM JUSTID, which counts no delivery, every ClaimIdle/3),
// so an entry waiting behind a slow handler, or behind one retrying in place
// while a dependency is down, never looks abandoned: no other consumer takes
// it, no delivery is counted, and it is handled once, by this worker. The
// refresh touches only entries this consumer still owns (checked and
// claimed in one script): an entry another consumer took — because this one
// could not refresh it in time, with Redis unreachable — is never taken back,
// and this worker skips it (outcome taken_over). Only an entry left idle
// past ClaimIdle — its consumer died, or its handler failed — is claimed by
// another consumer, and only such claims count towards MaxDeliveries.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"galaxy/platform/crashpoint"
)

// Message is one stream entry handed to a Handler.
type Message struct {
	Stream string
	ID     string
	Values map[string]string
	// Deliveries counts how many times the group has delivered this entry,
	// this delivery included.
	Deliveries int64
}

// Handler processes one entry. Returning nil acknowledges it. Returning an
// error leaves it pending for a retry after ClaimIdle; an error wrapped with
// Permanent dead-letters it at once (malformed input that no retry can fix);
// an error wrapped with Unavailable is retried in place (see Worker).
type Handler func(ctx context.Context, msg Message) error

type unavailableError struct{ err error }

func (u unavailableError) Error() string { return u.err.Error() }
func (u unavailableError) Unwrap() error { return u.err }

// Unavailable marks err as a dependency's failure (a database or daemon down
// or unreachable), not the entry's: the worker retries the entry in place
// instead of spending its delivery budget, so an outage longer than
// MaxDeliveries × ClaimIdle does not dead-letter valid entries.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

// IsUnavailable reports whether err was marked with Unavailable.
func IsUnavailable(err error) bool {
	var u unavailableError
	return errors.As(err, &u)
}

type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying.
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// DeadLetterSuffix is appended to a stream's name to form its dead-letter stream.
const DeadLetterSuffix = ":dead"

// Worker consumes one stream in one consumer group.
type Worker struct {
	Client *redis.Client
	Stream string
	Group  string
	// Consumer is this process's name in the group; see DefaultConsumer.
	Consumer string
	Handler  Handler
	Logger   *slog.Logger
	// Block is how long one XREADGROUP waits for new entries.
	Block time.Duration
	// ClaimIdle is the idle time after which a pending entry is reclaimed,
	// whether its consumer died or its handler failed. Entries a live
	// worker holds in its batch never reach it (see Claims in the package
	// documentation).
	ClaimIdle time.Duration
	// MaxDeliveries is how many failed deliveries dead-letter an entry.
	MaxDeliveries int64
	// UnavailableFor bounds the in-place retries of one delivery whose
	// handler keeps returning an Unavailable error (default 10m, backing off
	// from 100ms to 5s); after it the delivery counts as failed, so an error
	// marked Unavailable by mistake cannot hold a worker forever.
	UnavailableFor time.Duration
	// Batch is the number of entries read at once (default 16).
	Batch int64
	// Metrics, when set, counts outcomes.
	Metrics *Metrics
}

// DefaultConsumer names a consumer after the host and process. A restarted
// process gets a new name; its predecessor's pending entries are reclaimed by
// XAUTOCLAIM after ClaimIdle.
func DefaultConsumer() string {
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid())
}

// EnsureGroup creates the consumer group reading from the stream's start,
// creating the stream if needed; an existing group is fine.
func EnsureGroup(ctx context.Context, c *redis.Client, stream, group string) error {
	err := c.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", group, stream, err)
	}
	return nil
}

// Run consumes until ctx ends. Redis errors are logged and retried; Run
// returns only when ctx is done.
func (w *Worker) Run(ctx context.Context) error {
	w.defaults()
	for ctx.Err() == nil {
		if err := EnsureGroup(ctx, w.Client, w.Stream, w.Group); err != nil {
			w.Logger.Error("stream group unavailable", "stream", w.Stream, "err", err)
			sleep(ctx, time.Second)
			continue
		}
		break
	}
	lastClaim := time.Time{}
	for ctx.Err() == nil {
		if time.Since(lastClaim) >= w.claimEvery() {
			lastClaim = time.Now()
			if err := w.reclaim(ctx); err != nil && ctx.Err() == nil {
				w.Logger.Warn("reclaim pending entries", "stream", w.Stream, "err", err)
			}
		}
		if err := w.readNew(ctx); err != nil && ctx.Err() == nil {
			if strings.Contains(err.Error(), "NOGROUP") {
				// The stream was deleted under us; recreate and go on.
				_ = EnsureGroup(ctx, w.Client, w.Stream, w.Group)
				continue
			}
			w.Logger.Warn("read stream", "stream", w.Stream, "err", err)
			sleep(ctx, 500*time.Millisecond)
		}
	}
	return nil
}

func (w *Worker) defaults() {
	if w.Logger == nil {
		w.Logger = slog.Default()
	}
	if w.Consumer == "" {
		w.Consumer = DefaultConsumer()
	}
	if w.Block <= 0 {
		w.Block = 2 * time.Second
	}
	if w.ClaimIdle <= 0 {
		w.ClaimIdle = 30 * time.Second
	}
	if w.MaxDeliveries <= 0 {
		w.MaxDeliveries = 5
	}
	if w.Batch <= 0 {
		w.Batch = 16
	}
	if w.UnavailableFor <= 0 {
		w.UnavailableFor = 10 * time.Minute
	}
}

// claimEvery polls for reclaimable entries at a fraction of ClaimIdle, so a
// failed entry is retried soon after it becomes eligible.
func (w *Worker) claimEvery() time.Duration {
	d := w.ClaimIdle / 4
	if d < 50*time.Millisecond {
		d = 50 * time.Millisecond
	}
	return d
}

func (w *Worker) readNew(ctx context.Context) error {
	// The entries' idle time starts no earlier than this.
	readAt := time.Now()
	res, err := w.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group:    w.Group,
		Consumer: w.Consumer,
		Streams:  []string{w.Stream, ">"},
		Count:    w.Batch,
		Block:    w.Block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, s := range res {
		first := make(map[string]int64, len(s.Messages))
		for _, m := range s.Messages {
			first[m.ID] = 1
		}
		w.processBatch(ctx, s.Messages, first, readAt)
	}
	return nil
}

// reclaim takes over entries idle longer than ClaimIdle — those of dead
// consumers and our own failed ones — and processes them again.
func (w *Worker) reclaim(ctx context.Context) error {
	start := "0-0"
	for ctx.Err() == nil {
		readAt := time.Now()
		msgs, next, err := w.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream:   w.Stream,
			Group:    w.Group,
			Consumer: w.Consumer,
			MinIdle:  w.ClaimIdle,
			Start:    start,
			Count:    w.Batch,
		}).Result()
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			counts, err := w.deliveryCounts(ctx, msgs)
			if err != nil {
				return err
			}
			w.processBatch(ctx, msgs, counts, readAt)
		}
		if next == "0-0" || next == "" {
			return nil
		}
		start = next
	}
	return nil
}

func (w *Worker) deliveryCounts(ctx context.Context, msgs []redis.XMessage) (map[string]int64, error) {
	pending, err := w.Client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream:   w.Stream,
		Group:    w.Group,
		Start:    msgs[0].ID,
		End:      msgs[len(msgs)-1].ID,
		Count:    int64(len(msgs)) + 1,
		Consumer: w.Consumer,
	}).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(pending))
	for _, p := range pending {
		out[p.ID] = p.RetryCount
	}
	return out, nil
}

func (w *Worker) process(ctx context.Context, m redis.XMessage, deliveries int64) {
	msg := Message{Stream: w.Stream, ID: m.ID, Values: stringValues(m.Values), Deliveries: deliveries}
	if deliveries > w.MaxDeliveries {
		w.deadLetter(ctx, msg, fmt.Errorf("delivered %d times without being handled (max %d)", deliveries-1, w.MaxDeliveries))
		return
	}
	hctx, span := startSpan(ctx, msg)
	defer span.End()
	err := w.handleWhileUnavailable(hctx, msg)
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	switch {
	case err == nil:
		crashpoint.Here("streams.before-ack", w.Group)
		if aerr := w.Client.XAck(ctx, w.Stream, w.Group, m.ID).Err(); aerr != nil {
			w.Logger.WarnContext(hctx, "ack failed; the entry will be delivered again", "stream", w.Stream, "id", m.ID, "err", aerr)
		}
		w.Metrics.observe(w.Stream, "handled")
	case IsPermanent(err), deliveries >= w.MaxDeliveries:
		w.deadLetter(hctx, msg, err)
	default:
		w.Metrics.observe(w.Stream, "retried")
		w.Logger.WarnContext(hctx, "handler failed; will retry", "stream", w.Stream, "id", m.ID, "delivery", deliveries, "err", err)
	}
}

// processBatch handles the entries of one read in order while heldBatch
// keeps the claims of those not yet finished fresh; deliveries are their
// delivery counts as read. Before each entry it makes sure the entry is
// still this consumer's, and skips one another consumer took.
func (w *Worker) processBatch(ctx context.Context, msgs []redis.XMessage, deliveries map[string]int64, readAt time.Time) {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	b := w.holdBatch(ctx, ids, readAt)
	defer b.stop()
	for _, m := range msgs {
		if ctx.Err() != nil {
			// What is left stays pending under this consumer's name and
			// is reclaimed after ClaimIdle.
			return
		}
		n, ours := b.ours(ctx, m.ID, deliveries[m.ID])
		if !ours {
			w.Metrics.observe(w.Stream, "taken_over")
			w.Logger.Warn("entry taken over by another consumer before it was handled; leaving it to that one",
				"stream", w.Stream, "id", m.ID, "consumer", w.Consumer)
			continue
		}
		w.process(ctx, m, n)
		if b.finish(m.ID) {
			w.Logger.Warn("entry taken over by another consumer while it was being handled; it may be handled twice",
				"stream", w.Stream, "id", m.ID, "consumer", w.Consumer)
		}
	}
}

// ownedScript refreshes the claim of each entry in ARGV[3:] that consumer
// ARGV[2] of group ARGV[1] on stream KEYS[1] still owns. It returns pairs
// (id, delivery count) for those, and (id, -1) for each entry another
// consumer owns; an entry no longer pending (acknowledged) is left out.
// XPENDING names the owner; XCLAIM with min-idle 0 and JUSTID resets the idle
// time without counting a delivery. The check and the claim are one atomic
// step, so a refresh never takes an entry away from another consumer.
var ownedScript = redis.NewScript(`
local out = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 then
    out[#out + 1] = ARGV[i]
    if p[1][2] == ARGV[2] then
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
      out[#out + 1] = p[1][4]
    else
      out[#out + 1] = -1
    end
  end
end
return out
`)

// takenCount marks, in claimOwned's answer, an entry another consumer owns.
const takenCount = -1

// claimOwned runs ownedScript for ids: the delivery count of each one still
// this consumer's (its claim now refreshed), takenCount for each one another
// consumer owns; entries no longer pending are absent.
func (w *Worker) claimOwned(ctx context.Context, ids []string) (map[string]int64, error) {
	args := make([]any, 0, len(ids)+2)
	args = append(args, w.Group, w.Consumer)
	for _, id := range ids {
		args = append(args, id)
	}
	res, err := ownedScript.Run(ctx, w.Client, []string{w.Stream}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("refresh claims: %w", err)
	}
	out := make(map[string]int64, len(res)/2)
	for i := 0; i+1 < len(res); i += 2 {
		id, _ := res[i].(string)
		n, _ := res[i+1].(int64)
		out[id] = n
	}
	return out, nil
}

// heldBatch is the unfinished entries of one read, whose claims a goroutine
// refreshes every ClaimIdle/3 until stop.
type heldBatch struct {
	w  *Worker
	mu sync.Mutex
	// confirmed holds, for each unfinished entry still ours as far as is
	// known, when the last read or refresh that found it ours was sent:
	// its idle time in Redis is at most the time since then.
	confirmed map[string]time.Time
	// lost are the entries a refresh found owned by another consumer.
	lost          map[string]bool
	done, stopped chan struct{}
}

func (w *Worker) holdBatch(ctx context.Context, ids []string, readAt time.Time) *heldBatch {
	b := &heldBatch{
		w:         w,
		confirmed: make(map[string]time.Time, len(ids)),
		lost:      map[string]bool{},
		done:      make(chan struct{}),
		stopped:   make(chan struct{}),
	}
	for _, id := range ids {
		b.confirmed[id] = readAt
	}
	go b.keep(ctx)
	return b
}

func (b *heldBatch) keep(ctx context.Context) {
	defer close(b.stopped)
	t := time.NewTicker(b.w.ClaimIdle / 3)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b.mu.Lock()
		ids := make([]string, 0, len(b.confirmed))
		for id := range b.confirmed {
			ids = append(ids, id)
		}
		b.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		sent := time.Now()
		owned, err := b.w.claimOwned(ctx, ids)
		if err != nil {
			if ctx.Err() == nil {
				b.w.Logger.Warn("refresh claims of a batch", "stream", b.w.Stream, "entries", len(ids), "err", err)
			}
			continue
		}
		b.mark(ids, owned, sent)
	}
}

// mark records the answer of a refresh of ids sent at sent.
func (b *heldBatch) mark(ids []string, counts map[string]int64, sent time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, id := range ids {
		if _, open := b.confirmed[id]; !open {
			continue // finished or lost meanwhile
		}
		n, pending := counts[id]
		switch {
		case !pending:
			// Acknowledged: this worker just finished it, or another
			// consumer took it and finished it. Nothing is left to do.
			delete(b.confirmed, id)
		case n == takenCount:
			delete(b.confirmed, id)
			b.lost[id] = true
		default:
			b.confirmed[id] = sent
		}
	}
}

// ours reports whether the entry is still this consumer's, and its delivery
// count. An entry found ours less than ClaimIdle/2 ago cannot have been
// claimed since — no consumer claims an entry idle for less than ClaimIdle —
// so only an older confirmation (a long wait behind earlier entries, or
// refreshes failing) costs a round trip. When Redis cannot tell, the entry
// is taken as ours: it was when last seen, and handlers are idempotent.
func (b *heldBatch) ours(ctx context.Context, id string, deliveries int64) (int64, bool) {
	b.mu.Lock()
	confirmed, open := b.confirmed[id]
	b.mu.Unlock()
	if !open {
		return 0, false
	}
	if time.Since(confirmed) < b.w.ClaimIdle/2 {
		return deliveries, true
	}
	sent := time.Now()
	owned, err := b.w.claimOwned(ctx, []string{id})
	if err != nil {
		b.w.Logger.Warn("check claim before handling; handling the entry", "stream", b.w.Stream, "id", id, "err", err)
		return deliveries, true
	}
	b.mark([]string{id}, owned, sent)
	n, ok := owned[id]
	return n, ok && n != takenCount
}

// finish stops refreshing the entry and reports whether a refresh found it
// taken by another consumer while it was being handled.
func (b *heldBatch) finish(id string) (lost bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.confirmed, id)
	return b.lost[id]
}

func (b *heldBatch) stop() {
	close(b.done)
	<-b.stopped
}

// handleWhileUnavailable runs the handler, and again after a pause for as
// long as it reports a dependency unavailable (up to UnavailableFor). The
// entry stays claimed meanwhile, so no other consumer takes it and no
// delivery is counted.
func (w *Worker) handleWhileUnavailable(ctx context.Context, msg Message) error {
	deadline := time.Now().Add(w.UnavailableFor)
	pause := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := w.safeHandle(ctx, msg)
		if !IsUnavailable(err) || ctx.Err() != nil || time.Now().Add(pause).After(deadline) {
			return err
		}
		if attempt == 1 || attempt%10 == 0 {
			w.Logger.WarnContext(ctx, "dependency unavailable; retrying the entry in place", "stream", w.Stream, "id", msg.ID,
				"attempt", attempt, "err", err)
		}
		w.Metrics.observe(w.Stream, "unavailable")
		sleep(ctx, pause)
		pause = min(2*pause, 5*time.Second)
	}
}

func (w *Worker) safeHandle(ctx context.Context, msg Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			w.Logger.ErrorContext(ctx, "handler panicked", "stream", w.Stream, "id", msg.ID, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panicked: %v", r)
		}
	}()
	return w.Handler(ctx, msg)
}

// deadLetter copies the entry to <stream>:dead with the error and acknowledges
// it in one transaction, so it is neither lost nor handled twice.
func (w *Worker) deadLetter(ctx context.Context, msg Message, cause error) {
	values := make(map[string]any, len(msg.Values)+5)
	for k, v := range msg.Values {
		values[k] = v
	}
	values["dead_error"] = cause.Error()
	values["dead_source_stream"] = msg.Stream
	values["dead_source_id"] = msg.ID
	values["dead_group"] = w.Group
	values["dead_deliveries"] = strconv.FormatInt(msg.Deliveries, 10)
	values["dead_at_ms"] = strconv.FormatInt(time.Now().UnixMilli(), 10)
	_, err := w.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.XAdd(ctx, &redis.XAddArgs{Stream: w.Stream + DeadLetterSuffix, Values: values})
		p.XAck(ctx, w.Stream, w.Group, msg.ID)
		return nil
	})
	if err != nil {
		w.Logger.ErrorContext(ctx, "dead-letter failed; the entry stays pending", "stream", w.Stream, "id", msg.ID, "err", err)
		return
	}
	w.Metrics.observe(w.Stream, "dead_lettered")
	w.Logger.WarnContext(ctx, "entry dead-lettered", "stream", w.Stream, "id", msg.ID, "deliveries", msg.Deliveries, "err", cause)
}

func stringValues(in map[string]any) map[string]string {
	out := make(map[string]string, len(in))
	for k, v := range in {
		switch t := v.(type) {
		case string:
			out[k] = t
		default:
			out[k] = fmt.Sprint(t)
		}
	}
	return out
}

func startSpan(ctx context.Context, msg Message) (context.Context, trace.Span) {
	ctx = ExtractTrace(ctx, msg.Values)
	return otel.Tracer("galaxy/platform/streams").Start(ctx, "consume "+msg.Stream,
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("messaging.system", "redis"),
			attribute.String("messaging.destination.name", msg.Stream),
			attribute.String("messaging.message.id", msg.ID),
		))
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

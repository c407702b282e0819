// Package runner executes start and stop jobs: the start sequence of
// docs/rtmanager.md, the classification of its failures into the three
// admin-facing error codes, and exactly-once job results under redelivery.
//
// Exactly once works like this: a job's outcome is recorded in PostgreSQL
// (keyed by job kind and job ID) in the same transaction as the runtime state
// it leaves and the outbox entries announcing it (the job result and, for a
// failed start, the admin intent). A redelivered entry whose job is recorded
// is not executed again; only the outbox entries not yet published are.
package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"galaxy/platform/crashpoint"
	"galaxy/platform/database"
	"galaxy/platform/streams"
	"galaxy/rtmanager/docker"
	"galaxy/rtmanager/jobspec"
	"galaxy/rtmanager/lease"
	"galaxy/rtmanager/lobby"
	"galaxy/rtmanager/outbox"
	"galaxy/rtmanager/store"
)

// Job kinds.
const (
	KindStart = "start"
	KindStop  = "stop"
)

// Outcomes.
const (
	Succeeded = "succeeded"
	Failed    = "failed"
)

// Error codes. The first three are the contract's admin intents; the stop
// codes appear only in job results.
const (
	ImagePullFailed      = "image_pull_failed"
	ContainerStartFailed = "container_start_failed"
	StartConfigInvalid   = "start_config_invalid"
	StopJobInvalid       = "stop_job_invalid"
	ContainerStopFailed  = "container_stop_failed"
)

// Producer and audience of the admin intents.
const (
	Producer          = "runtime_manager"
	AudienceAdminMail = "admin_email"
)

// Config is the runner's share of the service configuration.
type Config struct {
	StateRoot        string
	PullPolicy       string
	PullTimeout      time.Duration
	StopTimeout      time.Duration
	LeaseWait        time.Duration
	JobResultsStream string
	IntentsStream    string
	// Instance is RTMANAGER_INSTANCE_ID: it names this deployment in the
	// outbox's dedup keys and the intents' idempotency keys.
	Instance string
	// MaxDeliveries is the stream's delivery budget: an infrastructure
	// failure (Docker unreachable) is retried until the last delivery, which
	// records the failure instead, so every job still gets one result.
	MaxDeliveries int64
}

// Runner handles start and stop jobs.
type Runner struct {
	Store   *store.Store
	Engine  *docker.Engine
	Leases  *lease.Manager
	Outbox  *outbox.Publisher
	Lobby   *lobby.Client
	Logger  *slog.Logger
	Metrics *Metrics
	Cfg     Config

	// running counts the job handlers executing now. The stream's pending
	// list shows a job's entry too, but also while it waits for another
	// delivery after a failure; this counts the jobs actually under way, so
	// the API can tell a manager in the middle of a start from an idle one.
	running atomic.Int64
}

// Running returns the number of start and stop jobs this process is
// executing.
func (r *Runner) Running() int64 { return r.running.Load() }

// track counts one job as running until the returned function is called.
func (r *Runner) track() func() {
	r.running.Add(1)
	return func() { r.running.Add(-1) }
}

// Metrics counts job outcomes.
type Metrics struct {
	jobs          *prometheus.CounterVec
	durations     *prometheus.HistogramVec
	leaseBusy     prometheus.Counter
	leaseTakeOver prometheus.Counter
}

// NewMetrics registers the runner's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmanager_jobs_total",
			Help: "Jobs finished, by kind, outcome and error code.",
		}, []string{"kind", "outcome", "error_code"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtmanager_job_duration_seconds",
			Help:    "Time from taking a job to recording its outcome.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 14),
		}, []string{"kind", "outcome"}),
		leaseBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtmanager_lease_busy_total",
			Help: "Jobs put back because another job held the game's lease.",
		}),
		leaseTakeOver: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "rtmanager_lease_takeovers_total",
			Help: "Game leases taken over from a Runtime Manager process that stopped without releasing them.",
		}),
	}
	reg.MustRegister(m.jobs, m.durations, m.leaseBusy, m.leaseTakeOver)
	return m
}

func (m *Metrics) observe(kind, outcome, code string, d time.Duration) {
	if m == nil {
		return
	}
	m.jobs.WithLabelValues(kind, outcome, code).Inc()
	m.durations.WithLabelValues(kind, outcome).Observe(d.Seconds())
}

// outcome is what a job ended with, before it is recorded.
type outcome struct {
	kind        string
	jobID       string
	entryID     string
	gameID      string
	imageRef    string
	result      string
	code        string
	message     string
	containerID string
	attemptedAt time.Time
	// runtime is the row the job leaves; nil leaves the row as it is.
	runtime *store.Runtime
	// fence is the fencing number of the game lease the job holds; 0 for a
	// job refused before it took the lease.
	fence int64
}

// resultKey and intentKey are the outbox dedup keys of a job's entries.
// The outbox's dedup keys of a job's result and intent. Job IDs are unique
// only within one deployment's start and stop streams (they default to entry
// IDs, which another stream may repeat), while the result and intent streams
// — and the outbox markers in Redis — may be shared by several deployments:
// the instance ID makes the keys one deployment's.
func (r *Runner) resultKey(kind, jobID string) string {
	return r.Cfg.Instance + "/" + kind + ":" + jobID + ":result"
}

func (r *Runner) intentKey(kind, jobID string) string {
	return r.Cfg.Instance + "/" + kind + ":" + jobID + ":intent"
}

// replay handles a job whose outcome is already recorded: it publishes what
// the outbox still holds unpublished and reports true. It reports false for
// a job not seen before.
func (r *Runner) replay(ctx context.Context, kind, jobID string) (bool, error) {
	_, err := r.Store.Job(ctx, kind, jobID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.Logger.Info("job already finished; publishing only what is unpublished", "kind", kind, "job_id", jobID)
	if err := r.Outbox.PublishKeys(ctx, r.resultKey(kind, jobID), r.intentKey(kind, jobID)); err != nil {
		return true, fmt.Errorf("republish %s job %s: %w", kind, jobID, err)
	}
	return true, nil
}

// finish records o with its job result (and admin intent for a failed start)
// and publishes them.
func (r *Runner) finish(ctx context.Context, o outcome) error {
	// The job's values go to operators (result, intent, mail) and through
	// Notification's payload limit: hostile ones are quoted and bounded;
	// valid ones are left exactly as they are.
	o.gameID, o.imageRef, o.message = jobspec.ShowGameID(o.gameID), jobspec.ShowImageRef(o.imageRef), jobspec.ShowMessage(o.message)
	now := time.Now()
	j := store.Job{
		Kind: o.kind, JobID: o.jobID, EntryID: o.entryID, GameID: o.gameID, ImageRef: o.imageRef,
		Outcome: o.result, ErrorCode: o.code, ErrorMessage: o.message, ContainerID: o.containerID, FinishedAt: now,
	}
	recordOutcome(ctx, o)
	result := map[string]string{
		"job_id":         o.jobID,
		"job_kind":       o.kind,
		"game_id":        o.gameID,
		"outcome":        o.result,
		"image_ref":      o.imageRef,
		"finished_at_ms": strconv.FormatInt(now.UnixMilli(), 10),
	}
	if o.containerID != "" {
		result["container_id"] = o.containerID
	}
	if o.result == Failed {
		result["error_code"] = o.code
		result["error_message"] = o.message
	}
	// The job's span (its failure recorded) is the parent of what the
	// result and intent cause downstream; the outbox stores the context
	// with the entries, as the propagator wrote it.
	streams.InjectTrace(ctx, result)
	entries := []store.OutboxEntry{{DedupKey: r.resultKey(o.kind, o.jobID), Stream: r.Cfg.JobResultsStream, Fields: result}}
	if o.kind == KindStart && o.result == Failed {
		entries = append(entries, store.OutboxEntry{
			DedupKey: r.intentKey(o.kind, o.jobID),
			Stream:   r.Cfg.IntentsStream,
			Fields:   intentFields(ctx, r.Cfg.Instance, o, now),
		})
	}
	crashpoint.Here("rtmanager.job.before-commit")
	recorded, err := r.Store.FinishJob(ctx, j, o.fence, o.runtime, entries)
	if err != nil {
		return err
	}
	crashpoint.Here("rtmanager.outbox.before-publish")
	if recorded {
		r.Metrics.observe(o.kind, o.result, o.code, now.Sub(o.attemptedAt))
		log := r.Logger.With("kind", o.kind, "job_id", o.jobID, "game_id", o.gameID, "outcome", o.result,
			"duration", now.Sub(o.attemptedAt).String())
		if o.result == Failed {
			log.WarnContext(ctx, "job failed", "error_code", o.code, "error_message", o.message)
		} else {
			log.InfoContext(ctx, "job succeeded", "container_id", o.containerID)
		}
	}
	if err := r.Outbox.PublishKeys(ctx, r.resultKey(o.kind, o.jobID), r.intentKey(o.kind, o.jobID)); err != nil {
		// The outcome is durable; the outbox sweeper publishes it shortly.
		r.Logger.Warn("publish job outcome; left to the outbox sweeper", "job_id", o.jobID, "err", err)
	}
	return nil
}

// IntentPayload is payload_json of the three admin intents.
type IntentPayload struct {
	GameID        string `json:"game_id"`
	ImageRef      string `json:"image_ref"`
	ErrorCode     string `json:"error_code"`
	ErrorMessage  string `json:"error_message"`
	AttemptedAtMS int64  `json:"attempted_at_ms"`
}

// intentFields builds the runtime.<code> admin intent (CONTRACTS §3).
func intentFields(ctx context.Context, instance string, o outcome, now time.Time) map[string]string {
	payload, _ := json.Marshal(IntentPayload{
		GameID: o.gameID, ImageRef: o.imageRef, ErrorCode: o.code, ErrorMessage: o.message,
		AttemptedAtMS: o.attemptedAt.UnixMilli(),
	})
	f := map[string]string{
		"notification_type": "runtime." + o.code,
		"producer":          Producer,
		"audience_kind":     AudienceAdminMail,
		"payload_json":      string(payload),
		"occurred_at_ms":    strconv.FormatInt(now.UnixMilli(), 10),
		// Notification routes one producer+key once, so even an intent
		// published twice by accident would mail the operators once; the
		// instance keeps two deployments' equal job IDs apart.
		"idempotency_key": "runtime:" + instance + "/" + o.jobID,
	}
	streams.InjectTrace(ctx, f)
	return f
}

// tracerName names the runner's spans' instrumentation scope.
const tracerName = "galaxy/rtmanager/runner"

// jobSpan starts the span of one job, a child of the stream worker's
// consume span: the span a failed job's failure is recorded on.
func jobSpan(ctx context.Context, kind string, msg streams.Message) (context.Context, trace.Span) {
	return otel.Tracer(tracerName).Start(ctx, kind+" job",
		trace.WithAttributes(attribute.String("galaxy.job.kind", kind), attribute.String("messaging.message.id", msg.ID)))
}

// endJobSpan records err — an infrastructure failure the entry is
// delivered again for — on span and ends it.
func endJobSpan(span trace.Span, err error) error {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
	return err
}

// recordOutcome puts the outcome on the job's span: a failed job (one of
// the contract's error codes) is an error of the span, with the code as
// error.type and the operator-readable message as the exception.
func recordOutcome(ctx context.Context, o outcome) {
	span := trace.SpanFromContext(ctx)
	span.SetAttributes(
		attribute.String("galaxy.job.id", o.jobID),
		attribute.String("galaxy.game.id", o.gameID),
		attribute.String("galaxy.job.outcome", o.result),
	)
	if o.result != Failed {
		return
	}
	span.SetAttributes(attribute.String("error.type", o.code))
	span.RecordError(errors.New(o.message), trace.WithAttributes(attribute.String("error.type", o.code)))
	span.SetStatus(codes.Error, o.code+": "+o.message)
}

// retryable reports whether err is an infrastructure failure worth another
// delivery rather than a verdict on the job: the daemon unreachable, or ctx
// ended (shutdown, lost lease), or the lease lost or superseded — a holder
// that is no longer the game's must not record a verdict at all.
func (r *Runner) retryable(ctx context.Context, deliveries int64, err error) bool {
	if ctx.Err() != nil || errors.Is(err, lease.ErrLost) || errors.Is(err, store.ErrFenced) {
		return true
	}
	if !client.IsErrConnectionFailed(err) {
		return false
	}
	return deliveries < r.Cfg.MaxDeliveries
}

// cleanupContext is for removing what a failed job created: it survives the
// job's own context ending, but not for long.
func cleanupContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// acquire takes the game's lease, waiting up to LeaseWait, and stores its
// fence with the game, so that from then on no earlier holder's write is
// accepted. A job that cannot get the lease is put back for a later
// delivery, never failed.
func (r *Runner) acquire(ctx context.Context, kind, jobID, gameID string) (*lease.Lease, error) {
	// The stored fence is the floor of the new one: were Redis to lose the
	// game's counter, the next number must still be accepted.
	floor, err := r.Store.Fence(ctx, gameID)
	if err != nil {
		return nil, err
	}
	l, err := r.Leases.AcquireAbove(ctx, gameID, r.Cfg.LeaseWait, floor)
	if errors.Is(err, lease.ErrBusy) {
		if r.Metrics != nil {
			r.Metrics.leaseBusy.Inc()
		}
		return nil, fmt.Errorf("%s job %s: game %s: %w; the entry will be delivered again", kind, jobID, gameID, err)
	}
	if err != nil {
		return nil, err
	}
	if l.TookOver {
		r.Logger.Warn("game lease taken over from a Runtime Manager process that stopped holding it",
			"kind", kind, "job_id", jobID, "game_id", gameID)
		if r.Metrics != nil {
			r.Metrics.leaseTakeOver.Inc()
		}
	}
	if err := r.Store.ClaimFence(ctx, gameID, l.Fence); err != nil {
		release(ctx, l, r.Logger)
		return nil, err
	}
	return l, nil
}

// guard is checked right before each Docker action that changes a game's
// containers, which PostgreSQL cannot fence: the lease must still be valid
// by this process's clock, and no later holder may have stored its fence.
func (r *Runner) guard(ctx context.Context, l *lease.Lease, gameID string) error {
	if err := l.Check(); err != nil {
		return err
	}
	return r.Store.ClaimFence(ctx, gameID, l.Fence)
}

// underLease runs job with the game's lease taken and held, its fence in
// base (every write the job makes carries it), unless the lease's previous
// holder was another delivery of this very job: that one's outcome is
// replayed instead.
func (r *Runner) underLease(ctx context.Context, base *outcome, log *slog.Logger, job func(context.Context, *lease.Lease) error) error {
	l, err := r.acquire(ctx, base.kind, base.jobID, base.gameID)
	if err != nil {
		return err
	}
	defer release(ctx, l, log)
	base.fence = l.Fence
	return held(ctx, l, func(hctx context.Context) error {
		if done, err := r.replay(hctx, base.kind, base.jobID); done || err != nil {
			return err
		}
		return job(hctx, l)
	})
}

// held runs one job under the game's lease l: the job's context ends with
// lease.ErrLost when the lease is lost, and an error the job returns then is
// reported as the loss (a retry in place, never a spent delivery or a
// recorded outcome), whatever Docker said meanwhile.
func held(ctx context.Context, l *lease.Lease, job func(context.Context) error) error {
	hctx, stop := l.Hold(ctx)
	defer stop()
	err := job(hctx)
	if err != nil && ctx.Err() == nil && hctx.Err() != nil {
		return fmt.Errorf("%w (the job stopped: %v)", context.Cause(hctx), err)
	}
	return err
}

func release(ctx context.Context, l *lease.Lease, logger *slog.Logger) {
	cctx, cancel := cleanupContext(ctx)
	defer cancel()
	if err := l.Release(cctx); err != nil {
		logger.Warn("release lease; it expires by itself", "err", err)
	}
}

// infrastructure classifies a job handler's error for the stream worker. A
// job's own faults become failed results, so what fails here is
// infrastructure, and PostgreSQL, Redis or a game lease still held are
// retried in place (streams.Unavailable): nothing can be recorded or
// published without them, and an outage must not dead-letter the job. Two
// exceptions spend the entry's deliveries as before: an unreachable Docker
// daemon, so that the last delivery turns it into the job's failed result
// (retryable), and PostgreSQL refusing the data, which no retry fixes.
func infrastructure(err error) error {
	if err == nil || database.IsDataError(err) || client.IsErrConnectionFailed(err) {
		return err
	}
	return streams.Unavailable(err)
}

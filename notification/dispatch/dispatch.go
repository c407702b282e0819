// Package dispatch hands routes to Mail: it resolves user recipients through
// the User Service, writes one template-mode command per recipient to the
// mail stream, and decides each route's next state — routed, skipped, retried
// later with backoff, or dead once its attempts run out.
//
// A failure is either the route's own or a dependency's: Redis or the User
// Service unavailable. By the contract's rule (CONTRACTS §4) both count
// toward MaxAttempts. With UnavailableFor set, only the route's own failures
// do; a dependency's outage is waited out, retried at the backoff ceiling
// for as long as it lasts, up to UnavailableFor after the intent entered its
// stream.
//
// It runs inside a store transaction that holds the notifications' row
// locks, both for fresh intents (intake) and for due retries (RunRetries).
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/notification/intent"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/notification/users"
	"galaxy/platform/crashpoint"
	"galaxy/platform/streams"
)

// Mail command fields (CONTRACTS §3, mail:delivery_commands).
const (
	mailSource      = "notification"
	mailPayloadMode = "template"
)

// ReasonUnavailableTooLong is the reason of a route made dead because its
// hand-off still found a dependency unavailable UnavailableFor after its
// intent entered its stream.
const ReasonUnavailableTooLong = "dependency_unavailable"

// The dependencies whose unavailability a failed hand-off can be due to, as
// named in metrics and logs.
const (
	dependencyRedis       = "redis"
	dependencyUserService = "user_service"
)

// Resolver looks users up; *users.Client is the real one.
type Resolver interface {
	Resolve(ctx context.Context, ids []string) (map[string]users.User, error)
}

// Dispatcher performs hand-offs.
type Dispatcher struct {
	Redis       *redis.Client
	Users       Resolver
	MailStream  string
	AdminLocale string
	Backoff     routing.Backoff
	// MaxAttempts bounds the attempts of a route whose hand-off fails for
	// a reason of its own: the attempt that reaches it and fails makes the
	// route dead.
	MaxAttempts int
	// UnavailableFor, when positive, has routes wait out a dependency: a
	// route whose hand-off finds Redis or the User Service unavailable
	// stays pending (without regard to MaxAttempts) until this long after
	// its intent entered its stream, then it is dead. Zero: such failures
	// count toward MaxAttempts like any other (CONTRACTS §4).
	UnavailableFor time.Duration
	Metrics        *Metrics
	Logger         *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	// retryAt wakes RunRetries for the retries this process schedules.
	retryAt alarm
}

func (d *Dispatcher) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// HandOff returns the store.HandOffFunc of one transaction. fresh reports
// whether an intent was recorded by this very batch: its routes cannot have
// been handed off before, so no search of the mail stream is needed.
func (d *Dispatcher) HandOff(fresh func(intentID string) bool) store.HandOffFunc {
	return func(ctx context.Context, routes []store.PendingRoute) []store.RouteUpdate {
		return d.handOff(ctx, routes, fresh)
	}
}

// delivery is a route ready for its mail command.
type delivery struct {
	route     store.PendingRoute
	recipient string
	locale    string
	variables string
}

func (d *Dispatcher) handOff(ctx context.Context, routes []store.PendingRoute, fresh func(string) bool) []store.RouteUpdate {
	updates, unavailable := d.attempt(ctx, routes, fresh)
	failed, first := 0, ""
	for _, u := range updates {
		if u.Status == routing.RoutePending {
			if failed == 0 {
				first = u.LastError
			}
			failed++
		}
	}
	if failed > 0 {
		// unavailable of them wait for a dependency: their attempts do not
		// count toward MaxAttempts.
		d.Logger.Warn("hand-offs failed; retrying with backoff", "routes", failed, "of", len(routes),
			"unavailable", unavailable, "first_error", first)
	}
	return updates
}

// attempt hands off routes and returns their updates, and how many of them
// failed because a dependency was unavailable.
func (d *Dispatcher) attempt(ctx context.Context, routes []store.PendingRoute, fresh func(string) bool) ([]store.RouteUpdate, int) {
	tr := startTraces(ctx, routes, d.MailStream)
	updates, unavailable := d.attemptTraced(tr, routes, fresh)
	tr.end(updates)
	return updates, unavailable
}

func (d *Dispatcher) attemptTraced(tr *traces, routes []store.PendingRoute, fresh func(string) bool) ([]store.RouteUpdate, int) {
	ctx := tr.base
	start := d.now()
	unavailable := 0
	updates := make([]store.RouteUpdate, 0, len(routes))
	ready := make([]delivery, 0, len(routes))

	var userIDs []string
	seen := map[string]bool{}
	for _, r := range routes {
		if r.UserID != "" && !seen[r.UserID] {
			seen[r.UserID] = true
			userIDs = append(userIDs, r.UserID)
		}
	}
	var resolved map[string]users.User
	var resolveErr error
	if len(userIDs) > 0 {
		resolved, resolveErr = d.Users.Resolve(tr.resolveContext(routes), userIDs)
	}
	for _, r := range routes {
		if r.UserID == "" {
			ready = append(ready, delivery{route: r, recipient: r.Recipient, locale: d.AdminLocale, variables: r.PayloadJSON})
			continue
		}
		if resolveErr != nil {
			// Nothing reached the mail stream: the uncertainty (if any)
			// stays what it was.
			dep := ""
			if streams.IsUnavailable(resolveErr) {
				dep = dependencyUserService
				unavailable++
			}
			updates = append(updates, d.failed(tr.of(r.IntentID), r, start, "user service: "+resolveErr.Error(), d.priorUncertainty(r, fresh), dep))
			continue
		}
		u, ok := resolved[r.UserID]
		switch {
		case !ok:
			updates = append(updates, d.skipped(r, start, routing.ReasonUserNotFound, ""))
			continue
		case u.OptedOut():
			updates = append(updates, d.skipped(r, start, routing.ReasonEmailOptedOut, u.Email))
			continue
		case u.Email == "":
			updates = append(updates, d.skipped(r, start, routing.ReasonUserHasNoEmail, ""))
			continue
		}
		vars, err := withDisplayName(r.PayloadJSON, u.DisplayName)
		if err != nil {
			// The payload was validated as an object when recorded; this
			// cannot happen short of a corrupted row.
			updates = append(updates, d.failed(tr.of(r.IntentID), r, start, err.Error(), d.priorUncertainty(r, fresh), ""))
			continue
		}
		locale := u.Locale
		if locale == "" {
			locale = d.AdminLocale
		}
		ready = append(ready, delivery{route: r, recipient: u.Email, locale: locale, variables: vars})
	}
	if len(ready) == 0 {
		return updates, unavailable
	}

	// A route whose earlier hand-off may have reached the stream is looked
	// for there first, so a crash between the stream write and its record
	// does not put a second command in the stream.
	var found map[string]string
	var since int64
	for _, dl := range ready {
		if s := d.priorUncertainty(dl.route, fresh); s > 0 && (since == 0 || s < since) {
			since = s
		}
	}
	if since > 0 {
		keys := map[string]bool{}
		for _, dl := range ready {
			if d.priorUncertainty(dl.route, fresh) > 0 {
				keys[dl.route.IdempotencyKey] = true
			}
		}
		var err error
		found, err = findCommands(ctx, d.Redis, d.MailStream, keys, since)
		if err != nil {
			d.Logger.WarnContext(ctx, "search of the mail stream failed; mail commands may repeat (Mail drops repeats by key)",
				"stream", d.MailStream, "err", err)
		}
	}

	pipe := d.Redis.Pipeline()
	cmds := make([]*redis.StringCmd, len(ready))
	for i, dl := range ready {
		if _, ok := found[dl.route.IdempotencyKey]; ok {
			continue
		}
		cmds[i] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: d.MailStream, Values: d.command(tr.of(dl.route.IntentID), dl, start)})
	}
	if pipe.Len() > 0 {
		// Per-command errors are read below; Exec's error is the first of them.
		_, _ = pipe.Exec(ctx)
		crashpoint.Here("notification.dispatch.before-commit")
	}
	done := d.now()
	for i, dl := range ready {
		if id, ok := found[dl.route.IdempotencyKey]; ok {
			d.Metrics.Recovered.Inc()
			updates = append(updates, d.routed(dl, id, done))
			continue
		}
		id, err := cmds[i].Result()
		if err != nil {
			// The command may or may not have reached Redis.
			uncertain := start.UnixMilli()
			if prior := d.priorUncertainty(dl.route, fresh); prior > 0 && prior < uncertain {
				uncertain = prior
			}
			dep := ""
			if redisUnavailable(err) {
				dep = dependencyRedis
				unavailable++
			}
			updates = append(updates, d.failed(tr.of(dl.route.IntentID), dl.route, start, fmt.Sprintf("mail stream %s: %v", d.MailStream, err), uncertain, dep))
			continue
		}
		d.Metrics.HandOffLatency.Observe(done.Sub(time.UnixMilli(dl.route.IntentAtMS)).Seconds())
		updates = append(updates, d.routed(dl, id, done))
	}
	return updates, unavailable
}

// redisUnavailable reports whether a failed write says Redis cannot serve
// now — unreachable, timed out, the connection lost, or a server answering
// that it is loading, read-only, out of memory, without its primary or
// replicas, busy or overloaded — rather than refusing the command itself
// (WRONGTYPE on a mail stream key holding something else, for example).
func redisUnavailable(err error) bool {
	if streams.IsUnavailable(err) {
		return true
	}
	var reply redis.Error
	if !errors.As(err, &reply) {
		// No answer from the server: dial, I/O, timeout, pool, closed client.
		return true
	}
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsOOMError(err) ||
		redis.IsMasterDownError(err) || redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsNoReplicasError(err) || redis.IsMaxClientsError(err) || strings.HasPrefix(reply.Error(), "BUSY ")
}

// command builds the mail command of a delivery (template mode, one
// recipient). The trace context of ctx — the intent's dispatch span, when
// the intent had a trace — rides along through the propagator.
func (d *Dispatcher) command(ctx context.Context, dl delivery, now time.Time) map[string]any {
	to, _ := json.Marshal([]string{dl.recipient})
	v := map[string]any{
		"source":                  mailSource,
		"payload_mode":            mailPayloadMode,
		"template_id":             dl.route.NotificationType,
		"locale":                  dl.locale,
		"template_variables_json": dl.variables,
		"to_json":                 string(to),
		"idempotency_key":         dl.route.IdempotencyKey,
		"requested_at_ms":         strconv.FormatInt(now.UnixMilli(), 10),
	}
	trace := map[string]string{}
	streams.InjectTrace(ctx, trace)
	for k, tv := range trace {
		v[k] = tv
	}
	return v
}

// priorUncertainty is since when a command of r may already be in the mail
// stream (0: certainly not). A route of a fresh intent has never been tried.
func (d *Dispatcher) priorUncertainty(r store.PendingRoute, fresh func(string) bool) int64 {
	if fresh != nil && fresh(r.IntentID) {
		return 0
	}
	return r.MaybeSentSinceMS
}

func (d *Dispatcher) routed(dl delivery, entryID string, now time.Time) store.RouteUpdate {
	d.Metrics.Routes.WithLabelValues(routing.RouteRouted).Inc()
	return store.RouteUpdate{
		IntentID: dl.route.IntentID, RouteID: dl.route.RouteID, Status: routing.RouteRouted,
		Attempts: dl.route.Attempts + 1, Recipient: dl.recipient, Locale: dl.locale,
		LastAttemptAtMS: now.UnixMilli(), MailEntryID: entryID, RoutedAtMS: now.UnixMilli(),
	}
}

func (d *Dispatcher) skipped(r store.PendingRoute, now time.Time, reason, recipient string) store.RouteUpdate {
	d.Metrics.Routes.WithLabelValues(routing.RouteSkipped).Inc()
	return store.RouteUpdate{
		IntentID: r.IntentID, RouteID: r.RouteID, Status: routing.RouteSkipped, Attempts: r.Attempts + 1,
		Reason: reason, Recipient: recipient, LastAttemptAtMS: now.UnixMilli(),
	}
}

// failed schedules the next attempt, or makes the route dead when this was
// its last. dependency names the dependency found unavailable ("" when the
// failure is the route's own): with UnavailableFor set, such an attempt is
// recorded (attempts counts every try, so the backoff reaches its ceiling)
// but never makes the route dead by MaxAttempts, only once UnavailableFor
// has passed since its intent entered its stream.
func (d *Dispatcher) failed(ctx context.Context, r store.PendingRoute, now time.Time, cause string, maybeSentSince int64, dependency string) store.RouteUpdate {
	attempts := r.Attempts + 1
	u := store.RouteUpdate{
		IntentID: r.IntentID, RouteID: r.RouteID, Attempts: attempts, LastError: cause,
		LastAttemptAtMS: now.UnixMilli(), MaybeSentSinceMS: maybeSentSince,
	}
	waitsOut := dependency != "" && d.UnavailableFor > 0
	if dependency != "" {
		d.Metrics.Unavailable.WithLabelValues(dependency).Inc()
	}
	if waitsOut {
		if waited := now.Sub(time.UnixMilli(r.IntentAtMS)); waited >= d.UnavailableFor {
			u.Status = routing.RouteDead
			u.Reason = ReasonUnavailableTooLong
			d.Metrics.Routes.WithLabelValues(routing.RouteDead).Inc()
			d.Logger.WarnContext(ctx, "route dead: dependency unavailable for longer than NOTIFICATION_ROUTE_UNAVAILABLE_FOR",
				"intent_entry_id", r.IntentID, "route_id", r.RouteID, "dependency", dependency,
				"waited", waited.Round(time.Second), "attempts", attempts, "last_error", cause)
			return u
		}
	}
	if !waitsOut && attempts >= d.MaxAttempts {
		u.Status = routing.RouteDead
		u.Reason = routing.ReasonAttemptsExhausted
		d.Metrics.Routes.WithLabelValues(routing.RouteDead).Inc()
		d.Logger.WarnContext(ctx, "route dead: hand-off attempts exhausted", "intent_entry_id", r.IntentID, "route_id", r.RouteID,
			"attempts", attempts, "last_error", cause)
		return u
	}
	u.Status = routing.RoutePending
	u.NextAttemptAtMS = now.Add(d.Backoff.Delay(attempts)).UnixMilli()
	// Early if the transaction does not commit after all: the loop then
	// finds nothing due and sleeps again.
	d.retryAt.set(time.UnixMilli(u.NextAttemptAtMS))
	d.Metrics.Routes.WithLabelValues("retry").Inc()
	// One line per route would flood the log when a dependency is down;
	// handOff logs a summary per batch instead.
	d.Logger.DebugContext(ctx, "hand-off failed; will retry", "intent_entry_id", r.IntentID, "route_id", r.RouteID,
		"attempt", attempts, "unavailable", dependency, "next_attempt_at_ms", u.NextAttemptAtMS, "err", cause)
	return u
}

// withDisplayName adds user_display_name to a payload object (replacing a
// producer's value of that name: the User Service is the authority),
// keeping the payload's bytes as they are (intent.TemplateVariables).
func withDisplayName(payload, name string) (string, error) {
	return intent.TemplateVariables(payload, name)
}

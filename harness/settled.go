package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// SettledPoll is how often Settled observes the pipeline, and so the pause
// between the two observations that must agree.
const SettledPoll = 50 * time.Millisecond

// settledConfirmations is how many observations in a row must find nothing
// in flight.
const settledConfirmations = 2

// The services' in-flight endpoints (docs/contracts.md, "Observing
// in-flight work").
const (
	RTManagerInFlightPath    = "/api/v1/internal/jobs/in-flight"
	NotificationInFlightPath = "/api/v1/internal/notifications/in-flight"
	MailInFlightPath         = "/api/v1/internal/deliveries/in-flight"
)

// RTManagerInFlight is the Runtime Manager's answer on RTManagerInFlightPath.
type RTManagerInFlight struct {
	JobsRunning int64 `json:"jobs_running"`
	Unpublished int64 `json:"unpublished"`
	InFlight    int64 `json:"in_flight"`
}

// NotificationInFlight is Notification's answer on NotificationInFlightPath.
type NotificationInFlight struct {
	PendingNotifications int64 `json:"pending_notifications"`
	PendingRoutes        int64 `json:"pending_routes"`
	AwaitingFirstAttempt int64 `json:"awaiting_first_attempt"`
	AwaitingRetry        int64 `json:"awaiting_retry"`
	InFlight             int64 `json:"in_flight"`
}

// MailInFlight is Mail's answer on MailInFlightPath.
type MailInFlight struct {
	Queued   int64 `json:"queued"`
	Sending  int64 `json:"sending"`
	Retrying int64 `json:"retrying"`
	InFlight int64 `json:"in_flight"`
}

// Observation is one look at everything the pipeline may have in flight.
// A service that was not started (its URL empty) has a nil entry.
type Observation struct {
	// Groups are the consumer groups of every pipeline stream, in pipeline
	// order. A Lag of -1 means Redis could not count the undelivered
	// entries and at least one exists.
	Groups       []GroupBacklog
	RTManager    *RTManagerInFlight
	Notification *NotificationInFlight
	Mail         *MailInFlight
}

// Unfinished describes what the observation found in flight: the groups
// with pending or undelivered entries, then the services in pipeline order.
// It is empty when nothing is in flight.
func (o Observation) Unfinished() []string {
	var out []string
	for _, g := range o.Groups {
		if g.Pending != 0 || g.Lag != 0 {
			out = append(out, g.String())
		}
	}
	if r := o.RTManager; r != nil && (r.InFlight != 0 || r.JobsRunning != 0 || r.Unpublished != 0) {
		out = append(out, fmt.Sprintf("rtmanager: %d jobs running, %d outbox entries unpublished", r.JobsRunning, r.Unpublished))
	}
	if n := o.Notification; n != nil && (n.InFlight != 0 || n.PendingRoutes != 0) {
		out = append(out, fmt.Sprintf("notification: %d routes of %d notifications waiting (%d for their first hand-off, %d for a retry)",
			n.PendingRoutes, n.PendingNotifications, n.AwaitingFirstAttempt, n.AwaitingRetry))
	}
	if m := o.Mail; m != nil && (m.InFlight != 0 || m.Queued != 0 || m.Sending != 0 || m.Retrying != 0) {
		out = append(out, fmt.Sprintf("mail: %d deliveries queued, %d sending, %d retrying", m.Queued, m.Sending, m.Retrying))
	}
	return out
}

// Observe reads, upstream first, every consumer group of the pipeline's
// streams and the in-flight endpoint of every started service: the Runtime
// Manager's input streams, the Runtime Manager, the streams it writes,
// Notification, the mail command stream, Mail.
//
// The order is what makes one observation sound. Work only moves
// downstream, and every hand-off overlaps: a stage shows an item until
// after the next stage shows it (an entry stays pending until its effect is
// recorded; an outbox row stays unpublished until after its XADD; a route
// stays pending until after its mail command is added). So an item in the
// pipeline when the observation starts is missed only if it has moved past
// every stage by the time that stage is read; the reads move downstream as
// well, so the item stays ahead of them only by leaving the last stage
// before the last read: by finishing. Read downstream first, an item moving
// from a stage not yet read into one already read would be missed.
//
// On an error Observe goes on with the other reads and returns what it saw
// with every error joined.
func (p *Pipeline) Observe(ctx context.Context) (Observation, error) {
	var (
		o    Observation
		errs []error
	)
	rtmInputs, middle, mailInputs := p.streamStages()
	readGroups := func(streams []string) {
		if p.Redis == nil {
			return
		}
		for _, s := range streams {
			gs, err := p.streamGroups(ctx, s)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			o.Groups = append(o.Groups, gs...)
		}
	}
	readService := func(name, base, token, path string, out any) bool {
		if _, err := DoJSON(ctx, Request{URL: joinURL(base, path), Token: token, Service: name}, out); err != nil {
			errs = append(errs, fmt.Errorf("%s in-flight: %w", name, err))
			return false
		}
		return true
	}

	readGroups(rtmInputs)
	if p.RTManagerURL != "" {
		var v RTManagerInFlight
		if readService("rtmanager", p.RTManagerURL, p.Tokens.RTManager, RTManagerInFlightPath, &v) {
			o.RTManager = &v
		}
	}
	readGroups(middle)
	if p.NotificationURL != "" {
		var v NotificationInFlight
		if readService("notification", p.NotificationURL, p.Tokens.Notification, NotificationInFlightPath, &v) {
			o.Notification = &v
		}
	}
	readGroups(mailInputs)
	if p.MailURL != "" {
		var v MailInFlight
		if readService("mail", p.MailURL, p.Tokens.Mail, MailInFlightPath, &v) {
			o.Mail = &v
		}
	}
	// The User Service answers requests synchronously and keeps no work of
	// its own, so there is nothing to read there.
	return o, errors.Join(errs...)
}

// streamStages splits p.Streams.All() into the Runtime Manager's inputs, the
// streams between the Runtime Manager and Mail, and Mail's inputs. A stream
// All() gains later lands in the middle, so it is still read.
func (p *Pipeline) streamStages() (rtmInputs, middle, mailInputs []string) {
	s := p.Streams
	stage := map[string]int{
		s.StartJobs: 0, s.StartJobs + ":dead": 0, s.StopJobs: 0, s.StopJobs + ":dead": 0,
		s.MailCommands: 2, s.MailCommands + ":dead": 2,
	}
	for _, name := range s.All() {
		if strings.TrimSuffix(name, ":dead") == "" {
			continue // a stream this pipeline does not have
		}
		st, ok := stage[name]
		switch {
		case ok && st == 0:
			rtmInputs = append(rtmInputs, name)
		case ok && st == 2:
			mailInputs = append(mailInputs, name)
		default:
			middle = append(middle, name)
		}
	}
	return rtmInputs, middle, mailInputs
}

// streamGroups returns the backlog of every consumer group of stream; a
// stream that does not exist has none. Where Redis cannot count the lag
// (after deletions) it is resolved by looking for an entry after the group's
// last delivered one: 0 when there is none, -1 (at least one) otherwise.
func (p *Pipeline) streamGroups(ctx context.Context, stream string) ([]GroupBacklog, error) {
	groups, err := p.Redis.XInfoGroups(ctx, stream).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return nil, nil
		}
		return nil, fmt.Errorf("groups of %s: %w", stream, err)
	}
	out := make([]GroupBacklog, 0, len(groups))
	for _, g := range groups {
		if p.groups != nil && !slices.Contains(p.groups, g.Name) {
			continue
		}
		b := GroupBacklog{Stream: stream, Group: g.Name, Pending: g.Pending, Lag: g.Lag}
		if b.Lag < 0 {
			next, err := p.Redis.XRangeN(ctx, stream, "("+g.LastDeliveredID, "+", 1).Result()
			if err != nil {
				return nil, fmt.Errorf("entries of %s after %s: %w", stream, g.LastDeliveredID, err)
			}
			if len(next) == 0 {
				b.Lag = 0
			}
		}
		out = append(out, b)
	}
	return out, nil
}

// SettledError is Settled's answer when ctx ended first: what the pipeline
// still had in flight.
type SettledError struct {
	// Waited is how long Settled observed; Observations how often.
	Waited       time.Duration
	Observations int
	// Unfinished is what the last complete observation found in flight
	// (Observation.Unfinished); empty when it found nothing but ctx ended
	// before another observation confirmed it.
	Unfinished []string
	// Err is why the last observation could not read everything, if so.
	Err error
	// Cause is ctx's error.
	Cause error
}

func (e *SettledError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline not settled after %s (%d observations): %v", e.Waited.Round(time.Millisecond), e.Observations, e.Cause)
	switch {
	case len(e.Unfinished) > 0:
		fmt.Fprintf(&b, "; still in flight: %s", strings.Join(e.Unfinished, "; "))
	case e.Err == nil && e.Observations > 0:
		b.WriteString("; the last observation found nothing in flight, but none after it confirmed that")
	}
	if e.Err != nil {
		fmt.Fprintf(&b, "; the last observation failed: %v", e.Err)
	}
	return b.String()
}

// Unwrap gives errors.Is and errors.As the context's error and the last
// observation's.
func (e *SettledError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.Cause, e.Err} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// Settled waits until the pipeline has nothing in flight: every consumer
// group of every pipeline stream has no pending and no undelivered entry,
// the Runtime Manager runs no job and has nothing unpublished, Notification
// has no route waiting for its hand-off, and Mail has no delivery queued,
// sending or retrying — in two observations in a row, SettledPoll apart
// (see Observe for why each is read in pipeline order). Services that were
// not started are skipped.
//
// It observes every SettledPoll until that holds or ctx ends; give ctx a
// deadline. On timeout the error is a *SettledError naming what was still
// in flight. Settled says nothing about work that enters the pipeline later:
// call it after publishing what a spec publishes.
func (p *Pipeline) Settled(ctx context.Context) error {
	start := time.Now()
	var (
		clean, observations int
		unfinished          []string
		lastErr             error
	)
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return &SettledError{
				Waited: time.Since(start), Observations: observations,
				Unfinished: unfinished, Err: lastErr, Cause: ctx.Err(),
			}
		case <-poll.C:
		}
		o, err := p.Observe(ctx)
		if err != nil && ctx.Err() != nil {
			// Cut short by ctx itself: the observation before tells more.
			continue
		}
		observations++
		unfinished, lastErr = o.Unfinished(), err
		if err == nil && len(unfinished) == 0 {
			clean++
			if clean == settledConfirmations {
				return nil
			}
		} else {
			clean = 0
		}
		poll.Reset(SettledPoll)
	}
}

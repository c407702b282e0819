package harness_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
)

func TestObservationUnfinished(t *testing.T) {
	quiet := harness.Observation{
		Groups:       []harness.GroupBacklog{{Stream: "s", Group: "g"}},
		RTManager:    &harness.RTManagerInFlight{},
		Notification: &harness.NotificationInFlight{},
		Mail:         &harness.MailInFlight{},
	}
	if got := quiet.Unfinished(); len(got) != 0 {
		t.Fatalf("quiet observation: %v", got)
	}
	if got := (harness.Observation{}).Unfinished(); len(got) != 0 {
		t.Fatalf("nothing started: %v", got)
	}
	busy := harness.Observation{
		Groups: []harness.GroupBacklog{
			{Stream: "a", Group: "g", Pending: 1},
			{Stream: "b", Group: "g"},
			{Stream: "c", Group: "g", Lag: 2},
			{Stream: "d", Group: "g", Lag: -1},
		},
		RTManager:    &harness.RTManagerInFlight{JobsRunning: 1, InFlight: 1},
		Notification: &harness.NotificationInFlight{PendingNotifications: 1, PendingRoutes: 2, AwaitingRetry: 2, InFlight: 2},
		Mail:         &harness.MailInFlight{Retrying: 3, InFlight: 3},
	}
	want := []string{
		"a/g: 1 pending, lag 0",
		"c/g: 0 pending, lag 2",
		"d/g: 0 pending, lag -1",
		"rtmanager: 1 jobs running, 0 outbox entries unpublished",
		"notification: 2 routes of 1 notifications waiting (0 for their first hand-off, 2 for a retry)",
		"mail: 0 deliveries queued, 0 sending, 3 retrying",
	}
	if got := busy.Unfinished(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("busy observation:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A total that disagrees with its parts still counts as in flight.
	odd := harness.Observation{Mail: &harness.MailInFlight{InFlight: 1}}
	if got := odd.Unfinished(); len(got) != 1 {
		t.Fatalf("in_flight without parts: %v", got)
	}
}

func TestSettledErrorSaysWhy(t *testing.T) {
	cause := context.DeadlineExceeded
	down := errors.New("mail in-flight: connection refused")
	e := &harness.SettledError{Waited: 1500 * time.Millisecond, Observations: 30,
		Unfinished: []string{"x/g: 1 pending, lag 0", "mail: 1 deliveries queued, 0 sending, 0 retrying"}, Cause: cause}
	want := "pipeline not settled after 1.5s (30 observations): context deadline exceeded; still in flight: x/g: 1 pending, lag 0; mail: 1 deliveries queued, 0 sending, 0 retrying"
	if e.Error() != want {
		t.Fatalf("got  %s\nwant %s", e.Error(), want)
	}
	e = &harness.SettledError{Observations: 3, Err: down, Cause: cause}
	if !errors.Is(e, context.DeadlineExceeded) || !errors.Is(e, down) || !strings.Contains(e.Error(), "the last observation failed: mail in-flight: connection refused") {
		t.Fatalf("with a failed observation: %v", e)
	}
	e = &harness.SettledError{Observations: 1, Cause: cause}
	if !strings.Contains(e.Error(), "found nothing in flight, but none after it confirmed that") {
		t.Fatalf("unconfirmed: %v", e)
	}
}

// TestSettledWaitsForTheStreams drives a consumer group by hand on a real
// Redis: Settled does not return while an entry is undelivered or
// unacknowledged, returns once it is acknowledged, and copes with a lag
// Redis cannot count.
func TestSettledWaitsForTheStreams(t *testing.T) {
	ctx := t.Context()
	r := harness.StartRedis(ctx, t)
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	suffix := harness.UniqueSuffix()
	p := &harness.Pipeline{Redis: rdb, Streams: harness.PipelineStreams{
		StartJobs:    "runtime:start_jobs:" + suffix,
		StopJobs:     "runtime:stop_jobs:" + suffix,
		JobResults:   "runtime:job_results:" + suffix,
		HealthEvents: "runtime:health_events:" + suffix,
		Intents:      "notification:intents:" + suffix,
		MailCommands: "mail:delivery_commands:" + suffix,
	}}
	stream, group := p.Streams.Intents, "notification"
	settled := func(within time.Duration) error {
		ctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return p.Settled(ctx)
	}
	notSettled := func(what, mention string) {
		t.Helper()
		err := settled(400 * time.Millisecond)
		var se *harness.SettledError
		if !errors.As(err, &se) || !errors.Is(err, context.DeadlineExceeded) || se.Observations < 2 {
			t.Fatalf("%s: Settled = %v, want a *SettledError after several observations", what, err)
		}
		if !strings.Contains(err.Error(), mention) {
			t.Fatalf("%s: %v does not mention %q", what, err, mention)
		}
	}

	if err := settled(5 * time.Second); err != nil {
		t.Fatalf("no stream exists yet: %v", err)
	}
	if err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err(); err != nil {
		t.Fatal(err)
	}
	if err := settled(5 * time.Second); err != nil {
		t.Fatalf("an empty group: %v", err)
	}
	id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"k": "v"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	notSettled("undelivered", stream+"/"+group+": 0 pending, lag 1")
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	notSettled("unacknowledged", stream+"/"+group+": 1 pending, lag 0")

	// Started while the entry is pending, Settled returns once it is
	// acknowledged.
	done := make(chan error, 1)
	go func() { done <- settled(10 * time.Second) }()
	select {
	case err := <-done:
		t.Fatalf("Settled returned while an entry was pending: %v", err)
	default:
	}
	if err := rdb.XAck(ctx, stream, group, id).Err(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("after the acknowledgement: %v", err)
	}

	// An undelivered entry deleted: Redis no longer counts the lag, and
	// nothing is left to deliver.
	gone, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"k": "gone"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.XDel(ctx, stream, gone).Err(); err != nil {
		t.Fatal(err)
	}
	backlog, err := p.Backlog(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backlog after the deletion, as Redis counts it: %v", backlog)
	if err := settled(5 * time.Second); err != nil {
		t.Fatalf("after deleting the only undelivered entry: %v", err)
	}
	// And one that is not deleted behind it is still undelivered.
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"k": "kept"}}).Err(); err != nil {
		t.Fatal(err)
	}
	notSettled("undelivered after a deletion", stream+"/"+group+": 0 pending, lag")
}

// TestSettledReportsAServiceThatDoesNotAnswer: a service URL nothing listens
// on is not "nothing in flight".
func TestSettledReportsAServiceThatDoesNotAnswer(t *testing.T) {
	p := &harness.Pipeline{MailURL: "http://" + harness.FreeTCPAddress(t)}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := p.Settled(ctx)
	var se *harness.SettledError
	if !errors.As(err, &se) || se.Err == nil || !strings.Contains(err.Error(), "mail in-flight") {
		t.Fatalf("Settled = %v, want the failed observation named", err)
	}
}

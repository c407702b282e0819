package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"galaxy/notification/dispatch"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/notification/users"
	"galaxy/platform/streams"
)

// failingUsers answers every resolve with err.
type failingUsers struct{ err error }

func (u failingUsers) Resolve(context.Context, []string) (map[string]users.User, error) {
	return nil, u.err
}

// lastChance is a route one failed attempt short of MaxAttempts (5) whose
// intent entered its stream age ago.
func lastChance(userID string, age time.Duration) store.PendingRoute {
	return store.PendingRoute{
		IntentID: "1-0", RouteID: "email:user:" + userID, UserID: userID,
		IdempotencyKey: "notification:1-0/email:user:" + userID, Attempts: 4,
		NotificationType: "game.turn_ready", PayloadJSON: `{}`, IntentAtMS: time.Now().Add(-age).UnixMilli(),
	}
}

func handOffOne(t *testing.T, d *dispatch.Dispatcher, r store.PendingRoute) store.RouteUpdate {
	t.Helper()
	ups := d.HandOff(func(string) bool { return true })(t.Context(), []store.PendingRoute{r})
	if len(ups) != 1 {
		t.Fatalf("want one update, got %+v", ups)
	}
	return ups[0]
}

// A failure of the route's own spends its last attempt; a dependency found
// unavailable does not, until UnavailableFor has passed since the intent.
func TestUnavailableDependencyDoesNotSpendTheLastAttempt(t *testing.T) {
	f := newFixture(t)
	d := f.dispatcher()
	d.UnavailableFor = time.Hour

	d.Users = failingUsers{streams.Unavailable(errors.New("connection refused"))}
	u := handOffOne(t, d, lastChance("u1", time.Minute))
	if u.Status != routing.RoutePending || u.Attempts != 5 || u.NextAttemptAtMS <= time.Now().UnixMilli()-1000 {
		t.Errorf("user service unavailable on the last attempt: %+v", u)
	}
	u = handOffOne(t, d, lastChance("u1", 2*time.Hour))
	if u.Status != routing.RouteDead || u.Reason != dispatch.ReasonUnavailableTooLong {
		t.Errorf("user service unavailable past UnavailableFor: %+v", u)
	}
	if got := counterValue(t, f.metrics.Unavailable.WithLabelValues("user_service")); got != 2 {
		t.Errorf("unavailable{user_service} = %v, want 2", got)
	}

	d.Users = failingUsers{errors.New("status 400")}
	u = handOffOne(t, d, lastChance("u1", time.Minute))
	if u.Status != routing.RouteDead || u.Reason != routing.ReasonAttemptsExhausted {
		t.Errorf("user service refusing on the last attempt: %+v", u)
	}
}

func TestRedisUnreachableDoesNotSpendTheLastAttempt(t *testing.T) {
	f := newFixture(t)
	admin := lastChance("", time.Minute)
	admin.UserID, admin.RouteID, admin.Recipient = "", "email:email:ops@example.com", "ops@example.com"

	d := f.dispatcher()
	d.UnavailableFor = time.Hour
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	d.Redis = down
	u := handOffOne(t, d, admin)
	if u.Status != routing.RoutePending || u.Attempts != 5 || u.MaybeSentSinceMS == 0 {
		t.Errorf("redis unreachable on the last attempt: %+v", u)
	}
	if got := counterValue(t, f.metrics.Unavailable.WithLabelValues("redis")); got != 1 {
		t.Errorf("unavailable{redis} = %v, want 1", got)
	}

	// Without UnavailableFor, the contract's rule: the outage spends the
	// last attempt.
	d.UnavailableFor = 0
	if u := handOffOne(t, d, admin); u.Status != routing.RouteDead || u.Reason != routing.ReasonAttemptsExhausted {
		t.Errorf("redis unreachable on the last attempt, not waited out: %+v", u)
	}

	// The mail stream's key holds a string: Redis answers, and refuses.
	d = f.dispatcher()
	d.UnavailableFor = time.Hour
	if err := f.rdb.Set(t.Context(), f.stream, "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	u = handOffOne(t, d, admin)
	if u.Status != routing.RouteDead || u.Reason != routing.ReasonAttemptsExhausted {
		t.Errorf("WRONGTYPE on the last attempt: %+v", u)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

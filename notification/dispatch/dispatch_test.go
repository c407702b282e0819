package dispatch_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/notification/dispatch"
	"galaxy/notification/intent"
	"galaxy/notification/migrations"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/notification/users"
	"galaxy/platform/database"
)

var (
	redisSrv *harness.Redis
	pg       *harness.Postgres
)

func TestMain(m *testing.M) {
	tb := harness.NewPackageTB("notification-dispatch")
	redisSrv = harness.StartRedis(context.Background(), tb)
	pg = harness.StartPostgres(context.Background(), tb)
	code := m.Run()
	tb.Close()
	os.Exit(code)
}

type fixture struct {
	pool    *pgxpool.Pool
	st      *store.Store
	rdb     *redis.Client
	stream  string
	metrics *dispatch.Metrics
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dsn, err := pg.CreateDatabase(t.Context(), "dispatch_"+t.Name())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := database.Open(t.Context(), "notification", dsn, migrations.FS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	return &fixture{pool: pool, st: store.New(pool), rdb: rdb, stream: "mail:delivery_commands:" + harness.UniqueSuffix(),
		metrics: dispatch.NewMetrics(prometheus.NewRegistry())}
}

func (f *fixture) dispatcher() *dispatch.Dispatcher {
	return &dispatch.Dispatcher{
		Redis: f.rdb, Users: noUsers{}, MailStream: f.stream, AdminLocale: "en",
		Backoff: routing.Backoff{Min: 10 * time.Millisecond, Max: 20 * time.Millisecond}, MaxAttempts: 5,
		Metrics: f.metrics, Logger: slog.New(slog.DiscardHandler),
	}
}

type noUsers struct{}

func (noUsers) Resolve(context.Context, []string) (map[string]users.User, error) {
	return nil, fmt.Errorf("no user service in this test")
}

// record stores n admin notifications as a process would just before it
// hands them off; their routes become due for others at firstDue.
func (f *fixture) record(t *testing.T, n int, now, firstDue time.Time) []store.NewNotification {
	t.Helper()
	admins := routing.AdminRecipients{"RUNTIME_IMAGE_PULL_FAILED": {"ops@example.com"}}
	var batch []store.NewNotification
	for i := range n {
		id := strconv.FormatInt(now.UnixMilli(), 10) + "-" + strconv.Itoa(i)
		it := intent.Intent{NotificationType: "runtime.image_pull_failed", Producer: "runtime_manager",
			AudienceKind: intent.AudienceAdminEmail, PayloadJSON: `{"game_id":"g"}`, OccurredAtMS: 1}
		routes, _ := routing.Plan(id, it, admins)
		batch = append(batch, store.NewNotification{IntentID: id, NotificationType: it.NotificationType, Producer: it.Producer,
			AudienceKind: it.AudienceKind, PayloadJSON: it.PayloadJSON, OccurredAtMS: 1, Status: routing.StatusPending, Routes: routes})
	}
	recs, err := f.st.Record(t.Context(), batch, now, firstDue)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if !r.Fresh {
			t.Fatalf("entry %d not fresh", i)
		}
	}
	return batch
}

// A process wrote a route's mail command and died before recording it: the
// retry loop finds the command in the stream and records it instead of
// writing a second one.
func TestRecoveryFindsTheCommandAlreadyWritten(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	batch := f.record(t, 2, now, now.Add(time.Second))
	key := batch[0].Routes[0].IdempotencyKey
	written, err := f.rdb.XAdd(t.Context(), &redis.XAddArgs{Stream: f.stream, Values: map[string]any{"idempotency_key": key}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.st.HandOffDue(t.Context(), now, 10, f.dispatcher().HandOff(nil)); err != nil || n != 0 {
		t.Fatalf("routes must not be due before the grace period: %d %v", n, err)
	}
	n, err := f.st.HandOffDue(t.Context(), now.Add(2*time.Second), 10, f.dispatcher().HandOff(func(string) bool { return false }))
	if err != nil || n != 2 {
		t.Fatalf("hand off due: %d %v", n, err)
	}
	msgs, _ := f.rdb.XRange(t.Context(), f.stream, "-", "+").Result()
	if len(msgs) != 2 {
		t.Fatalf("want the found command plus one new one, got %d", len(msgs))
	}
	got, err := f.st.Get(t.Context(), batch[0].IntentID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != routing.StatusRouted || *got.Routes[0].MailEntryID != written {
		t.Fatalf("route must be recorded with the command found: %+v", got.Routes[0])
	}
	var m dto.Metric
	if err := f.metrics.Recovered.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		v := m.GetCounter().GetValue()
		t.Fatalf("recovered metric %v", v)
	}
}

// Routes of a fresh batch are handed off by their recorder without any
// search, and a second hand-off of the same notifications finds nothing left.
func TestFreshRoutesAreHandedOffOnce(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	batch := f.record(t, 5, now, now.Add(time.Minute))
	ids := make([]string, len(batch))
	for i, b := range batch {
		ids[i] = b.IntentID
	}
	fresh := func(string) bool { return true }
	if n, err := f.st.HandOffRecorded(t.Context(), ids, now, f.dispatcher().HandOff(fresh)); err != nil || n != 5 {
		t.Fatalf("first hand-off: %d %v", n, err)
	}
	if n, err := f.st.HandOffRecorded(t.Context(), ids, now, f.dispatcher().HandOff(fresh)); err != nil || n != 0 {
		t.Fatalf("second hand-off must find nothing: %d %v", n, err)
	}
	if l, _ := f.rdb.XLen(t.Context(), f.stream).Result(); l != 5 {
		t.Fatalf("want 5 commands, got %d", l)
	}
}

// Several retry loops (several processes) working the same due routes write
// each command exactly once: a notification's row lock goes to one of them.
func TestConcurrentRetryLoopsWriteEachCommandOnce(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	const total = 600
	f.record(t, total, now, now)
	var wg sync.WaitGroup
	for range 4 {
		d := f.dispatcher()
		wg.Go(func() {
			for {
				n, err := f.st.HandOffDue(context.Background(), time.Now(), 50, d.HandOff(func(string) bool { return true }))
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	msgs, _ := f.rdb.XRange(t.Context(), f.stream, "-", "+").Result()
	keys := map[string]bool{}
	for _, m := range msgs {
		keys[m.Values["idempotency_key"].(string)] = true
	}
	if len(msgs) != total || len(keys) != total {
		t.Fatalf("want %d commands with distinct keys, got %d commands, %d keys", total, len(msgs), len(keys))
	}
}

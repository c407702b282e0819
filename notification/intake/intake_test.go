package intake_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/notification/dispatch"
	"galaxy/notification/intake"
	"galaxy/notification/migrations"
	"galaxy/notification/routing"
	"galaxy/notification/store"
	"galaxy/notification/users"
	"galaxy/platform/database"
	"galaxy/platform/streams"
)

var (
	redisSrv *harness.Redis
	pg       *harness.Postgres
)

func TestMain(m *testing.M) {
	tb := harness.NewPackageTB("notification-intake")
	redisSrv = harness.StartRedis(context.Background(), tb)
	pg = harness.StartPostgres(context.Background(), tb)
	code := m.Run()
	tb.Close()
	os.Exit(code)
}

type noUsers struct{}

func (noUsers) Resolve(context.Context, []string) (map[string]users.User, error) {
	return nil, fmt.Errorf("no user service in this test")
}

// Many stream workers feed shared batches in-process (run with -race): valid,
// invalid and repeated intents all end recorded once, valid ones routed once,
// and every entry is acknowledged.
func TestWorkersShareBatches(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	dsn, err := pg.CreateDatabase(ctx, "intake")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	pool, err := database.Open(ctx, "notification", dsn, migrations.FS, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rdb := redis.NewClient(&redis.Options{Addr: redisSrv.Addr, Protocol: 2, DisableIdentity: true, PoolSize: 64})
	defer rdb.Close()
	suffix := harness.UniqueSuffix()
	intents, mail := "notification:intents:"+suffix, "mail:delivery_commands:"+suffix

	metrics := dispatch.NewMetrics(prometheus.NewRegistry())
	st := store.New(pool)
	in := &intake.Intake{
		Store: st,
		Dispatcher: &dispatch.Dispatcher{Redis: rdb, Users: noUsers{}, MailStream: mail, AdminLocale: "en",
			Backoff: routing.Backoff{Min: 10 * time.Millisecond, Max: 50 * time.Millisecond}, MaxAttempts: 3,
			Metrics: metrics, Logger: logger},
		Admins:            routing.AdminRecipients{"RUNTIME_IMAGE_PULL_FAILED": {"ops@example.com"}},
		Metrics:           metrics,
		Logger:            logger,
		MaxBatch:          64,
		FirstHandOffGrace: time.Minute,
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = in.Run(ctx) })
	for i := range 16 {
		w := &streams.Worker{Client: rdb, Stream: intents, Group: intake.Group, Consumer: "c-" + strconv.Itoa(i),
			Handler: in.Handle, Logger: logger, Block: 50 * time.Millisecond, ClaimIdle: 5 * time.Second, MaxDeliveries: 5, Batch: 1}
		wg.Go(func() { _ = w.Run(ctx) })
	}

	const valid, invalid, repeats = 300, 50, 50
	for i := range valid + invalid + repeats {
		values := map[string]any{
			"notification_type": "runtime.image_pull_failed", "producer": "runtime_manager", "audience_kind": "admin_email",
			"payload_json": `{"n":` + strconv.Itoa(i) + `}`, "occurred_at_ms": "1",
		}
		switch {
		case i >= valid+invalid:
			values["idempotency_key"] = "same-key"
		case i >= valid:
			values["payload_json"] = "[]"
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: intents, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Settled: every entry recorded (entries not yet read are not pending,
	// so an empty pending list alone proves nothing), none pending, and
	// every mail command written.
	deadline := time.Now().Add(60 * time.Second)
	var items []store.Notification
	for {
		p, err := rdb.XPending(ctx, intents, intake.Group).Result()
		n, _ := rdb.XLen(ctx, mail).Result()
		items, _, _ = st.List(ctx, store.Filter{Limit: 1000})
		if err == nil && p.Count == 0 && n == valid+1 && len(items) == valid+invalid+repeats {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not settled: pending %+v, %d mail commands, %d notifications", p, n, len(items))
		}
		time.Sleep(50 * time.Millisecond)
	}
	counts := map[string]int{}
	for _, n := range items {
		counts[n.Status]++
	}
	want := map[string]int{"routed": valid + 1, "rejected": invalid, "skipped": repeats - 1}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", counts, want)
	}
	cancel()
	wg.Wait()
}

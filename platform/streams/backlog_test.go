package streams_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/platform/gauges"
	"galaxy/platform/streams"
)

// The backlog gauges are what "is the pipeline backing up?" is asked of:
// pending and undelivered entries per group, dead letters per stream.
func TestBacklogGaugesCountPendingUndeliveredAndDeadEntries(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	stream, idle := uniqueStream(t), uniqueStream(t)
	for range 5 {
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: map[string]any{"k": "v"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.XGroupCreateMkStream(ctx, stream, "g", "0").Err(); err != nil {
		t.Fatal(err)
	}
	// Two delivered and unacknowledged, three not yet delivered.
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 2}).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream + streams.DeadLetterSuffix, Values: map[string]any{"dead_error": "x"}}).Err(); err != nil {
		t.Fatal(err)
	}

	reg := prometheus.NewRegistry()
	streams.RegisterBacklog(reg, c, slog.New(slog.NewTextHandler(io.Discard, nil)),
		streams.Group{Stream: stream, Group: "g"}, streams.Group{Stream: idle, Group: "g"})
	got := gather(t, reg)
	want := map[string]float64{
		`stream_group_pending_entries{group="g",stream="` + stream + `"}`: 2,
		`stream_group_lag_entries{group="g",stream="` + stream + `"}`:     3,
		`stream_dead_letter_entries{stream="` + stream + `"}`:             1,
		`stream_group_pending_entries{group="g",stream="` + idle + `"}`:   0,
		`stream_group_lag_entries{group="g",stream="` + idle + `"}`:       0,
		`stream_dead_letter_entries{stream="` + idle + `"}`:               0,
		`stream_backlog_read_errors_total`:                                0,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("gathered %v\nwant     %v", got, want)
	}

	// An undelivered entry deleted: Redis no longer counts the lag
	// (go-redis says -1), and an entry follows the last delivered one, so
	// the gauge is absent rather than wrong; once everything left is
	// delivered it is 0 again.
	entries, err := c.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.XDel(ctx, stream, entries[3].ID).Err(); err != nil {
		t.Fatal(err)
	}
	lag := `stream_group_lag_entries{group="g",stream="` + stream + `"}`
	if v, ok := gather(t, reg)[lag]; ok {
		t.Fatalf("lag Redis cannot count: %v, want it absent", v)
	}
	if err := c.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 10}).Err(); err != nil {
		t.Fatal(err)
	}
	if v, ok := gather(t, reg)[lag]; !ok || v != 0 {
		t.Fatalf("lag with everything delivered: %v (present %v), want 0", v, ok)
	}
}

// A Redis that does not answer leaves the backlog out of the scrape and
// counts the failure; it does not fail /metrics.
func TestBacklogOfAnUnreachableRedisIsCountedNotFatal(t *testing.T) {
	c := streams.NewClient("127.0.0.1:1", "", 0)
	t.Cleanup(func() { _ = c.Close() })
	reg := prometheus.NewRegistry()
	streams.RegisterBacklog(reg, c, slog.New(slog.NewTextHandler(io.Discard, nil)), streams.Group{Stream: "s", Group: "g"})
	got := gather(t, reg)
	if want := map[string]float64{"stream_backlog_read_errors_total": 2}; !maps.Equal(got, want) {
		t.Fatalf("gathered %v, want only %v (the groups and the dead letters failed)", got, want)
	}
}

// gather returns every series of reg (gauges.Values).
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

package backlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/notification/store"
	"galaxy/platform/gauges"
)

type fixedCounter struct {
	f    store.InFlight
	dead int64
	err  error
}

func (c fixedCounter) InFlight(context.Context) (store.InFlight, error) { return c.f, c.err }

func (c fixedCounter) DeadRouteCount(context.Context) (int64, error) { return c.dead, c.err }

// values are the series counter's gauges report, aged by now.
func values(t *testing.T, counter Counter, now func() time.Time) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	gauges.Register(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), "notification_backlog_read_errors_total", "test", read(counter, now), routesDesc, oldestDesc, deadDesc)
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGaugesAreTheWaitingRoutesAndTheOldestAge(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	got := values(t, fixedCounter{f: store.InFlight{Notifications: 2, FirstAttempt: 1, Retry: 4, OldestWaitingMS: now.Add(-75 * time.Second).UnixMilli()}, dead: 3}, func() time.Time { return now })
	want := map[string]float64{
		`notification_waiting_routes{wait="first_attempt"}`: 1,
		`notification_waiting_routes{wait="retry"}`:         4,
		"notification_oldest_waiting_age_seconds":           75,
		"notification_dead_routes":                          3,
		"notification_backlog_read_errors_total":            0,
	}
	if !maps.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
}

func TestNothingWaitingIsAgeZeroAndAFailedReadIsCounted(t *testing.T) {
	if got := values(t, fixedCounter{}, time.Now)["notification_oldest_waiting_age_seconds"]; got != 0 {
		t.Errorf("age with nothing waiting = %v, want 0", got)
	}
	got := values(t, fixedCounter{err: errors.New("connection refused")}, time.Now)
	if want := map[string]float64{"notification_backlog_read_errors_total": 2}; !maps.Equal(got, want) {
		t.Errorf("gathered after a failed read %v, want %v", got, want)
	}
}

package backlog

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/mail/store"
	"galaxy/platform/gauges"
)

type fixedCounter struct {
	f   store.InFlight
	err error
}

func (c fixedCounter) InFlight(context.Context) (store.InFlight, error) { return c.f, c.err }

// registered is a registry with the gauges of counter, aged by now.
func registered(counter Counter, now func() time.Time) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauges.Register(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), "mail_backlog_read_errors_total", "test",
		read(counter, now), deliveriesDesc, oldestDesc)
	return reg
}

// gathered returns reg's series (gauges.Values).
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGaugesAreTheStoreCountsAndTheOldestWaitingAge(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	reg := registered(fixedCounter{f: store.InFlight{Queued: 2, Sending: 1, Retrying: 3, OldestWaiting: now.Add(-90 * time.Second)}},
		func() time.Time { return now })
	got := gathered(t, reg)
	want := map[string]float64{
		`mail_unfinished_deliveries{status="queued"}`:   2,
		`mail_unfinished_deliveries{status="sending"}`:  1,
		`mail_unfinished_deliveries{status="retrying"}`: 3,
		"mail_oldest_waiting_delivery_age_seconds":      90,
		"mail_backlog_read_errors_total":                0,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("gathered %v, want exactly %v", got, want)
	}
}

func TestNothingWaitingIsAgeZeroAndAFailedReadIsCounted(t *testing.T) {
	reg := registered(fixedCounter{}, time.Now)
	if got := gathered(t, reg)["mail_oldest_waiting_delivery_age_seconds"]; got != 0 {
		t.Errorf("age with nothing waiting = %v, want 0", got)
	}

	reg = registered(fixedCounter{err: errors.New("connection refused")}, time.Now)
	got := gathered(t, reg)
	if len(got) != 1 || got["mail_backlog_read_errors_total"] != 1 {
		t.Errorf("gathered after a failed read %v, want only mail_backlog_read_errors_total 1", got)
	}
}

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

// values are the series counter's gauges report, aged by now.
func values(t *testing.T, counter Counter, now func() time.Time) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	gauges.Register(reg, slog.New(slog.NewTextHandler(io.Discard, nil)), "mail_backlog_read_errors_total", "test", read(counter, now), deliveriesDesc, oldestDesc)
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGaugesAreTheStoreCountsAndTheOldestWaitingAge(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	got := values(t, fixedCounter{f: store.InFlight{Queued: 2, Sending: 1, Retrying: 3, OldestWaiting: now.Add(-90 * time.Second)}}, func() time.Time { return now })
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
	if got := values(t, fixedCounter{}, time.Now)["mail_oldest_waiting_delivery_age_seconds"]; got != 0 {
		t.Errorf("age with nothing waiting = %v, want 0", got)
	}

	got := values(t, fixedCounter{err: errors.New("connection refused")}, time.Now)
	if len(got) != 1 || got["mail_backlog_read_errors_total"] != 1 {
		t.Errorf("gathered after a failed read %v, want only mail_backlog_read_errors_total 1", got)
	}
}

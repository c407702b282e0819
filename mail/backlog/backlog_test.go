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
)

type fixedCounter struct {
	f   store.InFlight
	err error
}

func (c fixedCounter) InFlight(context.Context) (store.InFlight, error) { return c.f, c.err }

// gathered returns reg's series, name{first label value} → value.
func gathered(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			if m.Counter != nil {
				out[name] = m.GetCounter().GetValue()
			} else {
				out[name] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

func TestGaugesAreTheStoreCountsAndTheOldestWaitingAge(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{
		counter: fixedCounter{f: store.InFlight{Queued: 2, Sending: 1, Retrying: 3, OldestWaiting: now.Add(-90 * time.Second)}},
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return now },
	})
	got := gathered(t, reg)
	want := map[string]float64{
		"mail_unfinished_deliveries{queued}":       2,
		"mail_unfinished_deliveries{sending}":      1,
		"mail_unfinished_deliveries{retrying}":     3,
		"mail_oldest_waiting_delivery_age_seconds": 90,
		"mail_backlog_read_errors_total":           0,
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{counter: fixedCounter{}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now})
	if got := gathered(t, reg)["mail_oldest_waiting_delivery_age_seconds"]; got != 0 {
		t.Errorf("age with nothing waiting = %v, want 0", got)
	}

	reg = prometheus.NewRegistry()
	reg.MustRegister(&collector{counter: fixedCounter{err: errors.New("connection refused")}, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now})
	got := gathered(t, reg)
	if len(got) != 1 || got["mail_backlog_read_errors_total"] != 1 {
		t.Errorf("gathered after a failed read %v, want only mail_backlog_read_errors_total 1", got)
	}
}

package backlog_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"galaxy/platform/gauges"
	"galaxy/rtmanager/backlog"
)

type jobs int64

func (j jobs) Running() int64 { return int64(j) }

type outbox struct {
	n   int64
	err error
}

func (o outbox) Unpublished(context.Context) (int64, error) { return o.n, o.err }

func values(t *testing.T, j backlog.Jobs, o backlog.Outbox) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	backlog.Register(reg, j, o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGaugesAreTheRunningJobsAndTheUnpublishedEntries(t *testing.T) {
	want := map[string]float64{
		"rtmanager_jobs_running":               3,
		"rtmanager_outbox_unpublished_entries": 7,
		"rtmanager_backlog_read_errors_total":  0,
	}
	if got := values(t, jobs(3), outbox{n: 7}); !maps.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
	want = map[string]float64{"rtmanager_jobs_running": 1, "rtmanager_backlog_read_errors_total": 1}
	if got := values(t, jobs(1), outbox{err: errors.New("connection refused")}); !maps.Equal(got, want) {
		t.Errorf("gathered after a failed read %v, want %v", got, want)
	}
}

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

type store struct {
	unpublished int64
	games       map[string]int64
	err         error
}

func (s store) Unpublished(context.Context) (int64, error) { return s.unpublished, s.err }

func (s store) GamesByState(context.Context) (map[string]int64, error) { return s.games, s.err }

type docker struct{ err error }

func (d docker) Ping(context.Context) error { return d.err }

func values(t *testing.T, src backlog.Sources) map[string]float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	backlog.Register(reg, src, slog.New(slog.NewTextHandler(io.Discard, nil)))
	v, err := gauges.Values(reg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestGaugesAreTheRunningJobsTheUnpublishedEntriesTheGamesAndDocker(t *testing.T) {
	got := values(t, backlog.Sources{
		Jobs:   jobs(3),
		Store:  store{unpublished: 7, games: map[string]int64{"running": 2, "failed": 5}},
		Docker: docker{},
	})
	want := map[string]float64{
		"rtmanager_jobs_running":               3,
		"rtmanager_outbox_unpublished_entries": 7,
		`rtmanager_games{state="running"}`:     2,
		`rtmanager_games{state="failed"}`:      5,
		"rtmanager_docker_up":                  1,
		"rtmanager_backlog_read_errors_total":  0,
	}
	if !maps.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
}

// A store that cannot be read leaves its gauges out and counts both reads;
// a daemon that does not answer is the value 0, not a failed read.
func TestFailedReadsAreLeftOutAndDockerDownIsZero(t *testing.T) {
	got := values(t, backlog.Sources{
		Jobs:   jobs(1),
		Store:  store{err: errors.New("connection refused")},
		Docker: docker{err: errors.New("dial unix /var/run/docker.sock: no such file")},
	})
	want := map[string]float64{
		"rtmanager_jobs_running":              1,
		"rtmanager_docker_up":                 0,
		"rtmanager_backlog_read_errors_total": 2,
	}
	if !maps.Equal(got, want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
}

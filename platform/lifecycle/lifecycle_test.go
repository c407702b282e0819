package lifecycle_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"galaxy/platform/lifecycle"
)

var quiet = slog.New(slog.DiscardHandler)

func TestFailingPartStopsTheOthers(t *testing.T) {
	stopped := make(chan struct{})
	err := lifecycle.Run(context.Background(), quiet, time.Second,
		lifecycle.Part{Name: "worker", Run: func(ctx context.Context) error {
			<-ctx.Done()
			close(stopped)
			return nil
		}},
		lifecycle.Part{Name: "http", Run: func(context.Context) error { return errors.New("address in use") }},
	)
	if err == nil || !strings.Contains(err.Error(), "http: address in use") {
		t.Fatalf("want the failing part's error, got %v", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("the other part was not stopped")
	}
}

func TestCancelStopsCleanlyWithinBudget(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	err := lifecycle.Run(ctx, quiet, time.Second,
		lifecycle.Part{Name: "loop", Run: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
	)
	if err != nil {
		t.Fatalf("a clean stop must return nil, got %v", err)
	}
}

func TestShutdownBudgetIsEnforced(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	_ = lifecycle.Run(ctx, quiet, 100*time.Millisecond,
		lifecycle.Part{Name: "stuck", Run: func(context.Context) error { <-release; return nil }},
	)
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("Run waited %s past a 100ms budget", waited)
	}
}

// A failing round is retried at the next interval and does not end the part.
func TestEveryRetriesAFailedRound(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	rounds := 0
	run := lifecycle.Every(time.Millisecond, quiet, "test round", func(context.Context) error {
		rounds++
		if rounds == 3 {
			cancel()
		}
		return errors.New("dependency down")
	})
	if err := run(ctx); err != nil {
		t.Fatalf("Every returned %v; want nil after ctx ended", err)
	}
	if rounds != 3 {
		t.Fatalf("rounds = %d; want 3 (the part went on after failures until cancelled)", rounds)
	}
}

// Package lifecycle runs a service's long-lived parts together and stops them
// on SIGTERM or SIGINT within the shutdown budget.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// Part is one long-lived piece (HTTP server, stream worker, loop). It runs
// until ctx ends and returns nil on a clean stop.
type Part struct {
	Name string
	Run  func(ctx context.Context) error
}

// SignalContext is cancelled on SIGTERM or SIGINT.
func SignalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

// Run starts every part and waits. When ctx ends, or any part fails, every
// part is cancelled and given shutdownTimeout to return; the first failure
// is returned.
func Run(ctx context.Context, logger *slog.Logger, shutdownTimeout time.Duration, parts ...Part) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for _, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.Run(ctx)
			if err != nil && !errors.Is(err, context.Canceled) {
				logger.Error("part failed", "part", p.Name, "err", err)
				cancel(fmt.Errorf("%s: %w", p.Name, err))
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	select {
	case <-ctx.Done():
	case <-done:
	}
	logger.Info("shutting down", "budget", shutdownTimeout.String())
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		logger.Warn("shutdown budget exceeded; exiting with parts still running")
	}
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Exit logs err and exits 1 when err is not nil.
func Exit(logger *slog.Logger, err error) {
	if err != nil {
		logger.Error("exiting", "err", err)
		os.Exit(1)
	}
}

// Every is the Run of a housekeeping part: it calls round at once and then
// every interval until ctx ends. A failed round is logged, not returned:
// housekeeping that fails (a dependency down) is retried by the next round
// and must not stop the service.
func Every(interval time.Duration, logger *slog.Logger, what string, round func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTimer(0)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := round(ctx); err != nil && ctx.Err() == nil {
				logger.Warn(what+" failed; the next round retries", "err", err, "next_in", interval.String())
			}
			t.Reset(interval)
		}
	}
}

package lease_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/rtmanager/lease"
)

// These tests run against a real Redis from the harness.

var (
	rdb       *redis.Client
	redisAddr string
)

func TestMain(m *testing.M) {
	tb := harness.NewPackageTB("lease")
	redisAddr = harness.StartRedis(context.Background(), tb).Addr
	rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	code := m.Run()
	_ = rdb.Close()
	tb.Close()
	os.Exit(code)
}

func newOwner(t *testing.T, ttl time.Duration) *lease.Owner {
	t.Helper()
	o, err := lease.NewOwner(rdb, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Announce(t.Context()); err != nil {
		t.Fatal(err)
	}
	return o
}

func game(t *testing.T) string { return "lease-test-" + harness.UniqueName(t.Name()) }

// A process that dies holding a lease (its liveness key expires, nobody
// renews it) blocks the game only until its liveness key is gone, not for
// the lease's TTL; and the dead holder, should it come back, finds the lease
// lost and cannot release its successor's.
func TestLeaseOfADeadProcessIsTakenOver(t *testing.T) {
	ctx := t.Context()
	g := game(t)
	dead := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, 300*time.Millisecond)}
	alive := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	held, err := dead.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alive.TryAcquire(ctx, g); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("while the holder lives: %v, want ErrBusy", err)
	}
	start := time.Now()
	l, err := alive.Acquire(ctx, g, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !l.TookOver {
		t.Fatal("TookOver not set")
	}
	if waited := time.Since(start); waited > 5*time.Second {
		t.Fatalf("waited %s for a dead holder's lease with a one-minute TTL", waited)
	}
	if err := held.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alive.TryAcquire(ctx, g); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("the dead holder's release removed its successor's lease: %v", err)
	}
}

// A live process keeps its leases as long as it renews its liveness key,
// well past that key's TTL.
func TestLeaseOfALiveProcessIsNotTakenOver(t *testing.T) {
	ctx := t.Context()
	g := game(t)
	owner := newOwner(t, 300*time.Millisecond)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = owner.Run(runCtx); close(done) }()
	holder := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: owner}
	if _, err := holder.TryAcquire(ctx, g); err != nil {
		t.Fatal(err)
	}
	other := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	if _, err := other.Acquire(ctx, g, 1500*time.Millisecond); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("a live holder's lease: %v, want ErrBusy", err)
	}
	// Stopped, the holder's key expires; retired, it is gone at once.
	stop()
	<-done
	if l, err := other.Acquire(ctx, g, 2*time.Second); err != nil || !l.TookOver {
		t.Fatalf("after the holder stopped: %+v, %v", l, err)
	}
	g2 := game(t)
	retiring := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	if _, err := retiring.TryAcquire(ctx, g2); err != nil {
		t.Fatal(err)
	}
	if err := retiring.Owner.Retire(ctx); err != nil {
		t.Fatal(err)
	}
	if l, err := other.TryAcquire(ctx, g2); err != nil || !l.TookOver {
		t.Fatalf("after the holder retired: %+v, %v", l, err)
	}
}

// A token without an owner (a Manager without Owner) is never taken over.
func TestLeaseWithoutAnOwnerWaitsForItsTTL(t *testing.T) {
	ctx := t.Context()
	g := game(t)
	plain := &lease.Manager{Client: rdb, TTL: time.Minute}
	if _, err := plain.TryAcquire(ctx, g); err != nil {
		t.Fatal(err)
	}
	withOwner := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	if _, err := withOwner.Acquire(ctx, g, 500*time.Millisecond); !errors.Is(err, lease.ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
}

// Hold notices a takeover at its next renewal and cancels the work.
func TestHoldNoticesATakeOver(t *testing.T) {
	ctx := t.Context()
	g := game(t)
	dead := &lease.Manager{Client: rdb, TTL: 600 * time.Millisecond, Owner: newOwner(t, 100*time.Millisecond)}
	held, err := dead.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // the owner's liveness key expires
	other := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	if _, err := other.TryAcquire(ctx, g); err != nil {
		t.Fatal(err)
	}
	hctx, stop := held.Hold(ctx)
	defer stop()
	select {
	case <-hctx.Done():
		if !errors.Is(context.Cause(hctx), lease.ErrLost) {
			t.Fatalf("cause = %v", context.Cause(hctx))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the work kept running without its lease")
	}
}

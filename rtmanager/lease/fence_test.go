package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/harness"
	"galaxy/rtmanager/lease"
)

// cutOff returns a client whose connections to Redis go through a fault
// proxy the test can switch.
func cutOff(t *testing.T) (*redis.Client, *harness.FaultProxy) {
	t.Helper()
	proxy := harness.StartFaultProxy(t, redisAddr)
	c := redis.NewClient(&redis.Options{Addr: proxy.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c, proxy
}

// awaitLost waits for hctx to end with ErrLost and returns when it did.
func awaitLost(t *testing.T, hctx context.Context, within time.Duration) time.Time {
	t.Helper()
	select {
	case <-hctx.Done():
		if !errors.Is(context.Cause(hctx), lease.ErrLost) {
			t.Fatalf("cause = %v, want ErrLost", context.Cause(hctx))
		}
		return time.Now()
	case <-time.After(within):
		t.Fatalf("the work kept running %s after its holder was cut off from Redis", within)
		return time.Time{}
	}
}

// A holder cut off from Redis cannot renew: Hold stops the work while the
// lease still exists in Redis, so no other holder can have started yet.
func TestHoldStopsTheWorkBeforeTheLeaseCanExpire(t *testing.T) {
	ctx := t.Context()
	c, proxy := cutOff(t)
	g := game(t)
	const ttl = time.Second
	m := &lease.Manager{Client: c, TTL: ttl}
	l, err := m.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	hctx, stop := l.Hold(ctx)
	defer stop()
	proxy.Set(harness.ProxyBlackhole)
	cut := time.Now()
	lost := awaitLost(t, hctx, 5*ttl)
	// Read through the unfaulted client at once.
	left, err := rdb.PTTL(ctx, lease.Key(g)).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("work stopped %s after the cut; the lease had %s left in Redis", lost.Sub(cut).Round(time.Millisecond), left)
	if left <= 0 {
		t.Errorf("the lease was gone from Redis (PTTL %s) before the holder stopped", left)
	}
	if err := l.Check(); !errors.Is(err, lease.ErrLost) {
		t.Errorf("Check after the loss: %v, want ErrLost", err)
	}
}

// The owner's liveness key bounds a lease too: once it may have expired,
// another process may take the lease over, so the holder stops first, even
// with a lease TTL far longer.
func TestHoldStopsTheWorkBeforeItsOwnerKeyCanExpire(t *testing.T) {
	ctx := t.Context()
	c, proxy := cutOff(t)
	g := game(t)
	owner, err := lease.NewOwner(c, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := owner.Announce(ctx); err != nil {
		t.Fatal(err)
	}
	runCtx, stopOwner := context.WithCancel(ctx)
	defer stopOwner()
	go func() { _ = owner.Run(runCtx) }()
	m := &lease.Manager{Client: c, TTL: time.Minute, Owner: owner}
	l, err := m.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	hctx, stop := l.Hold(ctx)
	defer stop()
	// Connected, the work goes on past the owner's TTL.
	select {
	case <-hctx.Done():
		t.Fatalf("lost while connected: %v", context.Cause(hctx))
	case <-time.After(2 * owner.TTL):
	}
	proxy.Set(harness.ProxyBlackhole)
	cut := time.Now()
	lost := awaitLost(t, hctx, 5*owner.TTL)
	exists, err := rdb.Exists(ctx, lease.OwnerKeyPrefix+owner.ID).Result()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("work stopped %s after the cut (owner TTL %s)", lost.Sub(cut).Round(time.Millisecond), owner.TTL)
	if exists != 1 {
		t.Errorf("the owner's liveness key was gone before the holder stopped: another process could have taken over")
	}
}

// Every acquisition's fence is larger than every earlier one of the game:
// after a release, after a takeover, and — with the floor the caller passes
// — after Redis lost the counter.
func TestFenceGrowsWithEveryAcquisition(t *testing.T) {
	ctx := t.Context()
	g := game(t)
	m := &lease.Manager{Client: rdb, TTL: time.Minute}
	take := func(floor int64) *lease.Lease {
		t.Helper()
		l, err := m.TryAcquireAbove(ctx, g, floor)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		return l
	}
	first := take(0)
	second := take(0)
	if second.Fence != first.Fence+1 {
		t.Errorf("fences %d then %d", first.Fence, second.Fence)
	}
	third := take(second.Fence + 100)
	if third.Fence != second.Fence+101 {
		t.Errorf("with floor %d: fence %d", second.Fence+100, third.Fence)
	}
	if err := rdb.Del(ctx, lease.FenceKeyPrefix+g).Err(); err != nil {
		t.Fatal(err)
	}
	if fourth := take(third.Fence); fourth.Fence != third.Fence+1 {
		t.Errorf("after the counter was lost, with floor %d: fence %d", third.Fence, fourth.Fence)
	}

	dead := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, 100*time.Millisecond)}
	held, err := dead.TryAcquire(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	alive := &lease.Manager{Client: rdb, TTL: time.Minute, Owner: newOwner(t, time.Minute)}
	next, err := alive.Acquire(ctx, g, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !next.TookOver || next.Fence <= held.Fence {
		t.Errorf("takeover: TookOver %v, fence %d after %d", next.TookOver, next.Fence, held.Fence)
	}
}

// Check is the TTL rule without Hold: a lease not renewed within its TTL
// (less the margin) is reported lost.
func TestCheckReportsALeaseNotRenewedInTime(t *testing.T) {
	ctx := t.Context()
	m := &lease.Manager{Client: rdb, TTL: 300 * time.Millisecond}
	l, err := m.TryAcquire(ctx, game(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Check(); err != nil {
		t.Fatalf("fresh lease: %v", err)
	}
	time.Sleep(m.TTL)
	if err := l.Check(); !errors.Is(err, lease.ErrLost) {
		t.Errorf("after its TTL: %v, want ErrLost", err)
	}
}

// The fencing counter lives FenceTTL after an acquisition, never less than
// twice the lease TTL, and DefaultFenceKeyTTL when FenceTTL is unset.
func TestFenceCounterLivesItsTTL(t *testing.T) {
	ctx := t.Context()
	for _, c := range []struct {
		fenceTTL, want time.Duration
	}{
		{time.Hour, time.Hour},
		{time.Second, 2 * time.Minute}, // floored at twice the lease TTL
		{0, lease.DefaultFenceKeyTTL},
	} {
		g := game(t)
		m := &lease.Manager{Client: rdb, TTL: time.Minute, FenceTTL: c.fenceTTL}
		l, err := m.TryAcquireAbove(ctx, g, 0)
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := rdb.PTTL(ctx, lease.FenceKeyPrefix+g).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl > c.want || ttl < c.want-5*time.Second {
			t.Errorf("FenceTTL %s: counter TTL %s, want %s", c.fenceTTL, ttl, c.want)
		}
		_ = l.Release(ctx)
	}
}

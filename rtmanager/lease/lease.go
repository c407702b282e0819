// Package lease serializes work on one game across goroutines and replicas
// with a Redis lease: SET NX PX with a random token, renewed while the work
// runs, released by a compare-and-delete so a holder whose lease expired can
// never delete its successor's.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrBusy means another holder has the lease.
var ErrBusy = errors.New("lease held by another job")

// ErrLost is the cause of a Hold context cancelled because the lease expired
// or was taken over before it could be renewed.
var ErrLost = errors.New("lease lost")

// KeyPrefix prefixes every game's lease key.
const KeyPrefix = "rtmanager:lease:game:"

var (
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)
	renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`)
)

// Manager hands out leases.
type Manager struct {
	Client redis.Cmdable
	TTL    time.Duration
	// Poll is the wait between attempts in Acquire (default 100ms).
	Poll time.Duration
}

// Lease is one held lease.
type Lease struct {
	m     *Manager
	key   string
	token string
}

// Key is the Redis key of a game's lease.
func Key(gameID string) string { return KeyPrefix + gameID }

// TryAcquire takes the lease once; ErrBusy when it is held.
func (m *Manager) TryAcquire(ctx context.Context, gameID string) (*Lease, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	l := &Lease{m: m, key: Key(gameID), token: token}
	ok, err := m.Client.SetNX(ctx, l.key, token, m.TTL).Result()
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	if !ok {
		return nil, ErrBusy
	}
	return l, nil
}

// Acquire waits up to wait for the lease; ErrBusy when it stays held.
func (m *Manager) Acquire(ctx context.Context, gameID string, wait time.Duration) (*Lease, error) {
	poll := m.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		l, err := m.TryAcquire(ctx, gameID)
		if !errors.Is(err, ErrBusy) || time.Now().Add(poll).After(deadline) {
			return l, err
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// Hold renews the lease every TTL/3 until the returned stop is called. The
// returned context is cancelled with ErrLost when a renewal finds the lease
// gone, so work that can no longer claim exclusivity stops.
func (l *Lease) Hold(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.m.TTL / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			n, err := renewScript.Run(ctx, l.m.Client, []string{l.key}, l.token, l.m.TTL.Milliseconds()).Int64()
			if err != nil {
				// A transient Redis error: the lease may still be valid; try
				// again at the next tick, before it can expire.
				continue
			}
			if n == 0 {
				cancel(ErrLost)
				return
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
	}
}

// Release deletes the lease if this holder still has it.
func (l *Lease) Release(ctx context.Context) error {
	if err := releaseScript.Run(ctx, l.m.Client, []string{l.key}, l.token).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", l.key, err)
	}
	return nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("lease token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

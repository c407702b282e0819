// Package lease serializes work on one game across goroutines and replicas
// with a Redis lease: SET NX PX with a random token, renewed while the work
// runs, released by a compare-and-delete so a holder whose lease expired can
// never delete its successor's.
//
// A process that dies holding leases would block its games until the leases
// expire (the TTL, 30 s by default). With an Owner, each token names the
// holding process, which keeps a short-lived liveness key of its own; a job
// that finds a game's lease held by a process whose liveness key is gone
// takes the lease over at once.
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

// OwnerKeyPrefix prefixes every process's liveness key.
const OwnerKeyPrefix = "rtmanager:lease:owner:"

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
	// takeOverScript sets the lease to ARGV[1] when it is free, or held by
	// a token "<owner>/<random>" whose owner's liveness key (ARGV[3] ..
	// owner) is gone: 1 for free, 2 for taken over, 0 for busy.
	takeOverScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
local sep = string.find(cur, '/', 1, true)
if not sep then
  return 0
end
if redis.call('EXISTS', ARGV[3] .. string.sub(cur, 1, sep - 1)) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2`)
)

// Owner is one process's liveness record. Announce writes it before the
// process takes any lease; Run keeps it alive (every TTL/4); Retire deletes
// it once the process holds no lease any more. TTL bounds how long the
// leases of a process that died block their games; it must outlast any stall
// of a live process (CPU starvation, a Redis hiccup), or a live holder loses
// its lease — which its Hold notices at the next renewal, stopping the work.
type Owner struct {
	Client redis.Cmdable
	ID     string
	TTL    time.Duration
}

// NewOwner returns an Owner with a random ID.
func NewOwner(client redis.Cmdable, ttl time.Duration) (*Owner, error) {
	id, err := newToken()
	if err != nil {
		return nil, err
	}
	return &Owner{Client: client, ID: id, TTL: ttl}, nil
}

func (o *Owner) key() string { return OwnerKeyPrefix + o.ID }

// Announce writes the liveness key once.
func (o *Owner) Announce(ctx context.Context) error {
	if err := o.Client.Set(ctx, o.key(), "1", o.TTL).Err(); err != nil {
		return fmt.Errorf("announce lease owner: %w", err)
	}
	return nil
}

// Run refreshes the liveness key until ctx ends. It leaves the key to
// expire: jobs may still hold leases while the process shuts down.
func (o *Owner) Run(ctx context.Context) error {
	t := time.NewTicker(o.TTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			// A failed refresh is retried at the next tick, within the TTL.
			_ = o.Client.Set(ctx, o.key(), "1", o.TTL).Err()
		}
	}
}

// Retire deletes the liveness key, for a process whose jobs have all
// stopped: whatever lease is left (a release that failed) is free at once
// rather than after the key's TTL.
func (o *Owner) Retire(ctx context.Context) error {
	return o.Client.Del(ctx, o.key()).Err()
}

// Manager hands out leases.
type Manager struct {
	Client redis.Cmdable
	TTL    time.Duration
	// Poll is the wait between attempts in Acquire (default 100ms).
	Poll time.Duration
	// Owner, when set, names this process in its tokens and lets it take
	// over the leases of processes whose liveness key is gone.
	Owner *Owner
}

// Lease is one held lease.
type Lease struct {
	m     *Manager
	key   string
	token string
	// TookOver is set when the lease was taken from a dead process.
	TookOver bool
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
	if m.Owner != nil {
		l.token = m.Owner.ID + "/" + token
		n, err := takeOverScript.Run(ctx, m.Client, []string{l.key}, l.token, m.TTL.Milliseconds(), OwnerKeyPrefix).Int64()
		if err != nil {
			return nil, fmt.Errorf("acquire lease %s: %w", l.key, err)
		}
		if n == 0 {
			return nil, ErrBusy
		}
		l.TookOver = n == 2
		return l, nil
	}
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

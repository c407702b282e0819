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
//
// A holder cut off from Redis cannot renew, and after the TTL (or its
// owner's) another process may take the lease: from then on the cut-off
// holder must not act. Two rules make sure it does not:
//
//   - Hold cancels the work (ErrLost) once the lease could have expired by
//     the holder's own clock: the TTL since the last renewal that Redis
//     confirmed, counted from when it was sent, less a margin — the
//     lease's or the owner's liveness key's, whichever runs out first.
//     Check tells the same before each action.
//   - Every acquisition gets a fencing number, one more than the game's
//     previous one (a counter in Redis, never below the floor the caller
//     passes: the number it last stored). A store that keeps the newest
//     number with the game refuses writes carrying an older one, so even a
//     holder that acts past the TTL rule (a paused process) cannot
//     overwrite its successor's state.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
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

// FenceKeyPrefix prefixes every game's fencing counter.
const FenceKeyPrefix = "rtmanager:lease:fence:"

// DefaultFenceKeyTTL is how long a game's fencing counter outlives its last
// acquisition when Manager.FenceTTL is zero. Losing it is harmless: the next
// acquisition starts above the floor its caller passes (the number the
// store holds).
const DefaultFenceKeyTTL = 7 * 24 * time.Hour

// marginDivisor sets the safety margin of the TTL rule: a holder gives up
// TTL/marginDivisor before the lease (or its owner key) could expire, for
// clock-rate differences and the time its own check takes to notice (Hold
// looks every TTL/(5*marginDivisor)). A quarter still lets a lease survive
// one failed renewal (they run every TTL/3) and an owner key two failed
// refreshes (every TTL/4).
const marginDivisor = 4

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
	// acquireScript sets the lease KEYS[1] to ARGV[1] (PX ARGV[2]) when it
	// is free, or — when ARGV[3], the owner key prefix, is not empty — held
	// by a token "<owner>/<random>" whose owner's liveness key (ARGV[3] ..
	// owner) is gone. On success it increments the game's fencing counter
	// KEYS[2], lifted above ARGV[4] when it is not (the counter was lost),
	// and keeps it for ARGV[5] ms. It returns {1, fence} for a free lease,
	// {2, fence} for one taken over, {0, 0} when busy.
	acquireScript = redis.NewScript(`
local status = 1
local cur = redis.call('GET', KEYS[1])
if cur then
  if ARGV[3] == '' then
    return {0, 0}
  end
  local sep = string.find(cur, '/', 1, true)
  if not sep then
    return {0, 0}
  end
  if redis.call('EXISTS', ARGV[3] .. string.sub(cur, 1, sep - 1)) == 1 then
    return {0, 0}
  end
  status = 2
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local fence = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[4])
if fence <= floor then
  fence = floor + 1
  redis.call('SET', KEYS[2], fence)
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
return {status, fence}`)
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

	// refreshed is when (UnixNano, by this process's clock) the last write
	// of the liveness key that Redis confirmed was sent: the key lives at
	// least TTL from then. Zero until the first one.
	refreshed atomic.Int64
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
	if err := o.refresh(ctx); err != nil {
		return fmt.Errorf("announce lease owner: %w", err)
	}
	return nil
}

func (o *Owner) refresh(ctx context.Context) error {
	sent := time.Now()
	if err := o.Client.Set(ctx, o.key(), "1", o.TTL).Err(); err != nil {
		return err
	}
	o.refreshed.Store(sent.UnixNano())
	return nil
}

// validUntil is when, by this process's clock and with the safety margin,
// the liveness key may have expired; the zero time before any write.
func (o *Owner) validUntil() time.Time {
	n := o.refreshed.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).Add(o.TTL - o.TTL/marginDivisor)
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
			// A failed refresh is retried at the next tick, within the TTL;
			// holds whose process cannot refresh in time give up by
			// themselves (Lease.Hold).
			_ = o.refresh(ctx)
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
	// FenceTTL is how long a game's fencing counter outlives its last
	// acquisition (default DefaultFenceKeyTTL); it must outlast the lease
	// TTL, so that a holder cut off before storing its number cannot be
	// handed the same number's successor.
	FenceTTL time.Duration
}

func (m *Manager) fenceTTL() time.Duration {
	if m.FenceTTL <= 0 {
		return DefaultFenceKeyTTL
	}
	return max(m.FenceTTL, 2*m.TTL)
}

// Lease is one held lease.
type Lease struct {
	m     *Manager
	key   string
	token string
	// TookOver is set when the lease was taken from a dead process.
	TookOver bool
	// Fence is this acquisition's fencing number: larger than that of every
	// earlier acquisition of the game's lease. Writes that matter carry it,
	// and the store refuses them once a larger one is stored.
	Fence int64

	// renewed is when (UnixNano, this process's clock) the acquisition or
	// the last renewal Redis confirmed was sent.
	renewed atomic.Int64
}

// Key is the Redis key of a game's lease.
func Key(gameID string) string { return KeyPrefix + gameID }

// TryAcquire takes the lease once; ErrBusy when it is held.
func (m *Manager) TryAcquire(ctx context.Context, gameID string) (*Lease, error) {
	return m.TryAcquireAbove(ctx, gameID, 0)
}

// TryAcquireAbove is TryAcquire with a fence floor: the lease's Fence is
// larger than floor, whatever Redis remembers. Callers pass the largest
// fence their store holds for the game, so that a lost counter cannot hand
// out numbers the store would refuse.
func (m *Manager) TryAcquireAbove(ctx context.Context, gameID string, floor int64) (*Lease, error) {
	token, err := newToken()
	if err != nil {
		return nil, err
	}
	l := &Lease{m: m, key: Key(gameID), token: token}
	prefix := ""
	if m.Owner != nil {
		l.token = m.Owner.ID + "/" + token
		prefix = OwnerKeyPrefix
	}
	sent := time.Now()
	res, err := acquireScript.Run(ctx, m.Client, []string{l.key, FenceKeyPrefix + gameID},
		l.token, m.TTL.Milliseconds(), prefix, floor, m.fenceTTL().Milliseconds()).Int64Slice()
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", l.key, err)
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("acquire lease %s: unexpected answer %v", l.key, res)
	}
	if res[0] == 0 {
		return nil, ErrBusy
	}
	l.TookOver = res[0] == 2
	l.Fence = res[1]
	l.renewed.Store(sent.UnixNano())
	return l, nil
}

// Acquire waits up to wait for the lease; ErrBusy when it stays held.
func (m *Manager) Acquire(ctx context.Context, gameID string, wait time.Duration) (*Lease, error) {
	return m.AcquireAbove(ctx, gameID, wait, 0)
}

// AcquireAbove is Acquire with a fence floor (see TryAcquireAbove).
func (m *Manager) AcquireAbove(ctx context.Context, gameID string, wait time.Duration, floor int64) (*Lease, error) {
	poll := m.Poll
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	for {
		l, err := m.TryAcquireAbove(ctx, gameID, floor)
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

// validUntil is when, by this process's clock and with the safety margin,
// another process may hold the lease: the lease's TTL since its last
// confirmed renewal, or the owner's TTL since its last confirmed refresh,
// whichever comes first.
func (l *Lease) validUntil() time.Time {
	until := time.Unix(0, l.renewed.Load()).Add(l.m.TTL - l.m.TTL/marginDivisor)
	if o := l.m.Owner; o != nil {
		if ou := o.validUntil(); ou.Before(until) {
			until = ou
		}
	}
	return until
}

// Check returns ErrLost once the lease may have passed to another holder by
// the TTL rule (see validUntil); callers check it right before an action
// that the store cannot fence, such as a Docker call.
func (l *Lease) Check() error {
	if !time.Now().Before(l.validUntil()) {
		return fmt.Errorf("%w: not renewed within its TTL", ErrLost)
	}
	return nil
}

// Hold renews the lease every TTL/3 until the returned stop is called. The
// returned context is cancelled with ErrLost when a renewal finds the lease
// gone, or when no renewal (or owner refresh) has been confirmed for so long
// that another process may hold the lease: a holder cut off from Redis stops
// acting before anyone else can start. A renewal that hangs does not delay
// that: renewals run on their own, and the deadline is watched meanwhile.
func (l *Lease) Hold(ctx context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	type renewal struct {
		sent time.Time
		n    int64
		err  error
	}
	// One renewal at a time, so the buffer of one never blocks its sender.
	results := make(chan renewal, 1)
	go func() {
		defer close(done)
		renew := time.NewTicker(l.m.TTL / 3)
		defer renew.Stop()
		period := l.m.TTL
		if o := l.m.Owner; o != nil && o.TTL < period {
			period = o.TTL
		}
		watch := time.NewTicker(max(period/(5*marginDivisor), time.Millisecond))
		defer watch.Stop()
		inFlight := false
		for {
			if err := l.Check(); err != nil {
				cancel(err)
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-watch.C:
			case <-renew.C:
				if inFlight {
					continue
				}
				inFlight = true
				go func() {
					sent := time.Now()
					n, err := renewScript.Run(ctx, l.m.Client, []string{l.key}, l.token, l.m.TTL.Milliseconds()).Int64()
					results <- renewal{sent: sent, n: n, err: err}
				}()
			case r := <-results:
				inFlight = false
				switch {
				case r.err != nil:
					// A Redis error: the lease may still be valid; the next
					// tick tries again, and the deadline decides.
				case r.n == 0:
					cancel(fmt.Errorf("%w: taken over or expired", ErrLost))
					return
				default:
					l.renewed.Store(r.sent.UnixNano())
				}
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

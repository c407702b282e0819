package dispatch

import (
	"context"
	"sync"
	"time"
)

// alarm is the earliest retry this process has scheduled. The retry loop
// sleeps until it or the poll interval, whichever comes first: a route
// this process failed is retried when its backoff ends, not at the next
// poll, and the poll is left to what only PostgreSQL knows — routes other
// processes scheduled and then died with, and first hand-offs a killed
// process never finished — so it can be slow and cheap while the process
// has nothing to do.
type alarm struct {
	mu   sync.Mutex
	at   time.Time     // zero: nothing scheduled
	ring chan struct{} // woken when at moves earlier
}

// set schedules a wake-up at t, unless one is already due sooner.
func (a *alarm) set(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.at.IsZero() && !t.Before(a.at) {
		return
	}
	a.at = t
	select {
	case a.bell() <- struct{}{}:
	default: // the loop has a wake-up pending already
	}
}

// bell is the ring channel, made on first use; call with mu held.
func (a *alarm) bell() chan struct{} {
	if a.ring == nil {
		a.ring = make(chan struct{}, 1)
	}
	return a.ring
}

// wait sleeps until the alarm's time or poll from now, whichever is first,
// or ctx ends. An alarm that has gone off is cleared.
func (a *alarm) wait(ctx context.Context, poll time.Duration) {
	for {
		a.mu.Lock()
		deadline := time.Now().Add(poll)
		if !a.at.IsZero() && a.at.Before(deadline) {
			deadline = a.at
		}
		ring := a.bell()
		a.mu.Unlock()
		t := time.NewTimer(time.Until(deadline))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-ring:
			t.Stop()
			continue // an earlier retry was scheduled
		case <-t.C:
		}
		a.mu.Lock()
		if !a.at.IsZero() && !a.at.After(time.Now()) {
			a.at = time.Time{}
		}
		a.mu.Unlock()
		return
	}
}

package routing

import (
	"math/rand/v2"
	"time"
)

// Backoff is the retry schedule of a failed hand-off: exponential from Min,
// doubling per attempt, capped at Max, with up to a fifth taken off at random
// so that routes failed together do not retry in lockstep.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait after the attempt-th failed attempt (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if jitter := int64(d / 5); jitter > 0 {
		d -= time.Duration(rand.Int64N(jitter + 1))
	}
	if d < b.Min {
		d = b.Min
	}
	return d
}

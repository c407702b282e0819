package main

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestDueAtAndDueByAgree: item i is not due a nanosecond before dueAt(i) and
// is due at it.
func TestDueAtAndDueByAgree(t *testing.T) {
	for _, rate := range []int{1, 3, 7, 10, 99, 100, 150, 1000, 4321, 100000} {
		for i := 0; i < 3*rate && i < 5000; i++ {
			at := dueAt(i, rate)
			if got := dueBy(at, rate); got != i+1 {
				t.Fatalf("rate %d: dueBy(dueAt(%d)=%s) = %d, want %d", rate, i, at, got, i+1)
			}
			if i > 0 {
				if got := dueBy(at-1, rate); got != i {
					t.Fatalf("rate %d: dueBy(dueAt(%d)-1ns) = %d, want %d", rate, i, got, i)
				}
			}
		}
	}
	if got := dueBy(-time.Second, 10); got != 0 {
		t.Errorf("dueBy before the start = %d, want 0", got)
	}
}

// TestPaceHoldsTheRate runs pace on a simulated clock, where each send costs
// a round trip and each sleep is exact, and checks that every item goes out
// no earlier than i/rate and no later than one round trip after it — at
// rates below the old 100/s floor, between its multiples, and with round
// trips slower than the interval between items.
func TestPaceHoldsTheRate(t *testing.T) {
	for _, tc := range []struct {
		rate      int
		roundTrip time.Duration
	}{
		{1, 100 * time.Microsecond},
		{7, 100 * time.Microsecond},
		{10, 100 * time.Microsecond},
		{50, 100 * time.Microsecond},
		{99, 100 * time.Microsecond},
		{150, 100 * time.Microsecond},
		{1000, 100 * time.Microsecond},
		{1000, 3 * time.Millisecond},   // three items fall due per round trip
		{20000, 20 * time.Millisecond}, // 400 items per round trip
	} {
		t.Run(fmt.Sprintf("%d per s, round trip %s", tc.rate, tc.roundTrip), func(t *testing.T) {
			const seconds = 5
			n := tc.rate * seconds
			var now time.Duration
			sentAt := make([]time.Duration, 0, n)
			err := pace(context.Background(), n, tc.rate, publishBatch,
				func() time.Duration { return now },
				func(_ context.Context, d time.Duration) error {
					if d <= 0 {
						return fmt.Errorf("sleep of %s at %s with %d sent: a busy loop", d, now, len(sentAt))
					}
					now += d
					return nil
				},
				func(from, k int) error {
					if from != len(sentAt) || k < 1 || k > publishBatch {
						return fmt.Errorf("send(%d, %d) after %d items", from, k, len(sentAt))
					}
					for range k {
						sentAt = append(sentAt, now)
					}
					now += tc.roundTrip
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if len(sentAt) != n {
				t.Fatalf("%d items sent, want %d", len(sentAt), n)
			}
			for i, at := range sentAt {
				want := time.Duration(float64(i) / float64(tc.rate) * float64(time.Second))
				if at < want-time.Nanosecond || at > want+tc.roundTrip+time.Nanosecond {
					t.Fatalf("item %d sent at %s, want within [%s, %s]", i, at, want, want+tc.roundTrip)
				}
			}
			// The whole run takes as long as the rate says.
			if last, want := sentAt[n-1], time.Duration(n-1)*time.Second/time.Duration(tc.rate); last < want {
				t.Fatalf("last item at %s, want at least %s", last, want)
			}
		})
	}
}

// TestPaceStops: pace stops at the first error of send or of sleep.
func TestPaceStops(t *testing.T) {
	boom := errors.New("boom")
	var now time.Duration
	err := pace(context.Background(), 10, 5, publishBatch,
		func() time.Duration { return now },
		func(_ context.Context, d time.Duration) error { now += d; return nil },
		func(from, k int) error {
			if from == 3 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Fatalf("send error: got %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = pace(ctx, 10, 5, publishBatch, func() time.Duration { return 0 }, sleep, func(int, int) error { return nil })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sleep: got %v", err)
	}
}

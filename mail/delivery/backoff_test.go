package delivery

import (
	"testing"
	"time"
)

func TestBackoffDoublesWithinBounds(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	for failures, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 4: 8 * time.Second, 5: 10 * time.Second, 40: 10 * time.Second} {
		for range 50 {
			d := b.Delay(failures)
			// Jitter takes up to a quarter off, never below Min.
			if d > want || d < want*3/4 && d != b.Min || d < b.Min {
				t.Fatalf("Delay(%d) = %s, want within [%s, %s]", failures, d, want*3/4, want)
			}
		}
	}
	flat := Backoff{Min: 100 * time.Millisecond, Max: 100 * time.Millisecond}
	if d := flat.Delay(7); d != 100*time.Millisecond {
		t.Fatalf("flat backoff: %s", d)
	}
}

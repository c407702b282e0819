package quantile

import (
	"math"
	"testing"
)

func TestOfNearestRank(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 5}, {0.95, 10}, {0.99, 10}, {0.1, 1}, {0.11, 2}, {1, 10}} {
		if got := Of(s, c.q); got != c.want {
			t.Errorf("Of(1..10, %g) = %g, want %g", c.q, got, c.want)
		}
	}
	if !math.IsNaN(Of(nil, 0.5)) {
		t.Error("Of(nil) is not NaN")
	}
}

func TestSummarizeDoesNotReorder(t *testing.T) {
	in := []float64{3, 1, 2}
	s := Summarize(in)
	if s.N != 3 || s.P50 != 2 || s.Max != 3 {
		t.Errorf("Summarize = %+v", s)
	}
	if in[0] != 3 {
		t.Error("Summarize sorted its input")
	}
}

func TestRollingWindow(t *testing.T) {
	// One sample per second: 1 ms for ten seconds, then 100 ms.
	var xs, ys []float64
	for i := range 20 {
		xs = append(xs, float64(i))
		y := 1.0
		if i >= 10 {
			y = 100
		}
		ys = append(ys, y)
	}
	rx, ry := Rolling(xs, ys, 3, 1, 0.99)
	if len(rx) != 19 {
		t.Fatalf("got %d points, want 19: %v", len(rx), rx)
	}
	for i, x := range rx {
		want := 1.0
		if x >= 10 {
			want = 100
		}
		if ry[i] != want {
			t.Errorf("p99 at %g = %g, want %g", x, ry[i], want)
		}
	}
	// At x = 12 the window (9, 12] holds only the 100 ms samples.
	if ry[11] != 100 || rx[11] != 12 {
		t.Errorf("point 11 = (%g, %g)", rx[11], ry[11])
	}
}

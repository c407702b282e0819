// Package quantile computes latency quantiles the way load reports quote
// them: nearest rank over every sample (no interpolation, no sketches), so a
// reported p99 is a latency some request actually had.
package quantile

import (
	"math"
	"slices"
)

// Of returns the q-quantile (0 < q ≤ 1) of sorted by nearest rank: the
// smallest sample with at least q of the samples at or below it. It returns
// NaN for no samples.
func Of(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// Summary is the usual latency digest of a set of samples.
type Summary struct {
	N                  int
	P50, P95, P99, Max float64
}

// Summarize sorts a copy of samples and digests it.
func Summarize(samples []float64) Summary {
	s := slices.Clone(samples)
	slices.Sort(s)
	if len(s) == 0 {
		nan := math.NaN()
		return Summary{P50: nan, P95: nan, P99: nan, Max: nan}
	}
	return Summary{N: len(s), P50: Of(s, 0.50), P95: Of(s, 0.95), P99: Of(s, 0.99), Max: s[len(s)-1]}
}

// Rolling returns the q-quantile of the samples (xs[i], ys[i]) whose x lies
// in the trailing window (x-window, x], evaluated at x = first+step,
// first+2·step, … up to the last x. Points whose window holds no sample are
// left out. xs need not be sorted.
func Rolling(xs, ys []float64, window, step, q float64) (outX, outY []float64) {
	if len(xs) == 0 || len(xs) != len(ys) || window <= 0 || step <= 0 {
		return nil, nil
	}
	idx := make([]int, len(xs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case xs[a] < xs[b]:
			return -1
		case xs[a] > xs[b]:
			return 1
		}
		return 0
	})
	first, last := xs[idx[0]], xs[idx[len(idx)-1]]
	lo, hi := 0, 0 // the window is idx[lo:hi]
	buf := make([]float64, 0, 256)
	for x := first + step; x < last+step; x += step {
		at := min(x, last)
		for hi < len(idx) && xs[idx[hi]] <= at {
			hi++
		}
		for lo < hi && xs[idx[lo]] <= at-window {
			lo++
		}
		if lo == hi {
			continue
		}
		buf = buf[:0]
		for _, i := range idx[lo:hi] {
			buf = append(buf, ys[i])
		}
		slices.Sort(buf)
		outX = append(outX, at)
		outY = append(outY, Of(buf, q))
	}
	return outX, outY
}

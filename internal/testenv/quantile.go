package testenv

import (
	"slices"
	"time"
)

// Quantile returns the q-quantile (0 <= q <= 1) of ds, interpolated linearly between the two
// nearest order statistics, so that a median of an even count is the mean of the middle two and
// q=1 is the maximum. Benchmarks across the tree report their medians and tails with it, so that
// figures from different benchmarks mean the same thing. ds is not modified; none gives zero.
func Quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	pos := min(max(q, 0), 1) * float64(len(s)-1)
	i := int(pos)
	if i == len(s)-1 {
		return s[i]
	}
	return s[i] + time.Duration((pos-float64(i))*float64(s[i+1]-s[i]))
}

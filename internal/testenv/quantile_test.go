package testenv

import (
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	cases := []struct {
		name string
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{"none", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of an odd count, unsorted", ms(9, 1, 5), 0.5, 5 * time.Millisecond},
		{"median of an even count is the mean of the middle two", ms(4, 1, 3, 2), 0.5, 2500 * time.Microsecond},
		{"maximum", ms(3, 10, 1), 1, 10 * time.Millisecond},
		{"minimum", ms(3, 10, 1), 0, time.Millisecond},
		{"p99 of 1..101 ms", ms(seq(101)...), 0.99, 100 * time.Millisecond},
		{"q out of range is clamped", ms(1, 2), 2, 2 * time.Millisecond},
	}
	for _, c := range cases {
		in := append([]time.Duration(nil), c.ds...)
		if got := Quantile(c.ds, c.q); got != c.want {
			t.Errorf("%s: Quantile(%v, %v) = %v, want %v", c.name, c.ds, c.q, got, c.want)
		}
		for i := range in {
			if in[i] != c.ds[i] {
				t.Errorf("%s: the input was reordered", c.name)
				break
			}
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i + 1
	}
	return out
}

package bench

import (
	"math"
	"slices"
)

// Median returns the median of xs (the mean of the two middle values when len(xs) is even), or NaN
// when xs is empty. NaN values are ignored. xs is not modified.
func Median(xs []float64) float64 {
	s := sortedFinite(xs)
	n := len(s)
	switch {
	case n == 0:
		return math.NaN()
	case n%2 == 1:
		return s[n/2]
	default:
		return (s[n/2-1] + s[n/2]) / 2
	}
}

// PercentileSorted returns the p-th percentile (0 < p <= 100) of values sorted in increasing order,
// without NaN, by the nearest-rank method: the smallest value such that at least p% of the values
// are at or below it. It returns NaN when sorted is empty or p is out of range.
func PercentileSorted(sorted []float64, p float64) float64 {
	if len(sorted) == 0 || !(p > 0 && p <= 100) {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// sortedFinite returns a sorted copy of xs without NaN.
func sortedFinite(xs []float64) []float64 {
	s := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			s = append(s, x)
		}
	}
	slices.Sort(s)
	return s
}

// ratio returns a/b, or NaN when either is NaN or b is 0.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

package bench

import (
	"math"
	"slices"
	"testing"
)

func TestMedian(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		want float64
	}{
		{"empty", nil, nan},
		{"one", []float64{7}, 7},
		{"odd unsorted", []float64{5, 1, 3}, 3},
		{"even takes the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
		{"NaN ignored", []float64{nan, 1, 9, nan, 5}, 5},
		{"only NaN", []float64{nan, nan}, nan},
		{"duplicates", []float64{2, 2, 2, 9}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			got := Median(tt.in)
			if !sameFloat(got, tt.want) {
				t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
			}
			if !slices.EqualFunc(in, tt.in, sameFloat) {
				t.Errorf("Median modified its input: %v, was %v", tt.in, in)
			}
		})
	}
}

func TestPercentileSorted(t *testing.T) {
	hundred := make([]float64, 100)
	for i := range hundred {
		hundred[i] = float64(100 - i) // 100 .. 1, unsorted
	}
	nan := math.NaN()
	tests := []struct {
		name string
		in   []float64
		p    float64
		want float64
	}{
		{"p50 of 1..100", hundred, 50, 50},
		{"p99 of 1..100", hundred, 99, 99},
		{"p100 is the max", hundred, 100, 100},
		{"p1 of 1..100", hundred, 1, 1},
		{"tiny p is the min", hundred, 0.001, 1},
		{"nearest rank rounds up", []float64{10, 20, 30}, 50, 20},
		{"p99 of three is the max", []float64{3, 1, 2}, 99, 3},
		{"single value", []float64{42}, 99, 42},
		{"empty", nil, 50, nan},
		{"p 0 out of range", hundred, 0, nan},
		{"p over 100 out of range", hundred, 101, nan},
		{"NaN ignored", []float64{nan, 1, 2, 3, 4}, 50, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PercentileSorted(sortedFinite(tt.in), tt.p); !sameFloat(got, tt.want) {
				t.Errorf("PercentileSorted(p=%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(1, 4); got != 0.25 {
		t.Errorf("ratio(1, 4) = %v", got)
	}
	for _, c := range [][2]float64{{1, 0}, {math.NaN(), 1}, {1, math.NaN()}} {
		if got := ratio(c[0], c[1]); !math.IsNaN(got) {
			t.Errorf("ratio(%v, %v) = %v, want NaN", c[0], c[1], got)
		}
	}
}

func sameFloat(a, b float64) bool {
	return a == b || math.IsNaN(a) && math.IsNaN(b)
}

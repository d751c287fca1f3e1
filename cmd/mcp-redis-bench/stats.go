package main

import (
	"cmp"
	"maps"
	"math"
	"slices"
	"time"
)

// series is the outcome of one timed series of sequential calls.
type series struct {
	Calls  int
	Errors int
	// Busy is the sum of the calls' times. The series run in turns, so
	// wall-clock time would count the other series' turns too.
	Busy        time.Duration
	CallsPerSec float64 // Calls / Busy
	P50, P99    time.Duration
	// ErrorCounts counts the failed calls by message.
	ErrorCounts map[string]int
}

// recorder collects the latency and outcome of each call of a series.
type recorder struct {
	samples []time.Duration
	errors  map[string]int
}

func newRecorder(n int) *recorder {
	return &recorder{samples: make([]time.Duration, 0, n), errors: map[string]int{}}
}

// time runs one call, timing it; a failed call still counts in the figures,
// since it took its time, and its message is tallied.
func (r *recorder) time(call func() error) error {
	start := time.Now()
	err := call()
	r.samples = append(r.samples, time.Since(start))
	if err != nil {
		r.errors[err.Error()]++
	}
	return err
}

func (r *recorder) summary() *series {
	s := &series{Calls: len(r.samples), ErrorCounts: r.errors}
	for _, n := range r.errors {
		s.Errors += n
	}
	for _, d := range r.samples {
		s.Busy += d
	}
	if s.Busy > 0 {
		s.CallsPerSec = float64(s.Calls) / s.Busy.Seconds()
	}
	sorted := slices.Clone(r.samples)
	slices.Sort(sorted)
	s.P50 = quantile(sorted, 0.50)
	s.P99 = quantile(sorted, 0.99)
	return s
}

// quantile returns the nearest-rank q-quantile of sorted samples: a value
// actually observed, never an interpolation.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

// spread is the median, minimum and maximum of a few measurements.
type spread struct {
	Runs             int
	Median, Min, Max time.Duration
}

func spreadOf(samples []time.Duration) spread {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	n := len(sorted)
	med := sorted[n/2]
	if n%2 == 0 {
		med = (sorted[n/2-1] + sorted[n/2]) / 2
	}
	return spread{Runs: n, Median: med, Min: sorted[0], Max: sorted[n-1]}
}

// topErrors returns the error messages, most frequent first.
func topErrors(counts map[string]int) []string {
	msgs := slices.Collect(maps.Keys(counts))
	slices.SortFunc(msgs, func(a, b string) int {
		return cmp.Or(cmp.Compare(counts[b], counts[a]), cmp.Compare(a, b))
	})
	return msgs
}

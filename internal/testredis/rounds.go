package testredis

import (
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"
)

// Series is one series of a side-by-side benchmark (Rounds).
type Series struct {
	Name string
	Unit string // of its metric: "raw_entries/s"
	Run  func() error

	rounds []float64 // calls/s per round
	cpu    time.Duration
}

// Rounds runs every series 2000 times a round for 7 rounds, the series
// taking turns (each round starting with the next one), so load from
// elsewhere falls on all alike; it prints each one's median calls/s, this
// process's CPU per call and the ratio to the first, the baseline, and
// reports the medians as b's metrics.
func Rounds(b *testing.B, what string, ss []*Series) {
	b.Helper()
	const rounds, per = 7, 2000
	for r := range rounds {
		for k := range ss {
			s := ss[(r+k)%len(ss)]
			cpu, start := processCPU(), time.Now()
			for range per {
				if err := s.Run(); err != nil {
					b.Fatalf("%s: %v", s.Name, err)
				}
			}
			s.rounds = append(s.rounds, per/time.Since(start).Seconds())
			s.cpu += processCPU() - cpu
		}
	}
	var base float64
	for i, s := range ss {
		slices.Sort(s.rounds)
		med := s.rounds[len(s.rounds)/2]
		if i == 0 {
			base = med
		}
		fmt.Printf("%s, %-36s %7.0f /s  %4.0f µs CPU  %.2fx\n", what, s.Name+":", med,
			float64(s.cpu.Microseconds())/(rounds*per), med/base)
		b.ReportMetric(med, s.Unit)
	}
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

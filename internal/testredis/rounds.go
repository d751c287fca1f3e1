package testredis

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Series is one series of a side-by-side benchmark (Rounds).
type Series struct {
	Name string
	Unit string // of its metric: "raw_entries/s"
	Run  func() error
	// Conc is how many goroutines share a round's calls (0: one).
	Conc int
	// ServerCPU, when set, is the Redis server's CPU time so far (INFO
	// cpu): its share per call is printed too.
	ServerCPU func() time.Duration

	rounds    []float64 // calls/s per round
	cpu       time.Duration
	serverCPU time.Duration
}

// Rounds runs every series 2000 times a round (shared by Conc goroutines)
// for 7 rounds, the series taking turns (each round starting with the next
// one), so load from elsewhere falls on all alike; it prints each one's
// median calls/s, this process's CPU per call (and Redis's, with
// ServerCPU) and the ratio to the first, the baseline, and reports the
// medians as b's metrics.
func Rounds(b *testing.B, what string, ss []*Series) {
	b.Helper()
	const rounds, per = 7, 2000
	for r := range rounds {
		for k := range ss {
			s := ss[(r+k)%len(ss)]
			var server time.Duration
			if s.ServerCPU != nil {
				server = s.ServerCPU()
			}
			cpu, start := processCPU(), time.Now()
			if err := s.round(per); err != nil {
				b.Fatalf("%s: %v", s.Name, err)
			}
			s.rounds = append(s.rounds, per/time.Since(start).Seconds())
			s.cpu += processCPU() - cpu
			if s.ServerCPU != nil {
				s.serverCPU += s.ServerCPU() - server
			}
		}
	}
	var base float64
	for i, s := range ss {
		slices.Sort(s.rounds)
		med := s.rounds[len(s.rounds)/2]
		if i == 0 {
			base = med
		}
		server := ""
		if s.ServerCPU != nil {
			server = fmt.Sprintf("  %4.0f µs Redis CPU", float64(s.serverCPU.Microseconds())/(rounds*per))
		}
		fmt.Printf("%s, %-36s %7.0f /s  %4.0f µs CPU%s  %.2fx\n", what, s.Name+":", med,
			float64(s.cpu.Microseconds())/(rounds*per), server, med/base)
		b.ReportMetric(med, s.Unit)
	}
}

// round runs n calls of s, shared by s.Conc goroutines; the first error
// ends it.
func (s *Series) round(n int) error {
	conc := max(s.Conc, 1)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for g := range conc {
		wg.Go(func() {
			for i := g; i < n; i += conc {
				if err := s.Run(); err != nil {
					mu.Lock()
					first = cmp.Or(first, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// processCPU is this process's user+system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadRunner makes one kind of call from conc goroutines at once and
// records each timed call's latency and the series' wall-clock time.
type loadRunner struct {
	name string
	conc int
	call func(ctx context.Context, i int) error

	samples []time.Duration // by call number
	mu      sync.Mutex
	errors  map[string]int
	wall    time.Duration

	// serverPID and redisPID, when not 0, are processes whose CPU time over
	// the runner's turns is added up: the server it calls, Redis. bench is
	// this process's CPU time over the same turns.
	serverPID, redisPID           int
	serverCPU, redisCPU, benchCPU time.Duration
}

func newLoadRunner(name string, conc, n int, call func(ctx context.Context, i int) error) *loadRunner {
	return &loadRunner{name: name, conc: conc, call: call, samples: make([]time.Duration, n), errors: map[string]int{}}
}

// warmUp makes calls -warmup … -1 from conc goroutines, untimed; one
// failure stops the run, as the setup is then wrong.
func (r *loadRunner) warmUp(ctx context.Context, warmup int) error {
	var first atomic.Pointer[error]
	r.spread(ctx, -warmup, 0, func(i int) {
		if err := r.call(ctx, i); err != nil {
			first.CompareAndSwap(nil, &err)
		}
	})
	if p := first.Load(); p != nil {
		return fmt.Errorf("%s: warm-up call: %w", r.name, *p)
	}
	return ctx.Err()
}

// turn makes timed calls start … end-1 from conc goroutines, adding the
// turn's wall-clock time and the CPU time of the processes watched.
func (r *loadRunner) turn(ctx context.Context, start, end int) {
	srv0, redis0 := cpuOf(r.serverPID), cpuOf(r.redisPID)
	bench0 := processCPU()
	t0 := time.Now()
	r.spread(ctx, start, end, func(i int) {
		c0 := time.Now()
		err := r.call(ctx, i)
		r.samples[i] = time.Since(c0)
		if err != nil {
			r.mu.Lock()
			r.errors[err.Error()]++
			r.mu.Unlock()
		}
	})
	r.wall += time.Since(t0)
	r.benchCPU += processCPU() - bench0
	r.serverCPU += cpuOf(r.serverPID) - srv0
	r.redisCPU += cpuOf(r.redisPID) - redis0
}

// spread runs do(i) for i in [start, end) on conc goroutines, each taking
// the next number as it finishes its call: conc calls in flight throughout.
func (r *loadRunner) spread(ctx context.Context, start, end int, do func(i int)) {
	var next atomic.Int64
	next.Store(int64(start))
	var wg sync.WaitGroup
	for range r.conc {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= end {
					return
				}
				do(i)
			}
		})
	}
	wg.Wait()
}

// cpuOf is a watched process's CPU time, or 0 for pid 0 or an error.
func cpuOf(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	d, err := cpuTime(pid)
	if err != nil {
		return 0
	}
	return d
}

// loadSeries is the outcome of a loadRunner: calls/s is calls over the
// wall-clock time of its turns, with conc calls in flight.
type loadSeries struct {
	*series
	Name string
	Conc int
	// CPU time per call: the server, Redis and this process (the client);
	// negative when not watched.
	ServerCPU, RedisCPU, BenchCPU time.Duration
}

func (r *loadRunner) result() *loadSeries {
	n := len(r.samples)
	s := &series{Calls: n, Busy: r.wall, ErrorCounts: r.errors}
	for _, c := range r.errors {
		s.Errors += c
	}
	if r.wall > 0 {
		s.CallsPerSec = float64(n) / r.wall.Seconds()
	}
	sorted := slices.Clone(r.samples)
	slices.Sort(sorted)
	s.P50, s.P99 = quantile(sorted, 0.50), quantile(sorted, 0.99)
	perCall := func(d time.Duration, watched bool) time.Duration {
		if !watched || n == 0 {
			return -1
		}
		return d / time.Duration(n)
	}
	return &loadSeries{series: s, Name: r.name, Conc: r.conc,
		ServerCPU: perCall(r.serverCPU, r.serverPID != 0),
		RedisCPU:  perCall(r.redisCPU, r.redisPID != 0),
		BenchCPU:  perCall(r.benchCPU, true)}
}

// interleaveLoad makes n timed calls per runner, the runners taking turns
// of block calls each, one runner at a time (so the CPU figures of a turn
// are its own), for the reason interleave gives.
func interleaveLoad(ctx context.Context, runners []*loadRunner, n, block int) error {
	for start := 0; start < n; start += block {
		end := min(start+block, n)
		for _, r := range runners {
			r.turn(ctx, start, end)
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// runner makes one kind of call, numbered i, and records the timed ones.
type runner struct {
	name string
	call func(ctx context.Context, i int) error
	rec  *recorder
	// trackCPU asks interleave to add up this process's CPU time over the
	// runner's turns into cpu: for series whose work is all in-process.
	trackCPU bool
	cpu      time.Duration
}

func newRunner(name string, n int, call func(ctx context.Context, i int) error) *runner {
	return &runner{name: name, call: call, rec: newRecorder(n)}
}

// warmUp makes untimed calls -warmup … -1, which fill connection pools,
// load the script into Redis and grow the Go heaps; any failure here means
// the setup is wrong, so it stops the run.
func (r *runner) warmUp(ctx context.Context, warmup int) error {
	for i := -warmup; i < 0; i++ {
		if err := r.call(ctx, i); err != nil {
			return fmt.Errorf("%s: warm-up call: %w", r.name, err)
		}
	}
	return nil
}

// interleave makes n timed sequential calls per runner, in turns of block
// calls each. The series of one run share the machine's conditions this way:
// on a busy host, load that comes and goes hits every series alike instead
// of whichever happened to run at the time, which keeps the ratios b/a
// meaningful. Each call is still one at a time: there is never more than one
// call in flight.
func interleave(ctx context.Context, runners []*runner, n, block int) error {
	for start := 0; start < n; start += block {
		end := min(start+block, n)
		for _, r := range runners {
			var cpu0 time.Duration
			if r.trackCPU {
				cpu0 = processCPU()
			}
			for i := start; i < end; i++ {
				_ = r.rec.time(func() error { return r.call(ctx, i) })
			}
			if r.trackCPU {
				r.cpu += processCPU() - cpu0
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// processCPU is this process's user+system CPU time so far, all threads.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// runBatch measures append_batch over stdio against the raw XADD floor,
// both at c=1 and in entries/s: batches of size audit entries (audit_log's
// arguments, each with its own log_id) on the chained audit stream, per-call
// audit off, and the same entries XADDed one by one with go-redis. The two
// rows take turns in o.rounds rounds of o.n entries each; entries/s is the
// median of the rounds, a ratio the median of the rounds' ratios. Target:
// append_batch entries/s ≥ 1× the floor.
func runBatch(o options, size int) int {
	if err := batchBench(o, size); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench:", err)
		return 1
	}
	return 0
}

func batchBench(o options, size int) error {
	if size < 1 || size > 500 || o.rounds < 1 || o.n < size*o.rounds {
		return errors.New("--batch-size must be 1 to 500, --rounds at least 1, --n at least --batch-size × --rounds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	b, done, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	s := b.base.with(b.prefix + "batch:")
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		s.profile = filepath.Join(o.profile, "stdio-batch.pprof")
	}
	std, err := startStdio(ctx, s.command())
	if err != nil {
		return fmt.Errorf("stdio server: %w", err)
	}
	defer std.close() // once: a second close is a no-op
	raw := b.prefix + "raw:audit_log_stream"
	per := o.n / o.rounds / size * size // entries per round, whole batches
	rows := []struct {
		label string
		write func(ctx context.Context, n int) error
		rates []float64
	}{
		{label: "raw go-redis XADD of the audit entry, one by one (floor)", write: func(ctx context.Context, n int) error {
			for range n {
				id := "bench-" + strconv.FormatInt(logIDs.Add(1), 10)
				if err := b.rdb.XAdd(ctx, &redis.XAddArgs{Stream: raw, MaxLen: 100000, Approx: true, Values: entry(id)}).Err(); err != nil {
					return err
				}
			}
			return nil
		}},
		{label: fmt.Sprintf("stdio append_batch of %d audit entries, audit off", size), write: func(ctx context.Context, n int) error {
			for range n / size {
				if err := std.request(ctx, "tools/call", batchParams(size)); err != nil {
					return err
				}
			}
			return nil
		}},
	}
	for k := range rows { // warm-up
		if err := rows[k].write(ctx, size*2); err != nil {
			return fmt.Errorf("%s: warm-up: %w", rows[k].label, err)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: batch: %d entries per row in %d rounds\n", per*o.rounds, o.rounds)
	for r := range o.rounds {
		for k := range rows {
			row := &rows[(r+k)%len(rows)]
			start := time.Now()
			if err := row.write(ctx, per); err != nil {
				return fmt.Errorf("%s: %w", row.label, err)
			}
			row.rates = append(row.rates, float64(per)/time.Since(start).Seconds())
		}
	}
	median := func(v []float64) float64 { s := slices.Sorted(slices.Values(v)); return s[len(s)/2] }
	// A ratio is the median of the rounds' ratios (series.over).
	over := func(v, base []float64) float64 {
		r := make([]float64, len(v))
		for i := range v {
			r[i] = v[i] / base[i]
		}
		return median(r)
	}
	fmt.Printf("\nmcp-redis append_batch: %s, %d CPUs, c=1, %d entries per row in %d rounds (entries/s: median of the rounds; a ratio: median of the rounds' ratios)\n\n",
		b.addr, runtime.NumCPU(), per*o.rounds, o.rounds)
	for _, row := range rows {
		fmt.Printf("  %-58s %8.0f entries/s  ×raw %.2f\n", row.label, median(row.rates), over(row.rates, rows[0].rates))
	}
	ratio := over(rows[1].rates, rows[0].rates)
	fmt.Printf("\ntarget: append_batch entries/s ÷ raw XADD floor, c=1: %.2f×, want ≥ 1×: %s\n", ratio, verdict(ratio >= 1))
	if o.profile != "" {
		// The server writes its profile as it exits.
		if _, err := std.close(); err != nil {
			return err
		}
		printProfiles(b.base.bin, o.profile)
	}
	return nil
}

// batchParams is a tools/call of append_batch with size audit entries,
// each audit_log's arguments with a log_id of its own.
func batchParams(size int) []byte {
	b := []byte(`{"name":"append_batch","arguments":{"stream":"audit_log_stream","entries":[`)
	for i := range size {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, entryJSON("bench-"+strconv.FormatInt(logIDs.Add(1), 10))...)
	}
	return append(b, "]}}"...)
}

// Command mcp-redis-bench drives the real mcp-redis binary end to end
// against a local Redis and prints what only the binary can tell:
//
//   - audit_log and ping calls/s over stdio and over Streamable HTTP, at
//     each concurrency of --conc, with p50 and p99, next to raw go-redis
//     XADD of an entry of the same fields at the same concurrency;
//   - the server's CPU time per call (from /proc/<pid>/stat);
//   - cold start: spawn to the reply to initialize, over --cold spawns;
//   - each server's peak RSS once its calls are done.
//
// The series of one concurrency take turns in --rounds rounds, so load from
// elsewhere falls on all of them alike; calls/s is the median over the
// rounds. The in-process figures (the lock and rate scripts, stream
// appends, against raw go-redis) are testing.B benchmarks beside their
// code; the README's Performance section lists both.
//
// Keys live under bench:<random>: and are deleted at the end (SCAN+DEL,
// never FLUSH). It exits 1 when any call failed.
//
//	go run ./cmd/mcp-redis-bench [--redis-url redis://127.0.0.1:6379] [--bin PATH]
//	    [--n 5000] [--conc 1,8] [--rounds 5] [--cold 20] [--audit=true]
//	go run ./cmd/mcp-redis-bench --subscribe    (subscribe.go)
//	go run ./cmd/mcp-redis-bench --dashboard    (dashboard.go)
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
)

type options struct {
	redisURL, bin, conc string
	n, rounds, cold     int
	audit               bool
	timeout             time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379", "Redis to run against (loopback only)")
	flag.StringVar(&o.bin, "bin", "", "the mcp-redis binary (default: go build ./cmd/mcp-redis into a temp dir)")
	flag.StringVar(&o.conc, "conc", "1,8", "concurrencies (calls in flight), comma-separated")
	flag.IntVar(&o.n, "n", 5000, "timed calls per series and concurrency")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds the timed calls are split into, the series taking turns")
	flag.IntVar(&o.cold, "cold", 20, "spawns timed for the cold start")
	flag.BoolVar(&o.audit, "audit", true, "the per-call audit (MCP_REDIS_AUDIT_TOOL_CALLS)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop after this long")
	subscribe := flag.Bool("subscribe", false, "measure only write → notifications/resources/updated latency: 50 subscribers per protocol era, 1,000 emit_workflow_event calls/s for 10 s (≤ 30 s)")
	dashboard := flag.Bool("dashboard", false, "measure only the web dashboard: page weight, and its live tail to 50 tabs (and one stalled) beside 50 raw SUBSCRIBE clients, 1,000 emit_workflow_event calls/s for 10 s (≤ 30 s)")
	flag.Parse()
	if *subscribe {
		os.Exit(runSubscribe(o))
	}
	if *dashboard {
		os.Exit(runDashboard(o))
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	var levels []int
	for f := range strings.SplitSeq(o.conc, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			return fmt.Errorf("--conc: %q is not a concurrency", f)
		}
		levels = append(levels, c)
	}
	if o.rounds < 1 || o.n < o.rounds || o.cold < 1 {
		return errors.New("--rounds and --cold must be at least 1, --n at least --rounds")
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	opts, err := loopbackRedis(o.redisURL)
	if err != nil {
		return err
	}
	rdb, prefix, err := benchRedis(ctx, opts)
	if err != nil {
		return err
	}
	defer rdb.Close()
	defer cleanup(rdb, prefix)

	// The servers run in a directory without a config.yaml, on their
	// defaults plus what spec states.
	dir, err := os.MkdirTemp("", "mcp-redis-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin, err := serverBinary(o.bin, dir)
	if err != nil {
		return err
	}
	spec := spec{bin: bin, dir: dir, redisURL: o.redisURL, audit: o.audit}

	stdio, err := startStdio(ctx, spec.with(prefix+"stdio:"))
	if err != nil {
		return err
	}
	defer stdio.close()
	web, err := startHTTP(ctx, spec.with(prefix+"http:"))
	if err != nil {
		return err
	}
	defer web.close()

	all, err := measureLevels(ctx, rdb, prefix, stdio, web, levels, o.n, o.rounds)
	if err != nil {
		return err
	}
	stdioRSS, err := stdio.close()
	if err != nil {
		return err
	}
	httpRSS, err := web.close()
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "bench: cold start: %d spawns\n", o.cold)
	cold, err := coldStart(ctx, spec.with(prefix+"cold:"), o.cold)
	if err != nil {
		return err
	}

	audit := "off"
	if o.audit {
		audit = "on"
	}
	fmt.Printf("\nmcp-redis end to end: %s, %d CPUs, per-call audit %s, %d timed calls per series in %d rounds (calls/s: median of the rounds)\n\n",
		opts.Addr, runtime.NumCPU(), audit, o.n, o.rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "transport\tcall\tconc\tcalls/s\t×raw\tp50 ms\tp99 ms\tserver CPU µs/call\terrors\t")
	failed := 0
	for _, s := range all {
		cpu := "-"
		if s.pid != 0 {
			cpu = fmt.Sprintf("%.0f", float64(s.cpu.Microseconds())/float64(len(s.lat)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.0f\t%.3f\t%.3f\t%.3f\t%s\t%d\t\n", s.transport, s.name, s.conc, s.median(), s.ratio,
			ms(s.quantile(0.50)), ms(s.quantile(0.99)), cpu, s.errors)
		failed += s.errors
	}
	tw.Flush()
	fmt.Printf("\ncold start (spawn to the initialize reply), %d spawns: median %.1f ms (%.1f–%.1f)\n",
		len(cold), ms(cold[len(cold)/2]), ms(cold[0]), ms(cold[len(cold)-1]))
	fmt.Printf("peak RSS after the calls: stdio server %.1f MiB, HTTP server %.1f MiB\n", mib(stdioRSS), mib(httpRSS))
	for _, s := range all {
		if s.errors > 0 {
			fmt.Printf("%s %s at concurrency %d: %d calls failed, the first: %v\n", s.transport, s.name, s.conc, s.errors, s.first)
		}
	}
	if failed > 0 {
		return errors.New("some calls failed")
	}
	return nil
}

// measureLevels measures, at each concurrency, raw XADD through rdb and
// audit_log and ping through each server.
func measureLevels(ctx context.Context, rdb *redis.Client, prefix string, stdio, web *client, levels []int, n, rounds int) ([]*series, error) {
	var all []*series
	raw := prefix + "raw:audit_log_stream"
	for _, conc := range levels {
		ss := []*series{
			{transport: "go-redis", name: "raw XADD", call: func(ctx context.Context, logID string) error {
				return rdb.XAdd(ctx, &redis.XAddArgs{Stream: raw, MaxLen: 100000, Approx: true, Values: entry(logID)}).Err()
			}},
			{transport: "stdio", name: "audit_log", pid: stdio.pid(), call: stdio.auditLog},
			{transport: "stdio", name: "ping", pid: stdio.pid(), call: stdio.ping},
			{transport: "http", name: "audit_log", pid: web.pid(), call: web.auditLog},
			{transport: "http", name: "ping", pid: web.pid(), call: web.ping},
		}
		fmt.Fprintf(os.Stderr, "bench: concurrency %d: %d timed calls per series in %d rounds\n", conc, n, rounds)
		if err := measure(ctx, ss, conc, n/rounds, rounds); err != nil {
			return nil, err
		}
		for _, s := range ss {
			s.conc, s.ratio = conc, s.median()/ss[0].median()
		}
		all = append(all, ss...)
	}
	return all, nil
}

// coldStart times runs spawns, each from exec to the reply to initialize,
// sorted.
func coldStart(ctx context.Context, s spec, runs int) ([]time.Duration, error) {
	var cold []time.Duration
	for range runs {
		start := time.Now()
		c, err := startStdio(ctx, s)
		if err != nil {
			return nil, err
		}
		cold = append(cold, time.Since(start))
		if _, err := c.close(); err != nil {
			return nil, err
		}
	}
	slices.Sort(cold)
	return cold, nil
}

// inputs is what an agent step typically logs as its inputs.
const inputs = `{"query":"summarise the open incidents of service checkout","top_k":5,` +
	`"filters":{"severity":["high","critical"],"since":"24h"},"include_resolved":false}`

// entry is a typical audit entry as field/value pairs: audit_log's
// arguments (inputs as JSON text), and the fields of the raw XADD.
func entry(logID string) []string {
	return []string{"module", "planner-agent", "procedure", "select_tool", "status", "ok", "inputs", inputs,
		"session_id", "sess-7f3a9c", "workflow_id", "wf-checkout-incidents", "log_id", logID,
		"timestamp", time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00")}
}

// auditParams is entry as the params of a tools/call of audit_log.
func auditParams(logID string) []byte {
	kv := entry(logID)
	args := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	args["inputs"] = json.RawMessage(inputs)
	b, _ := json.Marshal(map[string]any{"name": "audit_log", "arguments": args})
	return b
}

// series is one kind of call at one concurrency.
type series struct {
	transport, name string
	pid             int // the server's; 0 for raw XADD
	call            func(ctx context.Context, logID string) error

	conc   int
	rates  []float64 // calls/s per round
	lat    []time.Duration
	cpu    time.Duration // the server's, over the timed calls
	ratio  float64       // median calls/s over raw XADD's
	errors int
	first  error
}

// measure warms every series up, then runs per calls of each, conc at a
// time, rounds times, the series taking turns, each round starting with
// the next one.
func measure(ctx context.Context, ss []*series, conc, per, rounds int) error {
	for _, s := range ss {
		if _, n, err := s.batch(ctx, conc, max(200, 20*conc)); n > 0 {
			return fmt.Errorf("%s %s: warm-up: %w", s.transport, s.name, err)
		}
	}
	for r := range rounds {
		for k := range ss {
			s := ss[(r+k)%len(ss)]
			cpu := cpuTime(s.pid)
			start := time.Now()
			lat, n, err := s.batch(ctx, conc, per)
			s.rates = append(s.rates, float64(per)/time.Since(start).Seconds())
			s.cpu += cpuTime(s.pid) - cpu
			s.lat, s.errors = append(s.lat, lat...), s.errors+n
			if s.first == nil {
				s.first = err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
	}
	return nil
}

// logIDs numbers the audit entries of the run: no two share a log_id.
var logIDs atomic.Int64

// batch makes n calls from conc goroutines and returns their latencies,
// how many failed, and the first failure.
func (s *series) batch(ctx context.Context, conc, n int) ([]time.Duration, int, error) {
	var left atomic.Int64
	left.Store(int64(n))
	lat := make([]time.Duration, n)
	var mu sync.Mutex
	var failed int
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for i := left.Add(-1); i >= 0 && ctx.Err() == nil; i = left.Add(-1) {
				cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				start := time.Now()
				err := s.call(cctx, "bench-"+strconv.FormatInt(logIDs.Add(1), 10))
				lat[i] = time.Since(start)
				cancel()
				if err != nil {
					mu.Lock()
					failed++
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return lat, failed, first
}

func (s *series) median() float64 {
	r := slices.Sorted(slices.Values(s.rates))
	return r[len(r)/2]
}

// quantile is the nearest-rank q-quantile of the latencies.
func (s *series) quantile(q float64) time.Duration {
	l := slices.Sorted(slices.Values(s.lat))
	return l[max(int(q*float64(len(l)))-1, 0)]
}

// cleanup deletes the run's keys: those under prefix, and the helper keys
// whose hash tag puts a brace before it.
func cleanup(rdb *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := 0
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		var keys []string
		iter := rdb.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for batch := range slices.Chunk(keys, 500) {
			n += int(rdb.Del(ctx, batch...).Val())
		}
		if err := iter.Err(); err != nil {
			fmt.Fprintf(os.Stderr, "bench: cleanup %s: %v\n", pattern, err)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: deleted %d keys under %s\n", n, prefix)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// loopbackRedis parses --redis-url, refusing a Redis off loopback: the
// bench writes and deletes keys.
func loopbackRedis(url string) (*redis.Options, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w", err)
	}
	if host, _, _ := net.SplitHostPort(opts.Addr); !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("--redis-url: %s is not a loopback address; the bench writes and deletes keys", host)
	}
	return opts, nil
}

// serverBinary is --bin made absolute, or the server built into dir.
func serverBinary(bin, dir string) (string, error) {
	if bin != "" {
		return filepath.Abs(bin)
	}
	bin = filepath.Join(dir, "mcp-redis")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/mcp-redis/mcp-redis/cmd/mcp-redis").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build (run from inside the module, or pass --bin): %w\n%s", err, out)
	}
	return bin, nil
}

// benchRedis connects to the bench's Redis and picks a key prefix of this
// run's own, which cleanup deletes.
func benchRedis(ctx context.Context, opts *redis.Options) (*redis.Client, string, error) {
	rdb := redis.NewClient(opts)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, "", fmt.Errorf("redis at %s: %w", opts.Addr, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return rdb, "bench:" + hex.EncodeToString(b[:]) + ":", nil
}

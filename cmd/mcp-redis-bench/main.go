// Command mcp-redis-bench drives the real mcp-redis binary end to end
// against a local Redis and prints the table of issue 14, measured side by
// side in one run, at each concurrency of --conc:
//
//   - raw go-redis XADD of an audit entry (the floor);
//   - audit_log and emit_workflow_event over stdio, per-call audit off,
//     and emit_workflow_event with it on (the audit's cost);
//   - audit_log over Streamable HTTP, audit off, stateful and stateless;
//   - the reference TypeScript server's set over stdio (--reference);
//   - a Go MCP server of one echo tool over stdio, mcp-go's stdio server
//     as the project uses it (the transport floor);
//
// each with calls/s and its ratio to raw XADD, p50 and p99, the server's
// CPU per call (/proc/<pid>/stat) and, over HTTP, its Go allocations per
// call (go_memstats_mallocs_total of /metrics); then cold start, peak RSS,
// and the targets, met or not.
//
// All servers are started once; the rows of one concurrency take turns in
// --rounds rounds, so load from elsewhere falls on all of them alike;
// calls/s is the median over the rounds. Every row uses the same lean
// JSON-RPC client (client.go). The in-process figures are testing.B
// benchmarks beside their code; the README's Performance section lists
// both.
//
// Keys live under bench:<random>: and are deleted at the end (SCAN+DEL,
// never FLUSH). It exits 1 when any call failed.
//
//	go run ./cmd/mcp-redis-bench [--redis-url redis://127.0.0.1:6379] [--bin PATH]
//	    [--reference DIR] [--n 5000] [--conc 1,8] [--rounds 5] [--cold 20]
//	go run ./cmd/mcp-redis-bench --subscribe    (subscribe.go)
//	go run ./cmd/mcp-redis-bench --dashboard    (dashboard.go)
//	go run ./cmd/mcp-redis-bench --batch [--batch-size 100]   (batch.go)
//
// where DIR holds the reference server: npm install --prefix DIR
// @modelcontextprotocol/server-redis@2025.4.25.
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
	redisURL, bin, conc, reference, profile string
	n, rounds, cold                         int
	audit                                   bool
	timeout                                 time.Duration
}

func main() {
	if len(os.Args) == 2 && os.Args[1] == echoFlag {
		os.Exit(serveEcho())
	}
	var o options
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379", "Redis to run against (loopback only)")
	flag.StringVar(&o.bin, "bin", "", "the mcp-redis binary (default: go build ./cmd/mcp-redis into a temp dir)")
	flag.StringVar(&o.reference, "reference", referenceAuto, "a directory holding the reference server ("+installReference+"); auto: the bench's own, installed by npm on first use; none: no reference row")
	flag.StringVar(&o.profile, "cpu-profile", "", "write a CPU profile of each mcp-redis server to DIR/<server>.pprof (serve --cpu-profile) and print the top of each")
	flag.StringVar(&o.conc, "conc", "1,8", "concurrencies (calls in flight), comma-separated")
	flag.IntVar(&o.n, "n", 5000, "timed calls per row and concurrency")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds the timed calls are split into, the rows taking turns")
	flag.IntVar(&o.cold, "cold", 20, "spawns timed for the cold start")
	flag.BoolVar(&o.audit, "audit", true, "the per-call audit (MCP_REDIS_AUDIT_TOOL_CALLS) of --subscribe and --dashboard; the table states it per row")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "stop after this long")
	subscribe := flag.Bool("subscribe", false, "measure only write → notifications/resources/updated latency: 50 subscribers per protocol era, 1,000 emit_workflow_event calls/s for 10 s (≤ 30 s)")
	dashboard := flag.Bool("dashboard", false, "measure only the web dashboard: page weight, and its live tail to 50 tabs (and one stalled) beside 50 raw SUBSCRIBE clients, 1,000 emit_workflow_event calls/s for 10 s (≤ 30 s)")
	batch := flag.Bool("batch", false, "measure only append_batch over stdio at c=1, in entries/s beside the raw XADD floor: --n entries per row in --rounds rounds, --batch-size entries per call")
	batchSize := flag.Int("batch-size", 100, "entries per append_batch call of --batch")
	flag.Parse()
	if *batch {
		os.Exit(runBatch(o, *batchSize))
	}
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

// The rows of the table, in print order.
const (
	rowRaw = iota
	rowStdio
	rowEmitOff
	rowEmitOn
	rowPing
	rowHTTP
	rowStateless
	rowReference
	rowEcho
)

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

	b, done, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	rdb, prefix := b.rdb, b.prefix
	refDir, refWhy, err := referenceDir(ctx, o.reference)
	if err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
	}
	// profiled gives a server its profile file under --cpu-profile.
	profiled := func(s spec, file string) spec {
		if o.profile != "" {
			s.profile = filepath.Join(o.profile, file)
		}
		return s
	}
	base := b.base
	audited := profiled(base.with(prefix+"audited:"), "stdio-audit-on.pprof")
	audited.audit = true
	stateless := profiled(base.with(prefix+"stateless:"), "http-stateless.pprof")
	stateless.env = []string{"MCP_REDIS_HTTP_STATELESS=true"}
	servers := []struct {
		name  string
		start func() (*client, error)
		c     *client
		rss   int64
	}{
		{name: "stdio", start: func() (*client, error) {
			return startStdio(ctx, profiled(base.with(prefix+"stdio:"), "stdio.pprof").command())
		}},
		{name: "stdio audit on", start: func() (*client, error) { return startStdio(ctx, audited.command()) }},
		{name: "HTTP", start: func() (*client, error) { return startHTTP(ctx, profiled(base.with(prefix+"http:"), "http.pprof")) }},
		{name: "HTTP stateless", start: func() (*client, error) { return startHTTP(ctx, stateless) }},
		{name: "echo", start: func() (*client, error) { return startEcho(ctx) }},
		{name: "reference", start: func() (*client, error) {
			if refDir == "" {
				return nil, nil
			}
			return startReference(ctx, refDir, o.redisURL)
		}},
	}
	for i := range servers {
		s := &servers[i]
		if s.c, err = s.start(); err != nil {
			return fmt.Errorf("%s server: %w", s.name, err)
		}
		if s.c != nil {
			defer s.c.close()
		}
	}
	std, aud, web, sl, echo, ref := servers[0].c, servers[1].c, servers[2].c, servers[3].c, servers[4].c, servers[5].c

	raw := prefix + "raw:audit_log_stream"
	rows := func() []*series {
		ss := []*series{
			rowRaw: {label: "raw go-redis XADD of the audit entry (floor)", call: func(ctx context.Context, logID string) error {
				return rdb.XAdd(ctx, &redis.XAddArgs{Stream: raw, MaxLen: 100000, Approx: true, Values: entry(logID)}).Err()
			}},
			rowStdio:     {label: "stdio audit_log, audit off", pid: std.pid(), call: std.auditLog},
			rowEmitOff:   {label: "stdio emit_workflow_event, audit off", pid: std.pid(), call: std.emitEvent},
			rowEmitOn:    {label: "stdio emit_workflow_event, audit on", pid: aud.pid(), call: aud.emitEvent},
			rowPing:      {label: "stdio ping (mcp-redis)", pid: std.pid(), call: std.ping},
			rowHTTP:      {label: "HTTP audit_log, audit off, stateful", pid: web.pid(), call: web.auditLog, mallocs: web.mallocs},
			rowStateless: {label: "HTTP audit_log, audit off, stateless", pid: sl.pid(), call: sl.auditLog, mallocs: sl.mallocs},
			rowReference: {label: "reference (TypeScript) set over stdio"},
			rowEcho:      {label: "Go echo server over stdio (transport floor)", pid: echo.pid(), call: echo.echo},
		}
		if ref != nil {
			ss[rowReference].pid, ss[rowReference].call = ref.pid(), ref.set(prefix+"ref:")
		}
		return ss
	}
	all, err := measureLevels(ctx, rows, levels, o.n, o.rounds)
	if err != nil {
		return err
	}
	for i := range servers {
		if s := &servers[i]; s.c != nil {
			if s.rss, err = s.c.close(); err != nil {
				return fmt.Errorf("%s server: %w", s.name, err)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "bench: cold start: %d spawns\n", o.cold)
	cold, err := coldStart(ctx, base.with(prefix+"cold:"), o.cold)
	if err != nil {
		return err
	}

	fmt.Printf("\nmcp-redis end to end: %s, %d CPUs, %d timed calls per row and concurrency in %d rounds (calls/s: median of the rounds; a ratio: median of the rounds' ratios)\n\n",
		b.addr, runtime.NumCPU(), o.n, o.rounds)
	failed := printTable(all, levels, refWhy)
	fmt.Printf("\ncold start (spawn to the initialize reply), %d spawns: median %.1f ms (%.1f–%.1f)\n",
		len(cold), ms(cold[len(cold)/2]), ms(cold[0]), ms(cold[len(cold)-1]))
	fmt.Print("peak RSS after the calls:")
	var rss []float64
	for i, s := range servers {
		if s.c != nil {
			fmt.Printf(" %s %.1f MiB;", s.name, mib(s.rss))
			if i < 4 { // mcp-redis's
				rss = append(rss, mib(s.rss))
			}
		}
	}
	fmt.Println()
	printTargets(all, levels, ms(cold[len(cold)/2]), slices.Max(rss))
	if o.profile != "" {
		printProfiles(b.base.bin, o.profile)
	}
	for _, ss := range all {
		for _, s := range ss {
			if s.errors > 0 {
				fmt.Printf("%s at concurrency %d: %d calls failed, the first: %v\n", s.label, s.conc, s.errors, s.first)
			}
		}
	}
	if failed > 0 {
		return errors.New("some calls failed")
	}
	return nil
}

// measureLevels measures the rows at each concurrency, fresh rows for
// each.
func measureLevels(ctx context.Context, rows func() []*series, levels []int, n, rounds int) ([][]*series, error) {
	var all [][]*series
	for _, conc := range levels {
		ss := rows()
		fmt.Fprintf(os.Stderr, "bench: concurrency %d: %d timed calls per row in %d rounds\n", conc, n, rounds)
		if err := measure(ctx, ss, conc, n/rounds, rounds); err != nil {
			return nil, err
		}
		for _, s := range ss {
			s.conc = conc
			if s.call != nil {
				s.ratio = s.over(ss[rowRaw])
			}
		}
		all = append(all, ss)
	}
	return all, nil
}

// printTable prints one line per row, the concurrencies side by side, and
// returns how many calls failed.
func printTable(all [][]*series, levels []int, refWhy string) int {
	width := 0
	for _, s := range all[0] {
		width = max(width, len(s.label))
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := fmt.Sprintf("%-*s\t", width, "")
	for _, c := range levels {
		head += fmt.Sprintf("c=%d calls/s\t×raw\tCPU µs/call\tallocs/call\tp50/p99 ms\t", c)
	}
	fmt.Fprintln(tw, head+"errors\t")
	failed := 0
	for k, s := range all[0] {
		line := fmt.Sprintf("%-*s\t", width, s.label)
		errs := 0
		for _, ss := range all {
			s := ss[k]
			if s.call == nil {
				line += "-\t-\t-\t-\t-\t"
				continue
			}
			cpu, allocs := "-", "-"
			if s.pid != 0 {
				cpu = fmt.Sprintf("%.0f", s.cpuPerCall())
			}
			if s.mallocs != nil {
				allocs = fmt.Sprintf("%.0f", s.allocs/float64(len(s.lat)))
			}
			line += fmt.Sprintf("%.0f\t%.2f\t%s\t%s\t%.2f/%.2f\t", s.median(), s.ratio, cpu, allocs, ms(s.quantile(0.50)), ms(s.quantile(0.99)))
			errs += s.errors
		}
		fmt.Fprintf(tw, "%s%d\t\n", line, errs)
		failed += errs
	}
	tw.Flush()
	if all[0][rowReference].call == nil {
		fmt.Println("\nreference: not measured: " + refWhy + ".")
	}
	fmt.Println("\nallocs/call: the HTTP server's go_memstats_mallocs_total over its turns (one /metrics scrape's own share taken off), per call.")
	fmt.Println("A stdio server has no /metrics; its in-process allocs/op: go test -run XXX -bench HandleAuditLog -benchmem ./internal/app/")
	return failed
}

// printTargets prints issue 14's targets, each met or not, against
// all; a target whose row or concurrency was not measured says so.
func printTargets(all [][]*series, levels []int, cold, rss float64) {
	at := func(conc, row int) *series {
		if i := slices.Index(levels, conc); i >= 0 && all[i][row].call != nil {
			return all[i][row]
		}
		return nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\ntarget (issue 14)\tthis run\twant\t\t")
	check := func(what string, v float64, measured, atMost bool, limit float64, unit string) {
		digits := 1
		if unit == "×" {
			digits = 2
		}
		switch {
		case !measured:
			fmt.Fprintf(tw, "%s\t-\t\tnot measured\t\n", what)
		case atMost:
			fmt.Fprintf(tw, "%s\t%.*f%s\t≤ %g%s\t%s\t\n", what, digits, v, unit, limit, unit, verdict(v <= limit))
		default:
			fmt.Fprintf(tw, "%s\t%.*f%s\t≥ %g%s\t%s\t\n", what, digits, v, unit, limit, unit, verdict(v >= limit))
		}
	}
	ratio := func(what string, conc, row, over int, limit float64) {
		s, base := at(conc, row), at(conc, over)
		v := 0.0
		if s != nil && base != nil {
			v = s.over(base)
		}
		check(fmt.Sprintf(what, conc), v, s != nil && base != nil, false, limit, "×")
	}
	ratio("stdio audit_log ÷ raw XADD, c=%d", 1, rowStdio, rowRaw, 0.5)
	ratio("stdio audit_log ÷ raw XADD, c=%d", 8, rowStdio, rowRaw, 0.3)
	ratio("stdio audit_log ÷ reference set, c=%d", 1, rowStdio, rowReference, 2)
	ratio("stdio audit_log ÷ reference set, c=%d", 8, rowStdio, rowReference, 2)
	ratio("HTTP stateful audit_log ÷ raw XADD, c=%d", 8, rowHTTP, rowRaw, 0.3)
	ratio("HTTP stateless audit_log ÷ raw XADD, c=%d", 8, rowStateless, rowRaw, 0.3)
	s := at(1, rowStdio)
	check("server CPU, stdio audit_log, c=1", s.cpuPerCall(), s != nil, true, 150, " µs")
	for _, conc := range []int{1, 8} {
		on, off := at(conc, rowEmitOn), at(conc, rowEmitOff)
		v := 0.0
		if on != nil && off != nil {
			v = 100 * (1 - on.over(off))
		}
		check(fmt.Sprintf("audit-on cost, emit_workflow_event calls/s, c=%d", conc), v, on != nil && off != nil, true, 15, " %")
	}
	check("cold start, median", cold, true, true, 20, " ms")
	check("peak RSS, mcp-redis servers", rss, true, true, 40, " MiB")
	fmt.Fprintln(tw, "allocations per call\tabove\thalved\tneeds the figure from before the work\t")
	tw.Flush()
}

func verdict(met bool) string {
	if met {
		return "met"
	}
	return "NOT MET"
}

// coldStart times runs spawns, each from exec to the reply to initialize,
// sorted.
func coldStart(ctx context.Context, s spec, runs int) ([]time.Duration, error) {
	var cold []time.Duration
	for range runs {
		start := time.Now()
		c, err := startStdio(ctx, s.command())
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

// entryJSON is entry as a JSON object, inputs a nested object: audit_log's
// arguments.
func entryJSON(logID string) []byte {
	kv := entry(logID)
	args := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		args[kv[i]] = kv[i+1]
	}
	args["inputs"] = json.RawMessage(inputs)
	b, _ := json.Marshal(args)
	return b
}

// toolParams is the params of a tools/call of tool with entry's arguments.
func toolParams(tool, logID string) []byte {
	return fmt.Appendf(nil, `{"name":%q,"arguments":%s}`, tool, entryJSON(logID))
}

// series is one row at one concurrency.
type series struct {
	label   string
	pid     int // the server's; 0 for raw XADD
	call    func(ctx context.Context, logID string) error
	mallocs func(ctx context.Context) (float64, error) // the server's heap allocations so far; nil when unknown

	conc   int
	rates  []float64 // calls/s per round
	lat    []time.Duration
	cpu    time.Duration // the server's, over the timed calls
	allocs float64       // the server's, over the timed calls
	ratio  float64       // median calls/s over raw XADD's
	errors int
	first  error
}

func (s *series) cpuPerCall() float64 {
	if s == nil || len(s.lat) == 0 {
		return 0
	}
	return float64(s.cpu.Microseconds()) / float64(len(s.lat))
}

// measure warms every series up, then runs per calls of each, conc at a
// time, rounds times, the series taking turns, each round starting with
// the next one. A series with no call is left out.
func measure(ctx context.Context, ss []*series, conc, per, rounds int) error {
	ss = slices.DeleteFunc(slices.Clone(ss), func(s *series) bool { return s.call == nil })
	scrape := map[*series]float64{} // what reading mallocs allocates itself
	for _, s := range ss {
		if _, n, err := s.batch(ctx, conc, max(200, 20*conc)); n > 0 {
			return fmt.Errorf("%s: warm-up: %w", s.label, err)
		}
		if s.mallocs != nil {
			var m [3]float64
			for i := range m {
				var err error
				if m[i], err = s.mallocs(ctx); err != nil {
					return fmt.Errorf("%s: %w", s.label, err)
				}
			}
			scrape[s] = min(m[1]-m[0], m[2]-m[1])
		}
	}
	for r := range rounds {
		for k := range ss {
			s := ss[(r+k)%len(ss)]
			var m0, m1 float64
			var err error
			if s.mallocs != nil {
				if m0, err = s.mallocs(ctx); err != nil {
					return fmt.Errorf("%s: %w", s.label, err)
				}
			}
			cpu := cpuTime(s.pid)
			start := time.Now()
			lat, n, err := s.batch(ctx, conc, per)
			s.rates = append(s.rates, float64(per)/time.Since(start).Seconds())
			s.cpu += cpuTime(s.pid) - cpu
			s.lat, s.errors = append(s.lat, lat...), s.errors+n
			if s.first == nil {
				s.first = err
			}
			if s.mallocs != nil {
				if m1, err = s.mallocs(ctx); err != nil {
					return fmt.Errorf("%s: %w", s.label, err)
				}
				s.allocs += m1 - m0 - scrape[s]
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

// over is the median, over the rounds, of s's calls/s in a round divided
// by base's in the same round: the two ran one after the other, so a
// change in the machine's speed between rounds moves both.
func (s *series) over(base *series) float64 {
	var r []float64
	for i := range min(len(s.rates), len(base.rates)) {
		r = append(r, s.rates[i]/base.rates[i])
	}
	slices.Sort(r)
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
	// Built as make build builds it (and the image and the bundle): no
	// cgo, a static binary, which starts a little sooner.
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, "github.com/mcp-redis/mcp-redis/cmd/mcp-redis")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build (run from inside the module, or pass --bin): %w\n%s", err, out)
	}
	return bin, nil
}

// bench is what a measurement runs with: the Redis under a key prefix of
// the run's own, and the servers' spec (the binary, and a directory
// without a config.yaml: they run on their defaults plus what spec
// states).
type bench struct {
	rdb    *redis.Client
	prefix string
	addr   string // the Redis's address
	base   spec
}

// setUp readies a measurement; done deletes its keys and directory.
func setUp(ctx context.Context, o options) (bench, func(), error) {
	opts, err := loopbackRedis(o.redisURL)
	if err != nil {
		return bench{}, nil, err
	}
	dir, err := os.MkdirTemp("", "mcp-redis-bench-")
	if err != nil {
		return bench{}, nil, err
	}
	bin, err := serverBinary(o.bin, dir)
	if err != nil {
		os.RemoveAll(dir)
		return bench{}, nil, err
	}
	rdb, prefix, err := benchRedis(ctx, opts)
	if err != nil {
		os.RemoveAll(dir)
		return bench{}, nil, err
	}
	done := func() {
		cleanup(rdb, prefix)
		rdb.Close()
		os.RemoveAll(dir)
	}
	return bench{rdb: rdb, prefix: prefix, addr: opts.Addr, base: spec{bin: bin, dir: dir, redisURL: o.redisURL}}, done, nil
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

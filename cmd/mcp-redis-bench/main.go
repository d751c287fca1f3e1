// Command mcp-redis-bench measures what the mcp-redis server costs over a
// plain Redis client, in one run against one real Redis:
//
//	(a) raw go-redis XADD of a typical audit entry;
//	(b) audit_log tool calls through the real binary over stdio, with the
//	    per-call audit on and off (one server each);
//	(c) the ratios b/a in calls/s;
//	(d) cold start: spawn to the reply to initialize, over 20 spawns;
//	(e) each server's peak RSS (VmHWM) after its timed calls;
//	(f) MCP ping over stdio, the floor under any tool call;
//	(g) acquire_lock+release_lock pairs and check_rate calls through the
//	    MCP tool layer in-process (app.New, MCPServer.HandleMessage: no
//	    transport), next to the same Lua scripts run raw through go-redis
//	    with the same keys and arguments, and the ratios tool/raw;
//	(h) the wake-up latency of a waiting acquire_lock after a release
//	    (median, min and max of --wake-runs);
//	(i) audit_log over Streamable HTTP (the real binary, serve --transport
//	    http on a loopback port) with --http-conc calls in flight (1 and 8
//	    by default), next to raw go-redis XADD at the same concurrency, the
//	    per-call audit off and on, with MCP ping over HTTP as the floor,
//	    audit_log's own Lua script run through go-redis (Redis's share) and
//	    mcp-go's own client for comparison; then a soak of --http-soak-n
//	    calls at the highest concurrency, with the server's VmRSS/VmHWM
//	    read before and after (--http=false skips (i), --http-only runs
//	    only (i)).
//
// Every call of (a)-(h) is sequential: one in flight at a time. After a warm-up per
// series, the series take turns in blocks (--block), so load from other
// processes falls on all of them alike. The report also gives the server's
// CPU time per call, which a busy machine distorts far less than calls/s.
//
// It prints a table with the targets and PASS/MISS per target; the
// figures are for reading, not a test. It exits 1 only when something failed,
// including any tool call that failed or came back with isError. Every key it
// writes lives under a fresh prefix bench:<random>: and is deleted at the
// end (SCAN+DEL, never FLUSH). It talks only to a loopback Redis and stops
// by itself (--timeout).
//
// Usage, from inside the module:
//
//	go run ./cmd/mcp-redis-bench [--redis-url redis://127.0.0.1:6379] [--bin PATH] [--n 10000]
//	    [--lock-n 5000] [--wake-runs 20] [--lock-cpuprofile FILE] [--json]
//	    [--http=true] [--http-only] [--http-n 5000] [--http-conc 1,8] [--http-soak-n 100000]
//	    [--http-audit-on=true] [--http-mcp-go] [--http-stateless]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
)

// options are the command-line flags.
type options struct {
	redisURL string
	bin      string
	n        int
	warmup   int
	coldRuns int
	block    int
	protocol string
	timeout  time.Duration
	json     bool
	// lockN is the timed calls per series of (g); wakeRuns the runs of (h).
	lockN, wakeRuns int
	// cpuProfile, when set, receives a CPU profile of (g)'s timed calls.
	cpuProfile string
	// Series (i): whether it runs, or alone; its timed calls per series,
	// concurrencies, soak calls, and the optional series and server mode.
	http, httpOnly         bool
	httpN, httpSoakN       int
	httpConc               string
	httpAuditOn, httpMCPGo bool
	httpStateless          bool
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379", "Redis to benchmark against (loopback only)")
	flag.StringVar(&o.bin, "bin", "", "path to the mcp-redis binary (default: go build ./cmd/mcp-redis into a temp dir)")
	flag.IntVar(&o.n, "n", 10000, "timed calls per series")
	flag.IntVar(&o.warmup, "warmup", 300, "untimed calls before each timed series")
	flag.IntVar(&o.coldRuns, "cold-runs", 20, "spawns measured for the cold start")
	flag.IntVar(&o.block, "block", 500, "calls per turn when series (a) and (b) take turns")
	flag.StringVar(&o.protocol, "protocol", mcp.ProtocolVersion20251125,
		"MCP protocol version the client asks for in series (b); 2026-07-28 negotiates the stateless revision")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "stop the whole run after this long")
	flag.BoolVar(&o.json, "json", false, "also print the figures as one JSON object")
	flag.IntVar(&o.lockN, "lock-n", 5000, "timed calls per series of (g): acquire+release pairs, check_rate calls")
	flag.IntVar(&o.wakeRuns, "wake-runs", 20, "runs measured for the wake-up latency (h)")
	flag.StringVar(&o.cpuProfile, "lock-cpuprofile", "", "write a CPU profile of (g)'s timed calls (tool layer and raw, in this process) to this file")
	flag.BoolVar(&o.http, "http", true, "run (i): audit_log over Streamable HTTP with calls in flight, next to raw XADD")
	flag.BoolVar(&o.httpOnly, "http-only", false, "run (i) only")
	flag.IntVar(&o.httpN, "http-n", 5000, "(i): timed calls per series and concurrency")
	flag.StringVar(&o.httpConc, "http-conc", "1,8", "(i): concurrencies (calls in flight), ascending, comma-separated")
	flag.IntVar(&o.httpSoakN, "http-soak-n", 100000, "(i): calls at the highest concurrency over which the server's RSS growth is read (0: no soak)")
	flag.BoolVar(&o.httpAuditOn, "http-audit-on", true, "(i): also a server with the per-call audit on")
	flag.BoolVar(&o.httpMCPGo, "http-mcp-go", false, "(i): also audit_log through mcp-go's Streamable HTTP client, for comparison")
	flag.BoolVar(&o.httpStateless, "http-stateless", false, "(i): serve Streamable HTTP stateless (MCP_REDIS_HTTP_STATELESS=true)")
	flag.Parse()
	if o.httpOnly {
		o.http = true
	}
	return o
}

func main() {
	o := parseFlags()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench:", err)
		os.Exit(1)
	}
}

// errCallsFailed reports that some measured calls failed: the figures are
// printed, but they do not describe a healthy server.
var errCallsFailed = errors.New("some calls failed; see the errors above")

func run(o options) error {
	if o.n < 1 || o.block < 1 || o.coldRuns < 1 || o.lockN < 1 || o.wakeRuns < 1 || o.warmup < 0 || o.httpN < 1 || o.httpSoakN < 0 {
		return errors.New("--n, --block, --cold-runs, --lock-n, --wake-runs and --http-n must be at least 1, --warmup and --http-soak-n at least 0")
	}
	if o.http {
		if _, err := parseConc(o.httpConc); err != nil {
			return err
		}
	}
	// The deadline bounds the run; a signal cancels it so cleanup still runs.
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	rdb, err := openRedis(ctx, o.redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()

	bin, workDir, removeBuild, err := serverBinary(ctx, o.bin)
	if err != nil {
		return err
	}
	defer removeBuild()

	prefix, err := newPrefix()
	if err != nil {
		return err
	}
	// Cleanup runs even when the run was cancelled, under its own deadline.
	defer cleanup(context.WithoutCancel(ctx), rdb, prefix)

	logf("run prefix %s, server %s", prefix, bin)
	srv := serverSpec{bin: bin, dir: workDir, redisURL: o.redisURL, protocol: o.protocol}
	res, err := measure(ctx, o, rdb, srv, prefix)
	if err != nil {
		return err
	}
	printReport(os.Stdout, res)
	if o.json {
		if err := printJSON(os.Stdout, res); err != nil {
			return err
		}
	}
	if res.failedCalls() > 0 {
		return errCallsFailed
	}
	return nil
}

// measure runs series (a), (b) and (f), then (g) and (h), then (i), then
// the cold starts; with --http-only, (i) alone. Each series gets its own key prefix, so none writes into keys
// another one filled.
func measure(ctx context.Context, o options, rdb redisClient, srv serverSpec, prefix string) (*results, error) {
	res := &results{N: o.n, Warmup: o.warmup, Block: o.block, Protocol: o.protocol,
		RedisURL: redact(o.redisURL), LoadBefore: loadAvg()}
	var err error
	if o.httpOnly {
		if res.HTTP, err = measureHTTP(ctx, o, rdb, srv, prefix); err != nil {
			return nil, fmt.Errorf("(i) http: %w", err)
		}
		res.LoadAfter = loadAvg()
		return res, nil
	}
	if err := measureSeries(ctx, o, rdb, srv, prefix, res); err != nil {
		return nil, err
	}
	if res.LockRate, err = measureLockRate(ctx, o, rdb, prefix); err != nil {
		return nil, err
	}
	if o.http {
		if res.HTTP, err = measureHTTP(ctx, o, rdb, srv, prefix); err != nil {
			return nil, fmt.Errorf("(i) http: %w", err)
		}
	}
	logf("(d) cold start: %d spawns", o.coldRuns)
	cold := srv
	cold.audit = true
	cold.prefix = prefix + "cold:"
	if res.Cold, err = coldStart(ctx, cold, o.coldRuns); err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	res.LoadAfter = loadAvg()
	return res, nil
}

// measureSeries runs (a) raw XADD, (b) audit_log with the audit on and
// off, and (f) ping, taking turns (see interleave), and fills their figures
// into res. The
// two servers live for the whole of it and are closed before it returns.
func measureSeries(ctx context.Context, o options, rdb redisClient, srv serverSpec, prefix string, res *results) error {
	raw := newRunner("(a) raw XADD", o.n, rawXAdd(rdb, prefix+"raw:"))
	runners := []*runner{raw}
	var servers []*server
	defer func() {
		for _, s := range servers {
			s.close()
		}
	}()
	for _, audit := range []bool{true, false} {
		spec := srv
		spec.audit = audit
		spec.prefix = prefix + "audit-" + onOff(audit) + ":"
		s, err := startTool(ctx, spec)
		if err != nil {
			return fmt.Errorf("audit_log server (audit %s): %w", onOff(audit), err)
		}
		servers = append(servers, s)
		runners = append(runners, newRunner("(b) audit "+onOff(audit), o.n, s.auditCalls(spec.prefix)))
	}

	// (f) the floor: ping through a server of its own, so the CPU figures
	// of (b) stay theirs.
	pingSpec := srv
	pingSpec.prefix = prefix + "ping:"
	pinger, err := startTool(ctx, pingSpec)
	if err != nil {
		return fmt.Errorf("ping server: %w", err)
	}
	servers = append(servers, pinger)
	ping := newRunner("(f) ping", o.n, pinger.pingCalls())
	runners = append(runners, ping)

	for _, r := range runners {
		logf("%s: %d warm-up calls", r.name, o.warmup)
		if err := r.warmUp(ctx, o.warmup); err != nil {
			return err
		}
	}
	cpu0 := make([]time.Duration, len(servers))
	for i, s := range servers {
		var err error
		if cpu0[i], err = s.cpuTime(); err != nil {
			return err
		}
	}
	logf("(a)+(b): %d timed calls per series, in turns of %d", o.n, o.block)
	if err := interleave(ctx, runners, o.n, o.block); err != nil {
		return err
	}

	res.Raw = raw.rec.summary()
	if res.AuditOn, err = toolFigures(servers[0], runners[1], cpu0[0], o.n); err != nil {
		return err
	}
	if res.AuditOff, err = toolFigures(servers[1], runners[2], cpu0[1], o.n); err != nil {
		return err
	}
	if res.Ping, err = toolFigures(pinger, ping, cpu0[2], o.n); err != nil {
		return err
	}
	return nil
}

// toolFigures reads what the still-running server spent on its n timed
// calls, from its CPU time at their start, cpu0.
func toolFigures(s *server, r *runner, cpu0 time.Duration, n int) (*toolResult, error) {
	cpu1, err := s.cpuTime()
	if err != nil {
		return nil, err
	}
	hwm, err := s.peakRSS()
	if err != nil {
		return nil, err
	}
	t := &toolResult{series: r.rec.summary(), PeakRSSBytes: hwm, CPUPerCall: (cpu1 - cpu0) / time.Duration(n)}
	if t.Errors > 0 {
		t.StderrTail = s.stderr.String()
	}
	return t, nil
}

// redact hides a password in the URL, which the report prints.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// loadAvg returns the 1-minute load average: the figures are wall-clock
// times, so a busy machine is worth knowing about when reading them.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	load, _, _ := strings.Cut(string(b), " ")
	return load
}

// logf reports progress on stderr, keeping stdout for the figures.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
}

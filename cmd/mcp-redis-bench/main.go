// Command mcp-redis-bench measures what the mcp-redis server costs over a
// plain Redis client, in one run against one real Redis:
//
//	(a) raw go-redis XADD of a typical audit entry, sequential;
//	(b) audit_log tool calls through the real binary over stdio, sequential,
//	    with the per-call audit on and off;
//	(c) the ratios b/a in calls/s;
//	(d) cold start: spawn to the reply to initialize;
//	(e) the server's peak RSS (VmHWM) after each series (b).
//
// It prints a table with the targets and PASS/MISS per target; the
// figures are for reading, not a test. Every key it writes lives under a
// fresh prefix bench:<random>: and is deleted at the end (SCAN+DEL, never
// FLUSH). It talks only to a loopback Redis and stops by itself (--timeout).
//
// Usage, from inside the module:
//
//	go run ./cmd/mcp-redis-bench [--redis-url redis://127.0.0.1:6379] [--bin PATH] [--n 10000] [--json]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
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
	protocol string
	timeout  time.Duration
	json     bool
}

func parseFlags() options {
	var o options
	flag.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379", "Redis to benchmark against (loopback only)")
	flag.StringVar(&o.bin, "bin", "", "path to the mcp-redis binary (default: go build ./cmd/mcp-redis into a temp dir)")
	flag.IntVar(&o.n, "n", 10000, "timed calls per series")
	flag.IntVar(&o.warmup, "warmup", 300, "untimed calls before each timed series")
	flag.IntVar(&o.coldRuns, "cold-runs", 20, "spawns measured for the cold start")
	flag.StringVar(&o.protocol, "protocol", mcp.ProtocolVersion20251125,
		"MCP protocol version the client asks for in series (b); 2026-07-28 negotiates the stateless revision")
	flag.DurationVar(&o.timeout, "timeout", 15*time.Minute, "stop the whole run after this long")
	flag.BoolVar(&o.json, "json", false, "also print the figures as one JSON object")
	flag.Parse()
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
	if o.n < 1 || o.warmup < 0 || o.coldRuns < 1 {
		return errors.New("--n and --cold-runs must be at least 1, --warmup at least 0")
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

// measure runs every measurement in turn. Each series gets its own key
// prefix, so no series writes into a stream another one filled.
func measure(ctx context.Context, o options, rdb redisClient, srv serverSpec, prefix string) (*results, error) {
	res := &results{N: o.n, Warmup: o.warmup, Protocol: o.protocol, RedisURL: redact(o.redisURL)}
	var err error

	logf("(a) raw XADD: %d warm-up + %d timed calls", o.warmup, o.n)
	if res.Raw, err = rawSeries(ctx, rdb, prefix+"raw:", o.warmup, o.n); err != nil {
		return nil, fmt.Errorf("raw XADD series: %w", err)
	}
	for _, audit := range []bool{true, false} {
		logf("(b) audit_log, audit %s: %d warm-up + %d timed calls", onOff(audit), o.warmup, o.n)
		s := srv
		s.audit = audit
		s.prefix = prefix + "audit-" + onOff(audit) + ":"
		ts, err := toolSeries(ctx, s, o.warmup, o.n)
		if err != nil {
			return nil, fmt.Errorf("audit_log series (audit %s): %w", onOff(audit), err)
		}
		if audit {
			res.AuditOn = ts
		} else {
			res.AuditOff = ts
		}
	}
	logf("(d) cold start: %d spawns", o.coldRuns)
	cold := srv
	cold.audit = true
	cold.prefix = prefix + "cold:"
	if res.Cold, err = coldStart(ctx, cold, o.coldRuns); err != nil {
		return nil, fmt.Errorf("cold start: %w", err)
	}
	return res, nil
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

// logf reports progress on stderr, keeping stdout for the figures.
func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", a...)
}

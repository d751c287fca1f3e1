package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// httpProtocol is the revision series (i) speaks: the last one with an
// initialize handshake and an Mcp-Session-Id, as a client of a shared
// server deployed today would.
const httpProtocol = mcp.ProtocolVersion20251125

// httpResult holds series (i): audit_log over Streamable HTTP at each
// concurrency next to raw XADD at the same concurrency, and the server's
// memory over a long run.
type httpResult struct {
	N, Warmup, Block int
	Stateless        bool
	Protocol         string
	Levels           []*httpLevel
	// Soak is SoakN calls at the highest concurrency on the audit-off
	// server, after the timed series; nil when --http-soak-n is 0.
	Soak  *loadSeries
	SoakN int
	// Memory of the audit-off server: after its first warm-up, before and
	// after the soak.
	MemWarm, MemBefore, MemAfter memSnap
	// CallsSinceWarm is the calls the audit-off server served between
	// MemWarm and MemAfter.
	CallsSinceWarm int
	RedisWatched   bool
	ServerLogs     string // the servers' stderr when calls failed
}

// httpLevel is one concurrency's series; On, Ping and SDK are nil when not
// run.
type httpLevel struct {
	Conc int
	// Raw is raw XADD; Script the server's own Redis work for audit_log
	// (stream.Store.Append: its Lua script) through go-redis, no MCP.
	Raw, Script, Off, On, Ping, SDK *loadSeries
}

func (l *httpLevel) all() []*loadSeries {
	var out []*loadSeries
	for _, s := range []*loadSeries{l.Raw, l.Script, l.Off, l.On, l.Ping, l.SDK} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func ratioLoad(tool, raw *loadSeries) float64 {
	if tool == nil || raw == nil || raw.CallsPerSec == 0 {
		return 0
	}
	return tool.CallsPerSec / raw.CallsPerSec
}

func (h *httpResult) failedCalls() int {
	n := 0
	for _, l := range h.Levels {
		for _, s := range l.all() {
			n += s.Errors
		}
	}
	if h.Soak != nil {
		n += h.Soak.Errors
	}
	return n
}

// top is the highest concurrency's level, which the targets judge.
func (h *httpResult) top() *httpLevel { return h.Levels[len(h.Levels)-1] }

// memGrowth is the larger of the growth of VmRSS and of VmHWM from a to b.
func memGrowth(a, b memSnap) int64 { return max(b.VmRSS-a.VmRSS, b.VmHWM-a.VmHWM) }

func (h *httpResult) targets() []target {
	top := h.top()
	off := atLeast(fmt.Sprintf("(i) HTTP tool/raw calls/s, c=%d, audit off", top.Conc), ratioLoad(top.Off, top.Raw), 0.4, "")
	off.Detail = fmt.Sprintf("%.0f vs %.0f calls/s", top.Off.CallsPerSec, top.Raw.CallsPerSec)
	out := []target{off}
	if h.Soak != nil {
		g := atMost(fmt.Sprintf("(i) HTTP server RSS growth, %d calls at c=%d", h.SoakN, top.Conc),
			mib(memGrowth(h.MemWarm, h.MemAfter)), 50, "MiB")
		g.Detail = fmt.Sprintf("max of VmRSS and VmHWM growth since warm-up (%d requests); over the soak alone %.1f MiB",
			h.CallsSinceWarm, mib(memGrowth(h.MemBefore, h.MemAfter)))
		out = append(out, g)
	}
	return out
}

// parseConc reads --http-conc: concurrencies, ascending and distinct.
func parseConc(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 || c > 1024 {
			return nil, fmt.Errorf("--http-conc: %q is not a concurrency between 1 and 1024", f)
		}
		if len(out) > 0 && c <= out[len(out)-1] {
			return nil, errors.New("--http-conc: list the concurrencies in ascending order, each once")
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("--http-conc: no concurrency")
	}
	return out, nil
}

// measureHTTP runs series (i). Two servers serve Streamable HTTP, with the
// per-call audit off and on; at each concurrency, raw XADD through go-redis
// and audit_log calls through each server (plus MCP ping, and mcp-go's
// client, on the audit-off server) take turns, each turn with conc calls in
// flight. Then the audit-off server serves the soak at the highest
// concurrency, its memory read before and after.
func measureHTTP(ctx context.Context, o options, rdb redisClient, srv serverSpec, prefix string) (*httpResult, error) {
	levels, err := parseConc(o.httpConc)
	if err != nil {
		return nil, err
	}
	maxConc := levels[len(levels)-1]
	res := &httpResult{N: o.httpN, Warmup: o.warmup, Block: o.block, Stateless: o.httpStateless,
		Protocol: httpProtocol, SoakN: o.httpSoakN}
	rpid := redisPID(ctx, rdb)
	res.RedisWatched = rpid != 0

	var servers []*httpServer
	defer func() {
		for _, s := range servers {
			s.stop()
		}
	}()
	start := func(audit bool) (*httpServer, *rpcClient, error) {
		spec := srv
		spec.audit = audit
		spec.prefix = prefix + "http-audit-" + onOff(audit) + ":"
		s, err := startHTTPServer(ctx, spec, o.httpStateless)
		if err != nil {
			return nil, nil, fmt.Errorf("http server (audit %s): %w", onOff(audit), err)
		}
		servers = append(servers, s)
		c, err := newRPCClient(ctx, s.addr, httpProtocol, maxConc)
		if err != nil {
			return nil, nil, s.withStderr(fmt.Errorf("http client (audit %s): %w", onOff(audit), err))
		}
		return s, c, nil
	}
	offSrv, off, err := start(false)
	if err != nil {
		return nil, err
	}
	defer off.close()
	logf("(i) http server, audit off: pid %d on %s (stateless %v)", offSrv.pid(), offSrv.addr, o.httpStateless)
	var onSrv *httpServer
	var on *rpcClient
	if o.httpAuditOn {
		if onSrv, on, err = start(true); err != nil {
			return nil, err
		}
		defer on.close()
		logf("(i) http server, audit on: pid %d on %s", onSrv.pid(), onSrv.addr)
	}
	var sdk *sdkClient
	if o.httpMCPGo {
		if sdk, err = newSDKClient(ctx, offSrv.addr, httpProtocol, maxConc); err != nil {
			return nil, offSrv.withStderr(fmt.Errorf("mcp-go client: %w", err))
		}
		defer sdk.close()
	}

	audit := func(c *rpcClient, scope string) func(ctx context.Context, i int) error {
		gen := newEntries(scope)
		return func(ctx context.Context, i int) error { return c.callAudit(ctx, gen.next(i)) }
	}
	offCalls := 0
	for li, conc := range levels {
		tag := fmt.Sprintf("c%d:", conc)
		l := &httpLevel{Conc: conc}
		raw := newLoadRunner("raw go-redis XADD", conc, o.httpN, rawXAdd(rdb, prefix+"http-raw-"+tag))
		raw.redisPID = rpid
		script := newLoadRunner("append script, go-redis (no MCP)", conc, o.httpN, scriptAppend(rdb, prefix+"http-script-"+tag))
		script.redisPID = rpid
		offR := newLoadRunner("audit_log, audit off", conc, o.httpN, audit(off, prefix+"http-audit-off-"+tag))
		offR.serverPID, offR.redisPID = offSrv.pid(), rpid
		runners := []*loadRunner{raw, script, offR}
		var onR, pingR, sdkR *loadRunner
		if on != nil {
			onR = newLoadRunner("audit_log, audit on", conc, o.httpN, audit(on, prefix+"http-audit-on-"+tag))
			onR.serverPID, onR.redisPID = onSrv.pid(), rpid
			runners = append(runners, onR)
		}
		pingR = newLoadRunner("MCP ping (HTTP floor)", conc, o.httpN, func(ctx context.Context, _ int) error { return off.ping(ctx) })
		pingR.serverPID, pingR.redisPID = offSrv.pid(), rpid
		runners = append(runners, pingR)
		if sdk != nil {
			gen := newEntries(prefix + "http-sdk-" + tag)
			sdkR = newLoadRunner("audit_log, audit off, mcp-go client", conc, o.httpN,
				func(ctx context.Context, i int) error { return sdk.callAudit(ctx, gen.next(i)) })
			sdkR.serverPID, sdkR.redisPID = offSrv.pid(), rpid
			runners = append(runners, sdkR)
		}

		warm := max(o.warmup, 20*conc)
		for _, r := range runners {
			logf("(i) c=%d %s: %d warm-up calls", conc, r.name, warm)
			if err := r.warmUp(ctx, warm); err != nil {
				return nil, offSrv.withStderr(err)
			}
		}
		if li == 0 {
			if res.MemWarm, err = offSrv.memory(ctx); err != nil {
				return nil, err
			}
		}
		block := o.block * conc
		logf("(i) c=%d: %d timed calls per series, in turns of %d", conc, o.httpN, block)
		if err := interleaveLoad(ctx, runners, o.httpN, block); err != nil {
			return nil, err
		}
		l.Raw, l.Script, l.Off, l.Ping = raw.result(), script.result(), offR.result(), pingR.result()
		if onR != nil {
			l.On = onR.result()
		}
		if sdkR != nil {
			l.SDK = sdkR.result()
		}
		res.Levels = append(res.Levels, l)
		// The audit-off server's share: audit_log and ping through the
		// hand-written client, audit_log through mcp-go's; the warm-ups of
		// later levels come after the first memory reading too.
		onOffSrv := 2
		if sdkR != nil {
			onOffSrv++
		}
		offCalls += onOffSrv * o.httpN
		if li > 0 {
			offCalls += onOffSrv * warm
		}
	}

	if o.httpSoakN > 0 {
		if res.MemBefore, err = offSrv.memory(ctx); err != nil {
			return nil, err
		}
		logf("(i) soak: %d audit_log calls at c=%d on the audit-off server (pid %d)", o.httpSoakN, maxConc, offSrv.pid())
		soak := newLoadRunner("audit_log, audit off, soak", maxConc, o.httpSoakN, audit(off, prefix+"http-soak:"))
		soak.serverPID, soak.redisPID = offSrv.pid(), rpid
		soak.turn(ctx, 0, o.httpSoakN)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		res.Soak = soak.result()
		if res.MemAfter, err = offSrv.memory(ctx); err != nil {
			return nil, err
		}
		offCalls += o.httpSoakN
	}
	res.CallsSinceWarm = offCalls
	if res.failedCalls() > 0 {
		for _, s := range servers {
			res.ServerLogs += lastLines(s.stderr.String(), 10) + "\n"
		}
	}
	return res, nil
}

func printHTTPReport(w io.Writer, h *httpResult) {
	mode := "stateful: one Mcp-Session-Id per client"
	if h.Stateless {
		mode = "stateless server (MCP_REDIS_HTTP_STATELESS=true)"
	}
	fmt.Fprintf(w, "\n(i) Streamable HTTP at /mcp on 127.0.0.1, protocol %s, %s; hand-written JSON-RPC client on keep-alive connections\n"+
		"    (mcp-go's client for the row that says so). %d timed calls per series and concurrency after a warm-up, series in turns of %d×conc;\n"+
		"    conc = calls in flight; calls/s = calls over the wall-clock time of the series' turns. CPU columns: per call, of the server, of Redis\n"+
		"    (all of its clients count, other processes' too) and of this process (the client: HTTP client, or go-redis).\n\n",
		h.Protocol, mode, h.N, h.Block)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tconc\tcalls/s\tp50 ms\tp99 ms\terrors\tserver CPU µs\tRedis CPU µs\tclient CPU µs\t")
	row := func(s *loadSeries) {
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.3f\t%.3f\t%d\t%s\t%s\t%s\t\n", s.Name, s.Conc, s.CallsPerSec, ms(s.P50), ms(s.P99), s.Errors,
			cpuText(s.ServerCPU), cpuText(s.RedisCPU), cpuText(s.BenchCPU))
	}
	for _, l := range h.Levels {
		for _, s := range l.all() {
			row(s)
		}
	}
	if h.Soak != nil {
		row(h.Soak)
	}
	tw.Flush()

	fmt.Fprintln(w)
	for _, l := range h.Levels {
		fmt.Fprintf(w, "    c=%d tool/raw calls/s: audit off %.3f", l.Conc, ratioLoad(l.Off, l.Raw))
		if l.On != nil {
			fmt.Fprintf(w, ", audit on %.3f", ratioLoad(l.On, l.Raw))
		}
		if l.SDK != nil {
			fmt.Fprintf(w, ", audit off with mcp-go's client %.3f", ratioLoad(l.SDK, l.Raw))
		}
		fmt.Fprintf(w, "; append script/raw %.3f; ping/raw %.3f\n", ratioLoad(l.Script, l.Raw), ratioLoad(l.Ping, l.Raw))
	}
	fmt.Fprintln(w, "    Bounds: an audit_log call costs at least a ping over HTTP, so tool/raw < ping/raw; and Redis alone runs audit_log's script\n"+
		"    (append script: the same keys and arguments through go-redis, no MCP) at append script/raw of raw XADD's rate.")
	if h.Soak != nil {
		fmt.Fprintf(w, "    audit-off server memory: %s after warm-up; %s before the soak; %s after it (%d requests since warm-up)\n",
			memText(h.MemWarm), memText(h.MemBefore), memText(h.MemAfter), h.CallsSinceWarm)
	}
	if !h.RedisWatched {
		fmt.Fprintln(w, "    Redis CPU not shown: its process is not visible from here.")
	}
	for _, l := range h.Levels {
		for _, s := range l.all() {
			printErrors(w, fmt.Sprintf("(i) c=%d %s", s.Conc, s.Name), s.series, "")
		}
	}
	if h.Soak != nil {
		printErrors(w, "(i) soak", h.Soak.series, "")
	}
	if h.ServerLogs != "" {
		fmt.Fprintf(w, "http servers' stderr (last lines):\n%s", h.ServerLogs)
	}
}

func cpuText(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", us(d))
}

func memText(m memSnap) string {
	s := fmt.Sprintf("VmRSS %.1f MiB, VmHWM %.1f MiB", mib(m.VmRSS), mib(m.VmHWM))
	if m.HeapInuse >= 0 {
		s += fmt.Sprintf(", Go heap in use %.1f MiB", m.HeapInuse/(1<<20))
	}
	if m.Goroutines >= 0 {
		s += fmt.Sprintf(", %.0f goroutines", m.Goroutines)
	}
	return s
}

// The JSON form of series (i).
type (
	jsonLoad struct {
		Conc int `json:"conc"`
		jsonSeries
		ServerCPUUS *float64 `json:"server_cpu_us_per_call,omitempty"`
		RedisCPUUS  *float64 `json:"redis_cpu_us_per_call,omitempty"`
		ClientCPUUS *float64 `json:"client_cpu_us_per_call,omitempty"`
	}
	jsonHTTPLevel struct {
		Conc          int       `json:"conc"`
		Raw           jsonLoad  `json:"raw_xadd"`
		Script        jsonLoad  `json:"append_script"`
		AuditOff      jsonLoad  `json:"audit_log_audit_off"`
		AuditOn       *jsonLoad `json:"audit_log_audit_on,omitempty"`
		Ping          jsonLoad  `json:"ping"`
		MCPGo         *jsonLoad `json:"audit_log_audit_off_mcp_go_client,omitempty"`
		RatioAuditOff float64   `json:"ratio_audit_off"`
		RatioAuditOn  *float64  `json:"ratio_audit_on,omitempty"`
		RatioMCPGo    *float64  `json:"ratio_audit_off_mcp_go_client,omitempty"`
	}
	jsonMem struct {
		VmRSSMiB     float64  `json:"vm_rss_mib"`
		VmHWMMiB     float64  `json:"vm_hwm_mib"`
		HeapInuseMiB *float64 `json:"go_heap_inuse_mib,omitempty"`
		Goroutines   *float64 `json:"goroutines,omitempty"`
	}
	jsonHTTP struct {
		Protocol       string          `json:"protocol"`
		Stateless      bool            `json:"stateless"`
		N              int             `json:"n"`
		Levels         []jsonHTTPLevel `json:"levels"`
		Soak           *jsonLoad       `json:"soak,omitempty"`
		MemWarm        *jsonMem        `json:"memory_after_warmup,omitempty"`
		MemBefore      *jsonMem        `json:"memory_before_soak,omitempty"`
		MemAfter       *jsonMem        `json:"memory_after_soak,omitempty"`
		CallsSinceWarm int             `json:"calls_since_warmup,omitempty"`
	}
)

func toJSONLoad(s *loadSeries) jsonLoad {
	j := jsonLoad{Conc: s.Conc, jsonSeries: toJSONSeries(s.series)}
	opt := func(d time.Duration) *float64 {
		if d < 0 {
			return nil
		}
		v := us(d)
		return &v
	}
	j.ServerCPUUS, j.RedisCPUUS, j.ClientCPUUS = opt(s.ServerCPU), opt(s.RedisCPU), opt(s.BenchCPU)
	return j
}

func toJSONMem(m memSnap) *jsonMem {
	j := &jsonMem{VmRSSMiB: mib(m.VmRSS), VmHWMMiB: mib(m.VmHWM)}
	if m.HeapInuse >= 0 {
		v := m.HeapInuse / (1 << 20)
		j.HeapInuseMiB = &v
	}
	if m.Goroutines >= 0 {
		v := m.Goroutines
		j.Goroutines = &v
	}
	return j
}

func toJSONHTTP(h *httpResult) *jsonHTTP {
	j := &jsonHTTP{Protocol: h.Protocol, Stateless: h.Stateless, N: h.N}
	for _, l := range h.Levels {
		jl := jsonHTTPLevel{Conc: l.Conc, Raw: toJSONLoad(l.Raw), Script: toJSONLoad(l.Script), AuditOff: toJSONLoad(l.Off), Ping: toJSONLoad(l.Ping),
			RatioAuditOff: ratioLoad(l.Off, l.Raw)}
		if l.On != nil {
			on, r := toJSONLoad(l.On), ratioLoad(l.On, l.Raw)
			jl.AuditOn, jl.RatioAuditOn = &on, &r
		}
		if l.SDK != nil {
			sdk, r := toJSONLoad(l.SDK), ratioLoad(l.SDK, l.Raw)
			jl.MCPGo, jl.RatioMCPGo = &sdk, &r
		}
		j.Levels = append(j.Levels, jl)
	}
	if h.Soak != nil {
		soak := toJSONLoad(h.Soak)
		j.Soak = &soak
		j.MemWarm, j.MemBefore, j.MemAfter = toJSONMem(h.MemWarm), toJSONMem(h.MemBefore), toJSONMem(h.MemAfter)
		j.CallsSinceWarm = h.CallsSinceWarm
	}
	return j
}

// scriptAppend returns the call of the append-script series: what the
// server asks of Redis for one audit_log call — stream.Store.Append, the
// idempotency check, XADD … MAXLEN ~, the record and the PUBLISH in one
// Lua script — with the same entry, the same keys and arguments, through
// go-redis, without MCP. Between raw XADD and audit_log, it tells Redis's
// share of the gap from the server's.
func scriptAppend(rdb redisClient, prefix string) func(ctx context.Context, i int) error {
	store := stream.NewStore(rdb, keyspace.Keyspace{Prefix: prefix},
		func(string) int64 { return auditMaxLen }, config.Defaults().Idempotency.TTL)
	gen := newEntries(prefix)
	announce := map[string]bool{"log_id": true, "module": true, "procedure": true, "status": true, "workflow_id": true, "session_id": true}
	return func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		e := gen.next(i)
		kv := e.fields()
		a := stream.Append{Stream: keyspace.AuditLog, IdemID: e.LogID, Fields: make([]stream.Field, 0, len(kv)/2)}
		h := sha256.New()
		for j := 0; j < len(kv); j += 2 {
			f := stream.Field{Name: kv[j], Value: kv[j+1]}
			a.Fields = append(a.Fields, f)
			if announce[f.Name] {
				a.Notice = append(a.Notice, f)
			}
			h.Write([]byte(f.Name))
			h.Write([]byte{0})
			h.Write([]byte(f.Value))
			h.Write([]byte{0})
		}
		a.Fingerprint = hex.EncodeToString(h.Sum(nil))
		res, err := store.Append(ctx, a)
		if err != nil {
			return err
		}
		if res.Duplicate {
			return fmt.Errorf("append: log_id %q came back a duplicate", e.LogID)
		}
		return nil
	}
}

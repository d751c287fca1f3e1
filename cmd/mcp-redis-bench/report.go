package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// results are every figure of one run.
type results struct {
	N, Warmup, Block int
	Protocol         string
	RedisURL         string
	// LoadBefore and LoadAfter are the 1-minute load averages around the
	// measurements.
	LoadBefore, LoadAfter string
	Raw                   *series
	AuditOn, AuditOff     *toolResult
	// Ping is an MCP ping over stdio: the transport's floor.
	Ping *toolResult
	// LockRate holds (g) and (h), measured in this process.
	LockRate *lockRateResult
	Cold     spread
	// HTTP is series (i); nil with --http=false. With --http-only it is
	// the only one set.
	HTTP *httpResult
}

// httpOnly reports a run of (i) alone.
func (r *results) httpOnly() bool { return r.Raw == nil }

func (r *results) failedCalls() int {
	n := 0
	if !r.httpOnly() {
		n += r.Raw.Errors + r.AuditOn.Errors + r.AuditOff.Errors + r.Ping.Errors + r.LockRate.failedCalls()
	}
	if r.HTTP != nil {
		n += r.HTTP.failedCalls()
	}
	return n
}

// ratio is b/a in calls/s: the share of raw XADD throughput the server keeps.
// floorBound is the highest b/a the floor allows: a call that costs one
// ping and one raw XADD runs at f·a/(f+a) calls/s, which is f/(f+a) of a.
func (r *results) floorBound() float64 {
	f, a := r.Ping.CallsPerSec, r.Raw.CallsPerSec
	if f+a == 0 {
		return 0
	}
	return f / (f + a)
}

func (r *results) ratio(b *toolResult) float64 {
	if r.Raw.CallsPerSec == 0 {
		return 0
	}
	return b.CallsPerSec / r.Raw.CallsPerSec
}

// target is one of the goals and how this run fares against it.
type target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Op     string  `json:"op"` // ">=" or "<="
	Limit  float64 `json:"limit"`
	Unit   string  `json:"unit,omitempty"`
	Pass   bool    `json:"pass"`
	Detail string  `json:"-"`
	// Digits are the decimals printed; 1 when 0.
	Digits int `json:"-"`
}

func atLeast(name string, v, limit float64, unit string) target {
	return target{Name: name, Value: v, Op: ">=", Limit: limit, Unit: unit, Pass: v >= limit}
}

func atMost(name string, v, limit float64, unit string) target {
	return target{Name: name, Value: v, Op: "<=", Limit: limit, Unit: unit, Pass: v <= limit}
}

// targets are the goals stated in the issue.
func (r *results) targets() []target {
	var out []target
	if !r.httpOnly() {
		out = r.stdioTargets()
	}
	if r.HTTP != nil {
		out = append(out, r.HTTP.targets()...)
	}
	return out
}

func (r *results) stdioTargets() []target {
	cold := atMost("(d) cold start, median", ms(r.Cold.Median), 20, "ms")
	cold.Detail = fmt.Sprintf("min %.1f / max %.1f ms, %d runs", ms(r.Cold.Min), ms(r.Cold.Max), r.Cold.Runs)
	lr := r.LockRate
	wake := atMost("(h) wake-up after release, median", ms(lr.Wake.Median), 5, "ms")
	wake.Digits = 2
	wake.Detail = fmt.Sprintf("min %.2f / max %.2f ms, %d runs; from release_lock's start: median %.2f, max %.2f ms",
		ms(lr.Wake.Min), ms(lr.Wake.Max), lr.Wake.Runs, ms(lr.WakeFromStart.Median), ms(lr.WakeFromStart.Max))
	if n := lr.wakeFailed(); n > 0 {
		wake.Detail += fmt.Sprintf(", %d failed", n)
	}
	if lr.Wake.Runs == 0 {
		wake.Pass = false
	}
	return []target{
		atLeast("(c) b/a calls/s, audit off", r.ratio(r.AuditOff), 0.5, ""),
		atLeast("(c) b/a calls/s, audit on", r.ratio(r.AuditOn), 0.4, ""),
		cold,
		atMost("(e) peak RSS (VmHWM), audit on", mib(r.AuditOn.PeakRSSBytes), 40, "MiB"),
		atMost("(e) peak RSS (VmHWM), audit off", mib(r.AuditOff.PeakRSSBytes), 40, "MiB"),
		atLeast("(g) tool/raw acquire+release pairs/s", lr.lockRatio(), 0.6, ""),
		atLeast("(g) tool/raw check_rate calls/s", lr.rateRatio(), 0.6, ""),
		wake,
	}
}

func printReport(w io.Writer, r *results) {
	if r.httpOnly() {
		fmt.Fprintf(w, "\nmcp-redis bench, (i) only: %s\n", r.RedisURL)
		fmt.Fprintf(w, "%d CPUs, load average %s before, %s after\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)
		printHTTPReport(w, r.HTTP)
		printTargets(w, r)
		return
	}
	fmt.Fprintf(w, "\nmcp-redis bench: %s, %d sequential timed calls per series after %d warm-up, series (a) and (b) in turns of %d, protocol %s for (b)\n",
		r.RedisURL, r.N, r.Warmup, r.Block, r.Protocol)
	fmt.Fprintf(w, "%d CPUs, load average %s before, %s after\n\n", runtime.NumCPU(), r.LoadBefore, r.LoadAfter)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "series\tcalls/s\tp50 ms\tp99 ms\terrors\tpeak RSS MiB\tserver CPU µs/call\t")
	seriesRow(tw, "(a) raw go-redis XADD", r.Raw, "-", "-")
	toolRow(tw, "(b) audit_log, audit on", r.AuditOn)
	toolRow(tw, "(b) audit_log, audit off", r.AuditOff)
	toolRow(tw, "(f) ping over stdio (floor)", r.Ping)
	lr := r.LockRate
	procRow(tw, "(g) acquire+release pairs, raw go-redis", lr.LockRaw)
	procRow(tw, "(g) acquire+release pairs, tool layer", lr.LockTool)
	procRow(tw, "(g) check_rate, raw go-redis", lr.RateRaw)
	procRow(tw, "(g) check_rate, tool layer", lr.RateTool)
	tw.Flush()
	fmt.Fprintf(w, "\n(g) in this process, %d timed calls per series after %d warm-up, in turns of %d; tool layer = app.New + MCPServer.HandleMessage\n"+
		"    (JSON-RPC in, validation, handler, Redis, JSON-RPC response encoded), no transport; a pair is acquire_lock then release_lock.\n"+
		"    Their CPU column is this process's CPU per call (tool layer and client, or go-redis), not Redis's; the pair is one call.\n",
		lr.N, r.Warmup, r.Block)
	fmt.Fprintf(w, "(h) holder and waiter are two in-process servers on one keyspace; the waiter asks wait_ms %d; latency from release_lock\n"+
		"    returning to the waiter's acquire_lock returning acquired, the holder releasing once the waiter's first try is refused\n"+
		"    (seen by a go-redis hook, no sleep). Redis writes the release notice out before the release's reply, so the waiter can be\n"+
		"    done before release_lock has returned to its caller: values at or below 0 are real; from release_lock's start they are not.\n",
		lr.WakeWaitMS)
	if r.HTTP != nil {
		printHTTPReport(w, r.HTTP)
	}
	printTargets(w, r)

	fmt.Fprintf(w, "\n(f) bounds (c): a tool call costs at least a ping (f) plus a Redis round trip (a), so b/a <= f/(f+a) = %.3f here.\n",
		r.floorBound())

	printErrors(w, "(a) raw XADD", r.Raw, "")
	printErrors(w, "(b) audit on", r.AuditOn.series, r.AuditOn.StderrTail)
	printErrors(w, "(b) audit off", r.AuditOff.series, r.AuditOff.StderrTail)
	printErrors(w, "(f) ping", r.Ping.series, r.Ping.StderrTail)
	printErrors(w, "(g) lock pairs, raw", lr.LockRaw.series, "")
	printErrors(w, "(g) lock pairs, tool layer", lr.LockTool.series, "")
	printErrors(w, "(g) check_rate, raw", lr.RateRaw.series, "")
	printErrors(w, "(g) check_rate, tool layer", lr.RateTool.series, "")
	if n := lr.wakeFailed(); n > 0 {
		printErrors(w, "(h) wake-up", &series{Calls: lr.WakeRuns, Errors: n, ErrorCounts: lr.WakeErrors}, "")
	}
}

// printTargets prints the table of targets, PASS or MISS each.
func printTargets(w io.Writer, r *results) {
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tresult\t")
	for _, t := range r.targets() {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", t.Name, value(t), t.Op, limitText(t.Limit, t.Unit), passMiss(t.Pass), t.Detail)
	}
	tw.Flush()
}

func seriesRow(w io.Writer, name string, s *series, rss, cpu string) {
	fmt.Fprintf(w, "%s\t%.0f\t%.3f\t%.3f\t%d\t%s\t%s\t\n", name, s.CallsPerSec, ms(s.P50), ms(s.P99), s.Errors, rss, cpu)
}

func toolRow(w io.Writer, name string, t *toolResult) {
	seriesRow(w, name, t.series, fmt.Sprintf("%.1f", mib(t.PeakRSSBytes)), fmt.Sprintf("%.0f", us(t.CPUPerCall)))
}

func procRow(w io.Writer, name string, p *procSeries) {
	seriesRow(w, name, p.series, "-", fmt.Sprintf("%.0f", us(p.CPUPerCall)))
}

// printErrors lists each distinct failure of a series with its count, and
// the end of the server's log when there is one.
func printErrors(w io.Writer, name string, s *series, stderrTail string) {
	if s.Errors == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s: %d of %d calls failed:\n", name, s.Errors, s.Calls)
	for _, msg := range topErrors(s.ErrorCounts) {
		fmt.Fprintf(w, "  %6d × %s\n", s.ErrorCounts[msg], msg)
	}
	if tail := lastLines(stderrTail, 10); tail != "" {
		fmt.Fprintf(w, "server stderr (last lines):\n%s\n", tail)
	}
}

// lastLines returns the last n lines of s, without the trailing newline.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}

func value(t target) string {
	if t.Unit == "" {
		return fmt.Sprintf("%.3f", t.Value)
	}
	return fmt.Sprintf("%.*f %s", max(t.Digits, 1), t.Value, t.Unit)
}

func limitText(limit float64, unit string) string {
	if unit == "" {
		return fmt.Sprintf("%g", limit)
	}
	return fmt.Sprintf("%g %s", limit, unit)
}

func passMiss(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// The JSON form of the figures: milliseconds and MiB as numbers.
type (
	jsonSeries struct {
		CallsPerSec  float64  `json:"calls_per_sec"`
		P50MS        float64  `json:"p50_ms"`
		P99MS        float64  `json:"p99_ms"`
		Calls        int      `json:"calls"`
		Errors       int      `json:"errors"`
		PeakRSSMiB   *float64 `json:"peak_rss_mib,omitempty"`
		CPUUSPerCall *float64 `json:"server_cpu_us_per_call,omitempty"`
		ProcCPUUS    *float64 `json:"process_cpu_us_per_call,omitempty"`
	}
	jsonReport struct {
		RedisURL      string     `json:"redis_url"`
		Protocol      string     `json:"protocol"`
		N             int        `json:"n"`
		Warmup        int        `json:"warmup"`
		Block         int        `json:"block"`
		CPUs          int        `json:"cpus"`
		LoadBefore    string     `json:"load_avg_before"`
		LoadAfter     string     `json:"load_avg_after"`
		RawXAdd       jsonSeries `json:"raw_xadd"`
		AuditOn       jsonSeries `json:"audit_log_audit_on"`
		AuditOff      jsonSeries `json:"audit_log_audit_off"`
		Ping          jsonSeries `json:"ping_floor"`
		RatioAuditOn  float64    `json:"ratio_audit_on"`
		RatioAuditOff float64    `json:"ratio_audit_off"`
		FloorBound    float64    `json:"ratio_bound_from_floor"`
		LockN         int        `json:"lock_n"`
		LockPairsRaw  jsonSeries `json:"lock_pairs_raw"`
		LockPairsTool jsonSeries `json:"lock_pairs_tool"`
		CheckRateRaw  jsonSeries `json:"check_rate_raw"`
		CheckRateTool jsonSeries `json:"check_rate_tool"`
		RatioLock     float64    `json:"ratio_lock_pairs_tool_raw"`
		RatioRate     float64    `json:"ratio_check_rate_tool_raw"`
		WakeUp        struct {
			Runs     int     `json:"runs"`
			Failed   int     `json:"failed"`
			WaitMS   int64   `json:"wait_ms"`
			MedianMS float64 `json:"median_ms"`
			MinMS    float64 `json:"min_ms"`
			MaxMS    float64 `json:"max_ms"`
			// FromStart* count from release_lock's start instead of its return.
			FromStartMedianMS float64 `json:"from_release_start_median_ms"`
			FromStartMaxMS    float64 `json:"from_release_start_max_ms"`
		} `json:"wake_up"`
		ColdStart struct {
			Runs     int     `json:"runs"`
			MedianMS float64 `json:"median_ms"`
			MinMS    float64 `json:"min_ms"`
			MaxMS    float64 `json:"max_ms"`
		} `json:"cold_start"`
		HTTP    *jsonHTTP `json:"http,omitempty"`
		Targets []target  `json:"targets"`
	}
	// jsonHTTPOnly is the JSON form of a --http-only run.
	jsonHTTPOnly struct {
		RedisURL   string    `json:"redis_url"`
		CPUs       int       `json:"cpus"`
		LoadBefore string    `json:"load_avg_before"`
		LoadAfter  string    `json:"load_avg_after"`
		HTTP       *jsonHTTP `json:"http"`
		Targets    []target  `json:"targets"`
	}
)

func toJSONSeries(s *series) jsonSeries {
	return jsonSeries{CallsPerSec: s.CallsPerSec, P50MS: ms(s.P50), P99MS: ms(s.P99), Calls: s.Calls, Errors: s.Errors}
}

func toJSONTool(t *toolResult) jsonSeries {
	j := toJSONSeries(t.series)
	rss, cpu := mib(t.PeakRSSBytes), us(t.CPUPerCall)
	j.PeakRSSMiB, j.CPUUSPerCall = &rss, &cpu
	return j
}

func toJSONProc(p *procSeries) jsonSeries {
	j := toJSONSeries(p.series)
	cpu := us(p.CPUPerCall)
	j.ProcCPUUS = &cpu
	return j
}

func printJSON(w io.Writer, r *results) error {
	if r.httpOnly() {
		fmt.Fprintln(w)
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		return enc.Encode(jsonHTTPOnly{RedisURL: r.RedisURL, CPUs: runtime.NumCPU(), LoadBefore: r.LoadBefore,
			LoadAfter: r.LoadAfter, HTTP: toJSONHTTP(r.HTTP), Targets: r.targets()})
	}
	j := jsonReport{
		RedisURL: r.RedisURL, Protocol: r.Protocol, N: r.N, Warmup: r.Warmup, Block: r.Block,
		CPUs: runtime.NumCPU(), LoadBefore: r.LoadBefore, LoadAfter: r.LoadAfter,
		RawXAdd:       toJSONSeries(r.Raw),
		AuditOn:       toJSONTool(r.AuditOn),
		AuditOff:      toJSONTool(r.AuditOff),
		Ping:          toJSONTool(r.Ping),
		RatioAuditOn:  r.ratio(r.AuditOn),
		RatioAuditOff: r.ratio(r.AuditOff),
		FloorBound:    r.floorBound(),
		LockN:         r.LockRate.N,
		LockPairsRaw:  toJSONProc(r.LockRate.LockRaw),
		LockPairsTool: toJSONProc(r.LockRate.LockTool),
		CheckRateRaw:  toJSONProc(r.LockRate.RateRaw),
		CheckRateTool: toJSONProc(r.LockRate.RateTool),
		RatioLock:     r.LockRate.lockRatio(),
		RatioRate:     r.LockRate.rateRatio(),
		Targets:       r.targets(),
	}
	wk := r.LockRate.Wake
	j.WakeUp.Runs, j.WakeUp.Failed, j.WakeUp.WaitMS = wk.Runs, r.LockRate.wakeFailed(), r.LockRate.WakeWaitMS
	j.WakeUp.MedianMS, j.WakeUp.MinMS, j.WakeUp.MaxMS = ms(wk.Median), ms(wk.Min), ms(wk.Max)
	j.WakeUp.FromStartMedianMS, j.WakeUp.FromStartMaxMS = ms(r.LockRate.WakeFromStart.Median), ms(r.LockRate.WakeFromStart.Max)
	if r.HTTP != nil {
		j.HTTP = toJSONHTTP(r.HTTP)
	}
	j.ColdStart.Runs = r.Cold.Runs
	j.ColdStart.MedianMS, j.ColdStart.MinMS, j.ColdStart.MaxMS = ms(r.Cold.Median), ms(r.Cold.Min), ms(r.Cold.Max)
	fmt.Fprintln(w)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false) // keep ">=" readable in the targets
	return enc.Encode(j)
}

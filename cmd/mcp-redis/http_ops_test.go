package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// Operating the HTTP server: /readyz follows Redis, /metrics counts the
// calls, and SIGTERM drains the calls in flight before the exit.

// /readyz follows Redis: 200 while it answers PING, 503 while it is down,
// 200 again once it is back, with no restart of the server; tool calls
// during the outage are tool errors, and succeed after it.
func TestReadyzFollowsRedisAndCallsRecoverWithoutAServerRestart(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	priv := testredis.Start(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_REDIS_TIMEOUT=500ms"}, "--redis-url", priv.URL())
	c := dialStreamable(t, p.base, tok)
	write := `{"module":"m","procedure":"p","status":"ok"}`

	ready := func() (int, string) {
		res, body := p.get(t, "/readyz", nil)
		return res.StatusCode, body
	}
	if code, body := ready(); code != http.StatusOK || !strings.Contains(body, `"redis":"ok"`) {
		t.Fatalf("/readyz with Redis up: %d %s", code, body)
	}
	okOver(t, c, "audit_log", write, &writeOut{})

	priv.Stop()
	start := time.Now()
	code, body := ready()
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "unavailable") {
		t.Errorf("/readyz with Redis down: %d %s", code, body)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("/readyz with Redis down took %v", took)
	}
	if res, _ := p.get(t, "/healthz", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz with Redis down: %d (liveness must not follow Redis)", res.StatusCode)
	}
	for _, call := range [][2]string{
		{"audit_log", write},
		{"get_context", `{"workflow_id":"w"}`},
		{"acquire_lock", `{"resource":"r"}`},
		{"check_rate", `{"subject":"s"}`},
	} {
		res := callOver(t, c, call[0], call[1])
		if !res.IsError || !strings.Contains(resultText(res), "unavailable") {
			t.Errorf("%s with Redis down: isError=%v %q", call[0], res.IsError, resultText(res))
		}
	}

	priv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body := ready()
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d %s 10s after Redis came back", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The pool may hold a dead connection or two: a call or two may still
	// fail, then calls succeed.
	for {
		res := callOver(t, c, "audit_log", write)
		if !res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit_log still failing after Redis came back: %s", resultText(res))
		}
		time.Sleep(50 * time.Millisecond)
	}
	var a acquireOut
	okOver(t, c, "acquire_lock", `{"resource":"r","ttl_ms":1000}`, &a)
	if !a.Acquired {
		t.Errorf("acquire_lock after the outage: %+v", a)
	}
}

// metricsText fetches /metrics with tok and returns its sample lines by
// name and labels, as Prometheus prints them.
func metricsText(t *testing.T, p *httpProc, tok string) map[string]string {
	t.Helper()
	res, body := p.get(t, "/metrics", bearer(tok))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %s", res.StatusCode, body)
	}
	samples := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		samples[line[:i]] = line[i+1:]
	}
	return samples
}

// /metrics counts tool calls by tool and outcome, times them, shows the
// calls in flight and the build; it needs the token.
func TestMetricsCountCallsByToolAndOutcomeAndShowCallsInFlight(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, tok)

	if res, _ := p.get(t, "/metrics", nil); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("/metrics without the token: %d", res.StatusCode)
	}
	okOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok"}`, &writeOut{})
	okOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok"}`, &writeOut{})
	okOver(t, c, "check_rate", `{"subject":"s"}`, &rateOut{})
	callOver(t, c, "read_stream", `{"stream":"user_feedback","count":5000}`)
	callOver(t, c, "read_stream", `{"stream":"user_feedback"}`)

	m := metricsText(t, p, tok)
	for k, want := range map[string]string{
		`mcp_redis_tool_calls_total{outcome="ok",tool="audit_log"}`:                  "2",
		`mcp_redis_tool_calls_total{outcome="ok",tool="check_rate"}`:                 "1",
		`mcp_redis_tool_calls_total{outcome="ok",tool="read_stream"}`:                "1",
		`mcp_redis_tool_calls_total{outcome="invalid_argument",tool="read_stream"}`:  "1",
		`mcp_redis_tool_call_duration_seconds_count{tool="audit_log"}`:               "2",
		`mcp_redis_tool_call_duration_seconds_bucket{tool="audit_log",le="+Inf"}`:    "2",
		`mcp_redis_tool_call_duration_seconds_count{tool="read_stream"}`:             "2",
		`mcp_redis_tool_calls_in_flight`:                                             "0",
		`mcp_redis_build_info{version="` + binVersion(t) + `"}`:                      "1",
		`mcp_redis_tool_call_duration_seconds_bucket{tool="check_rate",le="30"}`:     "1",
		`mcp_redis_tool_call_duration_seconds_bucket{tool="check_rate",le="0.0005"}`: "",
	} {
		got, ok := m[k]
		switch {
		case !ok:
			t.Errorf("no sample %s", k)
		case want != "" && got != want:
			t.Errorf("%s = %s, want %s", k, got, want)
		}
	}
	if _, ok := m[`mcp_redis_tool_calls_total{outcome="ok",tool="get_context"}`]; ok {
		t.Error("a count for a tool never called")
	}

	// A call waiting for a held lock is in flight until it answers.
	var a acquireOut
	okOver(t, c, "acquire_lock", `{"resource":"m","ttl_ms":10000}`, &a)
	answered := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "acquire_lock"
		req.Params.Arguments = json.RawMessage(`{"resource":"m","wait_ms":1000}`)
		res, _ := c.CallTool(context.Background(), req)
		answered <- res
	}()
	deadline := time.Now().Add(900 * time.Millisecond)
	for metricsText(t, p, tok)[`mcp_redis_tool_calls_in_flight`] != "1" {
		if time.Now().After(deadline) {
			t.Fatal("the waiting call never showed in flight")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if res := <-answered; res == nil || res.IsError {
		t.Fatalf("the waiting call: %v", res)
	}
	if v := metricsText(t, p, tok)[`mcp_redis_tool_calls_in_flight`]; v != "0" {
		t.Errorf("in flight after it answered: %s", v)
	}
}

// SIGTERM while a call is waiting for a lock: the call still gets its
// answer, and then the process exits 0.
//
// Over SSE the answer to a call posted to /message goes out on the SSE
// stream, so shutdown waits for the calls before it closes the streams.
func TestShutdownOnSIGTERMLetsACallInFlightAnswerThenExitsZero(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	// The client's goodbye (DELETE) at cleanup finds the server gone:
	// that is expected here, and not worth a log line.
	quiet := []transport.StreamableHTTPCOption{transport.WithHTTPLogger(slog.New(slog.DiscardHandler))}
	for _, era := range []struct {
		name string
		dial func(t *testing.T, base, tok string) *client.Client
	}{
		{"modern", func(t *testing.T, base, tok string) *client.Client { return dialStreamableWith(t, base, tok, quiet) }},
		{"legacy", func(t *testing.T, base, tok string) *client.Client {
			return dialStreamableWith(t, base, tok, quiet, legacyEra)
		}},
		{"sse", dialSSELegacy},
	} {
		t.Run(era.name, func(t *testing.T) {
			_, prefix := testredis.Shared(t)
			tok := newToken()
			p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
			c := era.dial(t, p.base, tok)
			var held acquireOut
			okOver(t, c, "acquire_lock", `{"resource":"drain","ttl_ms":10000}`, &held)

			type answer struct {
				res *mcp.CallToolResult
				err error
				at  time.Time
			}
			answered := make(chan answer, 1)
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Name = "acquire_lock"
				req.Params.Arguments = json.RawMessage(`{"resource":"drain","wait_ms":1500}`)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				res, err := c.CallTool(ctx, req)
				answered <- answer{res, err, time.Now()}
			}()
			deadline := time.Now().Add(1300 * time.Millisecond)
			for metricsText(t, p, tok)[`mcp_redis_tool_calls_in_flight`] != "1" {
				if time.Now().After(deadline) {
					t.Fatal("the waiting call never showed in flight")
				}
				time.Sleep(20 * time.Millisecond)
			}

			signalled := time.Now()
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			// New connections are refused while the call drains.
			var refused time.Time
			for refused.IsZero() && time.Since(signalled) < 5*time.Second {
				conn, err := net.DialTimeout("tcp", "127.0.0.1:"+p.port, time.Second)
				if err != nil {
					refused = time.Now()
					break
				}
				_ = conn.Close()
				time.Sleep(10 * time.Millisecond)
			}
			a := <-answered
			if refused.IsZero() || !refused.Before(a.at) {
				t.Errorf("the listener was not closed while the call drained (refused at %v, answered %v after SIGTERM)", refused.Sub(signalled), a.at.Sub(signalled))
			}
			if a.err != nil {
				t.Fatalf("the call in flight at SIGTERM: %v\nstderr:\n%s", a.err, p.stderr.String())
			}
			var out acquireOut
			if a.res.IsError || json.Unmarshal(a.res.RawStructuredContent, &out) != nil || out.Acquired || out.WaitedMS < 1400 {
				t.Fatalf("the call in flight at SIGTERM answered %s", resultText(a.res))
			}
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				t.Fatal("no exit 10s after the call answered")
			}
			exited := time.Now()
			if p.err != nil {
				t.Fatalf("exit: %v\nstderr:\n%s", p.err, p.stderr.String())
			}
			if exited.Before(a.at.Add(-50 * time.Millisecond)) {
				t.Errorf("exited %v before the call answered", a.at.Sub(exited))
			}
			t.Logf("answered %v after SIGTERM, exited %v after it", a.at.Sub(signalled), exited.Sub(signalled))
			if !strings.Contains(p.stderr.String(), "draining") {
				t.Errorf("stderr does not say it drains:\n%s", p.stderr.String())
			}
			p.once.Do(func() {}) // stopped already: the cleanup must not signal again
		})
	}
}

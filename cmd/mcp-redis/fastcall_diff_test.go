package main_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The stdio transport serves a plain tools/call without mcp-go's
// HandleMessage (internal/transport/fastcall.go); with --log-level debug
// every message goes through mcp-go. These tests send the same messages
// to one server of each kind and require the same answers, once what
// differs between any two runs (entry ids, times, lock tokens, the key
// prefix) is masked.

// diffStdio starts the binary over raw stdio under prefix, initialized;
// with debug, at --log-level debug (no fast path).
func diffStdio(t *testing.T, prefix string, debug bool) *badStdio {
	t.Helper()
	args := []string{"serve", "--redis-url", testredis.URL(), "--prefix", prefix}
	if debug {
		args = append(args, "--log-level", "debug")
	}
	b := &badStdio{rawStdio: startRawStdio(t, 64, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, args...)}
	a := b.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"diff","version":"1"}}}`, nil, true)
	if len(a.msgs) != 1 || a.msgs[0].Result == nil {
		t.Fatalf("initialize: %s\nstderr:\n%s", a, b.logs())
	}
	b.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, false)
	return b
}

var (
	diffEntryID = regexp.MustCompile(`\b\d{10,}-\d+\b`)
	diffTime    = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	diffUUID    = regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`)
	diffHex     = regexp.MustCompile(`\b[0-9a-f]{16,}\b`)
	diffMillis  = regexp.MustCompile(`("[a-z_]*(_ms|_at|expires|remaining|elapsed)[a-z_]*\\?":\s*)-?\d+(\.\d+)?`)
	diffRef     = regexp.MustCompile(`ref [0-9A-Za-z-]+`)
	diffCount   = regexp.MustCompile(`("(length|entries|count|first_id|last_id|fence|fencing_token|pending)\\?":\s*)\d+`)
)

// diffMask masks in an answer what differs between two runs.
func diffMask(s, prefix string) string {
	s = strings.ReplaceAll(s, prefix, "PREFIX:")
	s = diffUUID.ReplaceAllString(s, "UUID")
	s = diffEntryID.ReplaceAllString(s, "ID")
	s = diffTime.ReplaceAllString(s, "TIME")
	s = diffHex.ReplaceAllString(s, "HEX")
	s = diffRef.ReplaceAllString(s, "ref REF")
	s = diffMillis.ReplaceAllString(s, "${1}N")
	s = diffCount.ReplaceAllString(s, "${1}N")
	return s
}

// diffShapes are tools/call messages at the edges of the fast path's
// plain shape: each must be answered as mcp-go answers it, whether the
// fast path takes it or leaves it.
func diffShapes() []string {
	valid := `{"module":"diff","procedure":"p","status":"ok"}`
	return []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":"s-1","method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":"a<b>&c","method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":"\u0061b","method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":-0,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":12345678901234567890,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":999999999999999,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":-7,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		` { "params" : { "arguments" : ` + valid + ` , "name" : "audit_log" } , "method" : "tools/call" , "id" : 3 , "jsonrpc" : "2.0" } `,
		`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"audit_log"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"audit_log","arguments":null}}`,
		`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"audit_log","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"audit_log","arguments":[]}}`,
		`{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"Name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"audit_log","name":"no_such","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":10,"method":"tools/call","params":{"name":"no_such","name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":11,"method":"tools/call","params":{"name":"audit_\u006cog","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":12,"method":"tools\/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.\u0030","id":13,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":14,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `},"extra":1}`,
		`{"jsonrpc":"2.0","id":15,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `,"extra":1}}`,
		`{"jsonrpc":"2.0","id":16,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `,"_meta":{"progressToken":1}}}`,
		`{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `,"task":{"ttl":1000}}}`,
		`{"jsonrpc":"2.0","id":18,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `,"arguments":{}}}`,
		`{"jsonrpc":"2.0","id":19,"method":"tools/call","params":{"name":42,"arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":21,"method":"tools/call","params":{"arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":22,"method":"tools/call","params":{}}`,
		`{"jsonrpc":"2.0","id":23,"method":"tools/call"}`,
		`{"jsonrpc":"2.0","id":24,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"diff","procedure":"p","status":"ok","extra":1}}}`,
		`{"jsonrpc":"2.0","id":25,"method":"tools/call","params":{"name":"audit_log","arguments":{"modul":"diff","procedure":"p","status":"ok"}}}`,
		`{"id":26,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","jsonrpc":"2.0","id":27,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","ID":28,"method":"tools/call","params":{"name":"audit_log","arguments":` + valid + `}}`,
		`{"jsonrpc":"2.0","id":29,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"d\u00e9j\u00e0 vu <&>","procedure":"p","status":"ok"}}}`,
		`{"jsonrpc":"2.0","id":30,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"d` + "\xff" + `","procedure":"p","status":"ok"}}}`,
		`{"jsonrpc":"2.0","id":31,"method":"tools/call","params":{"name":"show_dashboard","arguments":{}}}`,
		`{"jsonrpc":"2.0","id":32,"method":"tools/call","params":{"name":"read_stream","arguments":{"stream":"audit_log_stream","count":2}}}`,
		`{"jsonrpc":"2.0","id":33,"method":"tools/call","params":{"name":"stream_info","arguments":{"stream":"audit_log_stream"}}}`,
		`{"jsonrpc":"2.0","id":34,"method":"tools/call","params":{"name":"get_context","arguments":{"workflow_id":"diff-wf"}}}`,
		`{"jsonrpc":"2.0","id":35,"method":"tools/call","params":{"name":"emit_workflow_event","arguments":{"workflow_id":"diff-wf","phase":"p","event_type":"e","event_id":"diff-1"}}}`,
		`{"jsonrpc":"2.0","id":36,"method":"tools/call","params":{"name":"emit_workflow_event","arguments":{"workflow_id":"diff-wf","phase":"p","event_type":"e","event_id":"diff-1"}}}`,
		`{"jsonrpc":"2.0","id":37,"method":"tools/call","params":{"name":"publish_ccwj_delta","arguments":{"workflow_id":"diff-wf","phase_id":"p","delta":{"k":"v"}}}}`,
		`{"jsonrpc":"2.0","id":38,"method":"tools/call","params":{"name":"submit_feedback","arguments":{"feedback":"good","workflow_id":"diff-wf"}}}`,
		`{"jsonrpc":"2.0","id":39,"method":"tools/call","params":{"name":"check_rate","arguments":{"subject":"diff-user"}}}`,
		`{"jsonrpc":"2.0","id":40,"method":"tools/call","params":{"name":"acquire_lock","arguments":{"resource":"diff/r","ttl_ms":60000}}}`,
		`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"acquire_lock","arguments":{"resource":"diff/r","ttl_ms":60000}}}`,
		`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"claim_events","arguments":{"stream":"user_feedback","group":"diff","consumer":"c1","from":"0"}}}`,
		`{"jsonrpc":"2.0","id":43,"method":"tools/call","params":{"name":"read_stream","arguments":{"stream":"user_feedback","workflow_id":"diff-wf"}}}`,
	}
}

// cancelPhase is where a cancelled wait was when the cancellation reached
// it (waiting for the release, or asking Redis again): a matter of timing.
var cancelPhase = regexp.MustCompile(`call cancelled \([^)]*\)`)

// maskCancelPhase is answer with the cancelled wait's phase left out.
func maskCancelPhase(answer string) string {
	return cancelPhase.ReplaceAllString(answer, "call cancelled (…)")
}

// diffLocks takes the two locks the bad-input cases use, on d, into s.
func diffLocks(t *testing.T, d badDriver, s *badState) {
	t.Helper()
	s.tokA = badOK(t, d, "acquire_lock", `{"resource":"bad/a","ttl_ms":60000}`)["token"].(string)
	s.tokB = badOK(t, d, "acquire_lock", `{"resource":"bad/b","ttl_ms":60000}`)["token"].(string)
}

func TestFastPathAnswersAsMCPGoDoes(t *testing.T) {
	needsFull(t, "starts the binary twice over stdio")
	_, pFast := testredis.Shared(t)
	_, pSlow := testredis.Shared(t)
	fast := diffStdio(t, pFast, false)
	slow := diffStdio(t, pSlow, true)
	sFast, sSlow := &badState{}, &badState{}
	compare := func(t *testing.T, name, fastMsg, slowMsg string, wantReply bool) {
		t.Helper()
		a := fast.send(t, fastMsg, nil, wantReply)
		b := slow.send(t, slowMsg, nil, wantReply)
		if ma, mb := diffMask(a.raw, pFast), diffMask(b.raw, pSlow); ma != mb {
			t.Errorf("%s: the answers differ\nrequest:  %.300s\nfast path: %.600s\nmcp-go:    %.600s", name, fastMsg, ma, mb)
		}
	}
	diffLocks(t, fast, sFast)
	diffLocks(t, slow, sSlow)
	n := 0
	for _, c := range badCases() {
		if c.only == "http" {
			continue
		}
		if c.setup != nil {
			c.setup(t, fast, sFast)
			c.setup(t, slow, sSlow)
		}
		compare(t, c.name, c.msg(sFast), c.msg(sSlow), !c.noReply)
		n++
	}
	for i, m := range diffShapes() {
		compare(t, fmt.Sprintf("shape %d", i), m, m, true)
		n++
	}
	// A call the client cancels while it waits: both answer it (or not)
	// the same way, and go on.
	hold := `{"jsonrpc":"2.0","id":"hold","method":"tools/call","params":{"name":"acquire_lock","arguments":{"resource":"diff/r","ttl_ms":1000,"wait_ms":20000}}}`
	cancel := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"hold"}}`
	for _, d := range []*badStdio{fast, slow} {
		if _, err := d.stdin.Write([]byte(hold + "\n" + cancel + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	after := `{"jsonrpc":"2.0","id":"after","method":"ping"}`
	a, b := fast.send(t, after, nil, true), slow.send(t, after, nil, true)
	if ma, mb := maskCancelPhase(diffMask(a.raw, pFast)), maskCancelPhase(diffMask(b.raw, pSlow)); ma != mb {
		t.Errorf("a cancelled wait, then a ping: the answers differ\nfast path: %.600s\nmcp-go:    %.600s", ma, mb)
	}
	n++
	t.Logf("%d messages, the same answers from the fast path and from mcp-go", n)
	for _, d := range []*badStdio{fast, slow} {
		if strings.Contains(d.logs(), "panic") {
			t.Errorf("a server's log mentions a panic:\n%s", d.logs())
		}
	}
}

// mcp-go's request and tool lines, on at --log-level debug only, say
// level=DEBUG.
func TestDebugRequestLinesAreLabelledDebug(t *testing.T) {
	needsFull(t, "starts the binary over stdio")
	_, prefix := testredis.Shared(t)
	d := diffStdio(t, prefix, true)
	badOK(t, d, "emit_workflow_event", badProbe)
	d.send(t, `{"jsonrpc":"2.0","id":"p","method":"ping"}`, nil, true)
	logs := d.logs()
	for _, msg := range []string{"msg=mcp.request", "msg=mcp.tool"} {
		if !strings.Contains(logs, "level=DEBUG "+msg) {
			t.Errorf("no %s line at level=DEBUG in the log:\n%s", msg, logs)
		}
		if strings.Contains(logs, "level=INFO "+msg) {
			t.Errorf("a %s line at level=INFO in the log:\n%s", msg, logs)
		}
	}
}

// diffHTTP starts the binary on Streamable HTTP under prefix and opens a
// session (none when stateless); with debug, at --log-level debug (no
// fast path: every POST goes through mcp-go's Streamable HTTP server).
func diffHTTP(t *testing.T, prefix string, debug, stateless bool) *badHTTPDriver {
	t.Helper()
	env := []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}
	if stateless {
		env = append(env, "MCP_REDIS_HTTP_STATELESS=true")
	}
	args := []string{"--redis-url", testredis.URL(), "--prefix", prefix}
	if debug {
		args = append(args, "--log-level", "debug")
	}
	h := &badHTTPDriver{p: startHTTP(t, env, args...)}
	a := h.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"diff","version":"1"}}}`, nil, true)
	if a.status != http.StatusOK || len(a.msgs) != 1 || a.msgs[0].Result == nil || (h.session == "") != stateless {
		t.Fatalf("initialize: %s (session %q)\nstderr:\n%s", a, h.session, h.logs())
	}
	if a := h.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, false); a.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %s", a)
	}
	return h
}

// The Streamable HTTP fast path (internal/transport/httpfast.go) answers
// every message as mcp-go's Streamable HTTP server does: the same status,
// Content-Type and body, stateful and stateless, for the bad-input corpus,
// the fast path's edge shapes, the headers it must leave to mcp-go, and a
// call cancelled while it waits.
func TestHTTPFastPathAnswersAsMCPGoDoes(t *testing.T) {
	needsFull(t, "starts the binary four times over HTTP")
	for _, stateless := range []bool{false, true} {
		t.Run(map[bool]string{false: "stateful", true: "stateless"}[stateless], func(t *testing.T) {
			_, pFast := testredis.Shared(t)
			_, pSlow := testredis.Shared(t)
			fast := diffHTTP(t, pFast, false, stateless)
			slow := diffHTTP(t, pSlow, true, stateless)
			sFast, sSlow := &badState{}, &badState{}
			mask := func(a badAnswer, prefix string) string {
				return fmt.Sprintf("HTTP %d %s %s", a.status, a.ctype, diffMask(a.raw, prefix))
			}
			compare := func(t *testing.T, name, fastMsg, slowMsg string, header map[string]string) {
				t.Helper()
				a := fast.send(t, fastMsg, header, true)
				b := slow.send(t, slowMsg, header, true)
				if ma, mb := mask(a, pFast), mask(b, pSlow); ma != mb {
					t.Errorf("%s: the answers differ\nrequest:  %.300s\nfast path: %.600s\nmcp-go:    %.600s", name, fastMsg, ma, mb)
				}
			}
			diffLocks(t, fast, sFast)
			diffLocks(t, slow, sSlow)
			n := 0
			for _, c := range badCases() {
				if c.only == "stdio" || (stateless && c.header["Mcp-Session-Id"] != "") {
					continue
				}
				if c.setup != nil {
					c.setup(t, fast, sFast)
					c.setup(t, slow, sSlow)
				}
				compare(t, c.name, c.msg(sFast), c.msg(sSlow), c.header)
				n++
			}
			shapes := diffShapes()
			for i, m := range shapes {
				compare(t, fmt.Sprintf("shape %d", i), m, m, nil)
				n++
			}
			call := shapes[0]
			for _, h := range []map[string]string{
				{"Content-Type": "text/plain"},
				{"Content-Type": "application/json; charset=utf-8"},
				{"Content-Type": ""},
				{"Mcp-Protocol-Version": "1999-01-01"},
				{"Mcp-Protocol-Version": ""},
				{"Mcp-Protocol-Version": "2025-03-26"},
				{"Mcp-Protocol-Version": "2026-07-28"},
				{"Mcp-Session-Id": ""},
				{"Mcp-Session-Id": "mcp-session-00000000-0000-0000-0000-000000000000"},
				{"Accept": "application/json"},
				{"Last-Event-ID": "1"},
			} {
				compare(t, fmt.Sprintf("headers %v", h), call, call, h)
				n++
			}
			// A call the client cancels while it waits: both answer it the
			// same way (once cancelled), and go on.
			hold := `{"jsonrpc":"2.0","id":"hold","method":"tools/call","params":{"name":"acquire_lock","arguments":{"resource":"diff/r","ttl_ms":1000,"wait_ms":20000}}}`
			cancel := `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"hold"}}`
			held := map[*badHTTPDriver]chan badAnswer{fast: make(chan badAnswer, 1), slow: make(chan badAnswer, 1)}
			for d, ch := range held {
				// A copy: send notes the session id it is answered.
				c := *d
				go func() { ch <- c.send(t, hold, nil, true) }()
			}
			time.Sleep(500 * time.Millisecond)
			for d := range held {
				if a := d.send(t, cancel, nil, false); a.status != http.StatusAccepted {
					t.Errorf("notifications/cancelled: %s", a)
				}
			}
			var got [2]badAnswer
			for i, d := range []*badHTTPDriver{fast, slow} {
				select {
				case got[i] = <-held[d]:
				case <-time.After(10 * time.Second):
					t.Fatalf("the cancelled call (fast path %v) was not answered", d == fast)
				}
			}
			if ma, mb := maskCancelPhase(mask(got[0], pFast)), maskCancelPhase(mask(got[1], pSlow)); ma != mb {
				t.Errorf("a cancelled wait: the answers differ\nfast path: %.600s\nmcp-go:    %.600s", ma, mb)
			}
			compare(t, "after a cancelled wait", call, call, nil)
			n += 2
			t.Logf("%d messages, the same answers from the fast path and from mcp-go", n)
			for _, d := range []*badHTTPDriver{fast, slow} {
				if strings.Contains(d.logs(), "panic") {
					t.Errorf("a server's log mentions a panic:\n%s", d.logs())
				}
			}
		})
	}
}

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests run the binary with --transport http and reach it the ways a
// remote host would: mcp-go's Streamable HTTP client in both protocol eras
// and in stateless mode, its SSE client, and plain HTTP and raw TCP for the
// attacks. Every server is stopped with SIGTERM and must exit 0, and no
// bearer token it was given may appear in its log.

// httpProc is the binary serving HTTP.
type httpProc struct {
	t      *testing.T
	base   string // http://127.0.0.1:port
	port   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, once done is closed
	// secrets are the bearer tokens it was given: never in its log.
	secrets []string
	once    sync.Once
	stopErr error
}

// startHTTP starts `mcp-redis serve --transport http` on a free loopback
// port with env added, and waits until /healthz answers.
func startHTTP(t *testing.T, env []string, args ...string) *httpProc {
	t.Helper()
	return startHTTPOn(t, "127.0.0.1:"+strconv.Itoa(testredis.FreePort(t)), env, args...)
}

// startHTTPOn is startHTTP listening on listen; /healthz is reached on
// 127.0.0.1 and the same port.
func startHTTPOn(t *testing.T, listen string, env []string, args ...string) *httpProc {
	t.Helper()
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &httpProc{t: t, base: "http://127.0.0.1:" + port, port: port, stderr: &lockedBuffer{}, done: make(chan struct{})}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "MCP_REDIS_HTTP_AUTH_TOKENS="); ok {
			for pair := range strings.SplitSeq(v, ",") {
				if _, tok, ok := strings.Cut(pair, "="); ok && tok != "" {
					p.secrets = append(p.secrets, tok)
				}
			}
		}
	}
	p.cmd = exec.Command(bin, append([]string{"serve", "--transport", "http", "--listen", listen}, args...)...)
	p.cmd.Dir = t.TempDir() // no stray config.yaml
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("after SIGTERM: %v\nstderr:\n%s", err, p.stderr.String())
		}
		log := p.stderr.String()
		for _, s := range p.secrets {
			if strings.Contains(log, s) {
				t.Errorf("a bearer token appears in the server's log:\n%s", log)
			}
		}
	})

	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("the server exited before serving: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if res, err := hc.Get(p.base + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 15s\nstderr:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the exit: nil when it exited 0. Only the
// first call signals; later calls return the same outcome.
func (p *httpProc) stop() error {
	p.once.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("the server had already exited: %v", p.err)
			return
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
			p.stopErr = p.err
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = errors.New("still running 20s after SIGTERM (killed)")
		}
	})
	return p.stopErr
}

// plain is the client of the raw HTTP requests.
var plain = &http.Client{Timeout: 15 * time.Second}

// do sends one request and returns the answer with its body read.
func (p *httpProc) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := plain.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

func (p *httpProc) get(t *testing.T, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return p.do(t, req)
}

// newToken returns a fresh bearer token (36 bytes).
func newToken() string { return "tok_" + testredis.Random(16) }

// tokensEnv configures bearer tokens given as name, token, name, token….
func tokensEnv(pairs ...string) string {
	var b []string
	for i := 0; i+1 < len(pairs); i += 2 {
		b = append(b, pairs[i]+"="+pairs[i+1])
	}
	return "MCP_REDIS_HTTP_AUTH_TOKENS=" + strings.Join(b, ",")
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// dialStreamable connects mcp-go's Streamable HTTP client to /mcp with the
// bearer token and initialises it; opts pin the protocol version.
func dialStreamable(t *testing.T, base, tok string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	return dialStreamableWith(t, base, tok, nil, opts...)
}

// dialStreamableWith is dialStreamable with more transport options.
func dialStreamableWith(t *testing.T, base, tok string, topts []transport.StreamableHTTPCOption, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(base+"/mcp", append([]transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(bearer(tok)), transport.WithHTTPTimeout(30 * time.Second)}, topts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, client.NewClient(tr, opts...))
}

// dialSSE connects mcp-go's SSE client to /sse with the bearer token.
func dialSSE(t *testing.T, base, tok string) *client.Client {
	t.Helper()
	c, err := client.NewSSEMCPClient(base+"/sse", client.WithHeaders(bearer(tok)))
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, c)
}

// dialSSELegacy is dialSSE pinned to the legacy era, as SSE-era hosts are.
func dialSSELegacy(t *testing.T, base, tok string) *client.Client {
	t.Helper()
	tr, err := transport.NewSSE(base+"/sse", transport.WithHeaders(bearer(tok)))
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, client.NewClient(tr, legacyEra))
}

func initialise(t *testing.T, c *client.Client) *client.Client {
	t.Helper()
	// The SSE stream lives as long as Start's context: not this call's.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

var legacyEra = client.WithProtocolVersion(mcp.ProtocolVersion20251125)

// callOver calls a tool; a transport or protocol failure fails the test.
func callOver(t *testing.T, c *client.Client, tool, arguments string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = json.RawMessage(arguments)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

// okOver calls a tool that must succeed and decodes its structured result
// into out.
func okOver(t *testing.T, c *client.Client, tool, arguments string, out any) {
	t.Helper()
	res := callOver(t, c, tool, arguments)
	if res.IsError {
		t.Fatalf("%s(%s) is a tool error: %s", tool, arguments, resultText(res))
	}
	if err := json.Unmarshal(res.RawStructuredContent, out); err != nil {
		t.Fatalf("%s structured content %q: %v", tool, res.RawStructuredContent, err)
	}
}

type writeOut struct {
	Stream    string `json:"stream"`
	EntryID   string `json:"entry_id"`
	Duplicate bool   `json:"duplicate"`
}

var allTools = []string{"acquire_lock", "audit_log", "check_rate", "emit_workflow_event", "extend_lock",
	"get_context", "publish_ccwj_delta", "read_stream", "release_lock", "submit_feedback", "verify_audit"}

// exerciseEveryTool lists the tools, calls each one over c, and reads what
// each left in Redis under prefix.
func exerciseEveryTool(t *testing.T, c *client.Client, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, allTools) {
		t.Fatalf("%d tools %v, want %v", len(names), names, allTools)
	}

	writes := []struct {
		tool, stream, args string
		want               map[string]string // the entry's fields, exactly
	}{
		{"audit_log", "audit_log_stream",
			`{"module":"planner","procedure":"draft","status":"ok","inputs":{"q":"x"},"workflow_id":"wf1","log_id":"L-1","timestamp":"2026-01-02T03:04:05.678Z"}`,
			map[string]string{"module": "planner", "procedure": "draft", "status": "ok", "inputs": `{"q":"x"}`, "workflow_id": "wf1", "log_id": "L-1", "timestamp": "2026-01-02T03:04:05.678Z"}},
		{"publish_ccwj_delta", "ccwj_update_stream",
			`{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1,"two"],"timestamp":"2026-01-02T03:04:06Z","event_id":"D-1"}`,
			map[string]string{"workflow_id": "wf1", "phase_id": "plan", "field": "steps", "value": `[1,"two"]`, "timestamp": "2026-01-02T03:04:06.000Z", "event_id": "D-1"}},
		{"submit_feedback", "user_feedback",
			`{"feedback":"good plan","session_id":"s1","user_id":"u1","event_id":"F-1"}`,
			map[string]string{"feedback": "good plan", "session_id": "s1", "user_id": "u1", "event_id": "F-1"}},
		{"emit_workflow_event", "workflow_events",
			`{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed","details":"all good","event_id":"W-1"}`,
			map[string]string{"workflow_id": "wf1", "phase": "plan", "event_type": "phase_completed", "details": "all good", "event_id": "W-1"}},
	}
	for _, w := range writes {
		var out writeOut
		okOver(t, c, w.tool, w.args, &out)
		key := prefix + w.stream
		if out.Stream != key || out.Duplicate || out.EntryID == "" {
			t.Fatalf("%s result = %+v", w.tool, out)
		}
		msgs, err := rdb.XRange(ctx, key, out.EntryID, out.EntryID).Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("XRANGE %s %s: %v %v", key, out.EntryID, msgs, err)
		}
		got := pvStripStamp(t, w.tool, msgs[0].Values, "")
		if _, given := w.want["timestamp"]; !given {
			ts, _ := got["timestamp"].(string)
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
				t.Errorf("%s: filled timestamp %q: %v", w.tool, ts, err)
			}
			w.want["timestamp"] = ts
		}
		if len(got) != len(w.want) {
			t.Errorf("%s: entry has %d fields, want %d: %v", w.tool, len(got), len(w.want), got)
		}
		for k, v := range w.want {
			if got[k] != v {
				t.Errorf("%s: field %s = %q, want %q", w.tool, k, got[k], v)
			}
		}

		var page struct {
			Entries []struct {
				ID     string         `json:"id"`
				Fields map[string]any `json:"fields"`
			} `json:"entries"`
		}
		okOver(t, c, "read_stream", fmt.Sprintf(`{"stream":%q,"start":%q,"count":1}`, w.stream, out.EntryID), &page)
		if len(page.Entries) != 1 || page.Entries[0].ID != out.EntryID || len(page.Entries[0].Fields) != len(msgs[0].Values) {
			t.Errorf("read_stream %s = %+v", w.stream, page)
		}
	}

	var cx struct {
		WorkflowID  string                    `json:"workflow_id"`
		Context     map[string]map[string]any `json:"context"`
		LastDeltaID string                    `json:"last_delta_id"`
	}
	okOver(t, c, "get_context", `{"workflow_id":"wf1"}`, &cx)
	if steps, _ := json.Marshal(cx.Context["plan"]["steps"]); string(steps) != `[1,"two"]` || cx.WorkflowID != "wf1" || cx.LastDeltaID == "" {
		t.Errorf("get_context = %+v", cx)
	}

	const resource = "http/res"
	lockKey := prefix + "locks:" + resource
	var a acquireOut
	okOver(t, c, "acquire_lock", `{"resource":"http/res","ttl_ms":5000,"owner":"agent-7"}`, &a)
	if !a.Acquired || a.Key != lockKey || a.Token == "" || a.FencingToken != 1 || a.TTLMS != 5000 {
		t.Fatalf("acquire_lock = %+v", a)
	}
	if v, err := rdb.Get(ctx, lockKey).Result(); err != nil || v != a.Token {
		t.Errorf("while held, %s = %q (%v), want the owner token %q", lockKey, v, err, a.Token)
	}
	if p := rdb.PTTL(ctx, lockKey).Val(); p <= 3*time.Second || p > 5*time.Second {
		t.Errorf("while held, PTTL %s = %v, want about 5s", lockKey, p)
	}
	if v := rdb.Get(ctx, prefix+"owner:{"+lockKey+"}").Val(); v != "agent-7" {
		t.Errorf("owner label = %q", v)
	}
	if v := rdb.Get(ctx, prefix+"fence:{"+lockKey+"}").Val(); v != "1" {
		t.Errorf("fence counter = %q", v)
	}

	var e extendOut
	okOver(t, c, "extend_lock", fmt.Sprintf(`{"resource":"http/res","token":%q,"ttl_ms":20000}`, a.Token), &e)
	if !e.Extended || e.TTLMS != 20000 {
		t.Errorf("extend_lock = %+v", e)
	}
	if p := rdb.PTTL(ctx, lockKey).Val(); p <= 15*time.Second || p > 20*time.Second {
		t.Errorf("after extend_lock, PTTL %s = %v, want about 20s", lockKey, p)
	}

	var r releaseOut
	okOver(t, c, "release_lock", fmt.Sprintf(`{"resource":"http/res","token":%q}`, a.Token), &r)
	if !r.Released {
		t.Errorf("release_lock = %+v", r)
	}
	if n := rdb.Exists(ctx, lockKey, prefix+"owner:{"+lockKey+"}").Val(); n != 0 {
		t.Errorf("%d of the lock and owner keys left after release_lock", n)
	}

	var rate rateOut
	okOver(t, c, "check_rate", `{"subject":"agent-7","cost":3}`, &rate)
	if !rate.Allowed || rate.Policy != "default" || rate.Limit != 60 || rate.Remaining != 57 {
		t.Errorf("check_rate = %+v", rate)
	}
	rateKey := prefix + "rate:default:agent-7"
	if p := rdb.PTTL(ctx, rateKey).Val(); p <= 0 || p > time.Minute+time.Millisecond {
		t.Errorf("PTTL %s = %v, want at most the 1m window", rateKey, p)
	}
	if rdb.Exists(ctx, rateKey).Val() != 1 {
		t.Errorf("no %s", rateKey)
	}
}

// callRecords returns the server's own records of tool calls under prefix.
func callRecords(t *testing.T, rdb *redis.Client, prefix string) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), prefix+"audit_log_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []redis.XMessage
	for _, m := range msgs {
		if m.Values["module"] == "mcp-redis" {
			out = append(out, m)
		}
	}
	return out
}

// noSecretUnder fails when any value of any key under prefix contains one
// of secrets: every stream field, string, hash, set and list.
func noSecretUnder(t *testing.T, rdb *redis.Client, prefix string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		ks, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		t.Fatalf("no keys under %s", prefix)
	}
	var values []string
	for _, k := range keys {
		values = append(values, k)
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					values = append(values, f, fmt.Sprint(v))
				}
			}
		case "string":
			values = append(values, rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				values = append(values, f, v)
			}
		case "zset":
			values = append(values, rdb.ZRange(ctx, k, 0, -1).Val()...)
		case "set":
			values = append(values, rdb.SMembers(ctx, k).Val()...)
		case "list":
			values = append(values, rdb.LRange(ctx, k, 0, -1).Val()...)
		default:
			t.Errorf("%s has type %s, which this scan does not read", k, typ)
		}
	}
	for _, v := range values {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("a bearer token is stored in Redis: %.200q", v)
			}
		}
	}
}

// Over Streamable HTTP in the modern (default) and the legacy era, in
// stateless mode, and over SSE, a host lists the ten tools, calls every
// one, and each write is in Redis field by field; the per-call records
// name the caller by its token's name.
func TestOverStreamableHTTPInEveryEraAndOverSSEEveryToolWritesWhatItShould(t *testing.T) {
	stateless := []string{"MCP_REDIS_HTTP_STATELESS=true"}
	cases := []struct {
		name    string
		env     []string
		dial    func(t *testing.T, base, tok string) *client.Client
		version string
		// session: the per-call records carry the client's session id.
		session bool
	}{
		{"modern", nil, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok) }, mcp.LATEST_PROTOCOL_VERSION, false},
		{"legacy", nil, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok, legacyEra) }, mcp.ProtocolVersion20251125, true},
		{"stateless-modern", stateless, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok) }, mcp.LATEST_PROTOCOL_VERSION, false},
		{"stateless-legacy", stateless, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok, legacyEra) }, mcp.ProtocolVersion20251125, false},
		{"sse", nil, dialSSE, mcp.LATEST_PROTOCOL_VERSION, true},
		{"sse-legacy", nil, dialSSELegacy, mcp.ProtocolVersion20251125, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := testredis.Shared(t)
			tok := newToken()
			p := startHTTP(t, append([]string{tokensEnv("ci-bot", tok)}, tc.env...), "--redis-url", testredis.URL(), "--prefix", prefix)
			c := tc.dial(t, p.base, tok)
			t.Logf("protocol %s, session %q", c.ProtocolVersion(), c.GetSessionId())
			if tc.version != "" && c.ProtocolVersion() != tc.version {
				t.Errorf("negotiated %s, want %s", c.ProtocolVersion(), tc.version)
			}
			if (c.GetSessionId() != "") != (tc.name == "legacy") {
				t.Errorf("Mcp-Session-Id %q", c.GetSessionId())
			}
			exerciseEveryTool(t, c, rdb, prefix)

			// Every call but audit_log's own is recorded, by the token's name.
			recs := callRecords(t, rdb, prefix)
			byTool := map[string]int{}
			for _, m := range recs {
				byTool[m.Values["procedure"].(string)]++
				if m.Values["caller"] != "ci-bot" || m.Values["status"] != "ok" {
					t.Errorf("call record %v: want caller ci-bot, status ok", m.Values)
				}
				sid, _ := m.Values["mcp_session_id"].(string)
				switch {
				case tc.session && tc.name == "legacy" && sid != c.GetSessionId():
					t.Errorf("call record mcp_session_id %q, want the session's %q", sid, c.GetSessionId())
				case tc.session && sid == "":
					t.Errorf("call record %v has no mcp_session_id", m.Values)
				case !tc.session && sid != "":
					t.Errorf("call record %v has mcp_session_id without a session", m.Values)
				}
			}
			want := map[string]int{"publish_ccwj_delta": 1, "submit_feedback": 1, "emit_workflow_event": 1, "read_stream": 4,
				"get_context": 1, "acquire_lock": 1, "extend_lock": 1, "release_lock": 1, "check_rate": 1}
			if fmt.Sprint(byTool) != fmt.Sprint(want) {
				t.Errorf("call records by tool = %v, want %v", byTool, want)
			}
			noSecretUnder(t, rdb, prefix, tok)
		})
	}
}

// Per-call records made over HTTP carry the calling token's name and the
// legacy session's id, never a token: two callers with two tokens on one
// server are told apart.
func TestPerCallRecordsOverHTTPNameTheCallerAndTheSessionNeverTheToken(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	alice, bob := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("alice", alice, "Bob_2", bob)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ca := dialStreamable(t, p.base, alice, legacyEra)
	cb := dialStreamable(t, p.base, bob) // modern: no session
	cs := dialSSE(t, p.base, alice)

	callOver(t, ca, "emit_workflow_event", `{"workflow_id":"wa","phase":"p","event_type":"e"}`)
	callOver(t, cb, "emit_workflow_event", `{"workflow_id":"wb","phase":"p","event_type":"e"}`)
	callOver(t, cs, "emit_workflow_event", `{"workflow_id":"wc","phase":"p","event_type":"e"}`)
	// A failed call is recorded too, with the same caller.
	if res := callOver(t, cb, "read_stream", `{"stream":"nope"}`); !res.IsError {
		t.Fatalf("read_stream of an unknown stream: %s", resultText(res))
	}

	recs := callRecords(t, rdb, prefix)
	got := map[string]map[string]any{}
	for _, m := range recs {
		wf, _ := m.Values["workflow_id"].(string)
		k := fmt.Sprint(m.Values["procedure"], "/", wf)
		got[k] = m.Values
	}
	t.Logf("records: %v", got)
	if len(recs) != 4 {
		t.Fatalf("%d call records, want 4: %v", len(recs), got)
	}
	check := func(k, caller, session string, anySession bool) {
		t.Helper()
		v, ok := got[k]
		if !ok {
			t.Errorf("no record %s", k)
			return
		}
		if v["caller"] != caller {
			t.Errorf("%s: caller %v, want %s", k, v["caller"], caller)
		}
		sid, _ := v["mcp_session_id"].(string)
		if anySession {
			if sid == "" {
				t.Errorf("%s: no mcp_session_id", k)
			}
		} else if sid != session {
			t.Errorf("%s: mcp_session_id %q, want %q", k, sid, session)
		}
	}
	check("emit_workflow_event/wa", "alice", ca.GetSessionId(), false)
	check("emit_workflow_event/wb", "bob_2", "", false) // names are lower-cased
	check("emit_workflow_event/wc", "alice", "", true)
	check("read_stream/", "bob_2", "", false)
	if ca.GetSessionId() == "" {
		t.Error("the legacy client has no Mcp-Session-Id")
	}
	if got["read_stream/"]["status"] != "error" {
		t.Errorf("the failed call's record: %v", got["read_stream/"])
	}
	noSecretUnder(t, rdb, prefix, alice, bob)
}

// /readyz follows Redis: 200 while it answers PING, 503 while it is down,
// 200 again once it is back, with no restart of the server; tool calls
// during the outage are tool errors, and succeed after it.
func TestReadyzFollowsRedisAndCallsRecoverWithoutAServerRestart(t *testing.T) {
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
		`mcp_redis_build_info{version="dev"}`:                                        "1",
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

// modernCall sends, by hand, the Streamable HTTP request a 2026-07-28
// client sends to call tool with arguments: with the right token it runs
// the tool. header adds or overrides headers; host, when set, replaces the
// Host header.
func (p *httpProc) modernCall(t *testing.T, path, host string, header map[string]string, tool, arguments string) (*http.Response, string) {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},`+
		`"io.modelcontextprotocol/clientInfo":{"name":"attacker","version":"1"}}}}`, tool, arguments, mcp.LATEST_PROTOCOL_VERSION)
	req, err := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_PROTOCOL_VERSION)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, tool)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if host != "" {
		req.Host = host
	}
	return p.do(t, req)
}

const eventArgs = `{"workflow_id":"attack","phase":"p","event_type":"e"}`

// nothingWritten fails when any key exists under prefix.
func nothingWritten(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		if keys := rdb.Keys(ctx, pattern).Val(); len(keys) != 0 {
			t.Errorf("written although refused: %v", keys)
		}
	}
}

// noToolRan fails when /metrics counts any tool call.
func noToolRan(t *testing.T, p *httpProc, tok string) {
	t.Helper()
	for k := range metricsText(t, p, tok) {
		if strings.HasPrefix(k, "mcp_redis_tool_calls_total") {
			t.Errorf("a tool ran: %s", k)
		}
	}
}

// controlCallRuns checks that modernCall is a request that runs the tool
// when it carries the right credentials: the refusals before it were the
// guards', not a malformed request's.
func controlCallRuns(t *testing.T, p *httpProc, rdb *redis.Client, prefix string, header map[string]string) {
	t.Helper()
	res, body := p.modernCall(t, "/mcp", "", header, "emit_workflow_event", eventArgs)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"entry_id"`) {
		t.Fatalf("the control call with the token: %d %s", res.StatusCode, body)
	}
	if n := rdb.XLen(context.Background(), prefix+"workflow_events").Val(); n != 1 {
		t.Fatalf("the control call wrote %d entries", n)
	}
}

func wantUnauthorized(t *testing.T, what string, res *http.Response, body string, challenge string) {
	t.Helper()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: %d %.200s, want 401", what, res.StatusCode, body)
		return
	}
	if wa := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, challenge) {
		t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge with %s", what, wa, challenge)
	}
}

// Without a token, no endpoint but health and readiness answers, and no
// tool runs.
func TestAttackMissingToken(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)

	for _, h := range []map[string]string{
		nil,
		{"Authorization": "Bearer "},
		{"Authorization": "Bearer"},
		{"Authorization": tok},
		{"Authorization": "Basic " + tok},
		{"Authorization": "Token " + tok},
		{"X-Api-Key": tok},
		{"Cookie": "token=" + tok},
	} {
		res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
		wantUnauthorized(t, fmt.Sprintf("POST /mcp with %v", h), res, body, `realm="mcp-redis"`)
	}
	for _, path := range []string{"/sse", "/metrics", "/mcp"} {
		res, body := p.get(t, path, nil)
		wantUnauthorized(t, "GET "+path, res, body, `realm="mcp-redis"`)
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+"/message?sessionId=x", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	res, body := p.do(t, req)
	wantUnauthorized(t, "POST /message", res, body, `realm="mcp-redis"`)
	req, _ = http.NewRequest(http.MethodDelete, p.base+"/mcp", nil)
	res, body = p.do(t, req)
	wantUnauthorized(t, "DELETE /mcp", res, body, `realm="mcp-redis"`)

	// mcp-go's clients without a token cannot even start.
	tr, _ := transport.NewStreamableHTTP(p.base + "/mcp")
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err == nil {
			t.Error("a Streamable HTTP client without a token initialised")
		}
	}
	_ = c.Close()
	sse, _ := client.NewSSEMCPClient(p.base + "/sse")
	if err := sse.Start(ctx); err == nil {
		t.Error("an SSE client without a token started")
	}
	_ = sse.Close()

	for _, path := range []string{"/healthz", "/readyz"} {
		if res, body := p.get(t, path, nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, res.StatusCode, body)
		}
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// A wrong token is refused as invalid, however close to a right one, and
// no tool runs; the log says so without the token.
func TestAttackWrongToken(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok, other := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok, "ops", other)}, "--redis-url", testredis.URL(), "--prefix", prefix)

	flipped := tok[:len(tok)-1] + "a"
	if flipped == tok {
		flipped = tok[:len(tok)-1] + "b"
	}
	wrong := []string{
		flipped,                   // same length, last byte differs
		"X" + tok[1:],             // first byte differs
		tok + "0",                 // one byte longer
		tok[:len(tok)-1],          // one byte shorter
		strings.ToUpper(tok),      // case matters
		tok + "," + other,         // two tokens in one
		"ci",                      // the name, not the token
		strings.Repeat("a", 4096), // long
	}
	p.secrets = append(p.secrets, wrong[:5]...)
	for _, w := range wrong {
		res, body := p.modernCall(t, "/mcp", "", bearer(w), "emit_workflow_event", eventArgs)
		wantUnauthorized(t, fmt.Sprintf("POST /mcp with %.40q", w), res, body, `error="invalid_token"`)
	}
	res, body := p.get(t, "/sse", bearer(flipped))
	wantUnauthorized(t, "GET /sse", res, body, `error="invalid_token"`)
	res, body = p.get(t, "/metrics", bearer(flipped))
	wantUnauthorized(t, "GET /metrics", res, body, `error="invalid_token"`)

	// The mcp-go client with a wrong token cannot initialise.
	tr, _ := transport.NewStreamableHTTP(p.base+"/mcp", transport.WithHTTPHeaders(bearer(flipped)))
	c := client.NewClient(tr, legacyEra)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err == nil {
			t.Error("a client with a wrong token initialised")
		}
	}
	_ = c.Close()

	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	if !strings.Contains(p.stderr.String(), "rejected a wrong bearer token") {
		t.Errorf("the log does not mention the rejected tokens:\n%s", p.stderr.String())
	}
	// Both tokens work, each under its own name.
	controlCallRuns(t, p, rdb, prefix, bearer(other))
	if recs := callRecords(t, rdb, prefix); len(recs) != 1 || recs[0].Values["caller"] != "ops" {
		t.Errorf("records of the control call: %v", recs)
	}
}

// A token in the query string is ignored: the request is unauthenticated.
func TestAttackTokenInQueryString(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, q := range []string{"access_token=", "token=", "bearer=", "auth=", "Authorization=Bearer%20", "authorization=Bearer+"} {
		res, body := p.modernCall(t, "/mcp?"+q+tok, "", nil, "emit_workflow_event", eventArgs)
		wantUnauthorized(t, "POST /mcp?"+q+"…", res, body, `realm="mcp-redis"`)
		res, body = p.get(t, "/sse?"+q+tok, nil)
		wantUnauthorized(t, "GET /sse?"+q+"…", res, body, `realm="mcp-redis"`)
		res, body = p.get(t, "/metrics?"+q+tok, nil)
		wantUnauthorized(t, "GET /metrics?"+q+"…", res, body, `realm="mcp-redis"`)
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// A browser page from an unlisted origin is refused (403) even with a
// token; a listed origin, a page on loopback (the bind is loopback), and a
// request without Origin pass.
func TestAttackForeignOrigin(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_ALLOWED_ORIGINS=https://app.example.com,http://localhost:3000"},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	for _, o := range []string{"https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com",
		"https://app.example.com:8443", "http://rebound.example:" + p.port, "HTTPS://APP.EXAMPLE.COM/", "file://localhost"} {
		h := bearer(tok)
		h["Origin"] = o
		res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: %d %.200s, want 403", o, res.StatusCode, body)
		}
		if res, _ := p.get(t, "/sse", h); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET /sse from Origin %s: %d, want 403", o, res.StatusCode)
		}
		delete(h, "Authorization")
		if res, _ := p.get(t, "/healthz", h); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET /healthz from Origin %s: %d, want 403", o, res.StatusCode)
		}
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)

	h := bearer(tok)
	h["Origin"] = "https://app.example.com"
	controlCallRuns(t, p, rdb, prefix, h)
	h["Origin"] = "http://localhost:3000"
	if res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs); res.StatusCode != http.StatusOK {
		t.Errorf("the second listed origin: %d %s", res.StatusCode, body)
	}
	// On a loopback bind, a page on this machine passes unlisted.
	h["Origin"] = "http://127.0.0.1:" + p.port
	if res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs); res.StatusCode != http.StatusOK {
		t.Errorf("a loopback origin on a loopback bind: %d %s", res.StatusCode, body)
	}
	// A listed origin still needs the token.
	delete(h, "Authorization")
	res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
	wantUnauthorized(t, "a listed origin without a token", res, body, `realm="mcp-redis"`)
}

// On a loopback bind, a request whose Host is not a loopback name (a page
// that rebound its DNS name to 127.0.0.1) is refused with 403 on every
// endpoint, token or not; loopback names pass.
func TestAttackForeignHostDNSRebinding(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, host := range []string{"evil.example", "evil.example:" + p.port, "127.0.0.1.nip.io:" + p.port, "localhost.evil.example",
		"0.0.0.0:" + p.port, "10.0.0.1", "[2001:db8::1]:" + p.port, "127.0.0.1@evil.example", "localhost.:" + p.port} {
		res, body := p.modernCall(t, "/mcp", host, bearer(tok), "emit_workflow_event", eventArgs)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "DNS rebinding") {
			t.Errorf("Host %s: %d %.200s, want 403", host, res.StatusCode, body)
		}
		for _, path := range []string{"/healthz", "/sse", "/metrics"} {
			req, _ := http.NewRequest(http.MethodGet, p.base+path, nil)
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+tok)
			if res, _ := p.do(t, req); res.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d, want 403", path, host, res.StatusCode)
			}
		}
	}
	// mcp-go's client sending a foreign Host cannot initialise.
	tr, _ := transport.NewStreamableHTTP(p.base+"/mcp", transport.WithHTTPHeaders(bearer(tok)), transport.WithStreamableHTTPHost("rebound.example"))
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err == nil {
			t.Error("a client sending Host rebound.example initialised")
		}
	}
	_ = c.Close()
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)

	for _, host := range []string{"localhost:" + p.port, "LocalHost:" + p.port, "localhost", "127.0.0.1:" + p.port, "127.0.0.2:" + p.port, "[::1]:" + p.port, "[::1]"} {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/healthz", nil)
		req.Host = host
		if res, body := p.do(t, req); res.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz with Host %s: %d %s", host, res.StatusCode, body)
		}
	}
	res, body := p.modernCall(t, "/mcp", "localhost:"+p.port, bearer(tok), "emit_workflow_event", eventArgs)
	if res.StatusCode != http.StatusOK {
		t.Errorf("Host localhost: %d %s", res.StatusCode, body)
	}
}

// rawRequest writes head on a new connection and, from a goroutine,
// whatever body writes; it returns the response read within 10s.
func rawRequest(t *testing.T, addr, head string, body func(w io.Writer)) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		body(conn) // write errors end it: the server may close first
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	took := time.Since(start)
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	_ = conn.Close()
	<-writing
	return res, string(b), took
}

// A POST announcing a 100 MiB body is refused with 413 at once, before the
// server reads it; a chunked body that grows past the limit is refused too,
// on /mcp and on the SSE message endpoint alike; the server serves on.
func TestAttack100MiBPost(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	addr := "127.0.0.1:" + p.port
	var sent sync.Map
	for _, path := range []string{"/mcp", "/message?sessionId=x"} {
		head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: " +
			strconv.Itoa(100<<20) + "\r\n\r\n"
		// Only 64 KiB of the 100 MiB follow: a server that read the body
		// would wait for the rest until its read timeout (30s).
		res, body, took := rawRequest(t, addr, head, func(w io.Writer) {
			n, _ := w.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"x":"` + strings.Repeat("A", 64<<10)))
			sent.Store(path, n)
		})
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "http.max_body_bytes") {
			t.Errorf("POST %s with Content-Length 100 MiB: %d %s", path, res.StatusCode, body)
		}
		if took > 2*time.Second {
			t.Errorf("POST %s with Content-Length 100 MiB: answered after %v", path, took)
		}
		t.Logf("%s, Content-Length 100 MiB: %d in %v", path, res.StatusCode, took)

		// Chunked, 4 MiB in 64 KiB chunks against the 1 MiB limit.
		head = "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("B", 64<<10))
		res, body, took = rawRequest(t, addr, head, func(w io.Writer) {
			for range 64 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			_, _ = io.WriteString(w, "0\r\n\r\n")
		})
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with a 4 MiB chunked body: %d %s", path, res.StatusCode, body)
		}
		t.Logf("%s, 4 MiB chunked: %d in %v", path, res.StatusCode, took)
	}

	// Unauthenticated, it is a 401, just as quickly.
	head := "POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: " + strconv.Itoa(100<<20) + "\r\n\r\n"
	res, _, took := rawRequest(t, addr, head, func(w io.Writer) { _, _ = w.Write(make([]byte, 1024)) })
	if res.StatusCode != http.StatusUnauthorized || took > 2*time.Second {
		t.Errorf("unauthenticated 100 MiB POST: %d after %v", res.StatusCode, took)
	}

	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// A client that trickles its request line and headers one byte a second
// (slowloris) is cut off at http.read_header_timeout, and another client
// is served meanwhile.
func TestAttackHeadersTrickledOneByteASecond(t *testing.T) {
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_READ_HEADER_TIMEOUT=2s"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	var reply strings.Builder
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			reply.Write(buf[:n])
			if err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	stop := make(chan struct{})
	trickled := make(chan int, 1)
	go func() {
		req := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:" + p.port + "\r\nAuthorization: Bearer " + tok + "\r\nContent-Length: 2\r\n\r\n{}"
		n := 0
		defer func() { trickled <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			n++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// Meanwhile another client is served at once.
	time.Sleep(500 * time.Millisecond)
	c := dialStreamable(t, p.base, tok)
	okOver(t, c, "check_rate", `{"subject":"other"}`, &rateOut{})
	if res, _ := p.get(t, "/healthz", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz during the trickle: %d", res.StatusCode)
	}
	served := time.Since(start)

	var after time.Duration
	select {
	case after = <-closed:
	case <-time.After(8 * time.Second):
		t.Fatal("the trickling connection is still open after 8s")
	}
	close(stop)
	n := <-trickled
	t.Logf("other client served by %v; trickling connection closed after %v, %d bytes in; reply %q", served, after, n, reply.String())
	if after < 1500*time.Millisecond || after > 4*time.Second {
		t.Errorf("the trickling connection was closed after %v, want about 2s", after)
	}
	if served > 2*time.Second {
		t.Errorf("the other client waited until %v", served)
	}
	if strings.Contains(reply.String(), "200 OK") {
		t.Errorf("the trickled request was served: %q", reply.String())
	}
}

// Listening beyond loopback without a token refuses to start, naming
// http.auth_tokens; with a token it starts, and requires it.
func TestAttackNonLoopbackBindWithoutToken(t *testing.T) {
	_, prefix := testredis.Shared(t)
	for _, listen := range []string{"0.0.0.0:%d", ":%d", "[::]:%d"} {
		port := testredis.FreePort(t)
		addr := fmt.Sprintf(listen, port)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		cmd := exec.CommandContext(ctx, bin, "serve", "--transport", "http", "--listen", addr, "--redis-url", testredis.URL(), "--prefix", prefix)
		cmd.Dir = t.TempDir()
		cmd.Env = append(os.Environ(), "MCP_REDIS_HTTP_AUTH_TOKENS=")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Fatalf("--listen %s without a token: still running after 10s:\n%s", addr, out)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("--listen %s without a token: %v, want a non-zero exit\n%s", addr, err, out)
		}
		if !strings.Contains(string(out), "http.auth_tokens") {
			t.Errorf("--listen %s without a token: the error does not name http.auth_tokens:\n%s", addr, out)
		}
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			_ = conn.Close()
			t.Errorf("something listens on %d", port)
		}
	}

	tok := newToken()
	port := strconv.Itoa(testredis.FreePort(t))
	p := startHTTPOn(t, "0.0.0.0:"+port, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	res, body := p.modernCall(t, "/mcp", "", nil, "check_rate", `{"subject":"x"}`)
	wantUnauthorized(t, "POST /mcp without a token on 0.0.0.0", res, body, `realm="mcp-redis"`)
	c := dialStreamable(t, p.base, tok)
	okOver(t, c, "check_rate", `{"subject":"x"}`, &rateOut{})
	// Beyond loopback, a page on a loopback name is as foreign as any
	// other: "localhost" is the browser's machine, not this one.
	res, body = p.modernCall(t, "/mcp", "", map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://localhost:3000"}, "check_rate", `{"subject":"x"}`)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("Origin http://localhost:3000 on a 0.0.0.0 bind: %d %s", res.StatusCode, body)
	}
}

// No bearer token reaches the server's log, at debug level, whatever the
// clients do: calls in every era, wrong and near-miss tokens, tokens in
// the query string, refused origins and hosts.
func TestTheBearerTokenNeverAppearsInTheHTTPServerLog(t *testing.T) {
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix, "--log-level", "debug")
	for _, c := range []*client.Client{dialStreamable(t, p.base, tok), dialStreamable(t, p.base, tok, legacyEra), dialSSE(t, p.base, tok)} {
		callOver(t, c, "check_rate", `{"subject":"x"}`)
		callOver(t, c, "read_stream", `{"stream":"bad"}`)
		_ = c.Close()
	}
	near := tok[:len(tok)-1] + "Z"
	p.modernCall(t, "/mcp", "", bearer(near), "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp?access_token="+tok, "", nil, "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp", "evil.example", bearer(tok), "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp", "", map[string]string{"Authorization": "Bearer " + tok, "Origin": "https://evil.example"}, "check_rate", `{"subject":"x"}`)
	p.get(t, "/metrics", bearer(tok))
	p.get(t, "/sse?token="+tok, nil)

	if err := p.stop(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	log := p.stderr.String()
	// mcp-go's per-request and per-tool lines come only at debug level.
	if !strings.Contains(log, "msg=mcp.tool") || !strings.Contains(log, "msg=mcp.request") {
		t.Errorf("no debug lines: the check would prove little:\n%s", log)
	}
	// The whole token, and any 12 bytes of it.
	for _, s := range []string{tok, near} {
		for i := 0; i+12 <= len(s); i++ {
			if strings.Contains(log, s[i:i+12]) {
				t.Fatalf("the log holds %q, part of a token:\n%s", s[i:i+12], log)
			}
		}
	}
	t.Logf("%d log lines, no token in any", strings.Count(log, "\n"))
}

package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/mod/semver"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A host lists the tools, calls each one, and every write is in Redis
// exactly as the entry encoding says, field by field, and announced.
func TestOverStdioEveryToolWritesExactlyWhatTheREADMESays(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()

	list, err := srv.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
		if tool.Annotations.ReadOnlyHint == nil || tool.Annotations.DestructiveHint == nil ||
			tool.Annotations.IdempotentHint == nil || tool.Annotations.OpenWorldHint == nil {
			t.Errorf("%s: annotations not all stated over the wire: %+v", tool.Name, tool.Annotations)
		}
		if len(tool.RawOutputSchema) == 0 && tool.OutputSchema.Type == "" {
			t.Errorf("%s has no output schema over the wire", tool.Name)
		}
	}
	slices.Sort(names)
	if got := strings.Join(names, ","); got != "ack_events,acquire_lock,append_batch,audit_log,check_rate,claim_events,emit_workflow_event,extend_lock,get_context,publish_ccwj_delta,read_stream,release_lock,show_dashboard,stream_info,submit_feedback,verify_audit" {
		t.Errorf("tools = %s", got)
	}

	sub := rdb.PSubscribe(ctx, prefix+"events:*")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	writes := []struct {
		tool, stream, args string
		want               map[string]string // the entry's fields, exactly
		notice             map[string]string
	}{
		{
			"audit_log", "audit_log_stream",
			`{"module":"planner","procedure":"draft","status":"ok","inputs":{"q": "x", "n": [1, 2.5, true]},"outputs":{"ok":true},
			  "session_id":"s1","workflow_id":"wf1","user_id":"u1","rationale":"line one\nline two","error_code":"E0","log_id":"L-1","timestamp":"2026-01-02T03:04:05.678Z"}`,
			map[string]string{"module": "planner", "procedure": "draft", "status": "ok", "inputs": `{"q":"x","n":[1,2.5,true]}`, "outputs": `{"ok":true}`,
				"session_id": "s1", "workflow_id": "wf1", "user_id": "u1", "rationale": "line one\nline two", "error_code": "E0", "log_id": "L-1", "timestamp": "2026-01-02T03:04:05.678Z"},
			map[string]string{"log_id": "L-1", "module": "planner", "procedure": "draft", "status": "ok", "workflow_id": "wf1", "session_id": "s1"},
		},
		{
			"publish_ccwj_delta", "ccwj_update_stream",
			`{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[{"a":1},"two"],"timestamp":"2026-01-02T03:04:06Z","event_id":"D-1"}`,
			// The caller's timestamp is stored in the server's form.
			map[string]string{"workflow_id": "wf1", "phase_id": "plan", "field": "steps", "value": `[{"a":1},"two"]`, "timestamp": "2026-01-02T03:04:06.000Z", "event_id": "D-1"},
			map[string]string{"event_id": "D-1", "workflow_id": "wf1", "phase_id": "plan", "field": "steps"},
		},
		{
			"submit_feedback", "user_feedback",
			`{"feedback":"good plan","session_id":"s1","user_id":"u1","module":"planner","procedure":"draft","event_id":"F-1"}`,
			map[string]string{"feedback": "good plan", "session_id": "s1", "user_id": "u1", "module": "planner", "procedure": "draft", "event_id": "F-1"},
			map[string]string{"event_id": "F-1", "session_id": "s1", "user_id": "u1", "module": "planner", "procedure": "draft"},
		},
		{
			"emit_workflow_event", "workflow_events",
			`{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed","details":"all good","event_id":"W-1"}`,
			map[string]string{"workflow_id": "wf1", "phase": "plan", "event_type": "phase_completed", "details": "all good", "event_id": "W-1"},
			map[string]string{"event_id": "W-1", "workflow_id": "wf1", "phase": "plan", "event_type": "phase_completed"},
		},
	}
	for _, w := range writes {
		t.Run(w.tool, func(t *testing.T) {
			before := time.Now().UTC().Add(-time.Second)
			out := srv.ok(w.tool, args(w.args))
			key := prefix + w.stream
			if out["stream"] != key || out["duplicate"] != false || out["entry_id"] == "" {
				t.Fatalf("result = %v", out)
			}
			msgs, err := rdb.XRange(ctx, key, out["entry_id"].(string), out["entry_id"].(string)).Result()
			if err != nil || len(msgs) != 1 {
				t.Fatalf("XRANGE %s: %v %v", key, msgs, err)
			}
			// The server's stamp (over stdio: the OS user), then the
			// caller's fields exactly.
			got := pvStripStamp(t, w.tool, msgs[0].Values, pvOSCaller(t))
			want := w.want
			if _, given := want["timestamp"]; !given {
				// The server fills the time: RFC 3339, UTC, milliseconds.
				ts, _ := got["timestamp"].(string)
				parsed, err := time.Parse("2006-01-02T15:04:05.000Z", ts)
				if err != nil || parsed.Before(before) || parsed.After(time.Now().Add(time.Second)) {
					t.Errorf("filled timestamp %q: %v", ts, err)
				}
				if out["timestamp"] != ts {
					t.Errorf("result timestamp %v, entry %q", out["timestamp"], ts)
				}
				want = clone(want)
				want["timestamp"] = ts
			}
			if len(got) != len(want) {
				t.Errorf("entry has %d fields, want %d: %v", len(got), len(want), got)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("field %s = %q, want %q", k, got[k], v)
				}
			}
			// The notice names the stream, the entry and its key fields. The
			// server's own call records are announced too: skip those.
			var n map[string]string
			for n == nil || n["module"] == "mcp-redis" {
				msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				m := msg.(*redis.Message)
				n = nil
				if err := json.Unmarshal([]byte(m.Payload), &n); err != nil {
					t.Fatalf("notice %s: %v", m.Payload, err)
				}
				if n["module"] != "mcp-redis" && m.Channel != prefix+"events:"+w.stream {
					t.Errorf("notice on %s", m.Channel)
				}
			}
			wantNotice := clone(w.notice)
			wantNotice["stream"], wantNotice["key"], wantNotice["id"] = w.stream, key, out["entry_id"].(string)
			if fmt.Sprint(n) != fmt.Sprint(wantNotice) {
				t.Errorf("notice = %v, want %v", n, wantNotice)
			}
			// And read_stream gives the entry back in the schema's types.
			page := srv.ok("read_stream", map[string]any{"stream": w.stream, "start": out["entry_id"], "count": 1})
			entries := page["entries"].([]any)
			if len(entries) != 1 {
				t.Fatalf("read_stream = %v", page)
			}
			fields := entries[0].(map[string]any)["fields"].(map[string]any)
			for _, k := range pvStamped {
				if fmt.Sprint(fields[k]) != fmt.Sprint(msgs[0].Values[k]) {
					t.Errorf("read_stream field %s = %v, want %v", k, fields[k], msgs[0].Values[k])
				}
			}
			for k, v := range want {
				if !sameJSON(fields[k], v) {
					t.Errorf("read_stream field %s = %#v, want %s", k, fields[k], v)
				}
			}
		})
	}

	// The context of wf1 holds the delta's value.
	c := srv.ok("get_context", map[string]any{"workflow_id": "wf1", "phase_id": "plan"})
	steps, _ := json.Marshal(c["context"].(map[string]any)["plan"].(map[string]any)["steps"])
	if string(steps) != `[{"a":1},"two"]` || c["last_delta_id"] == "" {
		t.Errorf("get_context = %v", c)
	}

	// Every call above except audit_log's own was audited by the server.
	settled(t, rdb, prefix)
	calls, err := rdb.XRange(ctx, prefix+"audit_log_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	audited := map[string]int{}
	for _, m := range calls {
		if m.Values["module"] == "mcp-redis" {
			audited[m.Values["procedure"].(string)]++
		}
	}
	if audited["audit_log"] != 0 || audited["publish_ccwj_delta"] != 1 || audited["read_stream"] != 4 || audited["get_context"] != 1 {
		t.Errorf("call records by tool = %v", audited)
	}
}

// sameJSON reports whether a decoded read_stream value is the stream
// field's value: a string as it is, anything else as the same JSON.
func sameJSON(got any, field string) bool {
	if s, ok := got.(string); ok {
		return s == field
	}
	var want any
	if json.Unmarshal([]byte(field), &want) != nil {
		return false
	}
	return reflect.DeepEqual(got, want)
}

func clone(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Bad input gets a tool error naming the field, and nothing reaches Redis.
func TestOverStdioBadInputIsAToolErrorAndWritesNothing(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	cases := []struct {
		tool, args, field string
	}{
		{"audit_log", `{"procedure":"p","status":"ok"}`, "module"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","modul":"x"}`, "valid arguments are: module"},
		{"audit_log", `{"module":5,"procedure":"p","status":"ok"}`, "module"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","timestamp":"yesterday"}`, "timestamp"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","timestamp":"2026-13-45T00:00:00Z"}`, "timestamp"},
		{"audit_log", `{"module":"m\u0000","procedure":"p","status":"ok"}`, "module"},
		{"audit_log", `{"module":"` + strings.Repeat("m", 257) + `","procedure":"p","status":"ok"}`, "module"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":` + strings.Repeat(`{"a":`, 17) + `1` + strings.Repeat(`}`, 17) + `}`, "inputs"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":"not an object"}`, "inputs"},
		{"audit_log", `{"module":"m","procedure":"p","status":"ok","rationale":"` + strings.Repeat("r", 70000) + `"}`, "rationale"},
		{"publish_ccwj_delta", `{"workflow_id":"w","phase_id":"p","field":"f"}`, "value"},
		{"emit_workflow_event", `{"workflow_id":"w\nx","phase":"p","event_type":"e"}`, "workflow_id"},
		{"submit_feedback", `{"feedback":""}`, "feedback"},
		{"read_stream", `{"stream":"mcp:locks"}`, "stream"},
		{"read_stream", `{"stream":"user_feedback","count":1001}`, "count"},
		{"read_stream", `{"stream":"user_feedback","count":"5"}`, "count"},
		{"read_stream", `{"stream":"user_feedback","count":5.5}`, "count"},
		{"read_stream", `{"stream":"user_feedback","start":"abc"}`, "start"},
		{"get_context", `{"workflow_id":"   "}`, "workflow_id"},
	}
	for _, c := range cases {
		res := srv.call(c.tool, args(c.args))
		msg := resultText(res)
		if !res.IsError || !strings.Contains(msg, c.field) {
			t.Errorf("%s(%.80s): isError=%v %q, want a tool error naming %s", c.tool, c.args, res.IsError, msg, c.field)
		}
	}
	// The next valid call succeeds, and only it was written.
	srv.ok("audit_log", args(`{"module":"m","procedure":"p","status":"ok"}`))
	keys, err := rdb.Keys(context.Background(), prefix+"*").Result()
	slices.Sort(keys)
	// The stream and its chain head.
	if want := []string{prefix + "audit_log_stream", prefix + "chain:{" + prefix + "audit_log_stream}"}; err != nil || !slices.Equal(keys, want) {
		t.Errorf("keys after bad input = %v (%v), want %v", keys, err, want)
	}
	if n := rdb.XLen(context.Background(), prefix+"audit_log_stream").Val(); n != 1 {
		t.Errorf("audit stream holds %d entries", n)
	}
}

// Redis going away gives tool errors in time, and calls succeed again when
// it is back, with no restart of the server.
func TestOverStdioAnUnreachableRedisIsAToolErrorAndRecoveryNeedsNoRestart(t *testing.T) {
	needsFull(t, "starts the binary")
	redisSrv := testredis.Start(t)
	srv := spawn(t, []string{"MCP_REDIS_REDIS_TIMEOUT=500ms"}, "--redis-url", redisSrv.URL())
	write := `{"module":"m","procedure":"p","status":"ok"}`
	srv.ok("audit_log", args(write))

	redisSrv.Stop()
	for _, tool := range []struct{ name, args string }{
		{"audit_log", write},
		{"read_stream", `{"stream":"audit_log_stream"}`},
		{"get_context", `{"workflow_id":"w"}`},
	} {
		start := time.Now()
		res := srv.call(tool.name, args(tool.args))
		took := time.Since(start)
		if !res.IsError || !strings.Contains(resultText(res), "unavailable") {
			t.Errorf("%s with Redis down: isError=%v %q", tool.name, res.IsError, resultText(res))
		}
		// A generous bound that tells an answer from a hang, not a timing.
		if took > 10*time.Second {
			t.Errorf("%s with Redis down took %v", tool.name, took)
		}
	}

	redisSrv.Start()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := srv.call("audit_log", args(write))
		if !res.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after Redis came back: %s", resultText(res))
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.ok("read_stream", args(`{"stream":"audit_log_stream"}`))
}

// With no configuration the server runs on the embedded Redis, says so on
// stderr, and its tools work.
func TestWithNoConfigurationTheEmbeddedRedisServes(t *testing.T) {
	needsFull(t, "starts the binary")
	srv := spawn(t, []string{"MCP_REDIS_REDIS_URL=", "REDIS_URL="})
	out := srv.ok("publish_ccwj_delta", args(`{"workflow_id":"w","phase_id":"p","field":"f","value":{"k":"v"}}`))
	if out["stream"] != "mcp:ccwj_update_stream" {
		t.Errorf("result = %v", out)
	}
	c := srv.ok("get_context", args(`{"workflow_id":"w"}`))
	if fmt.Sprint(c["context"]) != "map[p:map[f:map[k:v]]]" {
		t.Errorf("context = %v", c)
	}
	page := srv.ok("read_stream", args(`{"stream":"ccwj_update_stream"}`))
	if len(page["entries"].([]any)) != 1 {
		t.Errorf("read_stream = %v", page)
	}
	if !strings.Contains(srv.stderr.String(), "nothing is persisted") {
		t.Errorf("stderr does not warn that nothing is persisted:\n%s", srv.stderr.String())
	}
}

// Under stdio, stdout carries JSON-RPC only, and CRLF and blank lines are
// tolerated.
func TestStdoutCarriesJSONRPCOnly(t *testing.T) {
	needsFull(t, "starts the binary")
	p := startBinary(t, true, []string{"MCP_REDIS_REDIS_URL=", "REDIS_URL="}, "serve", "--log-level", "debug")
	_, _ = io.WriteString(p.stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\r\n\n"+
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\r\n"+
		`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"m","procedure":"p","status":"ok"}}}`+"\n")
	_ = p.stdin.Close()
	sc := bufio.NewScanner(p.stdout)
	sc.Buffer(nil, 1<<20)
	ids := map[float64]bool{}
	for sc.Scan() {
		var msg struct {
			JSONRPC string   `json:"jsonrpc"`
			ID      *float64 `json:"id"`
			Error   any      `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil || msg.JSONRPC != "2.0" {
			t.Fatalf("stdout line is not JSON-RPC: %q", sc.Text())
		}
		if msg.ID != nil && msg.Error == nil {
			ids[*msg.ID] = true
		}
	}
	if !ids[1] || !ids[2] || !ids[3] {
		t.Errorf("answered ids = %v, want 1, 2 and 3", ids)
	}
}

// An invalid configuration exits non-zero and lists every problem at once.
func TestAnInvalidConfigurationListsEveryProblem(t *testing.T) {
	needsFull(t, "starts the binary")
	out, err := runBinary(t, runBound, []string{"MCP_REDIS_REDIS_TIMEOUT=0s", "MCP_REDIS_LIMITS_MAX_ENTRY_BYTES=5"},
		"serve", "--redis-url", "http://x", "--prefix", "a b")
	if err == nil {
		t.Fatalf("exit 0 with an invalid configuration:\n%s", out)
	}
	for _, key := range []string{"redis.url", "redis.prefix", "redis.timeout", "limits.max_entry_bytes"} {
		if !strings.Contains(out, key) {
			t.Errorf("the error does not name %s:\n%s", key, out)
		}
	}
}

func TestHelpNamesTheCommandsAndFlags(t *testing.T) {
	needsFull(t, "starts the binary")
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--help"}, []string{"serve", "schemas", "migrate", "tail", "version", "MCP_REDIS_", "config.yaml"}},
		{[]string{"serve", "--help"}, []string{"--config", "--redis-url", "--prefix", "--transport"}},
		{[]string{"schemas", "--help"}, []string{"--out"}},
		{[]string{"migrate", "--help"}, []string{"--dry-run", "--redis-url", "--prefix", "fencing counters"}},
		{[]string{"tail", "--help"}, []string{"--follow", "--from", "--filter", "--json", "--redis-url", "--prefix", "last 10 entries", "embedded"}},
	} {
		out, err := runBinary(t, runBound, nil, c.args...)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v does not mention %s", c.args, w)
			}
		}
	}
}

// SIGTERM ends the server cleanly even while the host keeps stdin open.
func TestSIGTERMEndsTheServerWithExitZero(t *testing.T) {
	needsFull(t, "starts the binary")
	// The harness closes stdin only when the test ends.
	p := startBinary(t, true, []string{"MCP_REDIS_REDIS_URL=", "REDIS_URL="}, "serve")
	_, _ = io.WriteString(p.stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	if !bufio.NewScanner(p.stdout).Scan() {
		t.Fatal("no initialize reply")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("exit after SIGTERM: %v", p.err)
		}
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatal("the server did not exit after SIGTERM")
	}
}

// binVersion is the version the binary under test reports.
func binVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("version: %v", err)
	}
	m := regexp.MustCompile(`^mcp-redis (\S+) \(commit (\S+)\)\n$`).FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("version printed %q, want \"mcp-redis <semver> (commit <commit>)\"", out)
	}
	return m[1]
}

// version prints a semantic version and the commit: from the stamp make
// build gives, and, unstamped (go build, go run), v0.0.0-dev or what the
// build information holds.
func TestVersionPrintsASemanticVersionAndTheCommit(t *testing.T) {
	needsFull(t, "builds the binary")
	if v := binVersion(t); !semver.IsValid(v) {
		t.Errorf("the unstamped binary's version %q is not a semantic version", v)
	}
	stamped := filepath.Join(t.TempDir(), "mcp-redis")
	build := exec.Command("go", "build", "-ldflags",
		"-X github.com/mcp-redis/mcp-redis/internal/app.Version=v1.2.3 -X github.com/mcp-redis/mcp-redis/internal/app.Commit=0123456789ab", "-o", stamped, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "version").Output()
	if err != nil || string(out) != "mcp-redis v1.2.3 (commit 0123456789ab)\n" {
		t.Errorf("the stamped binary printed %q (%v)", out, err)
	}
}

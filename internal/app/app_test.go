package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// harness is a server built in-process on the shared real Redis under a
// prefix of the test's own, with an MCP client talking to it.
type harness struct {
	t      *testing.T
	app    *app.App
	mcp    *client.Client
	rdb    *redis.Client
	keys   keyspace.Keyspace
	prefix string
}

// newApp builds a server on the shared real Redis under a prefix of the
// test's own, closed when the test ends.
func newApp(t *testing.T, edit func(*config.Config)) (*app.App, *redis.Client, string) {
	t.Helper()
	return newAppLogging(t, edit, io.Discard)
}

// newAppLogging is newApp with the server's log written to log.
func newAppLogging(t *testing.T, edit func(*config.Config), log io.Writer) (*app.App, *redis.Client, string) {
	t.Helper()
	rdb, prefix := testredis.Shared(t)
	cfg := config.Defaults()
	cfg.Redis.URL = testredis.URL()
	cfg.Redis.Prefix = prefix
	if edit != nil {
		edit(&cfg)
	}
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	return a, rdb, prefix
}

func newHarness(t *testing.T, edit func(*config.Config)) *harness {
	t.Helper()
	return newHarnessAs(t, edit, mcp.Implementation{})
}

// newHarnessAs is newHarness with a client that introduces itself as
// info in initialize.
func newHarnessAs(t *testing.T, edit func(*config.Config), info mcp.Implementation) *harness {
	t.Helper()
	a, rdb, prefix := newApp(t, edit)
	c, err := client.NewInProcessClient(a.MCP)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = info
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &harness{t: t, app: a, mcp: c, rdb: rdb, keys: keyspace.Keyspace{Prefix: prefix}, prefix: prefix}
}

// call calls a tool with JSON arguments and returns its result.
func (h *harness) call(tool, args string) *mcp.CallToolResult {
	h.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = json.RawMessage(args)
	res, err := h.mcp.CallTool(context.Background(), req)
	if err != nil {
		h.t.Fatalf("%s(%s): %v", tool, args, err)
	}
	return res
}

// ok calls a tool that must succeed and decodes its structured result.
func (h *harness) ok(tool, args string) map[string]any {
	h.t.Helper()
	res := h.call(tool, args)
	if res.IsError {
		h.t.Fatalf("%s(%s) failed: %s", tool, args, text(res))
	}
	var out map[string]any
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &out); err != nil {
		h.t.Fatalf("%s structured content: %v", tool, err)
	}
	return out
}

// fails calls a tool that must answer a tool error and returns its text.
func (h *harness) fails(tool, args string) string {
	h.t.Helper()
	res := h.call(tool, args)
	if !res.IsError {
		h.t.Fatalf("%s(%s) succeeded, want a tool error", tool, args)
	}
	return text(res)
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func (h *harness) entries(stream string) []redis.XMessage {
	h.t.Helper()
	h.app.Settle()
	msgs, err := h.rdb.XRange(context.Background(), h.keys.Stream(stream), "-", "+").Result()
	if err != nil {
		h.t.Fatal(err)
	}
	return msgs
}

func TestEveryToolCallIsAuditedButAuditLogIsNotRecordedTwice(t *testing.T) {
	h := newHarness(t, nil)
	h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok"}`)
	h.ok("emit_workflow_event", `{"workflow_id":"wf","phase":"plan","event_type":"started","event_id":"e1"}`)
	h.fails("read_stream", `{"stream":"nope"}`)
	h.fails("audit_log", `{"module":"m"}`)

	got := h.entries(keyspace.AuditLog)
	if len(got) != 4 {
		t.Fatalf("audit stream holds %d entries, want 4 (the audit_log entry, two call records, one failed audit_log call): %v", len(got), got)
	}
	if got[0].Values["module"] != "m" {
		t.Errorf("first entry = %v, want the caller's own", got[0].Values)
	}
	ev := got[1].Values
	if ev["module"] != "mcp-redis" || ev["procedure"] != "emit_workflow_event" || ev["status"] != "ok" || ev["workflow_id"] != "wf" ||
		ev["duration_ms"] == nil || ev["input_bytes"] == nil || ev["log_id"] == nil || ev["timestamp"] == nil {
		t.Errorf("call record = %v", ev)
	}
	bad := got[2].Values
	if bad["procedure"] != "read_stream" || bad["status"] != "error" || bad["error_code"] != "invalid_argument" || !strings.Contains(bad["error"].(string), "stream") {
		t.Errorf("failed call record = %v", bad)
	}
	if got[3].Values["procedure"] != "audit_log" || got[3].Values["status"] != "error" {
		t.Errorf("failed audit_log call record = %v", got[3].Values)
	}
}

func TestTheCallAuditCanBeTurnedOff(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	h.ok("submit_feedback", `{"feedback":"nice"}`)
	h.fails("get_context", `{}`)
	if n := len(h.entries(keyspace.AuditLog)); n != 0 {
		t.Fatalf("audit stream holds %d entries with audit.tool_calls false", n)
	}
}

func TestARetryWithoutATimestampIsRecognisedAsTheSameEntry(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	args := `{"module":"m","procedure":"p","status":"ok","inputs":{"n":1},"log_id":"retry-1"}`
	first := h.ok("audit_log", args)
	again := h.ok("audit_log", args)
	if first["duplicate"] != false || again["duplicate"] != true || again["entry_id"] != first["entry_id"] || again["timestamp"] != first["timestamp"] {
		t.Fatalf("first %v, retry %v", first, again)
	}
	msg := h.fails("audit_log", `{"module":"m","procedure":"p","status":"error","log_id":"retry-1"}`)
	if !strings.Contains(msg, "log_id") || !strings.Contains(msg, first["entry_id"].(string)) {
		t.Errorf("reuse with another payload: %s", msg)
	}
	if n := len(h.entries(keyspace.AuditLog)); n != 1 {
		t.Errorf("audit stream holds %d entries, want 1", n)
	}
}

func TestAnEntryOverTheLimitIsRefusedNamingTheField(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	big := strings.Repeat("x", 64<<10)
	msg := h.fails("audit_log", `{"module":"m","procedure":"p","status":"ok","rationale":"`+big+`"}`)
	if !strings.Contains(msg, "rationale") || !strings.Contains(msg, "max_entry_bytes") {
		t.Errorf("oversize entry: %.200s", msg)
	}
	if n := len(h.entries(keyspace.AuditLog)); n != 0 {
		t.Errorf("audit stream holds %d entries after a refused write", n)
	}
	// Just under the limit passes.
	h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok","rationale":"`+big[:60<<10]+`"}`)
}

func TestReadStreamDecodesEntriesBackToTheirTypes(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	h.ok("publish_ccwj_delta", `{"workflow_id":"wf","phase_id":"plan","field":"n","value":"42","event_id":"d1"}`)
	h.ok("publish_ccwj_delta", `{"workflow_id":"wf","phase_id":"plan","field":"n","value":42,"event_id":"d2"}`)
	h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":{"big":12345678901234567890,"nested":{"a":[1,true,null]}},"workflow_id":"wf"}`)
	page := h.ok("read_stream", `{"stream":"ccwj_update_stream","workflow_id":"wf"}`)
	entries := page["entries"].([]any)
	if len(entries) != 2 {
		t.Fatalf("entries = %v", entries)
	}
	if v := entries[0].(map[string]any)["fields"].(map[string]any)["value"]; v != "42" {
		t.Errorf("a string value came back as %#v", v)
	}
	if v := entries[1].(map[string]any)["fields"].(map[string]any)["value"]; v != float64(42) {
		t.Errorf("a number value came back as %#v", v)
	}
	res := h.call("read_stream", `{"stream":"audit_log_stream","reverse":true,"count":1}`)
	raw := res.RawStructuredContent
	if len(raw) == 0 {
		raw, _ = json.Marshal(res.StructuredContent)
	}
	if !strings.Contains(string(raw), `"inputs":{"big":12345678901234567890,"nested":{"a":[1,true,null]}}`) {
		t.Errorf("an object came back as %s", raw)
	}
	ctx := h.ok("get_context", `{"workflow_id":"wf"}`)
	if ctx["context"].(map[string]any)["plan"].(map[string]any)["n"] != float64(42) {
		t.Errorf("context = %v", ctx)
	}
}

// Call records are written in the background, in the order the calls
// ended, and every one of them arrives; with audit.tool_calls_wait each is
// there before its call is answered.
func TestCallRecordsAreWrittenInOrderAndWithWaitBeforeTheAnswer(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			h := newHarness(t, func(c *config.Config) { c.Audit.ToolCallsWait = wait })
			var want []string
			for i := range 50 {
				id := fmt.Sprintf("e%02d", i)
				h.ok("emit_workflow_event", `{"workflow_id":"wf","phase":"plan","event_type":"started","event_id":"`+id+`"}`)
				want = append(want, id)
				if wait {
					// No Settle: the record is written before the answer.
					n, err := h.rdb.XLen(context.Background(), h.keys.Stream(keyspace.AuditLog)).Result()
					if err != nil || n != int64(i+1) {
						t.Fatalf("after call %d the audit stream holds %d records (%v), want %d", i+1, n, err, i+1)
					}
				}
			}
			var got []string
			for _, m := range h.entries(keyspace.AuditLog) {
				var in struct {
					EventID string `json:"event_id"`
				}
				_ = json.Unmarshal([]byte(fmt.Sprint(m.Values["inputs"])), &in)
				got = append(got, in.EventID)
			}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("records %v, want %v", got, want)
			}
		})
	}
}

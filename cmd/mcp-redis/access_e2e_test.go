package main_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

var readTools = []string{"get_context", "read_stream", "show_dashboard", "stream_info", "verify_audit"}

// listNames is tools/list's names, sorted.
func listNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	return names
}

// callText calls tool with args and returns its text and whether it is a
// tool error.
func callText(t *testing.T, c *client.Client, tool string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return resultText(res), res.IsError
}

var auditArgs = map[string]any{"module": "m", "procedure": "p", "status": "ok"}

// denials are the call records of forbidden calls under prefix.
func denials(t *testing.T, rdb *redis.Client, prefix string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range callRecords(t, rdb, prefix) {
		if m.Values["error_code"] == "forbidden" {
			out = append(out, m.Values)
		}
	}
	return out
}

// With tools.read_only only the read tools are listed, on every transport;
// a write tool called anyway is refused saying the server is read-only,
// nothing is written, and the denial is in the audit trail.
func TestReadOnlyServesOnlyTheReadToolsOnEveryTransport(t *testing.T) {
	needsFull(t, "starts the binary over stdio and HTTP")
	check := func(t *testing.T, c *client.Client, rdb *redis.Client, prefix, caller string) {
		t.Helper()
		if got := listNames(t, c); !slices.Equal(got, readTools) {
			t.Errorf("tools/list = %v, want %v", got, readTools)
		}
		// The prompts that have a model write are withheld with the tools.
		if ps, err := c.ListPrompts(context.Background(), mcp.ListPromptsRequest{}); err != nil || len(ps.Prompts) != 1 || ps.Prompts[0].Name != "review_workflow_history" {
			t.Errorf("prompts/list = %+v, %v; want review_workflow_history alone", ps, err)
		}
		text, isErr := callText(t, c, "audit_log", auditArgs)
		if !isErr || !strings.Contains(text, "forbidden: the server is read-only (tools.read_only): audit_log writes") {
			t.Errorf("audit_log answered %v %q", isErr, text)
		}
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "frobnicate", map[string]any{}
		if _, err := c.CallTool(context.Background(), req); err == nil ||
			!strings.Contains(err.Error(), "the tools are: "+strings.Join(readTools, ", ")) {
			t.Errorf("an unknown tool is answered %v; want only the tools offered listed", err)
		}
		if text, isErr := callText(t, c, "read_stream", map[string]any{"stream": "workflow_events"}); isErr {
			t.Errorf("read_stream: %s", text)
		}
		var clients int
		msgs, _ := rdb.XRange(context.Background(), prefix+"audit_log_stream", "-", "+").Result()
		for _, m := range msgs {
			if m.Values["module"] != "mcp-redis" {
				clients++
			}
		}
		if clients != 0 {
			t.Errorf("%d client entries written by a read-only server", clients)
		}
		d := denials(t, rdb, prefix)
		if len(d) != 1 || d[0]["procedure"] != "audit_log" || !strings.Contains(d[0]["error"].(string), "read-only") ||
			(caller != "" && d[0]["caller"] != caller) {
			t.Errorf("denials recorded: %v", d)
		}
	}
	t.Run("stdio", func(t *testing.T) {
		rdb, prefix := testredis.Shared(t)
		s := spawn(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix, "--read-only")
		check(t, s.c, rdb, prefix, "")
	})
	for _, tr := range []string{"streamable", "sse"} {
		t.Run(tr, func(t *testing.T) {
			rdb, prefix := testredis.Shared(t)
			tok := newToken()
			p := startHTTP(t, []string{tokensEnv("ci-bot", tok), "MCP_REDIS_TOOLS_READ_ONLY=true"}, "--redis-url", testredis.URL(), "--prefix", prefix)
			c := dialSSE(t, p.base, tok)
			if tr == "streamable" {
				c = dialStreamable(t, p.base, tok)
			}
			check(t, c, rdb, prefix, "ci-bot")
			noSecretUnder(t, rdb, prefix, tok)
		})
	}
}

// tools.enabled and tools.disabled decide what is listed and callable; a
// name that is no tool stops the server at start, with the nearest.
func TestToolAllowAndDenyListsDecideWhatIsListedAndCallable(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	lists := []string{"MCP_REDIS_TOOLS_ENABLED=read_stream,acquire_lock,release_lock,check_rate", "MCP_REDIS_TOOLS_DISABLED=check_rate"}
	check := func(t *testing.T, c *client.Client) {
		t.Helper()
		if got, want := listNames(t, c), []string{"acquire_lock", "read_stream", "release_lock"}; !slices.Equal(got, want) {
			t.Errorf("tools/list = %v, want %v", got, want)
		}
		if text, isErr := callText(t, c, "check_rate", map[string]any{"subject": "x"}); !isErr || !strings.Contains(text, "check_rate is turned off on this server (tools.disabled)") {
			t.Errorf("check_rate answered %v %q", isErr, text)
		}
		if text, isErr := callText(t, c, "audit_log", auditArgs); !isErr || !strings.Contains(text, "audit_log is not among the tools this server offers (tools.enabled)") {
			t.Errorf("audit_log answered %v %q", isErr, text)
		}
		if text, isErr := callText(t, c, "acquire_lock", map[string]any{"resource": "r-" + testredis.Random(4)}); isErr {
			t.Errorf("acquire_lock: %s", text)
		}
	}
	t.Run("stdio", func(t *testing.T) {
		check(t, spawn(t, lists, "--redis-url", testredis.URL(), "--prefix", prefix).c)
	})
	tok := newToken()
	p := startHTTP(t, append([]string{tokensEnv("ci-bot", tok)}, lists...), "--redis-url", testredis.URL(), "--prefix", prefix)
	t.Run("streamable", func(t *testing.T) { check(t, dialStreamable(t, p.base, tok)) })
	t.Run("sse", func(t *testing.T) { check(t, dialSSE(t, p.base, tok)) })

	out, err := runBinary(t, 20*time.Second, []string{"MCP_REDIS_TOOLS_DISABLED=aquire_lock,frob"}, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)
	if err == nil {
		t.Fatalf("started with unknown tool names:\n%s", out)
	}
	for _, want := range []string{`tools.disabled: "aquire_lock" is not a tool; did you mean acquire_lock?`, `tools.disabled: "frob" is not a tool (the tools are`} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// Two tokens with different scopes see different tools/list answers and
// are refused, naming the missing scope, beyond them; a token given no
// scopes and an admin token see every tool. Each denial is recorded with
// the token's name, never the token.
func TestTokenScopesDecideWhatEachTokenSeesAndCalls(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	reader, writer, admin, full := newToken(), newToken(), newToken(), newToken()
	p := startHTTP(t, []string{
		tokensEnv("reader", reader, "writer", writer, "admin", admin, "full", full),
		"MCP_REDIS_HTTP_TOKEN_SCOPES=reader=streams:read,writer=streams:write locks,admin=admin",
	}, "--redis-url", testredis.URL(), "--prefix", prefix)

	rc, wc := dialStreamable(t, p.base, reader), dialSSE(t, p.base, writer)
	if got := listNames(t, rc); !slices.Equal(got, readTools) {
		t.Errorf("reader's tools/list = %v, want %v", got, readTools)
	}
	wantWriter := []string{"acquire_lock", "append_batch", "audit_log", "emit_workflow_event", "extend_lock", "publish_ccwj_delta", "release_lock", "submit_feedback"}
	if got := listNames(t, wc); !slices.Equal(got, wantWriter) {
		t.Errorf("writer's tools/list = %v, want %v", got, wantWriter)
	}
	all := listNames(t, dialStreamable(t, p.base, admin))
	if got := listNames(t, dialStreamable(t, p.base, full)); !slices.Equal(got, all) || len(all) < 16 {
		t.Errorf("a token without scopes lists %v, admin %v", got, all)
	}

	text, isErr := callText(t, rc, "audit_log", auditArgs)
	if !isErr || !strings.Contains(text, `forbidden: audit_log needs the scope streams:write, which the credential "reader" does not grant (it grants streams:read)`) {
		t.Errorf("reader's audit_log answered %v %q", isErr, text)
	}
	if text, isErr := callText(t, wc, "read_stream", map[string]any{"stream": "audit_log_stream"}); !isErr || !strings.Contains(text, "needs the scope streams:read") {
		t.Errorf("writer's read_stream answered %v %q", isErr, text)
	}
	if text, isErr := callText(t, wc, "audit_log", auditArgs); isErr {
		t.Errorf("writer's audit_log: %s", text)
	}
	if text, isErr := callText(t, rc, "read_stream", map[string]any{"stream": "audit_log_stream"}); isErr || !strings.Contains(text, `"module":"m"`) {
		t.Errorf("reader's read_stream answered %v %q", isErr, text)
	}

	// The resources and the dashboard's data need streams:read too.
	rreq := mcp.ReadResourceRequest{}
	rreq.Params.URI = "mcp-redis://streams/audit_log_stream"
	if _, err := wc.ReadResource(context.Background(), rreq); err == nil || !strings.Contains(err.Error(), "forbidden: resources/read needs the scope streams:read") {
		t.Errorf("writer's resources/read: %v", err)
	}
	if _, err := rc.ReadResource(context.Background(), rreq); err != nil {
		t.Errorf("reader's resources/read: %v", err)
	}
	api := "/ui/api/call?name=show_dashboard&arguments=%7B%7D"
	if resp, body := p.get(t, api, bearer(writer)); resp.StatusCode != 403 || !strings.Contains(body, `"code":"forbidden"`) {
		t.Errorf("writer's dashboard data: %d %s", resp.StatusCode, body)
	}
	if resp, body := p.get(t, api, bearer(reader)); resp.StatusCode != 200 {
		t.Errorf("reader's dashboard data: %d %s", resp.StatusCode, body)
	}

	d := denials(t, rdb, prefix)
	var got []string
	for _, r := range d {
		got = append(got, r["caller"].(string)+" "+r["procedure"].(string))
	}
	slices.Sort(got)
	if want := []string{"reader audit_log", "writer read_stream", "writer resources/read", "writer ui/api"}; !slices.Equal(got, want) {
		t.Errorf("denials recorded: %v, want %v", got, want)
	}
	noSecretUnder(t, rdb, prefix, reader, writer, admin, full)
}

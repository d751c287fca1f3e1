package main_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// Two tokens in namespaces of their own write the same stream name and
// read back only their own; locks on the same resource name and rate
// subjects of the same name do not contend across tenants; the notices,
// resources and dashboard data are the tenant's; a token without a
// namespace works in the server's own.
func TestTenantNamespacesKeepTokensApart(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	ta, tb, tc := newToken(), newToken(), newToken()
	p := startHTTP(t, []string{
		tokensEnv("alice", ta, "bob", tb, "carol", tc),
		"MCP_REDIS_HTTP_TOKEN_NAMESPACES=alice=teamA,bob=teamB",
		"MCP_REDIS_RATE_POLICIES_ONE_LIMIT=1", "MCP_REDIS_RATE_POLICIES_ONE_WINDOW=1m",
	}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	notices := rdb.PSubscribe(ctx, prefix+"teamA:events:*")
	defer notices.Close()
	if _, err := notices.Receive(ctx); err != nil {
		t.Fatal(err)
	}

	a, b, c := dialStreamable(t, p.base, ta), dialSSE(t, p.base, tb), dialStreamable(t, p.base, tc)
	for _, w := range []struct {
		name string
		c    interface {
			CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
		}
	}{{"alice", a}, {"bob", b}, {"carol", c}} {
		req := mcp.CallToolRequest{}
		req.Params.Name = "audit_log"
		req.Params.Arguments = map[string]any{"module": "m-" + w.name, "procedure": "p", "status": "ok"}
		if res, err := w.c.CallTool(ctx, req); err != nil || res.IsError {
			t.Fatalf("%s audit_log: %v %v", w.name, err, res)
		}
	}

	// Each write landed under its tenant's prefix alone.
	for key, module := range map[string]string{
		prefix + "teamA:audit_log_stream": "m-alice",
		prefix + "teamB:audit_log_stream": "m-bob",
		prefix + "audit_log_stream":       "m-carol",
	} {
		msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range msgs {
			if m.Values["module"] != "mcp-redis" {
				got = append(got, m.Values["module"].(string))
			}
		}
		if strings.Join(got, ",") != module {
			t.Errorf("%s holds client entries %v, want %s alone", key, got, module)
		}
	}
	msg, err := notices.ReceiveMessage(ctx)
	if err != nil || msg.Channel != prefix+"teamA:events:audit_log_stream" || !strings.Contains(msg.Payload, "m-alice") {
		t.Errorf("teamA's notice: %v %v", msg, err)
	}

	// read_stream, the resources and the dashboard data see the tenant's.
	text, isErr := callText(t, a, "read_stream", map[string]any{"stream": "audit_log_stream", "module": "m-bob"})
	if isErr || !strings.Contains(text, `"entries":[]`) {
		t.Errorf("alice reads bob's entries: %s", text)
	}
	text, _ = callText(t, a, "read_stream", map[string]any{"stream": "audit_log_stream"})
	if !strings.Contains(text, `"module":"m-alice"`) || strings.Contains(text, `"caller":"bob"`) || strings.Contains(text, `"caller":"carol"`) {
		t.Errorf("alice's read_stream: %s", text)
	}
	rreq := mcp.ReadResourceRequest{}
	rreq.Params.URI = "mcp-redis://streams/audit_log_stream"
	res, err := b.ReadResource(ctx, rreq)
	if err != nil {
		t.Fatal(err)
	}
	body := res.Contents[0].(mcp.TextResourceContents).Text
	if !strings.Contains(body, `"module":"m-bob"`) || strings.Contains(body, `"caller":"alice"`) {
		t.Errorf("bob's resource: %s", body)
	}
	api := "/ui/api/call?name=read_stream&arguments=" + url.QueryEscape(`{"stream":"audit_log_stream"}`)
	if resp, data := p.get(t, api, bearer(ta)); resp.StatusCode != 200 || !strings.Contains(data, `m-alice`) || strings.Contains(data, `"caller":"carol"`) || strings.Contains(data, `"caller":"bob"`) {
		t.Errorf("alice's dashboard data: %d %s", resp.StatusCode, data)
	}

	// The same lock name is three locks; the same rate subject three.
	for _, cl := range []struct {
		name string
		text func(tool string, args map[string]any) (string, bool)
	}{
		{"alice", func(tool string, args map[string]any) (string, bool) { return callText(t, a, tool, args) }},
		{"bob", func(tool string, args map[string]any) (string, bool) { return callText(t, b, tool, args) }},
		{"carol", func(tool string, args map[string]any) (string, bool) { return callText(t, c, tool, args) }},
	} {
		if text, _ := cl.text("acquire_lock", map[string]any{"resource": "shared", "ttl_ms": 60000}); !strings.Contains(text, `"acquired":true`) {
			t.Errorf("%s's acquire_lock of shared: %s", cl.name, text)
		}
		if text, _ := cl.text("check_rate", map[string]any{"subject": "s", "policy": "one"}); !strings.Contains(text, `"allowed":true`) {
			t.Errorf("%s's first check_rate: %s", cl.name, text)
		}
	}
	if text, _ := callText(t, a, "check_rate", map[string]any{"subject": "s", "policy": "one"}); !strings.Contains(text, `"allowed":false`) {
		t.Errorf("alice's second check_rate: %s", text)
	}
	for _, key := range []string{prefix + "teamA:locks:shared", prefix + "teamB:locks:shared", prefix + "locks:shared"} {
		if n, err := rdb.Exists(ctx, key).Result(); err != nil || n != 1 {
			t.Errorf("%s exists %d, %v", key, n, err)
		}
	}
	noSecretUnder(t, rdb, prefix, ta, tb, tc)
}

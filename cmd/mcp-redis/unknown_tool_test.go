package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A call of a tool the server does not have is answered -32602 with the
// tools there are, and the nearest one when the name is near one, on
// every transport alike.
func TestAnUnknownToolIsAnsweredWithTheToolsThereAre(t *testing.T) {
	needsFull(t, "starts the binary over stdio and HTTP")
	check := func(t *testing.T, c *client.Client) {
		t.Helper()
		for _, tc := range []struct{ name, near string }{
			{"aquire_lock", "(did you mean acquire_lock?)"},
			{"frobnicate", ""},
		} {
			req := mcp.CallToolRequest{}
			req.Params.Name = tc.name
			req.Params.Arguments = map[string]any{}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := c.CallTool(ctx, req)
			cancel()
			if err == nil {
				t.Fatalf("%s: the call succeeded", tc.name)
			}
			msg := err.Error()
			if !strings.Contains(msg, `tool "`+tc.name+`" not found`) {
				t.Errorf("%s: %q does not say the tool is not found", tc.name, msg)
			}
			for _, want := range []string{"the tools are: ", "acquire_lock", "audit_log", "release_lock", "read_stream", "show_dashboard"} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s: %q does not name %q", tc.name, msg, want)
				}
			}
			if tc.near != "" && !strings.Contains(msg, tc.near) {
				t.Errorf("%s: %q does not say %q", tc.name, msg, tc.near)
			}
			if tc.near == "" && strings.Contains(msg, "did you mean") {
				t.Errorf("%s: %q suggests a tool far from the name", tc.name, msg)
			}
		}
	}
	_, prefix := testredis.Shared(t)
	for _, level := range []string{"info", "debug"} { // the fast path, and mcp-go's
		t.Run("stdio-"+level, func(t *testing.T) {
			s := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix, "--log-level", level)
			check(t, s.c)
		})
	}
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci-bot", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	t.Run("streamable", func(t *testing.T) { check(t, dialStreamable(t, p.base, tok)) })
	t.Run("streamable-legacy", func(t *testing.T) { check(t, dialStreamable(t, p.base, tok, legacyEra)) })
	t.Run("sse", func(t *testing.T) { check(t, dialSSE(t, p.base, tok)) })
	stateless := startHTTP(t, []string{tokensEnv("ci-bot", tok), "MCP_REDIS_HTTP_STATELESS=true"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	t.Run("stateless", func(t *testing.T) { check(t, dialStreamable(t, stateless.base, tok)) })
}

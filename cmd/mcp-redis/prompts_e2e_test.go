package main_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The prompts are listed and got on every transport; a prompts/get with a
// missing or unknown argument is answered -32602 (the specification's code,
// not mcp-go's -32603), and one naming no prompt lists the prompts there
// are.
func TestPromptsOverEveryTransport(t *testing.T) {
	needsFull(t, "starts the binary over stdio and HTTP")
	check := func(t *testing.T, c *client.Client) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		list, err := c.ListPrompts(ctx, mcp.ListPromptsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range list.Prompts {
			names = append(names, p.Name)
		}
		if got := strings.Join(names, ","); got != "review_workflow_history,run_workflow_phase,work_a_queue" {
			t.Errorf("prompts/list: %s", got)
		}
		get := func(name string, args map[string]string) (*mcp.GetPromptResult, error) {
			req := mcp.GetPromptRequest{}
			req.Params.Name, req.Params.Arguments = name, args
			return c.GetPrompt(ctx, req)
		}
		res, err := get("run_workflow_phase", map[string]string{"workflow_id": "wf1", "phase": "plan"})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) != 1 || res.Messages[0].Role != mcp.RoleUser {
			t.Fatalf("messages: %+v", res.Messages)
		}
		if text := res.Messages[0].Content.(mcp.TextContent).Text; !strings.Contains(text, `acquire_lock {"resource": "workflow:wf1"`) || !strings.Contains(text, "at most 120000") {
			t.Errorf("run_workflow_phase says:\n%s", text)
		}
		for _, tc := range []struct {
			name string
			args map[string]string
			want string
		}{
			{"run_workflow_phase", map[string]string{"workflow_id": "wf1"}, "invalid prompt arguments: run_workflow_phase: phase is required"},
			{"run_workflow_phase", map[string]string{"workflow_id": "wf1", "phase": "plan", "phse": "x"}, `unknown argument "phse" (did you mean phase?)`},
			{"review_workflow_histroy", nil, `prompt "review_workflow_histroy" not found (did you mean review_workflow_history?); the prompts are: review_workflow_history, run_workflow_phase, work_a_queue`},
		} {
			_, err := get(tc.name, tc.args)
			if !errors.Is(err, mcp.ErrInvalidParams) {
				t.Errorf("%s %v: %v, want -32602 invalid params", tc.name, tc.args, err)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s %v: %v, want %q", tc.name, tc.args, err, tc.want)
			}
		}
	}
	_, prefix := testredis.Shared(t)
	env := []string{"MCP_REDIS_LOCKS_MAX_TTL=2m"}
	for _, level := range []string{"info", "debug"} {
		t.Run("stdio-"+level, func(t *testing.T) {
			s := spawn(t, env, "--redis-url", testredis.URL(), "--prefix", prefix, "--log-level", level)
			check(t, s.c)
		})
	}
	tok := newToken()
	p := startHTTP(t, append([]string{tokensEnv("ci-bot", tok)}, env...), "--redis-url", testredis.URL(), "--prefix", prefix)
	t.Run("streamable", func(t *testing.T) { check(t, dialStreamable(t, p.base, tok)) })
	t.Run("streamable-legacy", func(t *testing.T) { check(t, dialStreamable(t, p.base, tok, legacyEra)) })
	t.Run("sse", func(t *testing.T) { check(t, dialSSE(t, p.base, tok)) })
}

package app_test

import (
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/prompts"
)

// toolUse is a tool named in a prompt with the arguments it is told to
// pass: `acquire_lock {"resource": …, "ttl_ms": …}`.
var (
	toolUse  = regexp.MustCompile(`\b([a-z_]+) \{([^{}]*)\}`)
	argument = regexp.MustCompile(`"([a-z_]+)":`)
)

// Every prompt names only tools the server has and only arguments those
// tools take, so a model that follows one makes no call the schemas
// refuse; and each states the values in force, not the defaults.
func TestThePromptsNameOnlyRealToolsAndArgumentsAndTheValuesInForce(t *testing.T) {
	h := newHarness(t, func(c *config.Config) {
		c.Locks.MaxTTL = 2 * time.Minute
		c.Idempotency.TTL = 36 * time.Hour
	})
	ctx := context.Background()
	tools, err := h.mcp.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	takes := map[string]map[string]bool{}
	for _, tool := range tools.Tools {
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		raw, _ := json.Marshal(tool.InputSchema)
		if len(tool.RawInputSchema) > 0 {
			raw = tool.RawInputSchema
		}
		if err := json.Unmarshal(raw, &schema); err != nil {
			t.Fatal(err)
		}
		takes[tool.Name] = map[string]bool{}
		for p := range schema.Properties {
			takes[tool.Name][p] = true
		}
	}
	list, err := h.mcp.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range list.Prompts {
		names = append(names, p.Name)
	}
	if got := strings.Join(names, ","); got != "review_workflow_history,run_workflow_phase,work_a_queue" {
		t.Fatalf("prompts/list: %s", got)
	}
	valid := map[string]map[string]string{
		"run_workflow_phase":      {"workflow_id": "wf1", "phase": "plan"},
		"review_workflow_history": {"workflow_id": "wf1"},
		"work_a_queue":            {"stream": "workflow_events", "group": "indexers", "consumer": "indexer-1"},
	}
	for _, p := range list.Prompts {
		req := mcp.GetPromptRequest{}
		req.Params.Name = p.Name
		req.Params.Arguments = valid[p.Name]
		res, err := h.mcp.GetPrompt(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		var text strings.Builder
		for _, m := range res.Messages {
			if tc, ok := m.Content.(mcp.TextContent); ok {
				text.WriteString(tc.Text)
			}
		}
		uses := toolUse.FindAllStringSubmatch(text.String(), -1)
		if len(uses) < 2 {
			t.Errorf("%s names %d tool calls:\n%s", p.Name, len(uses), text.String())
		}
		for _, u := range uses {
			args, ok := takes[u[1]]
			if !ok {
				t.Errorf("%s names %q, not a tool", p.Name, u[1])
				continue
			}
			for _, a := range argument.FindAllStringSubmatch(u[2], -1) {
				if !args[a[1]] {
					t.Errorf("%s passes %s an argument %q it does not take", p.Name, u[1], a[1])
				}
			}
		}
		for _, v := range valid[p.Name] {
			if !strings.Contains(text.String(), v) {
				t.Errorf("%s does not carry its argument %q", p.Name, v)
			}
		}
		if p.Name == "run_workflow_phase" {
			for _, want := range []string{"at most 120000", "once for 36h0m0s", `"resource": "workflow:wf1"`} {
				if !strings.Contains(text.String(), want) {
					t.Errorf("run_workflow_phase does not say %q:\n%s", want, text.String())
				}
			}
		}
	}
}

// prompts/get refuses, with -32602 as the specification asks, a missing
// required argument, an unknown one (with the one it probably meant), a
// value no tool would take.
func TestPromptsGetRefusesBadArgumentsWithInvalidParams(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct {
		name string
		args map[string]string
		want string
	}{
		{"run_workflow_phase", map[string]string{"workflow_id": "wf1"}, "phase is required"},
		{"run_workflow_phase", map[string]string{"workflow_id": "wf1", "phase": "plan", "phse": "x"}, `unknown argument "phse" (did you mean phase?)`},
		{"run_workflow_phase", map[string]string{"workflow_id": "wf 1", "phase": "plan"}, "resource is required when"},
		{"run_workflow_phase", map[string]string{"workflow_id": "wf1", "phase": "plan", "resource": "a b"}, "resource: 1 to 200 bytes"},
		{"review_workflow_history", map[string]string{"workflow_id": "a\x01b"}, "workflow_id: must not be blank or hold control characters"},
		{"work_a_queue", nil, "stream is required"},
	} {
		resp := h.app.MCP.HandleMessage(context.Background(), mustJSON(t, map[string]any{
			"jsonrpc": "2.0", "id": 7, "method": "prompts/get", "params": map[string]any{"name": tc.name, "arguments": tc.args}}))
		// In process there is no transport: the answer is mcp-go's, with
		// the code the transports amend. The binary's answers are checked
		// end to end (TestPromptsOverEveryTransport).
		e, ok := resp.(mcp.JSONRPCError)
		if !ok {
			t.Errorf("%s %v: answered %#v", tc.name, tc.args, resp)
			continue
		}
		if !strings.Contains(e.Error.Message, strings.SplitN(tc.want, " (", 2)[0]) {
			t.Errorf("%s %v: %q, want %q", tc.name, tc.args, e.Error.Message, tc.want)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A prompt's Uses are exactly the tools its text has a model call, so a
// server that withholds one of them (read-only, tools.enabled) withholds
// the prompt.
func TestAPromptsUsesAreTheToolsItNames(t *testing.T) {
	for _, p := range prompts.All(prompts.Deps{LockMaxTTL: time.Minute, IdempotencyTTL: time.Hour, MaxBlock: time.Second}) {
		req := mcp.GetPromptRequest{}
		req.Params.Name = p.Def.Name
		all := map[string]string{"workflow_id": "wf1", "phase": "plan", "stream": "workflow_events", "group": "g", "consumer": "c"}
		req.Params.Arguments = map[string]string{}
		for _, a := range p.Def.Arguments {
			if v, ok := all[a.Name]; ok {
				req.Params.Arguments[a.Name] = v
			}
		}
		res, err := p.Handler()(context.Background(), req)
		if err != nil {
			t.Fatalf("%s: %v", p.Def.Name, err)
		}
		named := map[string]bool{}
		for _, u := range toolUse.FindAllStringSubmatch(res.Messages[0].Content.(mcp.TextContent).Text, -1) {
			named[u[1]] = true
		}
		var got []string
		for n := range named {
			got = append(got, n)
		}
		slices.Sort(got)
		uses := slices.Sorted(slices.Values(p.Uses))
		if !slices.Equal(got, uses) {
			t.Errorf("%s names %v, Uses %v", p.Def.Name, got, uses)
		}
	}
}

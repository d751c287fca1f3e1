package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/httpsec"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

// toolScopes is the scope each tool needs (README, Security): a credential
// given scopes calls only the tools they cover; mcpkit.ScopeAdmin covers
// every one. A test holds it to the tools there are.
var toolScopes = map[string]string{
	"audit_log":           mcpkit.ScopeStreamsWrite,
	"publish_ccwj_delta":  mcpkit.ScopeStreamsWrite,
	"submit_feedback":     mcpkit.ScopeStreamsWrite,
	"emit_workflow_event": mcpkit.ScopeStreamsWrite,
	"append_batch":        mcpkit.ScopeStreamsWrite,
	"read_stream":         mcpkit.ScopeStreamsRead,
	"get_context":         mcpkit.ScopeStreamsRead,
	"verify_audit":        mcpkit.ScopeStreamsRead,
	"stream_info":         mcpkit.ScopeStreamsRead,
	"show_dashboard":      mcpkit.ScopeStreamsRead,
	"claim_events":        mcpkit.ScopeStreamsConsume,
	"ack_events":          mcpkit.ScopeStreamsConsume,
	"acquire_lock":        mcpkit.ScopeLocks,
	"release_lock":        mcpkit.ScopeLocks,
	"extend_lock":         mcpkit.ScopeLocks,
	"check_rate":          mcpkit.ScopeRate,
}

// access decides which tools a call may reach: those the server offers
// (tools.read_only, tools.enabled, tools.disabled), and of them those the
// caller's credential has the scope of.
type access struct {
	// withheld are the tools the server does not offer, with the reason.
	withheld map[string]string
	// deny, when set, records a denial that is not a tool call (a
	// resource read, the dashboard's data); the tools' own are recorded
	// as their calls are.
	deny func(ctx context.Context, what string, err error)
}

// newAccess checks cfg's tool names against all and returns what it
// withholds; an unknown name is a configuration error, with the nearest.
func newAccess(cfg config.Tools, all []mcpkit.Tool) (*access, error) {
	names := make([]string, len(all))
	readOnly := map[string]bool{}
	for i, t := range all {
		names[i] = t.Name()
		readOnly[t.Name()] = t.Def.Annotations.ReadOnlyHint != nil && *t.Def.Annotations.ReadOnlyHint
	}
	var problems []error
	check := func(key string, list []string) {
		for _, n := range list {
			if slices.Contains(names, n) {
				continue
			}
			msg := fmt.Sprintf("%q is not a tool", n)
			if near, ok := suggest.Closest(n, names); ok {
				msg += fmt.Sprintf("; did you mean %s?", near)
			}
			problems = append(problems, fmt.Errorf("%s: %s (the tools are %s)", key, msg, strings.Join(names, ", ")))
		}
	}
	check("tools.enabled", cfg.Enabled)
	check("tools.disabled", cfg.Disabled)
	if len(problems) > 0 {
		return nil, &config.InvalidError{Problems: problems}
	}
	a := &access{withheld: map[string]string{}}
	for _, n := range names {
		switch {
		case cfg.ReadOnly && !readOnly[n]:
			a.withheld[n] = "the server is read-only (tools.read_only): " + n + " writes"
		case len(cfg.Enabled) > 0 && !slices.Contains(cfg.Enabled, n):
			a.withheld[n] = n + " is not among the tools this server offers (tools.enabled)"
		case slices.Contains(cfg.Disabled, n):
			a.withheld[n] = n + " is turned off on this server (tools.disabled)"
		}
	}
	return a, nil
}

// check is nil when the caller of ctx may call tool, else the
// fault.Forbidden that says why. A caller with no credential (stdio, an
// HTTP listener without tokens) has every scope.
func (a *access) check(ctx context.Context, tool string) error {
	if why, ok := a.withheld[tool]; ok {
		return &fault.Error{Code: fault.Forbidden, Message: why + "; the server's operator decides which tools it offers"}
	}
	need := toolScopes[tool]
	if need == "" {
		return nil
	}
	return lacks(ctx, tool, need)
}

// offersAll reports whether the server offers every one of tools (a
// prompt's): none withheld by its settings.
func (a *access) offersAll(tools []string) bool {
	for _, t := range tools {
		if _, ok := a.withheld[t]; ok {
			return false
		}
	}
	return true
}

// offered reports whether tools/list shows tool to the caller of ctx.
func (a *access) offered(ctx context.Context, tool string) bool {
	return a.check(ctx, tool) == nil
}

// filterList leaves in result the tools the caller of ctx may call: an
// mcp-go after-list-tools hook, so tools/list differs per credential.
func (a *access) filterList(ctx context.Context, _ any, _ *mcp.ListToolsRequest, result *mcp.ListToolsResult) {
	if result == nil {
		return
	}
	// A new slice: the one mcp-go hands over may share its array.
	kept := make([]mcp.Tool, 0, len(result.Tools))
	for _, t := range result.Tools {
		if a.offered(ctx, t.Name) {
			kept = append(kept, t)
		}
	}
	result.Tools = kept
}

// tokenScopes are http.token_scopes parsed (config has checked them).
func tokenScopes(h config.HTTP) map[string][]string {
	if len(h.TokenScopes) == 0 {
		return nil
	}
	m := make(map[string][]string, len(h.TokenScopes))
	for name, s := range h.TokenScopes {
		m[name], _ = config.ParseScopes(s)
	}
	return m
}

// lacks is the fault.Forbidden for the caller of ctx when its credential
// has scopes and need is not among them (nor admin), else nil.
func lacks(ctx context.Context, what, need string) error {
	id, ok := httpsec.IdentityFrom(ctx)
	if !ok || id.All || slices.Contains(id.Scopes, mcpkit.ScopeAdmin) || slices.Contains(id.Scopes, need) {
		return nil
	}
	return &fault.Error{Code: fault.Forbidden, Message: fmt.Sprintf("%s needs the scope %s, which the credential %q does not grant (it grants %s); ask the server's operator for a credential with %s",
		what, need, id.Name, strings.Join(id.Scopes, " "), need)}
}

// denied tells deny of err, a denial of what.
func (a *access) denied(ctx context.Context, what string, err error) {
	if a.deny != nil {
		a.deny(ctx, what, err)
	}
}

// vetResources refuses, before mcp-go serves it, a resources/* request or
// a subscriptions/listen of a credential without streams:read: the
// resources are the streams' entries, workflows' context and locks. It is
// an mcp-go request-initialization hook (answered -32600 with its text).
func (a *access) vetResources(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !bytes.Contains(raw, []byte(`"resources/`)) && !bytes.Contains(raw, []byte(`"subscriptions/listen"`)) {
		return nil
	}
	var m struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(raw, &m) != nil || !strings.HasPrefix(m.Method, "resources/") && m.Method != string(mcp.MethodSubscriptionsListen) {
		return nil
	}
	err := lacks(ctx, m.Method, mcpkit.ScopeStreamsRead)
	if err == nil {
		return nil
	}
	a.denied(ctx, m.Method, err)
	return errors.New("forbidden: " + err.(*fault.Error).Message)
}

// dashboardData refuses the dashboard's data (/ui/api/) to a credential
// without streams:read, with 403 and the API's error shape.
func (a *access) dashboardData(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := lacks(r.Context(), "the dashboard's data", mcpkit.ScopeStreamsRead)
		if err == nil {
			next.ServeHTTP(w, r)
			return
		}
		a.denied(r.Context(), "ui/api", err)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusForbidden)
		_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": string(fault.Forbidden), "message": "forbidden: " + err.(*fault.Error).Message}})
	})
}

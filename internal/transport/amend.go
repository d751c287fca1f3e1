package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/clip"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

// mcp-go v1.2.1 answers a tools/call naming no tool with -32602 and only
// "tool 'x' not found: tool not found" (server.go, handleToolCall; the
// task-augmented path without the suffix), and has no hook that shapes
// that answer. A caller, a model most of all, needs the names there are:
// the transports rewrite the message where they see the answer, so every
// path (stdio, the fast path included, Streamable HTTP, SSE) says the same.
var notFoundMessage = regexp.MustCompile(`^tool '(.*)' not found(?:: tool not found)?$`)

// promptNotFoundMessage is mcp-go's answer to a prompts/get naming no
// prompt (handleGetPrompt), amended the same way.
var promptNotFoundMessage = regexp.MustCompile(`^prompt '(.*)' not found: prompt not found$`)

// Offered reports whether the caller of ctx is offered tool (tools/list
// shows it): a not-found answer lists only those. nil: every tool.
type Offered func(ctx context.Context, tool string) bool

// toolNotFound returns the message for a tools/call of name, a tool s does
// not have: the names it has, and the nearest when one is near.
func toolNotFound(ctx context.Context, s *server.MCPServer, offered Offered, name string) string {
	names := make([]string, 0, 16)
	for n := range s.ListTools() {
		if offered == nil || offered(ctx, n) {
			names = append(names, n)
		}
	}
	return notFound("tool", name, names)
}

// promptNotFound is toolNotFound for a prompts/get.
func promptNotFound(s *server.MCPServer, name string) string {
	names := make([]string, 0, 4)
	for n := range s.ListPrompts() {
		names = append(names, n)
	}
	return notFound("prompt", name, names)
}

func notFound(kind, name string, names []string) string {
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q not found", kind, clip.String(name, 128))
	if near, ok := suggest.Closest(name, names); ok {
		fmt.Fprintf(&b, " (did you mean %s?)", near)
	}
	fmt.Fprintf(&b, "; the %ss are: %s", kind, strings.Join(names, ", "))
	return b.String()
}

// amendAnswer returns resp, or, when it is mcp-go's answer to a
// tools/call naming no tool, that answer listing the tools; and a
// prompts/get refused for its arguments (mcpkit.InvalidPromptArguments)
// with the code the specification gives it, -32602, for mcp-go's -32603.
func amendAnswer(ctx context.Context, s *server.MCPServer, offered Offered, resp mcp.JSONRPCMessage) mcp.JSONRPCMessage {
	e, ok := resp.(mcp.JSONRPCError)
	if !ok {
		return resp
	}
	if e.Error.Code == mcp.INTERNAL_ERROR && strings.HasPrefix(e.Error.Message, mcpkit.InvalidPromptArguments) {
		e.Error.Code = mcp.INVALID_PARAMS
		return e
	}
	if e.Error.Code != mcp.INVALID_PARAMS {
		return resp
	}
	if m := notFoundMessage.FindStringSubmatch(e.Error.Message); m != nil {
		e.Error.Message = toolNotFound(ctx, s, offered, m[1])
		return e
	}
	if m := promptNotFoundMessage.FindStringSubmatch(e.Error.Message); m != nil {
		e.Error.Message = promptNotFound(s, m[1])
		return e
	}
	return resp
}

// messageMember finds the message member of a JSON-RPC error as mcp-go
// writes it (encoding/json, no spaces): the answer's JSON object, or an
// SSE event's data line holding it.
var messageMember = regexp.MustCompile(`"code":-32602,"message":("(?:[^"\\]|\\.)*")`)

var (
	promptRefusedInternal = []byte(`"code":-32603,"message":"` + mcpkit.InvalidPromptArguments)
	promptRefused         = []byte(`"code":-32602,"message":"` + mcpkit.InvalidPromptArguments)
)

// amendEncoded is amendAnswer for an answer already encoded: b
// is one JSON answer or one SSE event, as mcp-go's Streamable HTTP server
// writes them.
func amendEncoded(ctx context.Context, s *server.MCPServer, offered Offered, b []byte) []byte {
	if bytes.Contains(b, promptRefusedInternal) {
		return bytes.Replace(b, promptRefusedInternal, promptRefused, 1)
	}
	if !bytes.Contains(b, []byte(`"code":-32602`)) {
		return b
	}
	loc := messageMember.FindSubmatchIndex(b)
	if loc == nil {
		return b
	}
	var msg string
	if json.Unmarshal(b[loc[2]:loc[3]], &msg) != nil {
		return b
	}
	var amended string
	if m := notFoundMessage.FindStringSubmatch(msg); m != nil {
		amended = toolNotFound(ctx, s, offered, m[1])
	} else if m := promptNotFoundMessage.FindStringSubmatch(msg); m != nil {
		amended = promptNotFound(s, m[1])
	} else {
		return b
	}
	quoted, err := json.Marshal(amended)
	if err != nil {
		return b
	}
	out := make([]byte, 0, len(b)+len(quoted))
	out = append(out, b[:loc[2]]...)
	out = append(out, quoted...)
	return append(out, b[loc[3]:]...)
}

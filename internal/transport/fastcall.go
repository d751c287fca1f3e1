package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
)

// ToolCalls finds the handler a tools/call names, as registered with the
// MCPServer, or nil to leave the call to mcp-go.
type ToolCalls func(name string) server.ToolHandlerFunc

// A tools/call of the plain shape almost every call has — jsonrpc "2.0",
// an id, the method, and params of a name and an object of arguments, with
// no _meta (so of the legacy protocol era), no task and nothing else — is
// served here by calling the tool's handler directly, rather than through
// MCPServer.HandleMessage, which decodes such a message four more times
// (the base message, the protocol-era probe, the trace-context probe, the
// request) and the arguments once more into a map no handler of ours
// reads: a fifth of the CPU of a call that writes to Redis.
//
// What mcp-go does for such a call, and what is done here instead:
//   - the OnRequestInitialization hooks run with the id and the message,
//     and an error is answered -32600 with its text: the same;
//   - any other hook that sees a tools/call (before any, success, error,
//     before/after call tool) would be skipped: with one registered, every
//     call goes to mcp-go (checked once per Serve);
//   - the request's context gets its legacy-era protocol info, and is
//     cancelled when the call ends: the same (the loop's own cancel);
//   - session tools, tool filters, middleware, input/output schema
//     validation, the request logger and tracing would be skipped: the
//     stdio transport serves the fast path only when the server's owner
//     says it registers none of them (Stdio.Calls is nil otherwise);
//   - a handler error or a nil result: answered -32603 (mcp-go maps a
//     URL-elicitation error to its own code); mcpkit handlers return
//     neither.
//
// Anything else — another shape, a tool Calls does not know, a number id
// mcp-go would not echo exactly, an escaped name — goes to mcp-go. A
// differential test sends the bad-input and end-to-end corpora both ways
// and requires the same answers.

// plainCall reads msg, a valid JSON object, as a tools/call of the plain
// shape, and returns the raw id, the tool's name and the raw arguments
// (nil when absent). Member names must be spelt exactly, each once, and
// unescaped: any other spelling, which encoding/json would also accept,
// is left to mcp-go.
func plainCall(msg []byte) (id json.RawMessage, name string, args []byte, ok bool) {
	const (
		seenJSONRPC = 1 << iota
		seenID
		seenMethod
		seenParams
	)
	seen := 0
	var params []byte
	ok = walkMembers(msg, func(q, v []byte) bool {
		var bit int
		switch string(q) {
		case `"jsonrpc"`:
			bit = seenJSONRPC
			if string(v) != `"2.0"` {
				return false
			}
		case `"id"`:
			bit = seenID
			id = v
		case `"method"`:
			bit = seenMethod
			if string(v) != `"tools/call"` {
				return false
			}
		case `"params"`:
			bit = seenParams
			params = v
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	})
	if !ok || seen != seenJSONRPC|seenID|seenMethod|seenParams || params[0] != '{' {
		return nil, "", nil, false
	}
	var named bool
	ok = walkMembers(params, func(q, v []byte) bool {
		switch string(q) {
		case `"name"`:
			if named || v[0] != '"' || bytes.IndexByte(v, '\\') >= 0 {
				return false
			}
			named = true
			name = string(v[1 : len(v)-1])
		case `"arguments"`:
			if args != nil || v[0] != '{' {
				return false
			}
			args = v
		default:
			return false
		}
		return true
	})
	if !ok || !named {
		return nil, "", nil, false
	}
	return id, name, args, true
}

// walkMembers calls f with each member of obj, a valid JSON object: its
// name as quoted and its value, both slices of obj. It stops, false, as
// soon as f does.
func walkMembers(obj []byte, f func(name, value []byte) bool) bool {
	i := jsonwalk.SkipSpace(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		ne := jsonwalk.StringEnd(obj, i)
		vs := jsonwalk.SkipSpace(obj, jsonwalk.SkipSpace(obj, ne)+1) // past the colon
		ve := jsonwalk.ValueEnd(obj, vs)
		if !f(obj[i:ne], obj[vs:ve]) {
			return false
		}
		i = jsonwalk.SkipSpace(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			break
		}
		i = jsonwalk.SkipSpace(obj, i+1)
	}
	return true
}

// idValue is a raw id as mcp-go decodes it (encoding/json into any): a
// string, or a float64. It reports false for an escaped string and for a
// number exactID does not pass, which mcp-go is left to serve.
func idValue(id json.RawMessage) (any, bool) {
	switch {
	case len(id) == 0:
		return nil, false
	case id[0] == '"':
		if bytes.IndexByte(id, '\\') >= 0 {
			return nil, false
		}
		return string(id[1 : len(id)-1]), true
	case !exactID(id):
		return nil, false
	}
	n, err := strconv.ParseInt(string(id), 10, 64)
	if err != nil {
		return nil, false
	}
	return float64(n), true
}

// legacyEra is the protocol info mcp-go gives a request without _meta.
var legacyEra = &server.RequestProtocolInfo{}

// callFast serves msg, when it is a plain tools/call of a tool calls
// knows, by calling the tool's handler, after hooks as mcp-go runs them;
// false leaves msg to mcp-go. Stdio and Streamable HTTP share it.
func callFast(ctx context.Context, calls ToolCalls, msg []byte, hooks []server.OnRequestInitializationFunc) (mcp.JSONRPCMessage, bool) {
	raw, name, args, ok := plainCall(msg)
	if !ok {
		return nil, false
	}
	id, ok := idValue(raw)
	if !ok {
		return nil, false
	}
	return callTool(ctx, calls, msg, id, name, args, hooks)
}

// callTool is callFast once msg is known to be a plain tools/call of the
// tool name, with id (as idValue gives it) and args.
func callTool(ctx context.Context, calls ToolCalls, msg []byte, id any, name string, args []byte, hooks []server.OnRequestInitializationFunc) (mcp.JSONRPCMessage, bool) {
	h := calls(name)
	if h == nil {
		return nil, false
	}
	for _, hook := range hooks {
		if err := hook(ctx, id, json.RawMessage(msg)); err != nil {
			return errorResponse(id, mcp.INVALID_REQUEST, err.Error()), true
		}
	}
	req := mcp.CallToolRequest{
		Request: mcp.Request{Method: string(mcp.MethodToolsCall)},
		Params:  mcp.CallToolParams{Name: name, RawArguments: args},
	}
	res, err := h(server.WithRequestProtocolInfo(ctx, legacyEra), req)
	switch {
	case err != nil: // as mcp-go answers one
		return errorResponse(id, mcp.INTERNAL_ERROR, err.Error()), true
	case res == nil:
		return errorResponse(id, mcp.INTERNAL_ERROR, "tool "+strconv.Quote(name)+" returned no result"), true
	}
	return mcp.NewJSONRPCResultResponse(mcp.NewRequestId(id), res), true
}

// fastHooks returns the OnRequestInitialization hooks the fast path runs,
// and false when a hook it cannot run as mcp-go would is registered.
func fastHooks(s *server.MCPServer) ([]server.OnRequestInitializationFunc, bool) {
	h := s.GetHooks()
	if h == nil {
		return nil, true
	}
	if len(h.OnBeforeAny)+len(h.OnSuccess)+len(h.OnError)+len(h.OnBeforeCallTool)+len(h.OnAfterCallTool) > 0 {
		return nil, false
	}
	return h.OnRequestInitialization, true
}

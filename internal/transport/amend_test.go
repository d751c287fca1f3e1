package transport

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func notFoundServer() *server.MCPServer {
	s := server.NewMCPServer("t", "v0")
	for _, n := range []string{"acquire_lock", "release_lock", "audit_log"} {
		s.AddTool(mcp.NewTool(n), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("ok"), nil
		})
	}
	return s
}

// mcp-go's own answer to a call of a tool it lacks is what the rewrite
// looks for; if a new mcp-go words it otherwise, this fails first.
func TestMCPGoAnswersAnUnknownToolAsTheRewriteExpects(t *testing.T) {
	s := notFoundServer()
	s.HandleMessage(context.Background(), []byte(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
	resp := s.HandleMessage(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"aquire_lock","arguments":{}}}`))
	e, ok := resp.(mcp.JSONRPCError)
	if !ok || e.Error.Code != mcp.INVALID_PARAMS || !notFoundMessage.MatchString(e.Error.Message) {
		t.Fatalf("mcp-go answered %#v", resp)
	}
	got := amendAnswer(context.Background(), s, nil, resp).(mcp.JSONRPCError).Error.Message
	want := `tool "aquire_lock" not found (did you mean acquire_lock?); the tools are: acquire_lock, audit_log, release_lock`
	if got != want {
		t.Errorf("explained: %q\nwant       %q", got, want)
	}
}

func TestAnEncodedNotFoundAnswerIsRewrittenInJSONAndInAnSSEEvent(t *testing.T) {
	s := notFoundServer()
	answer := `{"jsonrpc":"2.0","id":"x","error":{"code":-32602,"message":"tool 'a\"b' not found: tool not found"}}`
	for _, b := range []string{answer, "event: message\ndata: " + answer + "\n\n"} {
		out := string(amendEncoded(context.Background(), s, nil, []byte(b)))
		if !strings.Contains(out, `tool \"a\\\"b\" not found; the tools are: acquire_lock, audit_log, release_lock`) {
			t.Errorf("rewritten: %s", out)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(out, "event: message\ndata: "), "\n\n")
		if !json.Valid([]byte(body)) {
			t.Errorf("not JSON after the rewrite: %s", body)
		}
	}
	other := `{"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"invalid params"}}`
	if out := string(amendEncoded(context.Background(), s, nil, []byte(other))); out != other {
		t.Errorf("another -32602 was changed: %s", out)
	}
}

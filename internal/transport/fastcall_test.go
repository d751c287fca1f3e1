package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/transport"
)

// servePipe serves s over Stdio, initialized; with fast, with the fast
// path on (Calls finds every tool s has).
func servePipe(t *testing.T, s *server.MCPServer, fast bool) *pipe {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipe{in: inW, out: bufio.NewScanner(outR), done: make(chan error, 1)}
	p.out.Buffer(nil, 1<<20)
	calls := func(name string) server.ToolHandlerFunc {
		if st := s.GetTool(name); st != nil {
			return st.Handler
		}
		return nil
	}
	st := &transport.Stdio{Server: s, MaxInFlight: 8, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if fast {
		st.Calls = calls
	}
	go func() {
		p.done <- st.Serve(context.Background(), inR, outW)
		_ = outW.Close()
	}()
	t.Cleanup(func() { _ = inW.Close() })
	p.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	p.read(t)
	return p
}

// viaMCPGo is a tool that answers "mcp-go" when mcp-go's HandleMessage
// called it (it puts the server in the context) and "fast" otherwise.
func viaMCPGo(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	if server.ServerFromContext(ctx) != nil {
		return mcp.NewToolResultText("mcp-go"), nil
	}
	return mcp.NewToolResultText("fast"), nil
}

func resultText(t *testing.T, r reply) string {
	t.Helper()
	if r.Error != nil {
		t.Fatalf("error %d %s", r.Error.Code, r.Error.Message)
	}
	s := string(r.Result)
	switch {
	case strings.Contains(s, `"text":"fast"`):
		return "fast"
	case strings.Contains(s, `"text":"mcp-go"`):
		return "mcp-go"
	}
	return s
}

func TestAPlainToolsCallTakesTheFastPathAndAnyOtherShapeMCPGos(t *testing.T) {
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("where"), viaMCPGo)
	p := servePipe(t, s, true)
	for _, c := range []struct{ msg, want string }{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"where","arguments":{}}}`, "fast"},
		{`{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"where"}}`, "fast"},
		{`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"where","arguments":{},"_meta":{"progressToken":"p"}}}`, "mcp-go"},
		{`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"where","arguments":null}}`, "mcp-go"},
		{`{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"Name":"where"}}`, "mcp-go"},
		{`{"jsonrpc":"2.0","id":5.0,"method":"tools/call","params":{"name":"where"}}`, "mcp-go"},
		{`{"jsonrpc":"2.0","id":"\u0078","method":"tools/call","params":{"name":"where"}}`, "mcp-go"},
	} {
		p.send(t, c.msg+"\n")
		if got := resultText(t, p.read(t)); got != c.want {
			t.Errorf("%s: served by %s, want %s", c.msg, got, c.want)
		}
	}
}

func TestACallHookSendsEveryCallThroughMCPGo(t *testing.T) {
	hooks := &server.Hooks{}
	var seen atomic.Int32
	hooks.AddBeforeCallTool(func(context.Context, any, *mcp.CallToolRequest) { seen.Add(1) })
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false), server.WithHooks(hooks))
	s.AddTool(mcp.NewTool("where"), viaMCPGo)
	p := servePipe(t, s, true)
	p.send(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"where","arguments":{}}}`+"\n")
	if got := resultText(t, p.read(t)); got != "mcp-go" || seen.Load() != 1 {
		t.Errorf("served by %s, the hook saw %d calls; want mcp-go and 1", got, seen.Load())
	}
}

func TestTheFastPathRunsTheRequestInitializationHooksAsMCPGoDoes(t *testing.T) {
	for _, fast := range []bool{true, false} {
		hooks := &server.Hooks{}
		hooks.AddOnRequestInitialization(func(_ context.Context, id any, msg any) error {
			if raw, ok := msg.(json.RawMessage); ok && strings.Contains(string(raw), "refuse") {
				return errors.New("refused by a hook")
			}
			return nil
		})
		s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false), server.WithHooks(hooks))
		s.AddTool(mcp.NewTool("where"), viaMCPGo)
		p := servePipe(t, s, fast)
		p.send(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"where","arguments":{"x":"refuse"}}}`+"\n")
		r := p.read(t)
		if r.Error == nil || r.Error.Code != mcp.INVALID_REQUEST || r.Error.Message != "refused by a hook" || r.ID != float64(1) {
			t.Errorf("fast %v: got %+v, want -32600 \"refused by a hook\" for id 1", fast, r)
		}
	}
}

func TestOnTheFastPathACancelledCallEndsAndAPanicIsAnInternalError(t *testing.T) {
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	ended := make(chan error, 1)
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		<-ctx.Done()
		ended <- ctx.Err()
		return mcp.NewToolResultText("slow"), nil
	})
	s.AddTool(mcp.NewTool("boom"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("boom")
	})
	s.AddTool(mcp.NewTool("where"), viaMCPGo)
	p := servePipe(t, s, true)
	p.send(t, `{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"slow"}}`+"\n")
	p.send(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"boom"}}`+"\n")
	if r := p.read(t); r.Error == nil || r.Error.Code != mcp.INTERNAL_ERROR || r.ID != float64(2) {
		t.Errorf("boom: %+v, want -32603 for id 2", r)
	}
	p.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s"}}`+"\n")
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("slow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled call did not end")
	}
	p.read(t) // slow's answer
	p.send(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"where"}}`+"\n")
	if got := resultText(t, p.read(t)); got != "fast" {
		t.Errorf("after: served by %s", got)
	}
}

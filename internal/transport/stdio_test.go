package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/transport"
)

// pipe runs a Stdio server over in-memory pipes with two tools: "slow",
// which waits until its context ends or it is released, and "fast".
type pipe struct {
	in      *io.PipeWriter
	out     *bufio.Scanner
	done    chan error
	release chan struct{}
	slowCtx chan context.Context
}

func start(t *testing.T, maxBytes int) *pipe {
	t.Helper()
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	p := &pipe{done: make(chan error, 1), release: make(chan struct{}), slowCtx: make(chan context.Context, 1)}
	s.AddTool(mcp.NewTool("slow"), func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		p.slowCtx <- ctx
		select {
		case <-ctx.Done():
		case <-p.release:
		}
		return mcp.NewToolResultText("slow"), nil
	})
	s.AddTool(mcp.NewTool("fast"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("fast"), nil
	})
	s.AddTool(mcp.NewTool("boom"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		panic("boom")
	})
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p.in = inW
	p.out = bufio.NewScanner(outR)
	p.out.Buffer(nil, 1<<20)
	st := &transport.Stdio{Server: s, MaxMessageBytes: maxBytes, MaxInFlight: 8, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go func() {
		p.done <- st.Serve(context.Background(), inR, outW)
		_ = outW.Close()
	}()
	t.Cleanup(func() { _ = inW.Close() })
	p.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	p.read(t)
	return p
}

func (p *pipe) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(p.in, s); err != nil {
		t.Fatal(err)
	}
}

type reply struct {
	ID     any             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (p *pipe) read(t *testing.T) reply {
	t.Helper()
	if !p.out.Scan() {
		t.Fatalf("no reply: %v", p.out.Err())
	}
	var r reply
	if err := json.Unmarshal(p.out.Bytes(), &r); err != nil {
		t.Fatalf("reply %q: %v", p.out.Text(), err)
	}
	return r
}

func call(id int, tool string) string {
	return `{"jsonrpc":"2.0","id":` + string(rune('0'+id)) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}` + "\n"
}

func TestALineOverTheLimitIsAnErrorAndTheNextMessageIsServed(t *testing.T) {
	p := start(t, 64<<10)
	huge := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fast","arguments":{"x":"` + strings.Repeat("x", 10<<20) + `"}}}` + "\n"
	go func() { _, _ = io.WriteString(p.in, huge) }()
	r := p.read(t)
	if r.Error == nil || r.Error.Code != mcp.INVALID_REQUEST || !strings.Contains(r.Error.Message, "65536") {
		t.Fatalf("over-limit reply = %+v", r)
	}
	p.send(t, call(2, "fast"))
	if r := p.read(t); r.Error != nil || r.ID != float64(2) {
		t.Fatalf("next reply = %+v", r)
	}
}

func TestCRLFAndBlankLinesAreTolerated(t *testing.T) {
	p := start(t, 0)
	p.send(t, "\r\n\n   \n"+strings.TrimSuffix(call(1, "fast"), "\n")+"\r\n")
	if r := p.read(t); r.Error != nil || r.ID != float64(1) {
		t.Fatalf("reply = %+v", r)
	}
}

func TestALineThatIsNotJSONIsAParseError(t *testing.T) {
	p := start(t, 0)
	p.send(t, "hello\n")
	if r := p.read(t); r.Error == nil || r.Error.Code != mcp.PARSE_ERROR {
		t.Fatalf("reply = %+v", r)
	}
	p.send(t, call(1, "fast"))
	if r := p.read(t); r.Error != nil {
		t.Fatalf("next reply = %+v", r)
	}
}

func TestASlowCallDoesNotHoldUpAFastOne(t *testing.T) {
	p := start(t, 0)
	p.send(t, call(1, "slow"))
	<-p.slowCtx
	p.send(t, call(2, "fast"))
	if r := p.read(t); r.ID != float64(2) {
		t.Fatalf("first reply = %+v, want the fast call's", r)
	}
	close(p.release)
	if r := p.read(t); r.ID != float64(1) {
		t.Fatalf("second reply = %+v", r)
	}
}

func TestAPanickingToolAnswersAnErrorAndTheServerGoesOn(t *testing.T) {
	p := start(t, 0)
	p.send(t, call(1, "boom"))
	r := p.read(t)
	if r.Error == nil && !strings.Contains(string(r.Result), "isError") {
		t.Fatalf("reply = %+v", r)
	}
	p.send(t, call(2, "fast"))
	if r := p.read(t); r.Error != nil || r.ID != float64(2) {
		t.Fatalf("next reply = %+v", r)
	}
}

func TestEOFCancelsRunningCallsAndEndsServe(t *testing.T) {
	p := start(t, 0)
	p.send(t, call(1, "slow"))
	ctx := <-p.slowCtx
	go func() {
		for p.out.Scan() { // a host still reads what is left
		}
	}()
	_ = p.in.Close()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the running call was not cancelled at EOF")
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("Serve = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return at EOF")
	}
}

package transport_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync/atomic"
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

func start(t testing.TB, maxBytes int) *pipe {
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

func (p *pipe) send(t testing.TB, s string) {
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

func (p *pipe) read(t testing.TB) reply {
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
	slowThenFast(t, call(1, "slow"))
}

// slowThenFast sends slow (a call of id 1 that blocks until released),
// then a fast call of id 2: the fast one must be answered first.
func slowThenFast(t *testing.T, slow string) {
	t.Helper()
	p := start(t, 0)
	p.send(t, slow)
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

// BenchmarkStdioCallRoundTrip measures one tools/call written to the
// server's stdin and its answer read from stdout, one at a time.
func BenchmarkStdioCallRoundTrip(b *testing.B) {
	p := start(b, 0)
	msg := `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"fast","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10}}}}` + "\n"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := io.WriteString(p.in, msg); err != nil {
			b.Fatal(err)
		}
		if !p.out.Scan() {
			b.Fatal("no reply")
		}
	}
}

// With MaxInFlight calls running, reading goes on: a ping is answered, one
// more request is answered busy at once, and a cancellation ends its call.
func TestReadingGoesOnWhileTheInFlightBoundIsReached(t *testing.T) {
	p := start(t, 0)
	ctxs := make([]context.Context, 8)
	for i := range 8 {
		p.send(t, call(i+1, "slow"))
		ctxs[i] = <-p.slowCtx
	}
	p.send(t, `{"jsonrpc":"2.0","id":"ping","method":"ping"}`+"\n")
	if r := p.read(t); r.ID != "ping" || r.Error != nil {
		t.Fatalf("ping reply = %+v, want its answer before any call ends", r)
	}
	p.send(t, call(9, "fast"))
	r := p.read(t)
	if r.ID != float64(9) || r.Error == nil || r.Error.Code != -32000 || !strings.Contains(r.Error.Message, "8 requests") {
		t.Fatalf("reply over the bound = %+v, want a -32000 busy error naming the bound 8", r)
	}
	p.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":3}}`+"\n")
	if r := p.read(t); r.ID != float64(3) {
		t.Fatalf("reply after the cancellation = %+v, want the cancelled call's", r)
	}
	if ctxs[2].Err() == nil {
		t.Fatal("the cancelled call's context is not done")
	}
	p.send(t, call(9, "fast"))
	if r := p.read(t); r.ID != float64(9) || r.Error != nil {
		t.Fatalf("reply with a slot free = %+v", r)
	}
	close(p.release)
	for range 7 {
		p.read(t)
	}
}

// A request is recognised by its parsed id member, whatever its spelling,
// so it runs beside the reader like any other.
func TestARequestWithAnEscapedIDMemberRunsBesideTheReader(t *testing.T) {
	slowThenFast(t, strings.Replace(call(1, "slow"), `"id"`, `"\u0069d"`, 1))
}

// A line over the limit is answered as soon as it crosses the limit, not
// when its newline comes; the rest of it is discarded.
func TestALineOverTheLimitIsAnsweredBeforeItsNewline(t *testing.T) {
	p := start(t, 64<<10)
	p.send(t, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fast","arguments":{"x":"`+strings.Repeat("x", 100<<10))
	if r := p.read(t); r.Error == nil || r.Error.Code != mcp.INVALID_REQUEST {
		t.Fatalf("over-limit reply = %+v", r)
	}
	p.send(t, strings.Repeat("y", 1<<20)+`"}}}`+"\n"+call(2, "fast"))
	if r := p.read(t); r.Error != nil || r.ID != float64(2) {
		t.Fatalf("next reply = %+v", r)
	}
}

// A line of exactly the limit, with CR LF, is a message; one byte more is
// not.
func TestALineOfExactlyTheLimitIsServed(t *testing.T) {
	p := start(t, 64<<10)
	head := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fast","arguments":{"x":"`
	tail := `"}}}`
	exact := head + strings.Repeat("x", 64<<10-len(head)-len(tail)) + tail
	p.send(t, exact+"\r\n")
	if r := p.read(t); r.Error != nil || r.ID != float64(1) {
		t.Fatalf("reply to a line of the limit = %+v", r)
	}
	p.send(t, strings.Replace(exact, `"x":"`, `"x":"x`, 1)+"\r\n")
	if r := p.read(t); r.Error == nil || r.Error.Code != mcp.INVALID_REQUEST {
		t.Fatalf("reply to a line one byte over = %+v", r)
	}
}

// A cancellation right behind its request, read before mcp-go has
// registered the call, still ends it.
func TestACancellationRightBehindItsRequestEndsIt(t *testing.T) {
	// Spare Ps let the fresh reader run beside the request's goroutine,
	// the case this is about.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	p := start(t, 0)
	var timedOut atomic.Bool
	for i := range 20 {
		id := `"c` + string(rune('a'+i)) + `"`
		p.send(t, strings.Replace(call(1, "slow"), `"id":1`, `"id":`+id, 1)+
			`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":`+id+`}}`+"\n")
		watchdog := time.AfterFunc(5*time.Second, func() { timedOut.Store(true); close(p.release) })
		r := p.read(t)
		watchdog.Stop()
		if timedOut.Load() {
			t.Fatalf("call %s was still running 5s after its cancellation", id)
		}
		if r.ID != strings.Trim(id, `"`) {
			t.Fatalf("reply = %+v, want the cancelled call's", r)
		}
		select {
		case ctx := <-p.slowCtx: // the tool ran (mcp-go may not run it at all)
			if ctx.Err() == nil {
				t.Fatalf("call %s answered with its context live", id)
			}
		default:
		}
	}
}

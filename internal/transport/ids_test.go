package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// idsServer is an MCP server with a tool "wait" that blocks until its
// context ends, telling waits which call (by its "name" argument) started.
func idsServer(waits chan<- idsWait) *server.MCPServer {
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("wait"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		waits <- idsWait{req.GetString("name", ""), ctx}
		<-ctx.Done()
		return mcp.NewToolResultError("cancelled"), nil
	})
	return s
}

type idsWait struct {
	name string
	ctx  context.Context
}

// idsAnswer hands msg through encodeIDs to a real mcp-go server and back
// through restoreIDs, as a transport does, and returns the answer's id as
// written.
func idsAnswer(t *testing.T, msg string) string {
	t.Helper()
	head, resp := parseEnvelope([]byte(msg))
	if resp != nil {
		t.Fatalf("%s: answered by the envelope check: %+v", msg, resp)
	}
	ctx := context.Background()
	out, err := json.Marshal(idsServer(nil).HandleMessage(ctx, encodeIDs([]byte(msg), head.ID, head.Method)))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ ID json.RawMessage }
	if err := json.Unmarshal(restoreIDs(out), &got); err != nil {
		t.Fatalf("restored %q: %v", restoreIDs(out), err)
	}
	return string(got.ID)
}

func TestIDsMCPGoWouldChangeAreEchoedExactly(t *testing.T) {
	for _, id := range []string{
		`12345678901234567890123`, `9007199254740993`, `1234567890123456`, `-12345678901234567890`,
		`1.0`, `1e2`, `1E+2`, `-0`, `1.5`, `-1.5`, `0.1`, `1e400`, `-0.0`,
	} {
		if got := idsAnswer(t, `{"jsonrpc":"2.0","id":`+id+`,"method":"ping"}`); got != id {
			t.Errorf("id %s came back as %s", id, got)
		}
	}
}

func TestAnIDWrittenAsEncodingJSONMatchesItIsEchoedExactly(t *testing.T) {
	for _, msg := range []string{
		`{"jsonrpc":"2.0","\u0069d":1.0,"method":"ping"}`,
		`{"jsonrpc":"2.0","ID":1.0,"method":"ping"}`,
		`{"jsonrpc":"2.0","id":2.0,"Id":1.0,"method":"ping"}`,
		` {"jsonrpc" : "2.0" , "id" : 1.0 , "method" : "ping" } `,
	} {
		if got := idsAnswer(t, msg); got != `1.0` {
			t.Errorf("%s: id came back as %s", msg, got)
		}
	}
}

func TestOrdinaryIDsAreHandedOnUntouchedByteForByte(t *testing.T) {
	for _, id := range []string{`0`, `7`, `-7`, `123456789012345`, `-123456789012345`, `"x"`, `"\u0000abc:12"`, `null`, ``} {
		msg := []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"wait","arguments":{"n":1.0}}}`)
		if id == `` {
			msg = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized","params":{"n":1.0}}`)
		}
		head, _ := parseEnvelope(msg)
		if out := encodeIDs(msg, head.ID, head.Method); &out[0] != &msg[0] || !bytes.Equal(out, msg) {
			t.Errorf("id %s: %s was rewritten to %s", id, msg, out)
		}
		if id == `` || id == `null` {
			continue // a notification: no answer
		}
		if got := idsAnswer(t, `{"jsonrpc":"2.0","id":`+id+`,"method":"ping"}`); got != id {
			t.Errorf("id %s came back as %s", id, got)
		}
	}
	// A cancellation of an ordinary id is untouched too.
	msg := []byte(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12,"reason":"1.0"}}`)
	if out := encodeIDs(msg, nil, string(mcp.MethodNotificationCancelled)); &out[0] != &msg[0] {
		t.Errorf("%s was rewritten to %s", msg, out)
	}
}

func TestRestoreIDsTouchesOnlyThisProcessesPlaceholders(t *testing.T) {
	idsIssued.Store(true) // as if encodeIDs had made placeholders
	for _, out := range []string{
		`{"jsonrpc":"2.0","id":"\u0000deadbeefdeadbeefdeadbeef:12","result":{}}`, // another nonce
		`{"jsonrpc":"2.0","id":"x\u0000` + idNonce + `:12","result":{}}`,         // not a whole string
		`{"jsonrpc":"2.0","id":"\u0000` + idNonce + `:12x","result":{}}`,         // not a number
		`{"jsonrpc":"2.0","id":"\u0000` + idNonce + `:","result":{}}`,            // empty
		`{"jsonrpc":"2.0","id":"\u0000` + idNonce + `:12`,                        // cut short
		`{"jsonrpc":"2.0","id":1,"result":{}}`,
	} {
		if got := restoreIDs([]byte(out)); string(got) != out {
			t.Errorf("%s restored to %s", out, got)
		}
	}
	b := []byte(`{"jsonrpc":"2.0","id":1,"result":{}}`)
	if got := restoreIDs(b); &got[0] != &b[0] {
		t.Error("output without a placeholder was copied")
	}
}

func TestRestoreIDsWorksOnAWholeSSEEventAndOnSeveralMessages(t *testing.T) {
	idsIssued.Store(true) // as if encodeIDs had made placeholders
	p := `"\u0000` + idNonce + `:`
	event := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":" + p + "1.0\",\"result\":{\"text\":" + p + "2\"}}\n\n"
	want := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1.0,\"result\":{\"text\":2}}\n\n"
	if got := string(restoreIDs([]byte(event))); got != want {
		t.Errorf("restored\n%q\nwant\n%q", got, want)
	}
	two := `{"id":` + p + `1e2"}` + "\n" + `{"id":` + p + `-0"}` + "\n"
	if got := string(restoreIDs([]byte(two))); got != "{\"id\":1e2}\n{\"id\":-0}\n" {
		t.Errorf("restored %q", got)
	}
}

// Two big ids a float64 cannot tell apart stay two calls: a cancellation
// names one, and only that one ends.
func TestACancellationWithABigRequestIDCancelsThatCall(t *testing.T) {
	waits := make(chan idsWait, 2)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	st := &Stdio{Server: idsServer(waits), MaxInFlight: 8, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	go func() {
		_ = st.Serve(context.Background(), inR, outW)
		_ = outW.Close()
	}()
	defer inW.Close()
	lines := bufio.NewScanner(outR)
	send := func(s string) {
		if _, err := io.WriteString(inW, s+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	lines.Scan()
	ctxs := map[string]context.Context{}
	for _, id := range []string{"12345678901234567890123", "12345678901234567890124"} {
		send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"wait","arguments":{"name":"` + id + `"}}}`)
		w := <-waits
		ctxs[w.name] = w.ctx
	}
	send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":12345678901234567890123}}`)
	select {
	case <-ctxs["12345678901234567890123"].Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the call the cancellation names is still running")
	}
	if !lines.Scan() || !strings.Contains(lines.Text(), `"id":12345678901234567890123,`) {
		t.Fatalf("answer %s, want the cancelled call's with its id exact", lines.Text())
	}
	if ctxs["12345678901234567890124"].Err() != nil {
		t.Fatal("the other call was cancelled too")
	}
}

// BenchmarkEncodeAndRestoreAnOrdinaryID measures what exact ids cost a
// message and its answer: before any placeholder was made, and after.
func BenchmarkEncodeAndRestoreAnOrdinaryID(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok"}}}`)
	out := []byte(`{"jsonrpc":"2.0","id":42,"result":{"content":[{"type":"text","text":"{\"stream\":\"mcp:audit_log_stream\",\"entry_id\":\"1700000000000-0\",\"duplicate\":false}"}],"structuredContent":{"stream":"mcp:audit_log_stream","entry_id":"1700000000000-0","duplicate":false}}}`)
	id := json.RawMessage(`42`)
	defer idsIssued.Store(idsIssued.Load())
	for _, issued := range []bool{false, true} {
		b.Run(map[bool]string{false: "no placeholder yet", true: "after a placeholder"}[issued], func(b *testing.B) {
			idsIssued.Store(issued)
			b.ReportAllocs()
			for b.Loop() {
				_ = encodeIDs(msg, id, "tools/call")
				_ = restoreIDs(out)
			}
		})
	}
}

// Whatever the message, encodeIDs keeps it valid JSON, and restoreIDs
// brings back exactly what was sent once mcp-go's view is written out.
func FuzzEncodeIDsRoundTrip(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":12345678901234567890123,"method":"ping"}`,
		`{"jsonrpc":"2.0","ID":1.0,"id":-0,"method":"ping","params":{"id":1e2}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1.5,"requestId":2e9,"reason":"x"}}`,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","PARAMS":{"requestId":"a"},"params":{"requestId":123456789012345678}}`,
		`{"jsonrpc":"2.0","id":"\u0000` + idNonce + `:1","method":"ping"}`,
		` { "id" : 7 , "method" : "x" } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		head, resp := parseEnvelope(msg)
		if resp != nil || !head.Object {
			return
		}
		out := encodeIDs(msg, head.ID, head.Method)
		if !json.Valid(out) {
			t.Fatalf("encodeIDs(%q) = %q, not JSON", msg, out)
		}
		var want, seen, got any
		dec := func(b []byte, v *any) {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if err := d.Decode(v); err != nil {
				t.Fatalf("decode %q: %v", b, err)
			}
		}
		dec(msg, &want)
		dec(out, &seen)
		written, err := json.Marshal(seen)
		if err != nil {
			t.Fatal(err)
		}
		dec(restoreIDs(written), &got)
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		if !bytes.Equal(w, g) && !bytes.Contains(msg, []byte(idNonce)) {
			t.Fatalf("%q came back as %s, want %s", msg, g, w)
		}
	})
}

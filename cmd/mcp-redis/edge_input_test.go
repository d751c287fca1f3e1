package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests drive the edges of the input a host may send through the
// real binary: a stdio reader that never stalls behind calls in flight, a
// line over the message limit answered before its newline, invalid UTF-8
// refused, stream ids Redis would refuse, and JSON-RPC ids echoed exactly.
// Ordering, not wall-clock time, is what they assert: eiHang is only the
// bound after which a missing answer counts as a hang.

// eiHang is how long a test waits for an answer it expects before calling
// the server hung. Lock waits in these tests last eiWaitMS, longer still,
// so an answer that comes only once they end arrives after this.
const (
	eiHang   = 15 * time.Second
	eiWaitMS = 25000
)

// eiProc is the binary over stdio, spoken to in raw bytes; every line it
// writes to stdout is kept in order.
type eiProc struct{ *rawStdio }

// eiStartStdio starts `mcp-redis serve` over stdio against the shared Redis
// under prefix, with env added, and initialises a 2025-11-25 session.
func eiStartStdio(t *testing.T, prefix string, env ...string) *eiProc {
	t.Helper()
	p := &eiProc{badServeRaw(t, prefix, 1024, env...)}
	p.send(t, `{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"ei","version":"1"}}}`)
	if m := p.next(t); string(m.ID) != `"init"` || m.Result == nil {
		t.Fatalf("initialize answered %s", m.line)
	}
	p.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return p
}

// write sends raw bytes as they are.
func (p *eiProc) write(t *testing.T, raw string) {
	t.Helper()
	if _, err := io.WriteString(p.stdin, raw); err != nil {
		t.Fatalf("write stdin: %v\nstderr:\n%s", err, p.stderr.String())
	}
}

// send sends one message as a line.
func (p *eiProc) send(t *testing.T, msg string) { t.Helper(); p.write(t, msg+"\n") }

// eiMsg is one line the server wrote, and the message in it.
type eiMsg struct {
	badMsg
	line []byte
}

// next returns the next line the server writes, failing the test after
// eiHang; every line must be one JSON-RPC message in valid UTF-8 JSON.
func (p *eiProc) next(t *testing.T) eiMsg {
	t.Helper()
	select {
	case l, ok := <-p.lines:
		if !ok {
			t.Fatalf("stdout closed\nstderr:\n%s", p.stderr.String())
		}
		var m eiMsg
		m.line = l
		if !json.Valid(l) || !utf8.Valid(l) {
			t.Fatalf("the server wrote a line that is not valid UTF-8 JSON: %q", eiClip(l))
		}
		if err := json.Unmarshal(l, &m.badMsg); err != nil {
			t.Fatalf("line %q: %v", eiClip(l), err)
		}
		return m
	case <-time.After(eiHang):
		t.Fatalf("no answer within %v (the reader is stalled)\nstderr:\n%s", eiHang, p.stderr.String())
		return eiMsg{}
	}
}

// nextID is next, failing unless the answer is to id (raw JSON).
func (p *eiProc) nextID(t *testing.T, id string, why string) eiMsg {
	t.Helper()
	m := p.next(t)
	if string(m.ID) != id {
		t.Fatalf("%s: the next answer is to id %s, want %s: %s", why, m.ID, id, eiClip(m.line))
	}
	return m
}

func eiClip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + fmt.Sprintf("…(%d bytes)", len(b))
	}
	return string(b)
}

// eiCall is a tools/call line with a raw id.
func eiCall(id, tool, arguments string) string {
	return `{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + arguments + `}}`
}

// eiHold takes the lock on resource for a minute and returns its token.
func eiHold(t *testing.T, p *eiProc, resource string) string {
	t.Helper()
	p.send(t, eiCall(`"hold"`, "acquire_lock", `{"resource":"`+resource+`","ttl_ms":60000}`))
	m := p.nextID(t, `"hold"`, "acquire_lock")
	if m.Result == nil || m.Result.IsError || m.Result.StructuredContent["acquired"] != true {
		t.Fatalf("hold %s: %s", resource, m.line)
	}
	return m.Result.StructuredContent["token"].(string)
}

// eiWait is an acquire_lock of resource (held) that waits eiWaitMS.
func eiWait(id, resource string) string {
	return eiCall(id, "acquire_lock", fmt.Sprintf(`{"resource":%q,"wait_ms":%d}`, resource, eiWaitMS))
}

// With 64 calls waiting (the stdio in-flight bound), a ping is answered, a
// 65th request is refused as busy, and a cancellation ends its call, each
// before any wait ends.
func TestEdgeStdioPingBusyAndCancelAreServedWhile64CallsWait(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	p := eiStartStdio(t, prefix)
	eiHold(t, p, "ei/held")
	var waits strings.Builder
	for i := range 64 {
		waits.WriteString(eiWait(fmt.Sprintf(`"w%d"`, i), "ei/held") + "\n")
	}
	p.write(t, waits.String())

	p.send(t, `{"jsonrpc":"2.0","id":"p1","method":"ping"}`)
	if m := p.nextID(t, `"p1"`, "a ping behind 64 waits"); m.Result == nil {
		t.Fatalf("ping: %s", m.line)
	}
	p.send(t, eiWait(`"over"`, "ei/held"))
	m := p.nextID(t, `"over"`, "a 65th request")
	if m.Error == nil || m.Error.Code != -32000 || !strings.Contains(m.Error.Message, "64") {
		t.Fatalf("a 65th request was answered %s, want a -32000 busy error naming the bound 64", m.line)
	}
	t.Logf("a 65th request answered %s", m.line)
	p.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"w7","reason":"test"}}`)
	m = p.nextID(t, `"w7"`, "the cancelled wait")
	if m.Error == nil && (m.Result == nil || !m.Result.IsError) {
		t.Fatalf("the cancelled wait succeeded: %s", m.line)
	}
	t.Logf("the cancelled wait answered %s", m.line)
	// A slot came free: the next request runs.
	p.send(t, `{"jsonrpc":"2.0","id":"list","method":"tools/list"}`)
	if m := p.nextID(t, `"list"`, "a request after the cancellation"); m.Result == nil {
		t.Fatalf("tools/list: %s", m.line)
	}
}

// A request whose id member is written with an escape is a request: it
// runs beside the reader, so a ping after it is answered first.
func TestEdgeStdioARequestWithAnEscapedIDKeyDoesNotBlockReading(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	p := eiStartStdio(t, prefix)
	eiHold(t, p, "ei/held")
	p.send(t, strings.Replace(eiWait(`"esc"`, "ei/held"), `"id"`, `"\u0069d"`, 1))
	p.send(t, `{"jsonrpc":"2.0","id":"p1","method":"ping"}`)
	p.nextID(t, `"p1"`, "a ping after a waiting request with an escaped id key")
	p.send(t, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"esc"}}`)
	p.nextID(t, `"esc"`, "the cancelled request with an escaped id key")
}

// A line over stdio.max_message_bytes is answered once the limit is
// crossed, before its newline; the rest of it is discarded and the next
// message is served.
func TestEdgeStdioALineOverTheLimitIsAnsweredBeforeItsNewline(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	p := eiStartStdio(t, prefix, "MCP_REDIS_STDIO_MAX_MESSAGE_BYTES=65536")
	p.write(t, `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"`+strings.Repeat("x", 100<<10))
	m := p.next(t)
	if m.Error == nil || m.Error.Code != -32600 || !strings.Contains(m.Error.Message, "65536") {
		t.Fatalf("over-limit answer = %s", m.line)
	}
	deadline := time.Now().Add(eiHang)
	for !strings.Contains(p.stderr.String(), "over the limit") {
		if time.Now().After(deadline) {
			t.Fatalf("nothing on stderr about the line over the limit:\n%s", p.stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.write(t, strings.Repeat("y", 200<<10)+`"}}`+"\n")
	p.send(t, `{"jsonrpc":"2.0","id":2,"method":"ping"}`)
	if m := p.nextID(t, `2`, "the message after the over-limit line"); m.Result == nil {
		t.Fatalf("ping: %s", m.line)
	}
}

// eiDriver sends one raw message and returns the answer: the stdio driver
// and the Streamable HTTP one.
type eiDriver struct {
	name string
	send func(t *testing.T, raw string) badAnswer
}

func eiDrivers(t *testing.T, prefix string) []eiDriver {
	return []eiDriver{
		{"stdio", func() func(*testing.T, string) badAnswer {
			var p *eiProc
			return func(t *testing.T, raw string) badAnswer {
				if p == nil {
					p = eiStartStdio(t, prefix)
				}
				p.send(t, raw)
				m := p.next(t)
				return badAnswer{raw: string(m.line), msgs: []badMsg{m.badMsg}}
			}
		}()},
		{"http", func() func(*testing.T, string) badAnswer {
			var h *badHTTPDriver
			return func(t *testing.T, raw string) badAnswer {
				if h == nil {
					h = badStartHTTP(t, prefix)
				}
				return h.send(t, raw, nil, true)
			}
		}()},
	}
}

// eiValidJSON says what is wrong with an answer's encoding: every message
// must be valid UTF-8 JSON (in an SSE body, every data line).
func eiValidJSON(a badAnswer) string {
	if !utf8.ValidString(a.raw) {
		return "the answer is not valid UTF-8"
	}
	var data []string
	for l := range strings.SplitSeq(a.raw, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "data:"); ok {
			data = append(data, d)
		}
	}
	if len(data) == 0 {
		data = []string{a.raw}
	}
	for _, d := range data {
		if !json.Valid([]byte(d)) {
			return "the answer is not valid JSON"
		}
	}
	if len(a.msgs) == 0 {
		return "the answer holds no JSON-RPC message"
	}
	return ""
}

// eiKeys lists every key under prefix, hash-tagged ones included.
func eiKeys(t *testing.T, rdb *redis.Client, prefix string) []string {
	t.Helper()
	var keys []string
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		keys = append(keys, rdb.Keys(context.Background(), pattern).Val()...)
	}
	return keys
}

// Invalid UTF-8 is refused: inside a tool's arguments with a tool error
// naming the argument, anywhere else in the message with -32700. Nothing
// is written, and every answer is valid JSON.
func TestEdgeInvalidUTF8IsRefusedAndNothingIsWritten(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	for _, d := range eiDrivers(t, prefix) {
		t.Run(d.name, func(t *testing.T) {
			for _, c := range []struct {
				name, msg string
				want      badCheck
			}{
				{"in a string inside an object argument", eiCall("1", "audit_log", "{\"module\":\"m\",\"procedure\":\"p\",\"status\":\"ok\",\"inputs\":{\"k\":\"v\xff\xc0\"}}"), badTool("inputs", "UTF-8")},
				{"in an id argument", eiCall("2", "emit_workflow_event", "{\"workflow_id\":\"w\",\"phase\":\"p\",\"event_type\":\"e\",\"event_id\":\"N\xff\"}"), badTool("event_id", "UTF-8")},
				{"in another id argument", eiCall("3", "emit_workflow_event", "{\"workflow_id\":\"w\",\"phase\":\"p\",\"event_type\":\"e\",\"event_id\":\"N\xfe\"}"), badTool("event_id", "UTF-8")},
				{"in an argument name", eiCall("4", "audit_log", "{\"module\":\"m\",\"procedure\":\"p\",\"status\":\"ok\",\"k\xff\":1}"), badTool("arguments", "UTF-8")},
				{"in the method", "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"pi\xffng\"}", badRPC(-32700)},
				{"in the id", "{\"jsonrpc\":\"2.0\",\"id\":\"a\xff\",\"method\":\"ping\"}", badRPC(-32700)},
				{"in the tool name", eiCall("6", "audit_log\xff", `{"module":"m","procedure":"p","status":"ok"}`), badRPC(-32700)},
				{"in other params", "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"_meta\":{\"x\":\"\xff\"},\"name\":\"audit_log\",\"arguments\":{\"module\":\"m\",\"procedure\":\"p\",\"status\":\"ok\"}}}", badRPC(-32700)},
				{"in a member name of the message", "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\",\"x\xff\":1}", badRPC(-32700)},
			} {
				a := d.send(t, c.msg)
				if p := eiValidJSON(a); p != "" {
					t.Errorf("%s: %s: %q", c.name, p, a)
				} else if p := c.want(a); p != "" {
					t.Errorf("%s: %s: %s", c.name, p, a)
				}
			}
			if a := d.send(t, `{"jsonrpc":"2.0","id":"after","method":"tools/list"}`); len(a.msgs) != 1 || a.msgs[0].Result == nil {
				t.Errorf("a valid request after them: %s", a)
			}
			if keys := eiKeys(t, rdb, prefix); len(keys) > 0 {
				t.Errorf("the refused calls wrote %v", keys)
			}
		})
	}
}

// Exclusive bounds Redis would refuse (nothing is before 0-0 or after the
// largest id) select nothing: an empty page, not an internal error.
func TestEdgeReadStreamBoundsRedisRefusesAreEmptyPages(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	for _, d := range eiDrivers(t, prefix) {
		t.Run(d.name, func(t *testing.T) {
			for _, args := range []string{
				`{"stream":"audit_log_stream","end":"(0-0"}`,
				`{"stream":"audit_log_stream","start":"(18446744073709551615-18446744073709551615"}`,
				`{"stream":"audit_log_stream","end":"(0-0","reverse":true}`,
				`{"stream":"audit_log_stream","start":"(18446744073709551615-18446744073709551615","reverse":true}`,
			} {
				a := d.send(t, eiCall("1", "read_stream", args))
				if p := badResult(map[string]any{"scanned": 0}); p(a) != "" {
					t.Errorf("read_stream(%s): %s: %s", args, p(a), a)
				} else if e := a.msgs[0].Result.StructuredContent["entries"]; fmt.Sprint(e) != "[]" {
					t.Errorf("read_stream(%s): entries %v", args, e)
				}
			}
		})
	}
}

// Numeric ids that do not survive a float64 are echoed exactly as sent.
func TestEdgeJSONRPCIDsAreEchoedExactly(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	for _, d := range eiDrivers(t, prefix) {
		t.Run(d.name, func(t *testing.T) {
			for _, id := range []string{`12345678901234567890123`, `1.0`, `1e2`, `-0`, `1.5`, `-12345678901234567890`, `9007199254740993`, `"s"`, `7`} {
				a := d.send(t, `{"jsonrpc":"2.0","id":`+id+`,"method":"ping"}`)
				if len(a.msgs) != 1 || string(a.msgs[0].ID) != id || a.msgs[0].Result == nil {
					t.Errorf("ping with id %s answered %s", id, a)
				}
			}
			a := d.send(t, eiCall(`12345678901234567890123`, "read_stream", `{"stream":"audit_log_stream","end":"(0-0"}`))
			if len(a.msgs) != 1 || string(a.msgs[0].ID) != `12345678901234567890123` || a.msgs[0].Result == nil || a.msgs[0].Result.IsError {
				t.Errorf("tools/call with a big id answered %s", a)
			}
			if bytes.Contains([]byte(a.raw), []byte(`\u0000`)) {
				t.Errorf("a placeholder leaked into the answer: %s", a)
			}
		})
	}
}

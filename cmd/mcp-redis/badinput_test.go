package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// This file drives the categories of /work/shared/notes/bad-inputs.md
// (transport and JSON-RPC, tool arguments, state) through the real binary,
// with raw messages: over stdio (raw lines on stdin, raw replies read from
// stdout) and over Streamable HTTP (raw POSTs to /mcp in a 2025-11-25
// session). After every case a valid call must succeed on the same process,
// and at the end only the keys the valid calls wrote may exist in Redis.

// badMsg is one JSON-RPC message as the server sent it.
type badMsg struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  *struct {
		IsError bool `json:"isError"`
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent map[string]any `json:"structuredContent"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (m badMsg) text() string {
	if m.Result == nil {
		return ""
	}
	var b strings.Builder
	for _, c := range m.Result.Content {
		b.WriteString(c.Text)
	}
	return b.String()
}

// badAnswer is what one raw request got back: the HTTP status (0 over
// stdio), the raw body or lines, and the JSON-RPC messages in it.
type badAnswer struct {
	status int
	ctype  string // the Content-Type over HTTP
	raw    string
	msgs   []badMsg
}

func (a badAnswer) String() string {
	raw := a.raw
	if len(raw) > 400 {
		raw = raw[:400] + fmt.Sprintf("…(%d bytes)", len(a.raw))
	}
	if a.status != 0 {
		return fmt.Sprintf("HTTP %d %s", a.status, raw)
	}
	return raw
}

// badParse decodes a body or line holding a message or an array of them.
func badParse(b []byte) []badMsg {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil
	}
	if b[0] == '[' {
		var ms []badMsg
		if json.Unmarshal(b, &ms) == nil {
			return ms
		}
		return nil
	}
	var m badMsg
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return []badMsg{m}
}

// badCheck says what is wrong with an answer, "" when it is acceptable.
type badCheck func(a badAnswer) string

// badRPC wants a JSON-RPC error with one of codes.
func badRPC(codes ...int) badCheck {
	return func(a badAnswer) string {
		for _, m := range a.msgs {
			if m.Error != nil && slices.Contains(codes, m.Error.Code) {
				if a.status != 0 && a.status >= 500 {
					return fmt.Sprintf("JSON-RPC error %d but HTTP %d", m.Error.Code, a.status)
				}
				return ""
			}
		}
		return fmt.Sprintf("want a JSON-RPC error %v", codes)
	}
}

// badHTTP4xx wants an HTTP status 400–499 (over stdio it never matches).
func badHTTP4xx() badCheck {
	return func(a badAnswer) string {
		if a.status >= 400 && a.status < 500 {
			return ""
		}
		return "want an HTTP 4xx"
	}
}

// badRPC4xx wants the JSON-RPC error, and over HTTP a 4xx status with it.
func badRPC4xx(codes ...int) badCheck {
	rpc := badRPC(codes...)
	return func(a badAnswer) string {
		if p := rpc(a); p != "" {
			return p
		}
		if a.status != 0 && (a.status < 400 || a.status >= 500) {
			return fmt.Sprintf("JSON-RPC error %v, but HTTP %d instead of a 4xx", codes, a.status)
		}
		return ""
	}
}

// badTool wants a tool error whose text contains every one of subs.
func badTool(subs ...string) badCheck {
	return func(a badAnswer) string {
		for _, m := range a.msgs {
			if m.Result != nil && m.Result.IsError {
				for _, s := range subs {
					if !strings.Contains(m.text(), s) {
						return fmt.Sprintf("tool error %q does not name %q", m.text(), s)
					}
				}
				return ""
			}
		}
		return fmt.Sprintf("want a tool error naming %v", subs)
	}
}

// badResult wants a successful tool result whose structured content has
// every key of want with that value.
func badResult(want map[string]any) badCheck {
	return func(a badAnswer) string {
		for _, m := range a.msgs {
			if m.Result != nil && !m.Result.IsError {
				for k, v := range want {
					if fmt.Sprint(m.Result.StructuredContent[k]) != fmt.Sprint(v) {
						return fmt.Sprintf("%s = %v, want %v", k, m.Result.StructuredContent[k], v)
					}
				}
				return ""
			}
		}
		return fmt.Sprintf("want a result with %v", want)
	}
}

// badNoReply wants silence (a blank line over stdio).
func badNoReply() badCheck {
	return func(a badAnswer) string {
		if len(a.raw) == 0 {
			return ""
		}
		return "want no reply"
	}
}

// badEcho wants either a JSON-RPC error rejecting the request, or the id
// echoed byte for byte (as JSON) with a normal answer.
func badEcho(id string) badCheck {
	return func(a badAnswer) string {
		for _, m := range a.msgs {
			if m.Error != nil && m.Error.Code == -32600 {
				return ""
			}
			if m.Error == nil && m.Result != nil {
				var got, want any
				_ = json.Unmarshal(m.ID, &got)
				_ = json.Unmarshal([]byte(id), &want)
				if fmt.Sprint(got) == fmt.Sprint(want) {
					return ""
				}
				return fmt.Sprintf("id echoed as %.100s, sent %.100s", m.ID, id)
			}
		}
		return "want -32600 or the id echoed"
	}
}

// badAny accepts an answer any one of checks accepts.
func badAny(checks ...badCheck) badCheck {
	return func(a badAnswer) string {
		var why []string
		for _, c := range checks {
			p := c(a)
			if p == "" {
				return ""
			}
			why = append(why, p)
		}
		return strings.Join(why, " / or ")
	}
}

// badDriver sends one raw message to the server and returns its answer.
type badDriver interface {
	send(t *testing.T, raw string, header map[string]string, wantReply bool) badAnswer
	alive() error
	logs() string
}

// badState carries what the valid setup calls returned.
type badState struct {
	tokA, tokB, tokD, tokE string
	valid                  int // entries the valid calls appended to workflow_events
}

func badTC(tool, arguments string) string {
	name, _ := json.Marshal(tool)
	return `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":` + string(name) + `,"arguments":` + arguments + `}}`
}

// badOK makes a valid call that must succeed and returns its structured content.
func badOK(t *testing.T, d badDriver, tool, arguments string) map[string]any {
	t.Helper()
	a := d.send(t, badTC(tool, arguments), nil, true)
	for _, m := range a.msgs {
		if m.Result != nil && !m.Result.IsError {
			return m.Result.StructuredContent
		}
	}
	t.Fatalf("valid call %s(%.200s) failed: %s\nstderr:\n%s", tool, arguments, a, d.logs())
	return nil
}

// badProbe is the valid call after every case.
const badProbe = `{"workflow_id":"probe","phase":"p","event_type":"e"}`

type badCase struct {
	name   string
	only   string // "stdio" or "http": the case exists on one transport only
	msg    func(s *badState) string
	header map[string]string
	setup  func(t *testing.T, d badDriver, s *badState)
	want   badCheck
	// wantHTTP, when set, replaces want over HTTP.
	wantHTTP badCheck
	noReply  bool // over stdio: no reply is expected
}

func badFixed(s string) func(*badState) string { return func(*badState) string { return s } }

func badCases() []badCase {
	tc := func(tool, arguments string) func(*badState) string { return badFixed(badTC(tool, arguments)) }
	nest := strings.Repeat(`{"a":`, 17) + `1` + strings.Repeat(`}`, 17)
	oneMiB := strings.Repeat("x", 1<<20)
	// emit_workflow_event's entry with details of n bytes is n+78 bytes
	// serialised (names and values, the server's stamp aside): one byte
	// over 64 KiB.
	overEntry := fmt.Sprintf(`{"workflow_id":"w","phase":"p","event_type":"e","details":%q,"timestamp":"2026-01-02T03:04:05.000Z","event_id":"X"}`,
		strings.Repeat("d", 64<<10-78+1))
	props := make([]string, 4000)
	for i := range props {
		props[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	manyProps := "{" + strings.Join(props, ",") + "}"
	return []badCase{
		// Transport and JSON-RPC.
		{name: "not JSON", msg: badFixed(`hello`), want: badRPC(-32700)},
		{name: "truncated JSON", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"tools/li`), want: badRPC(-32700)},
		{name: "empty line or body", msg: badFixed(``), noReply: true, want: badNoReply(), wantHTTP: badAny(badRPC(-32700), badHTTP4xx())},
		{name: "JSON null", msg: badFixed(`null`), want: badRPC(-32600, -32700)},
		{name: "JSON number", msg: badFixed(`42`), want: badRPC(-32600)},
		{name: "stdio line over the message limit", only: "stdio", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("x", 4<<20) + `"}}`),
			want: badRPC(-32600)},
		{name: "stdio CRLF line ending", only: "stdio", msg: badFixed("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\r"), want: badEcho(`1`)},
		{name: "jsonrpc 1.0", msg: badFixed(`{"jsonrpc":"1.0","id":1,"method":"tools/list"}`), want: badRPC(-32600)},
		{name: "jsonrpc missing", msg: badFixed(`{"id":1,"method":"tools/list"}`), want: badRPC(-32600)},
		{name: "method missing", msg: badFixed(`{"jsonrpc":"2.0","id":1}`), want: badRPC(-32600)},
		{name: "method not a string", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":42}`), want: badRPC(-32600)},
		{name: "unknown method", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"foo/bar"}`), want: badRPC(-32601)},
		{name: "tools/call params null", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":null}`), want: badRPC(-32602)},
		{name: "tools/call params an array", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["audit_log",{}]}`), want: badRPC(-32602)},
		{name: "tools/call arguments a string", msg: tc("audit_log", `"module=m"`), want: badAny(badRPC(-32602), badTool("arguments"))},
		{name: "empty batch", msg: badFixed(`[]`), want: badRPC4xx(-32600)},
		{name: "batch of two", msg: badFixed(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`), want: badRPC4xx(-32600)},
		{name: "id an object", msg: badFixed(`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`), want: badEcho(`{"a":1}`)},
		{name: "id a float", msg: badFixed(`{"jsonrpc":"2.0","id":1.5,"method":"ping"}`), want: badEcho(`1.5`)},
		{name: "id a 1 MiB string", msg: badFixed(`{"jsonrpc":"2.0","id":"` + oneMiB + `","method":"ping"}`),
			want: badEcho(`"` + oneMiB + `"`), wantHTTP: badAny(badEcho(`"`+oneMiB+`"`), badHTTP4xx())},
		{name: "HTTP Content-Type text/plain", only: "http", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"ping"}`),
			header: map[string]string{"Content-Type": "text/plain"}, want: badHTTP4xx()},
		{name: "HTTP unknown Mcp-Session-Id", only: "http", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"ping"}`),
			header: map[string]string{"Mcp-Session-Id": "mcp-session-00000000-0000-0000-0000-000000000000"}, want: badHTTP4xx()},
		{name: "HTTP malformed Mcp-Session-Id", only: "http", msg: badFixed(`{"jsonrpc":"2.0","id":1,"method":"ping"}`),
			header: map[string]string{"Mcp-Session-Id": "not a session/../x"}, want: badHTTP4xx()},

		// Tool arguments.
		{name: "unknown tool", msg: tc("no_such_tool", `{}`), want: badRPC(-32602)},
		{name: "10 KiB tool name", msg: tc(strings.Repeat("t", 10<<10), `{}`), want: badRPC(-32602)},
		{name: "missing required", msg: tc("audit_log", `{"procedure":"p","status":"ok"}`), want: badTool("module")},
		{name: "misspelt ttl_msec", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_msec":5000}`), want: badTool("ttl_msec", "ttl_ms", "wait_ms", "owner")},
		{name: "integer as a string", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":"5000"}`), want: badTool("ttl_ms")},
		{name: "integer as an array", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":[5000]}`), want: badTool("ttl_ms")},
		{name: "integer as a boolean", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":true}`), want: badTool("ttl_ms")},
		{name: "string where an object is expected", msg: tc("audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":"x"}`), want: badTool("inputs")},
		{name: "negative ttl", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":-1}`), want: badTool("ttl_ms")},
		{name: "zero ttl", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":0}`), want: badTool("ttl_ms")},
		{name: "zero count", msg: tc("read_stream", `{"stream":"workflow_events","count":0}`), want: badTool("count")},
		{name: "fractional integer", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":5000.5}`), want: badTool("ttl_ms")},
		{name: "1e308", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":1e308}`), want: badTool("ttl_ms")},
		{name: "2^63", msg: tc("acquire_lock", `{"resource":"bad/x","ttl_ms":9223372036854775808}`), want: badTool("ttl_ms")},
		{name: "empty resource", msg: tc("acquire_lock", `{"resource":""}`), want: badTool("resource")},
		{name: "whitespace-only workflow_id", msg: tc("emit_workflow_event", `{"workflow_id":"   ","phase":"p","event_type":"e"}`), want: badTool("workflow_id")},
		{name: "resource over 200 bytes", msg: tc("acquire_lock", `{"resource":"`+strings.Repeat("r", 201)+`"}`), want: badTool("resource")},
		{name: "NUL in owner", msg: tc("acquire_lock", `{"resource":"bad/x","owner":"a\u0000b"}`), want: badTool("owner")},
		{name: "control char in phase", msg: tc("emit_workflow_event", `{"workflow_id":"w","phase":"p\u0007","event_type":"e"}`), want: badTool("phase")},
		{name: "CRLF in workflow_id", msg: tc("emit_workflow_event", `{"workflow_id":"a\r\nb","phase":"p","event_type":"e"}`), want: badTool("workflow_id")},
		{name: "glob * in resource", msg: tc("acquire_lock", `{"resource":"bad/*"}`), want: badTool("resource")},
		{name: "glob ? in resource", msg: tc("acquire_lock", `{"resource":"bad/?"}`), want: badTool("resource")},
		{name: "glob [a-z] in resource", msg: tc("acquire_lock", `{"resource":"bad/[a-z]"}`), want: badTool("resource")},
		{name: "hash tag in resource", msg: tc("acquire_lock", `{"resource":"{bad}x"}`), want: badTool("resource")},
		{name: "glob in rate subject", msg: tc("check_rate", `{"subject":"user*"}`), want: badTool("subject")},
		{name: "hash tag in rate subject", msg: tc("check_rate", `{"subject":"{user}1"}`), want: badTool("subject")},
		{name: "timestamp yesterday", msg: tc("emit_workflow_event", `{"workflow_id":"w","phase":"p","event_type":"e","timestamp":"yesterday"}`), want: badTool("timestamp")},
		{name: "timestamp 2026-13-45", msg: tc("submit_feedback", `{"feedback":"f","timestamp":"2026-13-45"}`), want: badTool("timestamp")},
		{name: "stream id abc", msg: tc("read_stream", `{"stream":"workflow_events","start":"abc"}`), want: badTool("start")},
		{name: "stream id out of range", msg: tc("read_stream", `{"stream":"workflow_events","end":"99999999999999999999999-0"}`), want: badTool("end")},
		{name: "entry one byte over the limit", msg: badFixed(badTC("emit_workflow_event", overEntry)), want: badTool("details", "65537", "65536")},
		{name: "nesting over 16", msg: tc("audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":`+nest+`}`), want: badTool("inputs")},
		{name: "many properties under the byte limit", msg: tc("audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":`+manyProps+`}`),
			want: badAny(badTool("inputs"), badResult(map[string]any{"duplicate": false}))},
		{name: "stream outside the enum", msg: tc("read_stream", `{"stream":"locks"}`), want: badTool("stream")},
		// Consumer groups: refused before Redis is asked, so no group and
		// no stream is made.
		{name: "claim without a consumer", msg: tc("claim_events", `{"stream":"user_feedback","group":"g"}`), want: badTool("consumer", "is required")},
		{name: "claim with a blank consumer", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"  "}`), want: badTool("consumer")},
		{name: "claim with a newline in the group", msg: tc("claim_events", `{"stream":"user_feedback","group":"g\n1","consumer":"c"}`), want: badTool("group")},
		{name: "claim from a stream outside the enum", msg: tc("claim_events", `{"stream":"locks","group":"g","consumer":"c"}`), want: badTool("stream")},
		{name: "claim a count of 0", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","count":0}`), want: badTool("count")},
		{name: "claim a count of 101", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","count":101}`), want: badTool("count", "101")},
		{name: "claim blocking over streams.max_block", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","block_ms":30001}`), want: badTool("block_ms", "30000")},
		{name: "claim with a negative block", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","block_ms":-1}`), want: badTool("block_ms")},
		{name: "claim reclaiming under 100 ms", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","reclaim_idle_ms":99}`), want: badTool("reclaim_idle_ms")},
		{name: "claim from an id", msg: tc("claim_events", `{"stream":"user_feedback","group":"g","consumer":"c","from":"1-0"}`), want: badTool("from", "$, 0")},
		{name: "ack without ids", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":[]}`), want: badTool("ids", "at least 1")},
		{name: "ack ids as a string", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":"1-0"}`), want: badTool("ids", "must be an array")},
		{name: "ack 101 ids", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":[`+strings.TrimSuffix(strings.Repeat(`"1-0",`, 101), ",")+`]}`), want: badTool("ids", "at most 100")},
		{name: "ack an id that is not one", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":["1-0","abc"]}`), want: badTool("ids[1]", "stream entry id")},
		{name: "ack an id beyond 64 bits", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":["99999999999999999999-0"]}`), want: badTool("ids[0]")},
		{name: "ack a number for an id", msg: tc("ack_events", `{"stream":"user_feedback","group":"g","ids":[1]}`), want: badTool("ids[0]", "must be a string")},
		{name: "stream_info of a stream outside the enum", msg: tc("stream_info", `{"stream":"dead_letter"}`), want: badTool("stream")},
		{name: "stream_info with a group", msg: tc("stream_info", `{"stream":"user_feedback","group":"g"}`), want: badTool("group", "valid arguments are: stream")},
		{name: "ack in a group that does not exist", msg: tc("ack_events", `{"stream":"workflow_events","group":"nope","ids":["1-0"]}`), want: badTool("group", `"nope"`, "claim_events")},

		// State.
		{name: "release with another lock's token", msg: func(s *badState) string {
			return badTC("release_lock", fmt.Sprintf(`{"resource":"bad/a","token":%q}`, s.tokB))
		}, want: badResult(map[string]any{"released": false, "reason": "not_held"})},
		{name: "extend with another lock's token", msg: func(s *badState) string {
			return badTC("extend_lock", fmt.Sprintf(`{"resource":"bad/b","token":%q,"ttl_ms":5000}`, s.tokA))
		}, want: badResult(map[string]any{"extended": false, "reason": "not_held"})},
		{name: "release with an empty token", msg: tc("release_lock", `{"resource":"bad/a","token":""}`),
			want: badAny(badResult(map[string]any{"released": false, "reason": "not_held"}), badTool("token"))},
		{name: "release with a 1 MiB token", msg: tc("release_lock", `{"resource":"bad/a","token":"`+oneMiB+`"}`),
			want: badTool("token"), wantHTTP: badAny(badTool("token"), badHTTP4xx())},
		{name: "double release", setup: func(t *testing.T, d badDriver, s *badState) {
			s.tokD = badOK(t, d, "acquire_lock", `{"resource":"bad/d","ttl_ms":60000}`)["token"].(string)
			if r := badOK(t, d, "release_lock", fmt.Sprintf(`{"resource":"bad/d","token":%q}`, s.tokD)); r["released"] != true {
				t.Fatalf("first release: %v", r)
			}
		}, msg: func(s *badState) string {
			return badTC("release_lock", fmt.Sprintf(`{"resource":"bad/d","token":%q}`, s.tokD))
		}, want: badResult(map[string]any{"released": false, "reason": "not_held"})},
		{name: "extend after expiry", setup: func(t *testing.T, d badDriver, s *badState) {
			s.tokE = badOK(t, d, "acquire_lock", `{"resource":"bad/e","ttl_ms":100}`)["token"].(string)
			time.Sleep(300 * time.Millisecond)
		}, msg: func(s *badState) string {
			return badTC("extend_lock", fmt.Sprintf(`{"resource":"bad/e","token":%q,"ttl_ms":5000}`, s.tokE))
		}, want: badResult(map[string]any{"extended": false, "reason": "not_held"})},
		{name: "unknown rate policy", msg: tc("check_rate", `{"subject":"u1","policy":"nope"}`), want: badTool("policy", "nope", "default")},
		{name: "cost over the limit", msg: tc("check_rate", `{"subject":"u1","cost":61}`), want: badTool("cost", "61")},
		{name: "repeated event_id, same payload", setup: func(t *testing.T, d badDriver, s *badState) {
			badOK(t, d, "emit_workflow_event", `{"workflow_id":"w","phase":"p1","event_type":"e","event_id":"E-dup"}`)
			s.valid++
		}, msg: tc("emit_workflow_event", `{"workflow_id":"w","phase":"p1","event_type":"e","event_id":"E-dup"}`),
			want: badResult(map[string]any{"duplicate": true})},
		{name: "repeated event_id, other payload", msg: tc("emit_workflow_event", `{"workflow_id":"w","phase":"p2","event_type":"e","event_id":"E-dup"}`),
			want: badTool("E-dup")},
	}
}

// runBadCases runs the table over d and checks Redis under prefix.
func runBadCases(t *testing.T, d badDriver, transport string, rdb *redis.Client, prefix string) {
	s := &badState{}
	s.tokA = badOK(t, d, "acquire_lock", `{"resource":"bad/a","ttl_ms":60000}`)["token"].(string)
	s.tokB = badOK(t, d, "acquire_lock", `{"resource":"bad/b","ttl_ms":60000}`)["token"].(string)
	n := 0
	for _, c := range badCases() {
		if c.only != "" && c.only != transport {
			continue
		}
		n++
		t.Run(c.name, func(t *testing.T) {
			if c.setup != nil {
				c.setup(t, d, s)
			}
			start := time.Now()
			a := d.send(t, c.msg(s), c.header, !(transport == "stdio" && c.noReply))
			took := time.Since(start)
			want := c.want
			if transport == "http" && c.wantHTTP != nil {
				want = c.wantHTTP
			}
			if p := want(a); p != "" {
				req := c.msg(s)
				if len(req) > 300 {
					req = req[:300] + fmt.Sprintf("…(%d bytes)", len(req))
				}
				t.Errorf("SERVER ANSWER NOT ACCEPTABLE: %s\nrequest: %s\nanswer (%v): %s", p, req, took, a)
			} else {
				t.Logf("%v: %s", took, a)
			}
			// The next valid call succeeds.
			badOK(t, d, "emit_workflow_event", badProbe)
			s.valid++
			if err := d.alive(); err != nil {
				t.Fatalf("the server is gone: %v\nstderr:\n%s", err, d.logs())
			}
		})
	}
	t.Logf("%d cases over %s", n, transport)
	if strings.Contains(d.logs(), "panic") {
		t.Errorf("the server's log mentions a panic:\n%s", d.logs())
	}

	// Only the valid calls' keys exist.
	ctx := context.Background()
	var keys []string
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		keys = append(keys, rdb.Keys(ctx, pattern).Val()...)
	}
	sort.Strings(keys)
	allowed := map[string]bool{
		prefix + "workflow_events":                                 true,
		prefix + "audit_log_stream":                                true, // when many properties are accepted
		prefix + "chain:{" + prefix + "audit_log_stream}":          true, // its chain head
		prefix + "idem:{" + prefix + "workflow_events}:E-dup":      true,
		prefix + "locks:bad/a":                                     true,
		prefix + "locks:bad/b":                                     true,
		prefix + "locks:bad/e":                                     true, // may linger a moment past its expiry
		prefix + "fence:{" + prefix + "locks:bad/a}":               true,
		prefix + "fence:{" + prefix + "locks:bad/b}":               true,
		prefix + "fence:{" + prefix + "locks:bad/d}":               true,
		prefix + "fence:{" + prefix + "locks:bad/e}":               true,
		prefix + "owner:{" + prefix + "locks:bad/a}":               true,
		prefix + "owner:{" + prefix + "locks:bad/b}":               true,
		prefix + "owner:{" + prefix + "locks:bad/e}":               true,
		prefix + "idem:{" + prefix + "workflow_events}:E-dup:meta": true,
	}
	for _, k := range keys {
		if !allowed[k] {
			t.Errorf("key %q exists after the invalid cases; only the valid calls' keys may", k)
		}
	}
	for _, k := range []string{prefix + "workflow_events", prefix + "locks:bad/a", prefix + "locks:bad/b", prefix + "fence:{" + prefix + "locks:bad/d}"} {
		if !slices.Contains(keys, k) {
			t.Errorf("the valid calls' key %q is missing (keys: %v)", k, keys)
		}
	}
	if got := rdb.XLen(ctx, prefix+"workflow_events").Val(); got != int64(s.valid) {
		t.Errorf("workflow_events holds %d entries, the valid calls appended %d", got, s.valid)
	}
	for _, m := range rdb.XRange(ctx, prefix+"workflow_events", "-", "+").Val() {
		if m.Values["workflow_id"] != "probe" && m.Values["event_id"] != "E-dup" {
			t.Errorf("an invalid call's entry is in workflow_events: %v", m.Values)
		}
	}
}

// badStdio is the binary over stdio, spoken to in raw lines.
type badStdio struct {
	*rawStdio
	mu  sync.Mutex
	seq int
}

// badServeRaw starts the server over raw stdio against the shared Redis
// under prefix, without call records and with env added; it must exit
// when the test closes its stdin.
func badServeRaw(t *testing.T, prefix string, buffered int, env ...string) *rawStdio {
	t.Helper()
	return startRawStdio(t, buffered, append([]string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, env...),
		"serve", "--redis-url", testredis.URL(), "--prefix", prefix)
}

func (b *badStdio) logs() string { return b.stderr.String() }

func (b *badStdio) alive() error {
	select {
	case <-b.done:
		return fmt.Errorf("exited: %v", b.cmd.ProcessState)
	default:
		return nil
	}
}

// next reads one line, or fails after d.
func (b *badStdio) next(t *testing.T, d time.Duration) ([]byte, bool) {
	t.Helper()
	select {
	case l, ok := <-b.lines:
		if !ok {
			t.Fatalf("stdout closed\nstderr:\n%s", b.logs())
		}
		return l, true
	case <-time.After(d):
		return nil, false
	}
}

// send writes raw as one line. With wantReply it waits for one line, then
// sends a ping with a fresh id and collects every line up to its answer,
// so late replies to raw belong to raw's answer.
func (b *badStdio) send(t *testing.T, raw string, _ map[string]string, wantReply bool) badAnswer {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := io.WriteString(b.stdin, raw+"\n"); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	var got [][]byte
	if wantReply {
		l, ok := b.next(t, 20*time.Second)
		if !ok {
			t.Fatalf("no reply within 20s to %.200s (a hang)\nstderr:\n%s", raw, b.logs())
		}
		got = append(got, l)
	}
	b.seq++
	fence := fmt.Sprintf(`"fence-%d"`, b.seq)
	if _, err := io.WriteString(b.stdin, `{"jsonrpc":"2.0","id":`+fence+`,"method":"ping"}`+"\n"); err != nil {
		t.Fatalf("write stdin: %v", err)
	}
	for {
		l, ok := b.next(t, 20*time.Second)
		if !ok {
			t.Fatalf("no answer to the ping after %.200s (a hang)\nstderr:\n%s", raw, b.logs())
		}
		var m badMsg
		if json.Unmarshal(l, &m) == nil && string(m.ID) == fence {
			break
		}
		got = append(got, l)
	}
	a := badAnswer{raw: string(bytes.Join(got, []byte("\n")))}
	for _, l := range got {
		a.msgs = append(a.msgs, badParse(l)...)
	}
	return a
}

func badStartStdio(t *testing.T, prefix string) *badStdio {
	t.Helper()
	b := &badStdio{rawStdio: badServeRaw(t, prefix, 64)}
	a := b.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bad","version":"1"}}}`, nil, true)
	if len(a.msgs) != 1 || a.msgs[0].Result == nil {
		t.Fatalf("initialize: %s\nstderr:\n%s", a, b.logs())
	}
	b.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, false)
	return b
}

// badHTTPDriver is the binary over Streamable HTTP, spoken to in raw POSTs
// within one 2025-11-25 session.
type badHTTPDriver struct {
	p       *httpProc
	session string
}

func (h *badHTTPDriver) logs() string { return h.p.stderr.String() }

func (h *badHTTPDriver) alive() error {
	select {
	case <-h.p.done:
		return fmt.Errorf("exited: %v", h.p.err)
	default:
		return nil
	}
}

func (h *badHTTPDriver) send(t *testing.T, raw string, header map[string]string, _ bool) badAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.p.base+"/mcp", strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if h.session != "" {
		req.Header.Set("Mcp-Session-Id", h.session)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := plain.Do(req)
	if err != nil {
		t.Fatalf("POST /mcp %.200s: %v (a hang or a dropped connection)\nstderr:\n%s", raw, err, h.logs())
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("POST /mcp: body: %v", err)
	}
	a := badAnswer{status: res.StatusCode, ctype: res.Header.Get("Content-Type"), raw: string(body)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		for l := range strings.SplitSeq(string(body), "\n") {
			if d, ok := strings.CutPrefix(strings.TrimRight(l, "\r"), "data:"); ok {
				a.msgs = append(a.msgs, badParse([]byte(d))...)
			}
		}
	} else {
		a.msgs = badParse(body)
	}
	if h.session == "" {
		h.session = res.Header.Get("Mcp-Session-Id")
	}
	return a
}

func badStartHTTP(t *testing.T, prefix string) *badHTTPDriver {
	t.Helper()
	return diffHTTP(t, prefix, false, false)
}

// Every bad input of bad-inputs.md gets an acceptable answer over stdio and
// over Streamable HTTP; after each the next valid call succeeds on the same
// process, and only the valid calls' keys are in Redis.
func TestBadInputOverStdioAndStreamableHTTP(t *testing.T) {
	needsFull(t, "starts the binary over stdio and HTTP")
	t.Run("stdio", func(t *testing.T) {
		rdb, prefix := testredis.Shared(t)
		d := badStartStdio(t, prefix)
		pid := d.cmd.Process.Pid
		runBadCases(t, d, "stdio", rdb, prefix)
		if d.alive() != nil || d.cmd.Process.Pid != pid {
			t.Errorf("the server did not stay up")
		}
	})
	t.Run("http", func(t *testing.T) {
		rdb, prefix := testredis.Shared(t)
		d := badStartHTTP(t, prefix)
		pid := d.p.cmd.Process.Pid
		runBadCases(t, d, "http", rdb, prefix)
		if d.alive() != nil || d.p.cmd.Process.Pid != pid {
			t.Errorf("the server did not stay up")
		}
	})
}

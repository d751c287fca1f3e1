package mcpkit_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/tools"
)

// lockArgs is a test-only input with one field of every kind the decoder
// checks.
type lockArgs struct {
	Resource mcpkit.Name      `json:"resource"`
	Owner    mcpkit.Name      `json:"owner"`
	TTLMS    int              `json:"ttl_ms,omitempty" jsonschema:"minimum=1,maximum=60000"`
	Note     mcpkit.Text      `json:"note,omitempty"`
	At       mcpkit.Timestamp `json:"at,omitempty"`
	Mode     string           `json:"mode,omitempty" jsonschema:"enum=shared,enum=exclusive"`
	Meta     mcpkit.Object    `json:"meta,omitempty"`
	Payload  mcpkit.Value     `json:"payload,omitempty"`
	Seq      int64            `json:"seq,omitempty"`
	Retry    bool             `json:"retry,omitempty"`
	Label    string           `json:"label,omitempty"`
}

// sizedArgs is a test-only input with bounds in characters: a plain string
// (no byte bound of its own) and a name whose maxLength is below its byte
// bound, as acquire_lock's owner is.
type sizedArgs struct {
	Code  string      `json:"code,omitempty" jsonschema:"minLength=2,maxLength=4"`
	Label mcpkit.Name `json:"label,omitempty" jsonschema:"maxLength=8"`
	// Tags is an array with bounds of its own and of its items.
	Tags []string `json:"tags,omitempty" jsonschema:"minItems=1,maxItems=3,pattern=^[a-z]+$"`
}

// pingArgs is a test-only input without a required field.
type pingArgs struct {
	Note mcpkit.Text `json:"note,omitempty"`
}

type okResult struct {
	OK bool `json:"ok"`
}

// recorder builds test-only tools whose handler records what it was given.
type recorder struct {
	called bool
	got    any
}

func (r *recorder) lockTool() mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[lockArgs, okResult]{
		Name: "lock",
		Handle: func(_ context.Context, in *lockArgs) (*okResult, error) {
			r.called, r.got = true, *in
			return &okResult{OK: true}, nil
		},
	})
}

func (r *recorder) sizedTool() mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[sizedArgs, okResult]{
		Name: "sized",
		Handle: func(_ context.Context, in *sizedArgs) (*okResult, error) {
			r.called, r.got = true, *in
			return &okResult{OK: true}, nil
		},
	})
}

func (r *recorder) pingTool() mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[pingArgs, okResult]{
		Name: "ping",
		Handle: func(_ context.Context, in *pingArgs) (*okResult, error) {
			r.called, r.got = true, *in
			return &okResult{OK: true}, nil
		},
	})
}

// fakeStreams stands in for Redis: it records every call and answers with
// fixed results, so a valid call of a real tool succeeds without Redis.
type fakeStreams struct {
	mu      sync.Mutex
	appends []stream.Append
	reads   []stream.Query
	ctxs    []string
}

func (f *fakeStreams) Append(_ context.Context, a stream.Append) (stream.Appended, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends = append(f.appends, a)
	return stream.Appended{Key: "test:" + a.Stream, ID: "1700000000000-0"}, nil
}

func (f *fakeStreams) Read(_ context.Context, q stream.Query) (stream.Page, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads = append(f.reads, q)
	return stream.Page{Key: "test:" + q.Stream, Scanned: 1, Entries: []stream.Entry{{
		ID:     "1700000000000-0",
		Values: map[string]string{"workflow_id": "w1", "duration_ms": "1.5", "inputs": `{"a":1}`, "value": `"v"`, "other": "x"},
	}}}, nil
}

func (f *fakeStreams) Context(_ context.Context, workflowID string) (stream.WorkflowContext, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctxs = append(f.ctxs, workflowID)
	return stream.WorkflowContext{
		Phases:      map[string]map[string]json.RawMessage{"p1": {"f1": json.RawMessage(`{"x":1}`)}},
		LastDeltaID: "1700000000000-0", UpdatedAt: "2026-01-02T15:04:05.000Z",
	}, nil
}

func (f *fakeStreams) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.appends, f.reads, f.ctxs = nil, nil, nil
}

func (f *fakeStreams) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.appends) + len(f.reads) + len(f.ctxs)
}

// realTools returns the server's tools over a fake Redis, by name.
func realTools(f *fakeStreams) map[string]mcpkit.Tool {
	d := &tools.Deps{Streams: f, MaxEntryBytes: 1 << 20, Now: func() time.Time { return time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC) }}
	out := map[string]mcpkit.Tool{}
	for _, t := range tools.All(d) {
		out[t.Name()] = t
	}
	return out
}

// nestObject is an object nested depth levels deep: {} is 1, {"a":{}} is 2.
func nestObject(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}

// nestArray is an array nested depth levels deep: [] is 1.
func nestArray(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// lock returns lockArgs text with the two required names and extra members.
func lock(extra string) string {
	if extra == "" {
		return `{"resource":"r","owner":"o"}`
	}
	return `{"resource":"r","owner":"o",` + extra + `}`
}

type decodeCase struct {
	name string
	tool string // "lock", "sized", "ping" or a real tool's name
	args string
	// For an error: the fault's Field ("" when several problems are
	// reported), names the message must contain, and phrases it must say.
	wantErr bool
	field   string
	names   []string
	says    []string
	// For success with a test-only tool: the value the handler receives.
	want any
}

func decodeCases() []decodeCase {
	name256 := strings.Repeat("n", 256)
	twoBytes := strings.Repeat("é", 128)   // 128 characters, 256 bytes
	threeBytes := strings.Repeat("€", 86)  // 86 characters, 258 bytes
	longUnknown := strings.Repeat("é", 40) // "x" and 80 bytes: byte 64 is inside a character
	var many []string
	for i := range 100 {
		many = append(many, quote("x"+strings.Repeat("y", i%7)+string(rune('a'+i%26))+string(rune('a'+i/26)))+":1")
	}
	return []decodeCase{
		// The arguments as a whole.
		{name: "an array is not an object of named arguments", tool: "lock", args: `[{"resource":"r","owner":"o"}]`, wantErr: true, field: "arguments", says: []string{"must be a JSON object"}},
		{name: "a string is not an object of named arguments", tool: "lock", args: `"resource=r"`, wantErr: true, field: "arguments", says: []string{"must be a JSON object"}},
		{name: "a number is not an object of named arguments", tool: "lock", args: `5000`, wantErr: true, field: "arguments", says: []string{"must be a JSON object"}},
		{name: "text that is not JSON is not an object", tool: "lock", args: `hello`, wantErr: true, field: "arguments", says: []string{"must be a JSON object"}},
		{name: "null arguments are taken as no arguments and every required one is missing", tool: "lock", args: `null`, wantErr: true, names: []string{"resource", "owner"}, says: []string{"is required"}},
		{name: "empty arguments are taken as no arguments", tool: "lock", args: ``, wantErr: true, names: []string{"resource", "owner"}, says: []string{"is required"}},
		{name: "null arguments are fine when nothing is required", tool: "ping", args: `null`, want: pingArgs{}},
		{name: "empty arguments are fine when nothing is required", tool: "ping", args: " \r\n\t", want: pingArgs{}},
		{name: "truncated JSON is not valid JSON", tool: "lock", args: `{"resource":`, wantErr: true, field: "arguments", says: []string{"not valid JSON"}},
		{name: "an unclosed object is not valid JSON", tool: "lock", args: `{"resource":"r"`, wantErr: true, field: "arguments", says: []string{"not valid JSON"}},
		{name: "a trailing comma is not valid JSON", tool: "lock", args: `{"resource":"r",}`, wantErr: true, field: "arguments", says: []string{"not valid JSON"}},
		{name: "single quotes are not valid JSON", tool: "lock", args: `{'resource':'r'}`, wantErr: true, field: "arguments", says: []string{"not valid JSON"}},
		{name: "a missing colon is not valid JSON", tool: "lock", args: `{"resource" "r"}`, wantErr: true, field: "arguments", says: []string{"not valid JSON"}},
		{name: "a second object after the arguments is trailing data", tool: "lock", args: lock("") + ` {}`, wantErr: true, field: "arguments", says: []string{"not valid JSON", "after top-level value"}},
		{name: "text after the arguments is trailing data", tool: "lock", args: lock("") + `x`, wantErr: true, field: "arguments", says: []string{"not valid JSON", "after top-level value"}},
		{name: "a stray closing bracket is trailing data", tool: "lock", args: lock("") + `]`, wantErr: true, field: "arguments", says: []string{"not valid JSON", "after top-level value"}},

		// Text that is not UTF-8: encoding/json would make each bad byte
		// U+FFFD, so distinct names would become one, and object arguments
		// kept as raw text would be stored with the bytes as they came.
		{name: "invalid UTF-8 inside an object argument is rejected naming it", tool: "audit_log", args: "{\"module\":\"m\",\"procedure\":\"p\",\"status\":\"ok\",\"inputs\":{\"k\":\"v\xff\xc0\"}}",
			wantErr: true, field: "inputs", says: []string{"not valid UTF-8", "0xff"}},
		{name: "invalid UTF-8 in an id is rejected, not replaced", tool: "emit_workflow_event", args: "{\"workflow_id\":\"w\",\"phase\":\"p\",\"event_type\":\"e\",\"event_id\":\"N\xfe\"}",
			wantErr: true, field: "event_id", says: []string{"not valid UTF-8", "0xfe"}},
		{name: "a truncated sequence in a name argument is rejected", tool: "lock", args: lock("\"label\":\"caf\xc3\""), wantErr: true, field: "label", says: []string{"not valid UTF-8"}},
		{name: "an encoded surrogate is not UTF-8", tool: "lock", args: lock("\"note\":\"\xed\xa0\x80\""), wantErr: true, field: "note", says: []string{"not valid UTF-8"}},
		{name: "invalid UTF-8 in an argument name is rejected naming the arguments", tool: "lock", args: lock("\"lab\xffel\":\"x\""), wantErr: true, field: "arguments", says: []string{"not valid UTF-8", `"lab\xffel"`}},
		{name: "invalid UTF-8 in two arguments names both", tool: "lock", args: "{\"resource\":\"r\xff\",\"owner\":\"o\xff\"}", wantErr: true, names: []string{"resource", "owner"}, says: []string{"not valid UTF-8"}},
		{name: "valid UTF-8 of every length is accepted", tool: "lock", args: lock(`"label":"é€😀"`), want: lockArgs{Resource: "r", Owner: "o", Label: "é€😀"}},

		// Names of arguments.
		{name: "an unknown argument is rejected listing the valid names", tool: "lock", args: lock(`"colour":"red"`), wantErr: true, field: "arguments",
			says: []string{`unknown argument "colour"`, "valid arguments are: resource, owner, ttl_ms, note, at, mode, meta, payload, seq, retry, label"}},
		{name: "a misspelt ttl_msec is rejected naming ttl_ms among the valid names", tool: "lock", args: lock(`"ttl_msec":5000`), wantErr: true, field: "arguments", says: []string{`"ttl_msec"`, "ttl_ms,"}},
		{name: "a name in another case is unknown though Go's JSON would match it", tool: "lock", args: `{"Resource":"r","owner":"o"}`, wantErr: true, names: []string{`"Resource"`, "resource"}, says: []string{"unknown argument", "is required"}},
		{name: "a camel-case workflowId is rejected by audit_log listing workflow_id", tool: "audit_log", args: `{"module":"m","procedure":"p","status":"ok","workflowId":"w"}`, wantErr: true, field: "arguments",
			says: []string{`"workflowId"`, "workflow_id"}},
		{name: "a hundred unknown arguments are counted, not all listed", tool: "lock", args: lock(strings.Join(many, ",")), wantErr: true, field: "arguments", says: []string{"and 92 more", "valid arguments are"}},
		{name: "a long multibyte unknown name is clipped between characters", tool: "lock", args: lock(quote("x"+longUnknown) + ":1"), wantErr: true, field: "arguments", says: []string{`"x` + strings.Repeat("é", 31) + `…"`}},
		{name: "a duplicate argument is rejected", tool: "lock", args: `{"resource":"a","resource":"b","owner":"o"}`, wantErr: true, field: "resource", says: []string{"more than once"}},
		{name: "a duplicate spelt with an escape is still a duplicate", tool: "lock", args: `{"resource":"a","\u0072esource":"b","owner":"o"}`, wantErr: true, field: "resource", says: []string{"more than once"}},

		// Required arguments.
		{name: "every missing required argument of publish_ccwj_delta is named", tool: "publish_ccwj_delta", args: `{}`, wantErr: true,
			names: []string{"workflow_id: is required", "phase_id: is required", "field: is required", "value: is required"}},
		{name: "the missing required arguments of audit_log are named", tool: "audit_log", args: `{"module":"m"}`, wantErr: true, names: []string{"procedure: is required", "status: is required"}},
		{name: "one missing required argument is the error's field", tool: "get_context", args: `{"phase_id":"p"}`, wantErr: true, field: "workflow_id", says: []string{"is required"}},
		{name: "read_stream requires the stream", tool: "read_stream", args: `{"count":5}`, wantErr: true, field: "stream", says: []string{"is required"}},

		// Types.
		{name: "a quoted number is not an integer", tool: "lock", args: lock(`"ttl_ms":"5000"`), wantErr: true, field: "ttl_ms", says: []string{`must be an integer, not string "5000"`}},
		{name: "a number in an array is not an integer", tool: "lock", args: lock(`"ttl_ms":[5000]`), wantErr: true, field: "ttl_ms", says: []string{"must be an integer, not array"}},
		{name: "true is not an integer", tool: "lock", args: lock(`"ttl_ms":true`), wantErr: true, field: "ttl_ms", says: []string{"must be an integer, not boolean"}},
		{name: "an object is not a string", tool: "lock", args: `{"resource":{"name":"r"},"owner":"o"}`, wantErr: true, field: "resource", says: []string{"must be a string, not object"}},
		{name: "a number is not a name", tool: "lock", args: `{"resource":42,"owner":"o"}`, wantErr: true, field: "resource", says: []string{"must be a string, not number 42"}},
		{name: "a string is not an object", tool: "lock", args: lock(`"meta":"{\"a\":1}"`), wantErr: true, field: "meta", says: []string{"must be an object, not string"}},
		{name: "an array is not an object", tool: "lock", args: lock(`"meta":[]`), wantErr: true, field: "meta", says: []string{"must be an object, not array"}},
		{name: "a string is not a boolean", tool: "lock", args: lock(`"retry":"true"`), wantErr: true, field: "retry", says: []string{"must be a boolean"}},
		{name: "null for an optional string says to omit it", tool: "lock", args: lock(`"label":null`), wantErr: true, field: "label", says: []string{"not null (omit an optional argument instead)"}},
		{name: "null for an optional object says to omit it", tool: "lock", args: lock(`"meta":null`), wantErr: true, field: "meta", says: []string{"omit an optional argument instead"}},
		{name: "a string where audit_log expects an inputs object is rejected", tool: "audit_log", args: `{"module":"m","procedure":"p","status":"ok","inputs":"{}"}`, wantErr: true, field: "inputs", says: []string{"must be an object, not string"}},
		{name: "a quoted count is rejected by read_stream", tool: "read_stream", args: `{"stream":"workflow_events","count":"50"}`, wantErr: true, field: "count", says: []string{"must be an integer"}},

		// Numbers.
		{name: "a negative ttl is below the minimum", tool: "lock", args: lock(`"ttl_ms":-1`), wantErr: true, field: "ttl_ms", says: []string{"-1 is below the minimum 1"}},
		{name: "zero is below a minimum of one", tool: "lock", args: lock(`"ttl_ms":0`), wantErr: true, field: "ttl_ms", says: []string{"0 is below the minimum 1"}},
		{name: "minus zero is below a minimum of one", tool: "lock", args: lock(`"ttl_ms":-0`), wantErr: true, field: "ttl_ms", says: []string{"below the minimum 1"}},
		{name: "a fraction is not a whole number", tool: "lock", args: lock(`"ttl_ms":5000.5`), wantErr: true, field: "ttl_ms", says: []string{"must be a whole number, not 5000.5"}},
		{name: "a whole number written with a fraction is still rejected", tool: "lock", args: lock(`"ttl_ms":5000.0`), wantErr: true, field: "ttl_ms", says: []string{"must be a whole number"}},
		{name: "an exponent is not a whole number", tool: "lock", args: lock(`"ttl_ms":1e308`), wantErr: true, field: "ttl_ms", says: []string{"must be a whole number, not 1e308"}},
		{name: "2^63 is above the maximum", tool: "lock", args: lock(`"ttl_ms":9223372036854775808`), wantErr: true, field: "ttl_ms", says: []string{"above the maximum 60000"}},
		{name: "2^53+1 is above the maximum", tool: "lock", args: lock(`"ttl_ms":9007199254740993`), wantErr: true, field: "ttl_ms", says: []string{"9007199254740993 is above the maximum 60000"}},
		{name: "twenty digits below a minimum are below it", tool: "lock", args: lock(`"ttl_ms":-12345678901234567890`), wantErr: true, field: "ttl_ms", says: []string{"below the minimum 1"}},
		{name: "2^63 is out of range of an unbounded integer", tool: "lock", args: lock(`"seq":9223372036854775808`), wantErr: true, field: "seq", says: []string{"9223372036854775808 is out of range"}},
		{name: "-2^63-1 is out of range of an unbounded integer", tool: "lock", args: lock(`"seq":-9223372036854775809`), wantErr: true, field: "seq", says: []string{"out of range"}},
		{name: "a hundred digits are out of range", tool: "lock", args: lock(`"seq":1` + strings.Repeat("0", 100)), wantErr: true, field: "seq", says: []string{"out of range"}},
		{name: "a count over the maximum is rejected by read_stream", tool: "read_stream", args: `{"stream":"workflow_events","count":1001}`, wantErr: true, field: "count", says: []string{"1001 is above the maximum 1000"}},
		{name: "a count of zero is rejected by read_stream", tool: "read_stream", args: `{"stream":"workflow_events","count":0}`, wantErr: true, field: "count", says: []string{"below the minimum 1"}},
		{name: "the bounds themselves are accepted", tool: "lock", args: lock(`"ttl_ms":60000,"seq":-9223372036854775808`),
			want: lockArgs{Resource: "r", Owner: "o", TTLMS: 60000, Seq: -9223372036854775808}},
		{name: "2^63-1 fits an unbounded integer", tool: "lock", args: lock(`"seq":9223372036854775807`), want: lockArgs{Resource: "r", Owner: "o", Seq: 9223372036854775807}},
		{name: "a number beyond float64 is a valid any-JSON value", tool: "lock", args: lock(`"payload":1e99999999999999999999`),
			want: lockArgs{Resource: "r", Owner: "o", Payload: mcpkit.Value("1e99999999999999999999")}},
		{name: "a large integer in an any-JSON value keeps every digit", tool: "lock", args: lock(`"payload":123456789012345678901234567890`),
			want: lockArgs{Resource: "r", Owner: "o", Payload: mcpkit.Value("123456789012345678901234567890")}},

		// Strings.
		{name: "an empty name is rejected", tool: "lock", args: `{"resource":"","owner":"o"}`, wantErr: true, field: "resource", says: []string{"must not be empty"}},
		{name: "a whitespace-only name is blank", tool: "lock", args: `{"resource":"   ","owner":"o"}`, wantErr: true, field: "resource", says: []string{"must not be blank"}},
		{name: "a 257-byte name is over the bound", tool: "lock", args: `{"resource":"` + name256 + `n","owner":"o"}`, wantErr: true, field: "resource", says: []string{"is 257 bytes; at most 256 allowed"}},
		{name: "a 256-byte name is within the bound", tool: "lock", args: `{"resource":"` + name256 + `","owner":"o"}`, want: lockArgs{Resource: mcpkit.Name(name256), Owner: "o"}},
		{name: "128 two-byte characters are 256 bytes and pass", tool: "lock", args: `{"resource":"` + twoBytes + `","owner":"o"}`, want: lockArgs{Resource: mcpkit.Name(twoBytes), Owner: "o"}},
		{name: "86 three-byte characters are 258 bytes and are rejected", tool: "lock", args: `{"resource":"` + threeBytes + `","owner":"o"}`, wantErr: true, field: "resource", says: []string{"is 258 bytes"}},
		{name: "a name within 256 characters but over 256 bytes is refused in bytes", tool: "lock", args: `{"resource":"` + threeBytes + `","owner":"o"}`, wantErr: true, field: "resource",
			says: []string{"is 258 bytes; at most 256 allowed", "UTF-8 bytes, not characters"}},

		// Lengths in characters: maxLength and minLength count code points,
		// as JSON Schema does, not bytes.
		{name: "four two-byte characters are within a maxLength of 4 though 8 bytes", tool: "sized", args: `{"code":"éééé"}`, want: sizedArgs{Code: "éééé"}},
		{name: "four emoji are within a maxLength of 4 though 16 bytes", tool: "sized", args: `{"code":"😀😀😀😀"}`, want: sizedArgs{Code: "😀😀😀😀"}},
		{name: "a surrogate pair written as escapes is one character", tool: "sized", args: `{"code":"\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00"}`, want: sizedArgs{Code: "😀😀😀😀"}},
		{name: "five two-byte characters are over a maxLength of 4, counted in characters", tool: "sized", args: `{"code":"ééééé"}`, wantErr: true, field: "code", says: []string{"is 5 characters; at most 4 allowed"}},
		{name: "five ASCII characters are over a maxLength of 4", tool: "sized", args: `{"code":"abcde"}`, wantErr: true, field: "code", says: []string{"is 5 characters; at most 4 allowed"}},
		{name: "one two-byte character is under a minLength of 2 though 2 bytes", tool: "sized", args: `{"code":"é"}`, wantErr: true, field: "code", says: []string{"is 1 character; at least 2 required"}},
		{name: "two characters meet a minLength of 2", tool: "sized", args: `{"code":"€€"}`, want: sizedArgs{Code: "€€"}},
		{name: "eight three-byte characters are a name within a maxLength of 8 and 256 bytes", tool: "sized", args: `{"label":"€€€€€€€€"}`, want: sizedArgs{Label: "€€€€€€€€"}},
		{name: "nine characters are over a name's maxLength of 8 in characters", tool: "sized", args: `{"label":"€€€€€€€€€"}`, wantErr: true, field: "label", says: []string{"is 9 characters; at most 8 allowed"}},

		{name: "a NUL in a name is a control character", tool: "lock", args: `{"resource":"a\u0000b","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "a newline in a name is rejected", tool: "lock", args: `{"resource":"a\nb","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "a CRLF in a name is rejected", tool: "lock", args: `{"resource":"a\r\nb","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "a tab in a name is rejected", tool: "lock", args: `{"resource":"a\tb","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "a DEL in a name is rejected", tool: "lock", args: `{"resource":"a\u007fb","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "an escape character in a name is rejected", tool: "lock", args: `{"resource":"\u001b[31m","owner":"o"}`, wantErr: true, field: "resource", says: []string{"control characters"}},
		{name: "a name with a newline is rejected by emit_workflow_event", tool: "emit_workflow_event", args: `{"workflow_id":"w\n","phase":"p","event_type":"e"}`, wantErr: true, field: "workflow_id", says: []string{"control characters"}},
		{name: "glob and hash-tag characters pass the decoder unchanged", tool: "lock", args: `{"resource":"a*b?[a-z]{hash}","owner":" spaced out "}`, want: lockArgs{Resource: "a*b?[a-z]{hash}", Owner: " spaced out "}},
		{name: "tab newline and CRLF are accepted in text", tool: "lock", args: lock(`"note":"line one\tx\nline two\r\n"`), want: lockArgs{Resource: "r", Owner: "o", Note: "line one\tx\nline two\r\n"}},
		{name: "a NUL in text is rejected", tool: "lock", args: lock(`"note":"a\u0000"`), wantErr: true, field: "note", says: []string{"control characters other than tab and newline"}},
		{name: "a DEL in text is rejected", tool: "lock", args: lock(`"note":"a\u007f"`), wantErr: true, field: "note", says: []string{"control characters"}},
		{name: "empty text is rejected", tool: "submit_feedback", args: `{"feedback":""}`, wantErr: true, field: "feedback", says: []string{"must not be empty"}},
		{name: "a bell character in feedback is rejected", tool: "submit_feedback", args: `{"feedback":"ding\u0007"}`, wantErr: true, field: "feedback", says: []string{"control characters"}},

		// Timestamps.
		{name: "yesterday is not an RFC 3339 timestamp", tool: "lock", args: lock(`"at":"yesterday"`), wantErr: true, field: "at", says: []string{`"yesterday" is not an RFC 3339 timestamp`}},
		{name: "month 13 day 45 is not a timestamp", tool: "lock", args: lock(`"at":"2026-13-45"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "the 30th of February is not a timestamp", tool: "lock", args: lock(`"at":"2026-02-30T00:00:00Z"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "a one-digit hour is not RFC 3339", tool: "lock", args: lock(`"at":"2026-01-02T5:04:05Z"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "a comma before the fraction is not RFC 3339", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05,5Z"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "an offset of 24 hours is not RFC 3339", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05+24:00"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "an offset of 60 minutes is not RFC 3339", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05+01:60"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "a space for the T is rejected", tool: "lock", args: lock(`"at":"2026-01-02 15:04:05Z"`), wantErr: true, field: "at", says: []string{"not an RFC 3339 timestamp"}},
		{name: "an empty timestamp is rejected", tool: "audit_log", args: `{"module":"m","procedure":"p","status":"ok","timestamp":""}`, wantErr: true, field: "timestamp", says: []string{"not an RFC 3339 timestamp"}},
		{name: "a 65-byte timestamp is over its bound", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05.` + strings.Repeat("1", 44) + `Z"`), wantErr: true, field: "at", says: []string{"at most 64"}},
		{name: "a UTC timestamp passes", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05Z"`), want: lockArgs{Resource: "r", Owner: "o", At: "2026-01-02T15:04:05Z"}},
		{name: "a timestamp with an offset and a fraction passes", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05.123456+05:30"`), want: lockArgs{Resource: "r", Owner: "o", At: "2026-01-02T15:04:05.123456+05:30"}},
		{name: "a timestamp with a negative offset passes", tool: "lock", args: lock(`"at":"2026-01-02T15:04:05-08:00"`), want: lockArgs{Resource: "r", Owner: "o", At: "2026-01-02T15:04:05-08:00"}},

		// Enums and stream ids.
		{name: "a mode outside the enum is rejected listing the choices", tool: "lock", args: lock(`"mode":"both"`), wantErr: true, field: "mode", says: []string{`"both" is not one of shared, exclusive`}},
		{name: "an enum is case-sensitive", tool: "lock", args: lock(`"mode":"Shared"`), wantErr: true, field: "mode", says: []string{"is not one of"}},
		{name: "a stream outside the enum is rejected by read_stream", tool: "read_stream", args: `{"stream":"audit"}`, wantErr: true, field: "stream", says: []string{"audit_log_stream, ccwj_update_stream, user_feedback, workflow_events"}},
		{name: "a start that is not a stream id is rejected by read_stream", tool: "read_stream", args: `{"stream":"workflow_events","start":"abc"}`, wantErr: true, field: "start", says: []string{"is not a stream id"}},
		{name: "an end over 48 bytes is rejected by read_stream", tool: "read_stream", args: `{"stream":"workflow_events","end":"` + strings.Repeat("1", 49) + `"}`, wantErr: true, field: "end", says: []string{"at most 48"}},

		// Arrays: their length and each item.
		{name: "an array within its bounds of items that match is accepted", tool: "sized", args: `{"tags":["ab","c"]}`, want: sizedArgs{Tags: []string{"ab", "c"}}},
		{name: "an empty array is under a minItems of 1", tool: "sized", args: `{"tags":[]}`, wantErr: true, field: "tags", says: []string{"has 0 items; at least 1 required"}},
		{name: "four items are over a maxItems of 3", tool: "sized", args: `{"tags":["a","b","c","d"]}`, wantErr: true, field: "tags", says: []string{"has 4 items; at most 3 allowed"}},
		{name: "an item that does not match is named by its index", tool: "sized", args: `{"tags":["ab","X1"]}`, wantErr: true, field: "tags[1]", says: []string{"must match ^[a-z]+$"}},
		{name: "an item of another type is named by its index", tool: "sized", args: `{"tags":["ab",5]}`, wantErr: true, field: "tags[1]", says: []string{"must be a string, not number 5"}},
		{name: "every wrong item is named", tool: "sized", args: `{"tags":["A","b",""]}`, wantErr: true, names: []string{"tags[0]: must match", "tags[2]: must match"}},

		// Nesting.
		{name: "an object nested 16 levels is accepted", tool: "lock", args: lock(`"meta":` + nestObject(16)), want: lockArgs{Resource: "r", Owner: "o", Meta: mcpkit.Object(nestObject(16))}},
		{name: "an object nested 17 levels is rejected", tool: "lock", args: lock(`"meta":` + nestObject(17)), wantErr: true, field: "meta", says: []string{"nests deeper than 16 levels"}},
		{name: "braces inside strings do not count as nesting", tool: "lock", args: lock(`"meta":{"a":"{{{{{{{{{{{{{{{{{{{{\"[[[[[[[[[[[[[[[[[["}`),
			want: lockArgs{Resource: "r", Owner: "o", Meta: mcpkit.Object(`{"a":"{{{{{{{{{{{{{{{{{{{{\"[[[[[[[[[[[[[[[[[["}`)}},
		{name: "an any-JSON array nested 16 levels is accepted", tool: "lock", args: lock(`"payload":` + nestArray(16)), want: lockArgs{Resource: "r", Owner: "o", Payload: mcpkit.Value(nestArray(16))}},
		{name: "an any-JSON array nested 17 levels is rejected", tool: "lock", args: lock(`"payload":` + nestArray(17)), wantErr: true, field: "payload", says: []string{"nests deeper than 16 levels"}},
		{name: "an any-JSON object nested 17 levels is rejected", tool: "lock", args: lock(`"payload":` + nestObject(17)), wantErr: true, field: "payload", says: []string{"nests deeper than 16 levels"}},
		{name: "a delta value nested 17 levels is rejected by publish_ccwj_delta", tool: "publish_ccwj_delta", args: `{"workflow_id":"w","phase_id":"p","field":"f","value":` + nestObject(17) + `}`,
			wantErr: true, field: "value", says: []string{"nests deeper than 16 levels"}},
		{name: "audit inputs nested 17 levels are rejected by audit_log", tool: "audit_log", args: `{"module":"m","procedure":"p","status":"ok","inputs":` + nestObject(17) + `}`,
			wantErr: true, field: "inputs", says: []string{"nests deeper than 16 levels"}},

		// Everything at once.
		{name: "several problems are all reported in one error", tool: "lock",
			args:    `{"resource":"","owner":"a\nb","ttl_ms":"5000","at":"yesterday","mode":"both","meta":` + nestObject(17) + `,"colour":1}`,
			wantErr: true, field: "",
			names: []string{"arguments: unknown argument \"colour\"", "resource: must not be empty", "owner: must not be blank", "ttl_ms: must be an integer", "at: \"yesterday\"", "mode: \"both\"", "meta: nests deeper"}},
		{name: "several missing and wrong arguments of audit_log are all reported", tool: "audit_log", args: `{"module":"","inputs":[],"timestamp":"2026-13-45"}`, wantErr: true,
			names: []string{"module: must not be empty", "procedure: is required", "status: is required", "inputs: must be an object", "timestamp:"}},

		// Valid calls.
		{name: "every kind of argument decodes into the handler's struct", tool: "lock",
			args: ` {"resource":"r/1","owner":"ö","ttl_ms":5000,"note":"why\n","at":"2026-01-02T15:04:05.000Z","mode":"exclusive",` +
				`"meta":{"n":12345678901234567890,"s":"x"},"payload":"a string","seq":-7,"retry":true,"label":""} `,
			want: lockArgs{Resource: "r/1", Owner: "ö", TTLMS: 5000, Note: "why\n", At: "2026-01-02T15:04:05.000Z", Mode: "exclusive",
				Meta: mcpkit.Object(`{"n":12345678901234567890,"s":"x"}`), Payload: mcpkit.Value(`"a string"`), Seq: -7, Retry: true}},
		{name: "an any-JSON null is a value", tool: "lock", args: lock(`"payload":null`), want: lockArgs{Resource: "r", Owner: "o", Payload: mcpkit.Value("null")}},
		{name: "a valid audit_log call reaches Redis", tool: "audit_log", args: `{"module":"m","procedure":"p","status":"ok","inputs":{"a":[1,2]}}`},
		{name: "a valid publish_ccwj_delta call reaches Redis", tool: "publish_ccwj_delta", args: `{"workflow_id":"w","phase_id":"p","field":"f","value":"a string"}`},
		{name: "a valid read_stream call reaches Redis", tool: "read_stream", args: `{"stream":"audit_log_stream","start":"(1700000000000-0","count":10,"reverse":true}`},
		{name: "a valid get_context call reaches Redis", tool: "get_context", args: `{"workflow_id":"w"}`},
	}
}

func TestDecodeValidatesArgumentsBeforeTheHandlerRuns(t *testing.T) {
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			var rec recorder
			fake := &fakeStreams{}
			var tool mcpkit.Tool
			switch tc.tool {
			case "lock":
				tool = rec.lockTool()
			case "sized":
				tool = rec.sizedTool()
			case "ping":
				tool = rec.pingTool()
			default:
				var ok bool
				if tool, ok = realTools(fake)[tc.tool]; !ok {
					t.Fatalf("no tool %q", tc.tool)
				}
			}
			out, err := tool.Call(context.Background(), []byte(tc.args), time.Second)
			reached := rec.called || fake.calls() > 0
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Call(%.200s) = %v, want success", tc.args, err)
				}
				if !reached || out == nil {
					t.Fatalf("valid call did not reach the handler (out %v)", out)
				}
				if tc.want != nil && !reflect.DeepEqual(rec.got, tc.want) {
					t.Errorf("handler got\n %#v\nwant\n %#v", rec.got, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Call(%.200s) succeeded, want an error", tc.args)
			}
			if reached {
				t.Errorf("the handler ran on invalid arguments")
			}
			e, ok := fault.As(err)
			if !ok || e.Code != fault.Invalid {
				t.Fatalf("error %v (%T) is not a fault.Invalid", err, err)
			}
			msg := err.Error()
			if e.Field != tc.field {
				t.Errorf("field = %q, want %q (%s)", e.Field, tc.field, msg)
			}
			if tc.field != "" && !strings.HasPrefix(msg, tc.field+": ") {
				t.Errorf("message %q does not name the field %q first", msg, tc.field)
			}
			for _, s := range append(append([]string(nil), tc.names...), tc.says...) {
				if !strings.Contains(msg, s) {
					t.Errorf("message %q does not contain %q", msg, s)
				}
			}
			if !utf8.ValidString(msg) {
				t.Errorf("message is not valid UTF-8: %q", msg)
			}
			if len(msg) > 4096 {
				t.Errorf("message is %d bytes", len(msg))
			}
		})
	}
}

// deltaArgs is a test-only input for "did you mean": it has phase_id and
// details, and no phase.
type deltaArgs struct {
	WorkflowID mcpkit.Name `json:"workflow_id,omitempty"`
	PhaseID    mcpkit.Name `json:"phase_id,omitempty"`
	Details    mcpkit.Text `json:"details,omitempty"`
}

func TestDecodeAnUnknownArgumentCloseToAValidOneIsToldWhichItMeant(t *testing.T) {
	tool := mcpkit.New(mcpkit.Spec[deltaArgs, okResult]{
		Name: "delta",
		Handle: func(context.Context, *deltaArgs) (*okResult, error) {
			return &okResult{OK: true}, nil
		},
	})
	const valid = "valid arguments are: workflow_id, phase_id, details"
	for _, c := range []struct{ name, args, want string }{
		{"phase for phase_id is told phase_id", `{"workflow_id":"w","phase":"p"}`,
			`arguments: unknown argument "phase": did you mean "phase_id"? ` + valid},
		{"a misspelt detials is told details", `{"workflow_id":"w","detials":"d"}`,
			`arguments: unknown argument "detials": did you mean "details"? ` + valid},
		{"a name close to none is told only the valid ones", `{"workflow_id":"w","banana":1}`,
			`arguments: unknown argument "banana"; ` + valid},
		{"a name already given is not what a typo meant", `{"phase_id":"p","phase":"p"}`,
			`arguments: unknown argument "phase"; ` + valid},
		{"several unknown names are each told what they meant", `{"phase":"p","banana":1,"detials":"d"}`,
			`arguments: unknown argument "phase", "banana", "detials": did you mean "phase_id" for "phase", "details" for "detials"? ` + valid},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tool.Call(context.Background(), []byte(c.args), time.Second)
			if e, ok := fault.As(err); !ok || e.Code != fault.Invalid {
				t.Fatalf("Call(%s) = %v, want a fault.Invalid", c.args, err)
			}
			if got := err.Error(); got != c.want {
				t.Errorf("Call(%s) says\n %s\nwant\n %s", c.args, got, c.want)
			}
		})
	}
}

// A valid call after any rejected one succeeds: the decoder keeps no state.
func TestDecodeAValidCallSucceedsAfterEveryRejectedOne(t *testing.T) {
	var rec recorder
	tool := rec.lockTool()
	for _, tc := range decodeCases() {
		if tc.tool != "lock" {
			continue
		}
		_, _ = tool.Call(context.Background(), []byte(tc.args), time.Second)
		rec.called = false
		if _, err := tool.Call(context.Background(), []byte(lock("")), time.Second); err != nil || !rec.called {
			t.Fatalf("after %q a valid call failed: %v", tc.name, err)
		}
	}
}

// A megabyte of digits is rejected, or accepted as an any-JSON value,
// without parsing it as a decimal (which takes seconds: quadratic).
func TestDecodeAHugeNumberIsHandledInLinearTime(t *testing.T) {
	digits := "9" + strings.Repeat("8", 2<<20)
	var rec recorder
	tool := rec.lockTool()
	// The baseline is the same bytes as a string: linear work by any measure.
	start := time.Now()
	if _, err := tool.Call(context.Background(), []byte(lock(`"payload":"`+digits+`"`)), time.Second); err != nil {
		t.Fatal(err)
	}
	limit := 10*time.Since(start) + 200*time.Millisecond
	for _, tc := range []struct {
		member  string
		wantErr bool
	}{
		{`"ttl_ms":` + digits, true},
		{`"seq":-` + digits, true},
		{`"payload":` + digits, false},
		{`"payload":[` + digits + `]`, false},
	} {
		start := time.Now()
		_, err := tool.Call(context.Background(), []byte(lock(tc.member)), time.Second)
		if (err != nil) != tc.wantErr {
			t.Errorf("%.20s…: err = %v, want error %v", tc.member, err, tc.wantErr)
		}
		if d := time.Since(start); d > limit {
			t.Errorf("%.20s…: took %v; a string of the same size took a tenth of %v", tc.member, d, limit)
		}
	}
}

// BenchmarkDecodeAuditLog measures argument validation and decoding of a
// typical audit_log call (the fake store answers at once).
func BenchmarkDecodeAuditLog(b *testing.B) {
	tool := realTools(&fakeStreams{})["audit_log"]
	args := []byte(`{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-1"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tool.Call(context.Background(), args, time.Second); err != nil {
			b.Fatal(err)
		}
	}
}

// A tool's own advice replaces the default one (about retrying a write
// with its log_id/event_id) in its "Redis is unavailable" errors.
func TestAToolsUnavailableAdviceReplacesTheDefault(t *testing.T) {
	down := func(_ context.Context, _ *lockArgs) (*okResult, error) {
		return nil, &fault.Error{Code: fault.Unavailable, Message: "redis did not answer"}
	}
	own := mcpkit.New(mcpkit.Spec[lockArgs, okResult]{Name: "check_rate", Unavailable: "Call check_rate again later.", Handle: down})
	plain := mcpkit.New(mcpkit.Spec[lockArgs, okResult]{Name: "audit_log", Handle: down})
	for _, c := range []struct {
		tool      mcpkit.Tool
		want, not string
	}{{own, "Call check_rate again later.", "log_id"}, {plain, "log_id/event_id", "check_rate"}} {
		req := mcp.CallToolRequest{}
		req.Params.Name = c.tool.Name()
		req.Params.Arguments = map[string]any{"resource": "r", "owner": "o"}
		res, err := c.tool.Handler(nil, time.Second, slog.New(slog.DiscardHandler))(context.Background(), req)
		if err != nil || !res.IsError {
			t.Fatalf("%s: %v %+v", c.tool.Name(), err, res)
		}
		text := res.Content[0].(mcp.TextContent).Text
		if !strings.Contains(text, c.want) || strings.Contains(text, c.not) {
			t.Errorf("%s: %q, want %q and not %q", c.tool.Name(), text, c.want, c.not)
		}
	}
}

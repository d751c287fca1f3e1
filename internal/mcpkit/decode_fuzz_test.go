package mcpkit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// The fuzz targets call every real tool over fakeStreams and hold each call
// to what the bad-input list asks: no panic; either success or a
// fault.Invalid naming the field in a bounded, valid UTF-8 sentence; no
// Redis call on an error; and on success, an entry (or query) that an
// independent check of the argument rules finds clean.

// validArgs is one valid call of each real tool.
var validArgs = map[string]string{
	"audit_log":           `{"module":"planner","procedure":"plan","status":"ok","inputs":{"q":"x"},"outputs":{"n":1},"session_id":"s1","workflow_id":"w1","user_id":"u1","rationale":"because\n","error_code":"E1","log_id":"l1","timestamp":"2026-01-02T15:04:05Z"}`,
	"publish_ccwj_delta":  `{"workflow_id":"w1","phase_id":"p1","field":"f1","value":{"a":[1,2,{"b":null}]},"timestamp":"2026-01-02T15:04:05.123+01:00","event_id":"e1"}`,
	"submit_feedback":     `{"feedback":"good\tjob","session_id":"s1","user_id":"u1","module":"m","procedure":"p","timestamp":"2026-01-02T15:04:05Z","event_id":"e2"}`,
	"emit_workflow_event": `{"workflow_id":"w1","phase":"p1","event_type":"phase_started","details":"d","timestamp":"2026-01-02T15:04:05Z","event_id":"e3"}`,
	"read_stream":         `{"stream":"audit_log_stream","start":"-","end":"+","count":10,"reverse":true,"workflow_id":"w1","session_id":"s1","user_id":"u1"}`,
	"get_context":         `{"workflow_id":"w1","phase_id":"p1"}`,
}

// badValues are argument values from the bad-input list.
var badValues = []string{
	`"5000"`, `[5000]`, `true`, `{}`, `{"a":1}`, `null`, `-1`, `0`, `5000.5`, `1e308`, `9223372036854775808`, `9007199254740993`,
	`""`, `"   "`, `"a\u0000b"`, `"a\nb"`, `"a\r\nb"`, `"a\tb"`, `"\u007f"`, `"a*b?[a-z]"`, `"{hash}tag"`,
	`"yesterday"`, `"2026-13-45"`, `"2026-01-02T15:04:05Z"`, `"2026-01-02T15:04:05+01:00"`, `"2026-01-02T5:04:05Z"`,
	`"abc"`, `"(1700000000000-0"`, `"18446744073709551616"`, `"audit"`, `"workflow_events"`,
	`"` + strings.Repeat("n", 257) + `"`, nestObject(16), nestObject(17), nestArray(17), `1e99999999999999999999`,
}

func addDecodeSeeds(f *testing.F) {
	for _, s := range []string{
		``, `null`, `[]`, `[{}]`, `"x"`, `5000`, `hello`, `{`, `{"a":`, `{"a":1,}`, `{} {}`, `{}x`, `{"a":1}]`,
		`{"module":"m","module":"m"}`, `{"ttl_msec":5000}`, `{"\u006dodule":"m"}`, "{\"module\":\"m\xff\"}",
		`{"stream":"workflow_events","start":"abc"}`, `{"stream":"nope"}`,
	} {
		f.Add([]byte(s))
	}
	for _, args := range validArgs {
		f.Add([]byte(args))
	}
}

func FuzzDecode(f *testing.F) {
	addDecodeSeeds(f)
	for _, v := range badValues {
		f.Add([]byte(`{"workflow_id":` + v + `,"phase_id":"p","field":"f","value":` + v + `}`))
	}
	f.Fuzz(func(t *testing.T, args []byte) {
		callEveryTool(t, args)
	})
}

// FuzzDecodeArgument mutates one argument of an otherwise valid call, so
// the fuzzer spends its time on values rather than on JSON syntax.
func FuzzDecodeArgument(f *testing.F) {
	names := map[string]bool{}
	for _, args := range validArgs {
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(args), &m); err != nil {
			f.Fatal(err)
		}
		for n := range m {
			names[n] = true
		}
	}
	names["ttl_msec"] = true
	for n := range names {
		for _, v := range badValues {
			f.Add(n, []byte(v))
		}
	}
	f.Fuzz(func(t *testing.T, name string, value []byte) {
		for tool, args := range validArgs {
			var m map[string]json.RawMessage
			_ = json.Unmarshal([]byte(args), &m)
			var b bytes.Buffer
			b.WriteByte('{')
			for k, v := range m {
				if k == name {
					continue
				}
				b.WriteString(quote(k) + ":")
				b.Write(v)
				b.WriteByte(',')
			}
			b.WriteString(quote(name) + ":")
			b.Write(value)
			b.WriteByte('}')
			callTool(t, tool, b.Bytes())
		}
	})
}

func callEveryTool(t *testing.T, args []byte) {
	for tool := range validArgs {
		callTool(t, tool, args)
	}
}

func callTool(t *testing.T, name string, args []byte) {
	t.Helper()
	fake, tools := fuzzTools()
	fake.reset()
	tool := tools[name]
	out, err := tool.Call(context.Background(), args, time.Second)
	if err != nil {
		e, ok := fault.As(err)
		if !ok || e.Code != fault.Invalid {
			t.Fatalf("%s(%q): error %v (%T) is not a fault.Invalid", name, args, err, err)
		}
		msg := err.Error()
		switch {
		case e.Message == "":
			t.Fatalf("%s(%q): empty message", name, args)
		case e.Field != "" && !strings.HasPrefix(msg, e.Field+": "):
			t.Fatalf("%s(%q): message %q does not start with its field %q", name, args, msg, e.Field)
		case len(msg) > 8192:
			t.Fatalf("%s(%q): message of %d bytes", name, args, len(msg))
		case utf8.Valid(args) && !utf8.ValidString(msg):
			t.Fatalf("%s(%q): message is not valid UTF-8: %q", name, args, msg)
		case fake.calls() != 0:
			t.Fatalf("%s(%q): Redis was called before the error %v", name, args, err)
		}
		return
	}
	if out == nil {
		t.Fatalf("%s(%q): no result and no error", name, args)
	}
	if _, err := json.Marshal(out); err != nil {
		t.Fatalf("%s(%q): result does not marshal: %v", name, args, err)
	}
	if fake.calls() != 1 {
		t.Fatalf("%s(%q): %d Redis calls, want 1", name, args, fake.calls())
	}
	for _, a := range fake.appends {
		checkEntry(t, name, args, a)
	}
	for _, q := range fake.reads {
		if !slices.Contains(keyspace.Streams, q.Stream) || q.Count < 1 || q.Count > 1000 {
			t.Fatalf("read_stream(%q): query %+v", args, q)
		}
		for _, id := range []string{q.Start, q.End} {
			if stream.ParseID(id) != nil || len(id) > 48 {
				t.Fatalf("read_stream(%q): id bound %q", args, id)
			}
		}
		for k, v := range q.Match {
			if why := nameProblem(v); why != "" {
				t.Fatalf("read_stream(%q): match %s %q %s", args, k, v, why)
			}
		}
	}
	for _, id := range fake.ctxs {
		if why := nameProblem(id); why != "" {
			t.Fatalf("get_context(%q): workflow id %q %s", args, id, why)
		}
	}
}

// fuzzTools builds the real tools once per process: reflecting their
// schemas for every input would dominate the fuzzer's time.
var fuzzTools = sync.OnceValues(func() (*fakeStreams, map[string]mcpkit.Tool) {
	fake := &fakeStreams{}
	return fake, realTools(fake)
})

// Independent statements of the argument rules, by stream field name.
var (
	nameFields = []string{"module", "procedure", "status", "session_id", "workflow_id", "user_id", "error_code", "log_id", "event_id", "phase_id", "field", "phase", "event_type"}
	textFields = []string{"rationale", "feedback", "details"}
	jsonFields = []string{"inputs", "outputs", "value"}
	strictTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$`)
)

func nameProblem(v string) string {
	switch {
	case !utf8.ValidString(v):
		return "is not UTF-8"
	case len(v) < 1 || len(v) > mcpkit.MaxNameBytes:
		return "has a bad length"
	case strings.Trim(v, " ") == "":
		return "is blank"
	case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return "has a control character"
	}
	return ""
}

func checkEntry(t *testing.T, tool string, args []byte, a stream.Append) {
	t.Helper()
	fail := func(f stream.Field, why string) {
		t.Fatalf("%s(%q) wrote %s=%q, which %s", tool, args, f.Name, f.Value, why)
	}
	seen := map[string]bool{}
	for _, f := range a.Fields {
		if seen[f.Name] {
			fail(f, "is written twice")
		}
		seen[f.Name] = true
		switch {
		case slices.Contains(nameFields, f.Name):
			if why := nameProblem(f.Value); why != "" {
				fail(f, why)
			}
		case slices.Contains(textFields, f.Name):
			if !utf8.ValidString(f.Value) || f.Value == "" ||
				strings.ContainsFunc(f.Value, func(r rune) bool { return (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f }) {
				fail(f, "is not clean text")
			}
		case slices.Contains(jsonFields, f.Name):
			if d, err := jsonDepth(f.Value); err != nil || d > mcpkit.MaxDepth {
				fail(f, "is not JSON nested at most 16 deep")
			}
			var c bytes.Buffer
			if json.Compact(&c, []byte(f.Value)) != nil || c.String() != f.Value {
				fail(f, "is not compact JSON")
			}
			if f.Name != "value" && f.Value[0] != '{' {
				fail(f, "is not an object")
			}
		case f.Name == "timestamp" || f.Name == "recorded_at":
			if _, err := time.Parse(time.RFC3339Nano, f.Value); err != nil || !strictTime.MatchString(f.Value) {
				fail(f, "is not an RFC 3339 timestamp")
			}
		case f.Name == "origin":
			// The server's stamp: a tool call's entry is the client's.
			if f.Value != "client" {
				fail(f, "is not the origin of a client's entry")
			}
		default:
			fail(f, "is not a field of the tool")
		}
	}
	if c := a.Context; c != nil && !json.Valid(c.Value) {
		t.Fatalf("%s(%q): context value %q is not JSON", tool, args, c.Value)
	}
}

// jsonDepth measures nesting with the standard tokenizer, independently of
// the decoder's own count.
func jsonDepth(s string) (int, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	deepest, cur := 0, 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return deepest, nil
		}
		if err != nil {
			return 0, err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			cur++
			deepest = max(deepest, cur)
		case json.Delim('}'), json.Delim(']'):
			cur--
		}
	}
}

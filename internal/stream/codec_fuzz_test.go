package stream_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/tools"
)

// codecOrders is every record type's full field order, as the README
// states it for consumers.
var codecOrders = map[reflect.Type][]string{
	reflect.TypeFor[tools.AuditRecord](): {"module", "procedure", "status", "inputs", "outputs", "session_id", "workflow_id", "user_id",
		"rationale", "error_code", "log_id", "timestamp", "duration_ms", "input_bytes", "error", "caller", "mcp_session_id", "client", "recorded_at", "origin"},
	reflect.TypeFor[tools.CCWJDeltaInput]():     {"workflow_id", "phase_id", "field", "value", "timestamp", "event_id"},
	reflect.TypeFor[tools.FeedbackInput]():      {"feedback", "session_id", "user_id", "module", "procedure", "timestamp", "event_id"},
	reflect.TypeFor[tools.WorkflowEventInput](): {"workflow_id", "phase", "event_type", "details", "timestamp", "event_id"},
	reflect.TypeFor[codecAll]():                 {"s", "so", "inner", "deep", "i", "i8", "u", "f", "f32", "b", "bp", "sp", "j", "jo", "v", "NoTag"},
}

// codecRequired are the fields written even when empty.
var codecRequired = map[reflect.Type][]string{
	reflect.TypeFor[tools.AuditRecord]():        {"module", "procedure", "status"},
	reflect.TypeFor[tools.CCWJDeltaInput]():     {"workflow_id", "phase_id", "field", "value"},
	reflect.TypeFor[tools.FeedbackInput]():      {"feedback"},
	reflect.TypeFor[tools.WorkflowEventInput](): {"workflow_id", "phase", "event_type"},
	reflect.TypeFor[codecAll]():                 {"s", "inner", "i", "u", "f", "b", "j", "NoTag"},
}

func codecSeeds(f *testing.F) {
	for _, s := range []struct {
		s1, s2 string
		j1, j2 string
		fl     float64
		n      int64
	}{
		{"m", "p", `{"a":1}`, `"str"`, 1.5, 42},
		{"quote \" and \\", "line\nbreak\r\n\ttab", `{ "a" : [ 1 , 2 ] }`, `null`, 0, 0},
		{"émoji 🚀 \u2028", "\x00\x7f", `{"n":123456789012345678901234567890}`, `12345678901234567890`, 0, math.MaxInt64},
		{"", "", ``, ``, math.MaxFloat64, math.MinInt64},
		{"<&>", "{hash}", `{"html":"<&>\u2028"}`, `[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]`, 5e-324, -1},
		{"x", "y", `{"a":`, `1 2`, math.NaN(), 1},
		{"x", "y", `{}`, `"\ud800"`, math.Inf(1), 1},
		{"\xff\xfe", "ok", "{\"s\":\"\xff\"}", `true`, 1e21, 1 << 53},
	} {
		f.Add(s.s1, s.s2, []byte(s.j1), []byte(s.j2), s.fl, s.n)
	}
}

// FuzzCodecRoundTrip builds every record type from fuzzed strings, JSON
// and numbers and checks Decode(Encode(x)) gives back the written text,
// in struct order, with JSON compacted and types kept.
func FuzzCodecRoundTrip(f *testing.F) {
	codecSeeds(f)
	f.Fuzz(func(t *testing.T, s1, s2 string, j1, j2 []byte, fl float64, n int64) {
		records := []any{
			&tools.AuditRecord{
				AuditLogInput: tools.AuditLogInput{
					Module: mcpkit.Name(s1), Procedure: mcpkit.Name(s2), Status: "ok", Inputs: mcpkit.Object(j1), Outputs: mcpkit.Object(j2),
					SessionID: mcpkit.Name(s2), Rationale: mcpkit.Text(s1), ErrorCode: mcpkit.Name(s2), Timestamp: mcpkit.Timestamp(s1),
				},
				DurationMS: &fl, InputBytes: ptr(int(n)), Error: s2, Stamp: tools.Stamp{MCPSessionID: s1},
			},
			&tools.CCWJDeltaInput{WorkflowID: mcpkit.Name(s1), PhaseID: mcpkit.Name(s2), Field: "f", Value: mcpkit.Value(j1), EventID: mcpkit.Name(s2)},
			&tools.FeedbackInput{Feedback: mcpkit.Text(s1), Module: mcpkit.Name(s2), Timestamp: mcpkit.Timestamp(s2)},
			&tools.WorkflowEventInput{WorkflowID: mcpkit.Name(s2), Phase: mcpkit.Name(s1), EventType: "e", Details: mcpkit.Text(s2)},
			&codecAll{
				S: s1, SO: s2, codecInner: codecInner{Inner: s2, Deep: ptr(int(n))}, I: int(n), I8: int8(n), U: uint64(n), F: fl, F32: float32(fl),
				B: n%2 == 0, BP: ptr(n%3 == 0), SP: &s2, J: j1, JO: j2, V: mcpkit.Value(j2), NoTag: s1,
			},
		}
		for _, rec := range records {
			codecCheckRoundTrip(t, rec)
		}
	})
}

func codecCheckRoundTrip(t *testing.T, rec any) {
	t.Helper()
	typ := reflect.TypeOf(rec).Elem()
	fields, err := stream.Encode(rec)
	if want := codecBadInput(reflect.ValueOf(rec).Elem()); want != (err != nil) {
		t.Fatalf("Encode(%+v) error %v; an error is expected: %v", rec, err, want)
	}
	if err != nil {
		return
	}
	// Struct order, no repeats, required fields present.
	order := codecOrders[typ]
	last := -1
	for _, f := range fields {
		i := slices.Index(order, f.Name)
		if i <= last {
			t.Fatalf("%T: field %q out of order in %v", rec, f.Name, codecNames(fields))
		}
		last = i
	}
	for _, name := range codecRequired[typ] {
		if !slices.Contains(codecNames(fields), name) {
			t.Fatalf("%T: required field %q missing from %v", rec, name, codecNames(fields))
		}
	}
	// Every value decodes to what was written, with its type.
	got := stream.Decode(codecEntry(t, fields), typ)
	if len(got) != len(fields) {
		t.Fatalf("%T: decoded %d fields from %d", rec, len(got), len(fields))
	}
	allUTF8 := true
	for _, f := range fields {
		v := got[f.Name]
		if s := codecText(t, v); s != f.Value {
			t.Fatalf("%T: %s written %q, read back as %#v", rec, f.Name, f.Value, v)
		}
		sf := codecField(typ, f.Name)
		switch k := sf.Type.Kind(); {
		case k == reflect.Pointer && sf.Type.Elem().Kind() == reflect.String, k == reflect.String:
			if _, ok := v.(string); !ok {
				t.Fatalf("%T: string %s read back as %#v", rec, f.Name, v)
			}
		case k == reflect.Slice:
			raw, ok := v.(json.RawMessage)
			var c bytes.Buffer
			if !ok || json.Compact(&c, raw) != nil || c.String() != string(raw) {
				t.Fatalf("%T: JSON %s read back as %#v, not compact JSON", rec, f.Name, v)
			}
		case k == reflect.Bool || k == reflect.Pointer && sf.Type.Elem().Kind() == reflect.Bool:
			if _, ok := v.(bool); !ok {
				t.Fatalf("%T: bool %s read back as %#v", rec, f.Name, v)
			}
		default:
			if _, ok := v.(json.Number); !ok {
				t.Fatalf("%T: number %s read back as %#v", rec, f.Name, v)
			}
		}
		allUTF8 = allUTF8 && utf8.ValidString(f.Value)
	}
	// What read_stream returns is JSON; with UTF-8 text it unmarshals into
	// the record and encodes to the same fields.
	if _, err := json.Marshal(got); err != nil {
		t.Fatalf("%T: decoded entry does not marshal: %v", rec, err)
	}
	if allUTF8 {
		again, err := stream.Encode(codecBack(t, got, reflect.TypeOf(rec)))
		if err != nil || !reflect.DeepEqual(again, fields) {
			t.Fatalf("%T: re-encoded\n %q (%v)\nwant\n %q", rec, again, err, fields)
		}
	}
}

// codecField finds the struct field written under name.
func codecField(typ reflect.Type, name string) reflect.StructField {
	for _, sf := range reflect.VisibleFields(typ) {
		if sf.Anonymous {
			continue
		}
		tag, _, _ := bytes.Cut([]byte(sf.Tag.Get("json")), []byte(","))
		if string(tag) == name || len(tag) == 0 && sf.Name == name {
			return sf
		}
	}
	panic("no field " + name + " in " + typ.String())
}

// codecBadInput reports whether a record holds something Encode must
// refuse: a JSON field that is not JSON, or a float that is not finite.
func codecBadInput(v reflect.Value) bool {
	for _, sf := range reflect.VisibleFields(v.Type()) {
		if !sf.IsExported() || sf.Anonymous || sf.Tag.Get("json") == "-" {
			continue
		}
		fv := v.FieldByIndex(sf.Index)
		if fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		}
		switch fv.Kind() {
		case reflect.Slice:
			if fv.Len() > 0 && !json.Valid(fv.Bytes()) {
				return true
			}
		case reflect.Float32, reflect.Float64:
			if f := fv.Float(); math.IsNaN(f) || math.IsInf(f, 0) {
				return true
			}
		}
	}
	return false
}

// FuzzCodecDecode decodes entries another program may have written and
// checks nothing is lost: every value has the text Redis holds, a typed
// value only when the text is that type's JSON, and the entry marshals.
func FuzzCodecDecode(f *testing.F) {
	for _, s := range [][2]string{
		{"other", "42"}, {"module", "m"}, {"b", "1"}, {"b", "TRUE"}, {"b", "true"}, {"i", "0x10"}, {"i", "1e400"}, {"f", "NaN"},
		{"j", `{"a":`}, {"j", ` {"a" : 1} `}, {"inputs", "\"\xff\""}, {"duration_ms", "-0"}, {"u", "18446744073709551616"}, {"", ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		values := map[string]string{name: value}
		for _, k := range []string{"module", "duration_ms", "input_bytes", "inputs", "value", "b", "bp", "i", "u", "f", "j", "v", "s"} {
			values[k] = value
		}
		for typ := range codecOrders {
			got := stream.Decode(values, typ)
			if len(got) != len(values) {
				t.Fatalf("%v: decoded %d of %d fields", typ, len(got), len(values))
			}
			for k, want := range values {
				v := got[k]
				if s := codecText(t, v); s != want {
					t.Fatalf("%v: %s = %q read back as %#v", typ, k, want, v)
				}
				switch v.(type) {
				case bool:
					if want != "true" && want != "false" {
						t.Fatalf("%v: %s = %q read back as %v", typ, k, want, v)
					}
				case json.Number, json.RawMessage:
					if !json.Valid([]byte(want)) {
						t.Fatalf("%v: %s = %q read back as %#v", typ, k, want, v)
					}
				}
				if !slices.Contains(codecOrders[typ], k) {
					if _, ok := v.(string); !ok {
						t.Fatalf("%v: unknown field %s = %q read back as %#v", typ, k, want, v)
					}
				}
			}
			out, err := json.Marshal(got)
			if err != nil {
				t.Fatalf("%v: decoded entry does not marshal: %v", typ, err)
			}
			if !json.Valid(out) {
				t.Fatalf("%v: decoded entry marshals to %q", typ, out)
			}
		}
	})
}

// The notice's quoting writes what json.Marshal writes, for every string.
func FuzzNoticeQuotingIsJSONMarshal(f *testing.F) {
	for _, s := range []string{"", "plain", `q"uote`, `back\slash`, "<tag>&", "tab\there", "é", "\u2028", "\xff", "~\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := stream.QuoteForTest(s); got != string(want) {
			t.Fatalf("%q: %s, json.Marshal %s", s, got, want)
		}
	})
}

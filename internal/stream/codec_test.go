package stream_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strconv"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/tools"
)

// codecInner is embedded in codecAll: its fields are flattened in place.
type codecInner struct {
	Inner string `json:"inner"`
	Deep  *int   `json:"deep,omitempty"`
}

// codecAll is a test-only record with a field of every kind Encode takes.
type codecAll struct {
	S  string `json:"s"`
	SO string `json:"so,omitempty"`
	codecInner
	I      int             `json:"i"`
	I8     int8            `json:"i8,omitempty"`
	U      uint64          `json:"u"`
	F      float64         `json:"f"`
	F32    float32         `json:"f32,omitempty"`
	B      bool            `json:"b"`
	BP     *bool           `json:"bp,omitempty"`
	SP     *string         `json:"sp,omitempty"`
	J      json.RawMessage `json:"j"`
	JO     json.RawMessage `json:"jo,omitempty"`
	V      mcpkit.Value    `json:"v,omitempty"`
	Skip   string          `json:"-"`
	hidden string
	NoTag  string
}

// codecEntry turns fields into the values map Redis hands back.
func codecEntry(t *testing.T, fields []stream.Field) map[string]string {
	t.Helper()
	m := make(map[string]string, len(fields))
	for _, f := range fields {
		if _, dup := m[f.Name]; dup {
			t.Fatalf("field %q is encoded twice: %v", f.Name, fields)
		}
		m[f.Name] = f.Value
	}
	return m
}

// codecText is the stream text of a decoded value, by the encoding's rules.
func codecText(t *testing.T, v any) string {
	t.Helper()
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return string(x)
	case bool:
		return strconv.FormatBool(x)
	case json.RawMessage:
		return string(x)
	}
	t.Fatalf("decoded value %#v of type %T", v, v)
	return ""
}

// codecNames lists the fields' names in order.
func codecNames(fields []stream.Field) []string {
	out := make([]string, len(fields))
	for i, f := range fields {
		out[i] = f.Name
	}
	return out
}

// codecRoundTrip encodes record, decodes the entry by its type, and checks
// that every decoded value has the stream text it was written as.
func codecRoundTrip(t *testing.T, record any) ([]stream.Field, map[string]any) {
	t.Helper()
	fields, err := stream.Encode(record)
	if err != nil {
		t.Fatalf("Encode(%+v): %v", record, err)
	}
	got := stream.Decode(codecEntry(t, fields), reflect.TypeOf(record))
	if len(got) != len(fields) {
		t.Fatalf("decoded %d fields from %d", len(got), len(fields))
	}
	for _, f := range fields {
		if s := codecText(t, got[f.Name]); s != f.Value {
			t.Errorf("%s: written %q, read back as %#v (%q)", f.Name, f.Value, got[f.Name], s)
		}
	}
	return fields, got
}

func ptr[T any](v T) *T { return &v }

func TestCodecEncodesTheAuditRecordInStructOrderOmittingAbsentFields(t *testing.T) {
	rec := &tools.AuditRecord{
		AuditLogInput: tools.AuditLogInput{
			Module: "m", Procedure: "p", Status: "ok", Inputs: mcpkit.Object(`{ "a" : [1, 2] }`),
			WorkflowID: "w", Rationale: "r", LogID: "l", Timestamp: "2026-01-02T15:04:05.000Z",
		},
		DurationMS: ptr(1.5), InputBytes: ptr(0), Stamp: tools.Stamp{MCPSessionID: "sess"},
	}
	fields, got := codecRoundTrip(t, rec)
	want := []string{"module", "procedure", "status", "inputs", "workflow_id", "rationale", "log_id", "timestamp", "duration_ms", "input_bytes", "mcp_session_id"}
	if names := codecNames(fields); !reflect.DeepEqual(names, want) {
		t.Errorf("field order %v, want %v", names, want)
	}
	if raw, ok := got["inputs"].(json.RawMessage); !ok || string(raw) != `{"a":[1,2]}` {
		t.Errorf("inputs = %s, want compact JSON", got["inputs"])
	}
	if got["duration_ms"] != json.Number("1.5") || got["input_bytes"] != json.Number("0") {
		t.Errorf("numbers = %#v %#v", got["duration_ms"], got["input_bytes"])
	}
}

func TestCodecRoundTripsEveryToolRecord(t *testing.T) {
	awkward := "quote \" backslash \\ newline\n crlf\r\n tab\t NUL\x00 émoji 🚀 \u2028 <&>"
	records := []struct {
		name   string
		record any
		order  []string
	}{
		{"a full audit record", &tools.AuditRecord{
			AuditLogInput: tools.AuditLogInput{
				Module: "m", Procedure: "p", Status: "error", Inputs: mcpkit.Object(`{"s":"` + "\\u0000\\\"" + `","n":12345678901234567890123}`),
				Outputs: mcpkit.Object(`{}`), SessionID: "s", WorkflowID: "w", UserID: "u", Rationale: mcpkit.Text(awkward),
				ErrorCode: "invalid_argument", LogID: "l", Timestamp: "2026-01-02T15:04:05.000+01:00",
			},
			DurationMS: ptr(0.001), InputBytes: ptr(math.MaxInt), Error: awkward,
			Stamp: tools.Stamp{Caller: "c", MCPSessionID: "x", Client: "cl/1", RecordedAt: "2026-01-02T15:04:05.000Z", Origin: tools.OriginServer},
		}, []string{"module", "procedure", "status", "inputs", "outputs", "session_id", "workflow_id", "user_id", "rationale", "error_code", "log_id", "timestamp", "duration_ms", "input_bytes", "error",
			"caller", "mcp_session_id", "client", "recorded_at", "origin"}},
		{"a minimal audit record", &tools.AuditRecord{AuditLogInput: tools.AuditLogInput{Module: "m", Procedure: "p", Status: "ok"}},
			[]string{"module", "procedure", "status"}},
		{"a delta holding a string", &tools.CCWJDeltaInput{WorkflowID: "w", PhaseID: "p", Field: "f", Value: mcpkit.Value(`"hello"`), Timestamp: "t", EventID: "e"},
			[]string{"workflow_id", "phase_id", "field", "value", "timestamp", "event_id"}},
		{"a delta holding null", &tools.CCWJDeltaInput{WorkflowID: "w", PhaseID: "p", Field: "f", Value: mcpkit.Value(`null`)},
			[]string{"workflow_id", "phase_id", "field", "value"}},
		{"a delta holding an array", &tools.CCWJDeltaInput{WorkflowID: "w", PhaseID: "p", Field: "f", Value: mcpkit.Value("[ 1,\n\t2.50, true ]")},
			[]string{"workflow_id", "phase_id", "field", "value"}},
		{"feedback", &tools.FeedbackInput{Feedback: mcpkit.Text(awkward), UserID: "u", EventID: "e"}, []string{"feedback", "user_id", "event_id"}},
		{"a workflow event", tools.WorkflowEventInput{WorkflowID: "w", Phase: "p", EventType: "escalated", Details: "d\nd"}, []string{"workflow_id", "phase", "event_type", "details"}},
	}
	for _, tc := range records {
		t.Run(tc.name, func(t *testing.T) {
			fields, got := codecRoundTrip(t, tc.record)
			if names := codecNames(fields); !reflect.DeepEqual(names, tc.order) {
				t.Errorf("field order %v, want %v", names, tc.order)
			}
			for _, name := range []string{"rationale", "error", "feedback"} {
				if v, ok := got[name]; ok && v != awkward {
					t.Errorf("%s = %q, want it as written", name, v)
				}
			}
		})
	}
}

func TestCodecKeepsTheTypeOfEveryField(t *testing.T) {
	rec := codecAll{
		S: "s", codecInner: codecInner{Inner: "in", Deep: ptr(-3)},
		I: math.MinInt64, I8: -128, U: math.MaxUint64, F: 0, F32: 0.1, B: false, BP: ptr(true), SP: ptr(""),
		J: json.RawMessage(` {"a" : 1} `), V: mcpkit.Value(`"str"`), Skip: "skipped", hidden: "hidden", NoTag: "nt",
	}
	fields, got := codecRoundTrip(t, &rec)
	wantOrder := []string{"s", "inner", "deep", "i", "i8", "u", "f", "f32", "b", "bp", "sp", "j", "v", "NoTag"}
	if names := codecNames(fields); !reflect.DeepEqual(names, wantOrder) {
		t.Errorf("field order %v, want %v", names, wantOrder)
	}
	want := map[string]any{
		"s": "s", "inner": "in", "deep": json.Number("-3"), "i": json.Number("-9223372036854775808"), "i8": json.Number("-128"),
		"u": json.Number("18446744073709551615"), "f": json.Number("0"), "f32": json.Number("0.10000000149011612"),
		"b": false, "bp": true, "sp": "", "j": json.RawMessage(`{"a":1}`), "v": json.RawMessage(`"str"`), "NoTag": "nt",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
	}
	// An empty JSON field that is not optional is written as null.
	fields, err := stream.Encode(codecAll{})
	if err != nil {
		t.Fatal(err)
	}
	if v := codecEntry(t, fields)["j"]; v != "null" {
		t.Errorf("empty JSON field written as %q, want null", v)
	}
}

func TestCodecWritesFloatsAsShortestJSONNumbers(t *testing.T) {
	for f, want := range map[float64]string{
		1.5: "1.5", 1e21: "1e+21", 5e-324: "5e-324", math.MaxFloat64: "1.7976931348623157e+308", math.Nextafter(0.3, 1): "0.30000000000000004", -2: "-2",
	} {
		fields, got := codecRoundTrip(t, &tools.AuditRecord{DurationMS: ptr(f)})
		if v := codecEntry(t, fields)["duration_ms"]; v != want {
			t.Errorf("%v written as %q, want %q", f, v, want)
		}
		if n, ok := got["duration_ms"].(json.Number); !ok {
			t.Errorf("%v read back as %#v", f, got["duration_ms"])
		} else if back, err := n.Float64(); err != nil || back != f {
			t.Errorf("%v read back as %v (%v)", f, back, err)
		}
	}
}

func TestCodecRefusesWhatIsNotJSON(t *testing.T) {
	for _, tc := range []struct {
		name   string
		record any
	}{
		{"an object field that is not JSON", &tools.AuditRecord{AuditLogInput: tools.AuditLogInput{Inputs: mcpkit.Object(`{"a":`)}}},
		{"a value with trailing data", &tools.CCWJDeltaInput{Value: mcpkit.Value(`1 2`)}},
		{"a NaN duration", &tools.AuditRecord{DurationMS: ptr(math.NaN())}},
		{"an infinite duration", &tools.AuditRecord{DurationMS: ptr(math.Inf(-1))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fields, err := stream.Encode(tc.record); err == nil {
				t.Errorf("Encode = %v, want an error", fields)
			}
		})
	}
}

func TestCodecReturnsWhatOtherWritersStoredAsStrings(t *testing.T) {
	values := map[string]string{
		"module":      "m",
		"other":       "42",           // unknown field: a string, though it looks like a number
		"flags":       `{"a":1}`,      // unknown field: a string, though it looks like JSON
		"duration_ms": "fast",         // not a number
		"input_bytes": "0x10",         // not JSON, though Go would parse it
		"inputs":      `{"a":`,        // not JSON
		"outputs":     `  {"a": 1}  `, // JSON with spaces: kept as written
		"error":       "true",         // a string field stays a string
	}
	got := stream.Decode(values, reflect.TypeFor[*tools.AuditRecord]())
	want := map[string]any{
		"module": "m", "other": "42", "flags": `{"a":1}`, "duration_ms": "fast", "input_bytes": "0x10", "inputs": `{"a":`,
		"outputs": json.RawMessage(`  {"a": 1}  `), "error": "true",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n %#v\nwant\n %#v", got, want)
	}
}

func TestCodecReadsOnlyJSONTextAsABoolean(t *testing.T) {
	for _, v := range []string{"true", "false", "1", "0", "t", "F", "TRUE", "True", "yes", ""} {
		got := stream.Decode(map[string]string{"b": v}, reflect.TypeFor[codecAll]())["b"]
		if s := codecText(t, got); s != v {
			t.Errorf("%q read back as %#v, which is written %q", v, got, s)
		}
		if _, isBool := got.(bool); isBool != (v == "true" || v == "false") {
			t.Errorf("%q read back as %#v", v, got)
		}
	}
}

func TestCodecReadsOnlyJSONNumbersAsNumbers(t *testing.T) {
	for v, isNumber := range map[string]bool{
		"0": true, "-0": true, "12345678901234567890123": true, "1.5e-7": true, "1E5": true,
		"01": false, "+1": false, " 1": false, "1 ": false, "0x1p-2": false, "Inf": false, "NaN": false, "1_000": false, ".5": false, "": false,
	} {
		got := stream.Decode(map[string]string{"i": v}, reflect.TypeFor[codecAll]())["i"]
		if _, ok := got.(json.Number); ok != isNumber {
			t.Errorf("%q read back as %#v", v, got)
		}
		if s := codecText(t, got); s != v {
			t.Errorf("%q read back as %q", v, s)
		}
	}
}

// The decoded entry, as JSON, unmarshals into the record type and encodes
// to the fields written: what read_stream returns loses nothing.
func TestCodecDecodedEntriesUnmarshalBackIntoTheRecord(t *testing.T) {
	rec := &tools.AuditRecord{
		AuditLogInput: tools.AuditLogInput{Module: "m", Procedure: "p", Status: "ok", Inputs: mcpkit.Object(`{"html":"<&>","n":1.0e2}`), Rationale: "a\u2028b"},
		DurationMS:    ptr(12.25), InputBytes: ptr(7),
	}
	fields, got := codecRoundTrip(t, rec)
	back := codecBack(t, got, reflect.TypeOf(rec))
	again, err := stream.Encode(back)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, fields) {
		t.Errorf("re-encoded\n %v\nwant\n %v", again, fields)
	}
}

// codecBack marshals a decoded entry and unmarshals it into a new record of
// type typ (a pointer type).
func codecBack(t *testing.T, decoded map[string]any, typ reflect.Type) any {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(decoded); err != nil {
		t.Fatalf("marshal %v: %v", decoded, err)
	}
	back := reflect.New(typ.Elem()).Interface()
	if err := json.Unmarshal(buf.Bytes(), back); err != nil {
		t.Fatalf("unmarshal %s: %v", buf.Bytes(), err)
	}
	return back
}

package app_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// keysUnder counts the keys under the harness's prefix.
func (h *harness) keysUnder() int {
	h.t.Helper()
	n := 0
	iter := h.rdb.Scan(context.Background(), 0, h.prefix+"*", 1000).Iterator()
	for iter.Next(context.Background()) {
		n++
	}
	return n
}

func TestABatchIsCheckedEntryByEntryAsTheSingleToolsCheckAndRefusedBeforeRedis(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	batch := func(stream string, entries ...string) string {
		return fmt.Sprintf(`{"stream":%q,"entries":[%s]}`, stream, strings.Join(entries, ","))
	}
	ok := `{"module":"m","procedure":"p","status":"ok"}`
	cases := []struct {
		name, args string
		want       []string
	}{
		{"entries[2] without a status", batch("audit_log_stream", ok, ok, `{"module":"m","procedure":"p"}`), []string{"entries[2].status: is required"}},
		{"a misspelt argument", batch("audit_log_stream", ok, `{"module":"m","procedure":"p","statsu":"ok"}`),
			[]string{`entries[1]: unknown argument "statsu": did you mean "status"?`}},
		{"a stamped name", batch("workflow_events", `{"workflow_id":"w","phase":"p","event_type":"e","caller":"me"}`), []string{"entries[0].caller: is set by the server"}},
		{"two problems in one entry and one in another", batch("audit_log_stream", `{"procedure":"p"}`, ok, `{"module":"m","procedure":"p","status":"ok","timestamp":"yesterday"}`),
			[]string{"entries[0].module: is required; entries[0].status: is required", "entries[2].timestamp:"}},
		{"the server's module", batch("audit_log_stream", `{"module":"mcp-redis","procedure":"p","status":"ok"}`), []string{"entries[0].module:", "reserved"}},
		{"a delta without a value", batch("ccwj_update_stream", `{"workflow_id":"w","phase_id":"p","field":"f"}`), []string{"entries[0].value: is required"}},
		{"feedback that is not text", batch("user_feedback", `{"feedback":7}`), []string{"entries[0].feedback: must be a string"}},
		{"an entry over the limit", batch("user_feedback", `{"feedback":"`+strings.Repeat("x", 64<<10)+`"}`), []string{"entries[0].feedback:", "max_entry_bytes"}},
		{"no entry", batch("audit_log_stream"), []string{"entries: has 0 items; at least 1 required"}},
		{"501 entries", batch("audit_log_stream", slices.Repeat([]string{ok}, 501)...), []string{"entries: has 501 items; at most 500 allowed"}},
		{"a stream that is not one", batch("locks", ok), []string{"stream:"}},
		{"an entry that is not an object", batch("audit_log_stream", `"x"`), []string{"entries[0]: must be an object"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			msg := h.fails("append_batch", tc.args)
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%.300s\nwant it to say %q", msg, w)
				}
			}
			if n := h.keysUnder(); n != 0 {
				t.Errorf("a refused batch left %d keys", n)
			}
		})
	}
}

func TestABatchEntryIsFilledAndStampedAsTheSingleToolFillsItAndTheCallIsRecordedOnce(t *testing.T) {
	h := newHarness(t, nil)
	single := h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok","inputs":{"a":1}}`)
	out := h.ok("append_batch", `{"stream":"audit_log_stream","entries":[{"module":"m","procedure":"p","status":"ok","inputs":{"a":1}},`+
		`{"module":"m","procedure":"q","status":"ok","log_id":"B-1","timestamp":"2026-01-02T03:04:05+01:00"}]}`)
	if out["appended"] != float64(2) || out["duplicates"] != float64(0) || out["stream"] != h.prefix+"audit_log_stream" {
		t.Fatalf("append_batch = %v", out)
	}
	res := out["entries"].([]any)
	first, second := res[0].(map[string]any), res[1].(map[string]any)
	if second["log_id"] != "B-1" || second["timestamp"] != "2026-01-02T02:04:05.000Z" || first["log_id"] == "" || len(first["log_id"].(string)) != 36 {
		t.Errorf("entries = %v", res)
	}
	got := h.entries(keyspace.AuditLog)
	byID := map[string]map[string]any{}
	for _, m := range got {
		byID[m.ID] = m.Values
	}
	s, b := byID[single["entry_id"].(string)], byID[first["entry_id"].(string)]
	if s == nil || b == nil {
		t.Fatalf("the entries are not in the stream: %v", got)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(s)), slices.Sorted(maps.Keys(b))) || b["origin"] != "client" || b["recorded_at"] == nil || b["inputs"] != `{"a":1}` {
		t.Errorf("a batch entry has %v, the single tool's %v", b, s)
	}
	records := 0
	for _, m := range got {
		if m.Values["module"] == "mcp-redis" {
			records++
			if m.Values["procedure"] != "append_batch" || !strings.Contains(m.Values["inputs"].(string), `"entries":2`) ||
				!strings.Contains(m.Values["outputs"].(string), `"appended":2`) {
				t.Errorf("call record = %v", m.Values)
			}
		}
	}
	if records != 1 {
		t.Errorf("%d call records, want the batch's one", records)
	}
}

func TestABatchResentIsAllDuplicatesAndAMixedOneAppendsOnlyTheNewWithTheChainVerifying(t *testing.T) {
	h := newHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	entry := func(id string) string { return `{"module":"m","procedure":"p","status":"ok","log_id":"` + id + `"}` }
	args := `{"stream":"audit_log_stream","entries":[` + entry("A") + `,` + entry("B") + `,` + entry("C") + `]}`
	first := h.ok("append_batch", args)
	again := h.ok("append_batch", args)
	if again["appended"] != float64(0) || again["duplicates"] != float64(3) {
		t.Fatalf("resent = %v", again)
	}
	for i, e := range again["entries"].([]any) {
		f := first["entries"].([]any)[i].(map[string]any)
		if g := e.(map[string]any); g["duplicate"] != true || g["entry_id"] != f["entry_id"] || g["timestamp"] != f["timestamp"] {
			t.Errorf("resent entry %d = %v, first %v", i, g, f)
		}
	}
	h.ok("audit_log", entry("S"))
	mixed := h.ok("append_batch", `{"stream":"audit_log_stream","entries":[`+entry("D")+`,`+entry("B")+`,`+entry("E")+`,`+entry("D")+`]}`)
	if mixed["appended"] != float64(2) || mixed["duplicates"] != float64(2) {
		t.Errorf("mixed = %v", mixed)
	}
	if n := len(h.entries(keyspace.AuditLog)); n != 6 {
		t.Errorf("the stream holds %d entries, want 6", n)
	}
	v := h.ok("verify_audit", `{}`)
	if v["ok"] != true || v["checked"] != float64(6) || v["from_genesis"] != true {
		t.Errorf("verify_audit = %v", v)
	}
	msg := h.fails("append_batch", `{"stream":"audit_log_stream","entries":[`+entry("F")+`,{"module":"m","procedure":"p","status":"error","log_id":"A"}]}`)
	if !strings.Contains(msg, "conflict: entries[1].log_id:") || !strings.Contains(msg, "nothing of the batch was written") {
		t.Errorf("a conflicting id: %s", msg)
	}
	if n := len(h.entries(keyspace.AuditLog)); n != 6 {
		t.Errorf("after a conflict the stream holds %d entries, want 6", n)
	}
}

package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// pvHarness is newHarness with a client that names itself in initialize.
func pvHarness(t *testing.T, edit func(*config.Config)) *harness {
	t.Helper()
	return newHarnessAs(t, edit, mcp.Implementation{Name: "pv-host", Version: "1.2.3"})
}

// pvWrites are one valid call of each write tool, with a {ts} to fill.
var pvWrites = []struct{ tool, stream, args string }{
	{"audit_log", keyspace.AuditLog, `{"module":"planner","procedure":"draft","status":"ok"%s}`},
	{"publish_ccwj_delta", keyspace.CCWJUpdate, `{"workflow_id":"wf","phase_id":"p","field":"f","value":1%s}`},
	{"submit_feedback", keyspace.UserFeedback, `{"feedback":"fine"%s}`},
	{"emit_workflow_event", keyspace.WorkflowEvent, `{"workflow_id":"wf","phase":"p","event_type":"e"%s}`},
}

func pvArgs(format, extra string) string { return fmt.Sprintf(format, extra) }

func TestEveryEntryCarriesTheServersStampAndReadStreamReturnsIt(t *testing.T) {
	h := pvHarness(t, nil)
	before := time.Now().UTC().Add(-time.Second)
	for _, w := range pvWrites {
		out := h.ok(w.tool, pvArgs(w.args, ""))
		msgs := h.entries(w.stream)
		var got map[string]any
		for _, m := range msgs {
			if m.ID == out["entry_id"] {
				got = m.Values
			}
		}
		rec, _ := time.Parse("2006-01-02T15:04:05.000Z", fmt.Sprint(got["recorded_at"]))
		if got["origin"] != "client" || got["client"] != "pv-host/1.2.3" || rec.Before(before) || rec.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: entry %v: want origin client, client pv-host/1.2.3, recorded_at now", w.tool, got)
		}
		if _, ok := got["caller"]; ok {
			t.Errorf("%s: in-process entry has a caller: %v", w.tool, got)
		}
		page := h.ok("read_stream", fmt.Sprintf(`{"stream":%q,"start":%q,"count":1}`, w.stream, out["entry_id"]))
		fields := page["entries"].([]any)[0].(map[string]any)["fields"].(map[string]any)
		for _, k := range []string{"origin", "client", "recorded_at", "mcp_session_id"} {
			if fields[k] != got[k] {
				t.Errorf("%s: read_stream %s = %v, want %v", w.tool, k, fields[k], got[k])
			}
		}
	}
	// The server's own records say origin server, with the same provenance.
	for _, m := range h.entries(keyspace.AuditLog) {
		if m.Values["module"] == "mcp-redis" && (m.Values["origin"] != "server" || m.Values["client"] != "pv-host/1.2.3") {
			t.Errorf("call record %v: want origin server and the client", m.Values)
		}
		if m.Values["module"] != "mcp-redis" && m.Values["origin"] != "client" {
			t.Errorf("client entry %v: want origin client", m.Values)
		}
	}
}

func TestAStampedNameAsAnArgumentIsRefusedSayingTheServerSetsIt(t *testing.T) {
	h := pvHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	for _, w := range pvWrites {
		for _, name := range []string{"caller", "mcp_session_id", "client", "recorded_at", "origin"} {
			msg := h.fails(w.tool, pvArgs(w.args, fmt.Sprintf(`,%q:"spoofed"`, name)))
			if !strings.Contains(msg, name+": is set by the server") {
				t.Errorf("%s with %s: %s", w.tool, name, msg)
			}
		}
		if n := len(h.entries(w.stream)); n != 0 {
			t.Errorf("%s: %d entries written by refused calls", w.tool, n)
		}
	}
	// The call record's own fields are the server's too.
	for _, name := range []string{"duration_ms", "input_bytes", "error"} {
		if msg := h.fails("audit_log", pvArgs(pvWrites[0].args, fmt.Sprintf(`,%q:"1"`, name))); !strings.Contains(msg, name+": is set by the server") {
			t.Errorf("audit_log with %s: %s", name, msg)
		}
	}
}

func TestTheServersModuleIsReservedToItsOwnCallRecords(t *testing.T) {
	h := pvHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	for _, m := range []string{"mcp-redis", "MCP-Redis", " mcp-redis"} {
		msg := h.fails("audit_log", fmt.Sprintf(`{"module":%q,"procedure":"read_stream","status":"ok"}`, m))
		if !strings.HasPrefix(msg, "invalid arguments: module:") || !strings.Contains(msg, "reserved") {
			t.Errorf("module %q: %s", m, msg)
		}
	}
	if n := len(h.entries(keyspace.AuditLog)); n != 0 {
		t.Errorf("%d entries written with the server's module", n)
	}
	h.ok("audit_log", `{"module":"mcp-redis-client","procedure":"p","status":"ok"}`)
}

func TestATimestampIsStoredInTheServersForm(t *testing.T) {
	h := pvHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	for _, w := range pvWrites {
		for given, want := range map[string]string{
			"2026-12-01T12:00:00+02:00":        "2026-12-01T10:00:00.000Z",
			"2026-01-02T03:04:05.123456789Z":   "2026-01-02T03:04:05.123Z",
			"2025-06-30T23:59:59.9999-01:30":   "2025-07-01T01:29:59.999Z",
			"2026-01-02T03:04:06Z":             "2026-01-02T03:04:06.000Z",
			"2026-01-02T03:04:05.678Z":         "2026-01-02T03:04:05.678Z",
			"2000-02-29T00:00:00.5+00:00":      "2000-02-29T00:00:00.500Z",
			"2026-03-01T00:00:00.000000+14:00": "2026-02-28T10:00:00.000Z",
		} {
			out := h.ok(w.tool, pvArgs(w.args, fmt.Sprintf(`,"timestamp":%q`, given)))
			msgs := h.entries(w.stream)
			got := msgs[len(msgs)-1].Values["timestamp"]
			if got != want || out["timestamp"] != want {
				t.Errorf("%s: timestamp %s stored %v, answered %v; want %s", w.tool, given, got, out["timestamp"], want)
			}
		}
	}
	// The workflow context's updated_at is the stored form too.
	if c := h.ok("get_context", `{"workflow_id":"wf"}`); !strings.HasSuffix(fmt.Sprint(c["updated_at"]), "Z") || strings.Contains(fmt.Sprint(c["updated_at"]), "+") {
		t.Errorf("updated_at = %v", c["updated_at"])
	}
}

func TestATimestampBeyondTheClockSkewIsRefusedNamingIt(t *testing.T) {
	h := pvHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false })
	now := time.Now().UTC()
	for _, w := range pvWrites {
		far := now.Add(24*time.Hour + time.Minute).Format(time.RFC3339)
		msg := h.fails(w.tool, pvArgs(w.args, fmt.Sprintf(`,"timestamp":%q`, far)))
		if !strings.HasPrefix(msg, "invalid arguments: timestamp:") || !strings.Contains(msg, "audit.max_clock_skew") {
			t.Errorf("%s: %s", w.tool, msg)
		}
		if n := len(h.entries(w.stream)); n != 0 {
			t.Errorf("%s: %d entries after a refused timestamp", w.tool, n)
		}
		// Within the bound, and any past time, pass.
		h.ok(w.tool, pvArgs(w.args, fmt.Sprintf(`,"timestamp":%q`, now.Add(23*time.Hour).Format(time.RFC3339))))
		h.ok(w.tool, pvArgs(w.args, `,"timestamp":"1970-01-01T00:00:00Z"`))
	}

	// The bound is audit.max_clock_skew.
	h = pvHarness(t, func(c *config.Config) { c.Audit.ToolCalls = false; c.Audit.MaxClockSkew = time.Minute })
	if msg := h.fails("audit_log", pvArgs(pvWrites[0].args, fmt.Sprintf(`,"timestamp":%q`, now.Add(2*time.Minute).Format(time.RFC3339)))); !strings.Contains(msg, "timestamp") {
		t.Errorf("2m ahead with a 1m bound: %s", msg)
	}
	h.ok("audit_log", pvArgs(pvWrites[0].args, fmt.Sprintf(`,"timestamp":%q`, now.Add(30*time.Second).Format(time.RFC3339))))
}

// pvCallRecord is the last call record of tool, decoded.
func pvCallRecord(h *harness, tool string) (rec map[string]any, inputs, outputs map[string]any) {
	h.t.Helper()
	msgs := h.entries(keyspace.AuditLog)
	for i := len(msgs) - 1; i >= 0; i-- {
		v := msgs[i].Values
		if v["module"] == "mcp-redis" && v["procedure"] == tool {
			for k, dst := range map[string]*map[string]any{"inputs": &inputs, "outputs": &outputs} {
				if s, ok := v[k].(string); ok {
					if err := json.Unmarshal([]byte(s), dst); err != nil {
						h.t.Fatalf("%s %s %q: %v", tool, k, s, err)
					}
				}
			}
			return v, inputs, outputs
		}
	}
	h.t.Fatalf("no call record of %s", tool)
	return nil, nil, nil
}

// pvHas fails unless m holds each key with the value's JSON text.
func pvHas(t *testing.T, what string, m map[string]any, want map[string]string) {
	t.Helper()
	for k, v := range want {
		got, _ := json.Marshal(m[k])
		if string(got) != v {
			t.Errorf("%s %s = %s, want %s (all: %v)", what, k, got, v, m)
		}
	}
}

func TestCallRecordsOfEveryToolSayWhatHappenedAndNeverKeepALockToken(t *testing.T) {
	for _, mode := range []string{"identifying", "all"} {
		t.Run(mode, func(t *testing.T) {
			h := pvHarness(t, func(c *config.Config) { c.Audit.RecordArguments = mode })
			big := strings.Repeat("é", 1500) // 3000 bytes
			w := h.ok("publish_ccwj_delta", `{"workflow_id":"wf","phase_id":"plan","field":"f","value":{"big":"`+big+`"},"event_id":"d1"}`)
			f := h.ok("submit_feedback", `{"feedback":"`+big+`","user_id":"u1","event_id":"f1"}`)
			e := h.ok("emit_workflow_event", `{"workflow_id":"wf","phase":"plan","event_type":"started"}`)
			h.ok("emit_workflow_event", `{"workflow_id":"wf","phase":"plan","event_type":"started","event_id":"e1"}`)
			dup := h.ok("emit_workflow_event", `{"workflow_id":"wf","phase":"plan","event_type":"started","event_id":"e1"}`)
			h.ok("read_stream", `{"stream":"workflow_events","start":"-","count":5,"workflow_id":"wf"}`)
			h.ok("get_context", `{"workflow_id":"wf","phase_id":"plan"}`)
			a := h.ok("acquire_lock", `{"resource":"pv/res","ttl_ms":5000,"owner":"agent-7"}`)
			token := a["token"].(string)
			busy := h.ok("acquire_lock", `{"resource":"pv/res","owner":"agent-8"}`)
			h.ok("extend_lock", `{"resource":"pv/res","token":"`+token+`","ttl_ms":9000}`)
			h.ok("release_lock", `{"resource":"pv/res","token":"`+token+`"}`)
			h.ok("release_lock", `{"resource":"pv/res","token":"`+token+`"}`) // not held any more
			h.ok("check_rate", `{"subject":"agent-7","cost":3}`)
			h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok","log_id":"a1"}`)
			h.fails("audit_log", `{"module":"m","procedure":"p","status":"error","log_id":"a1"}`)

			rec, in, out := pvCallRecord(h, "publish_ccwj_delta")
			pvHas(t, "publish_ccwj_delta inputs", in, map[string]string{"workflow_id": `"wf"`, "phase_id": `"plan"`, "field": `"f"`, "event_id": `"d1"`})
			pvHas(t, "publish_ccwj_delta outputs", out, map[string]string{"stream": fmt.Sprintf("%q", w["stream"]), "entry_id": fmt.Sprintf("%q", w["entry_id"]), "event_id": `"d1"`, "duplicate": "false"})
			pvHas(t, "publish_ccwj_delta record", rec, map[string]string{"status": `"ok"`, "origin": `"server"`, "workflow_id": `"wf"`})
			if rec["duration_ms"] == nil {
				t.Errorf("no duration_ms: %v", rec)
			}
			switch mode {
			case "identifying":
				if in["value"] != nil {
					t.Errorf("the payload is recorded with record_arguments identifying: %v", in)
				}
			case "all":
				v, _ := in["value"].(string)
				if len(v) > 1024+len("…") || !strings.HasSuffix(v, "…") || !strings.HasPrefix(v, `{"big":"éé`) {
					t.Errorf("value kept as %.80q (%d bytes), want its JSON cut at 1 KiB", v, len(v))
				}
			}

			_, in, out = pvCallRecord(h, "submit_feedback")
			pvHas(t, "submit_feedback", in, map[string]string{"user_id": `"u1"`, "event_id": `"f1"`})
			pvHas(t, "submit_feedback outputs", out, map[string]string{"entry_id": fmt.Sprintf("%q", f["entry_id"]), "duplicate": "false"})
			if fb, _ := in["feedback"].(string); (mode == "all") != (fb != "") || len(fb) > 1024+len("…") {
				t.Errorf("feedback kept as %.40q (%d bytes) with %s", fb, len(fb), mode)
			}

			_, in, out = pvCallRecord(h, "emit_workflow_event")
			pvHas(t, "emit_workflow_event", in, map[string]string{"workflow_id": `"wf"`, "phase": `"plan"`, "event_type": `"started"`, "event_id": `"e1"`})
			pvHas(t, "emit_workflow_event outputs", out, map[string]string{"entry_id": fmt.Sprintf("%q", dup["entry_id"]), "duplicate": "true"})
			_ = e

			_, in, out = pvCallRecord(h, "read_stream")
			pvHas(t, "read_stream", in, map[string]string{"stream": `"workflow_events"`, "start": `"-"`, "count": "5", "workflow_id": `"wf"`})
			pvHas(t, "read_stream outputs", out, map[string]string{"entries": "2"})

			_, in, out = pvCallRecord(h, "get_context")
			pvHas(t, "get_context", in, map[string]string{"workflow_id": `"wf"`, "phase_id": `"plan"`})
			pvHas(t, "get_context outputs", out, map[string]string{"last_delta_id": fmt.Sprintf("%q", w["entry_id"])})

			msgs := h.entries(keyspace.AuditLog)
			var acquires []map[string]any
			for _, m := range msgs {
				if m.Values["procedure"] == "acquire_lock" {
					var o map[string]any
					_ = json.Unmarshal([]byte(m.Values["outputs"].(string)), &o)
					acquires = append(acquires, o)
				}
			}
			if len(acquires) != 2 {
				t.Fatalf("%d acquire_lock records", len(acquires))
			}
			pvHas(t, "acquire_lock granted", acquires[0], map[string]string{"acquired": "true", "fencing_token": fmt.Sprint(a["fencing_token"]), "ttl_ms": "5000"})
			pvHas(t, "acquire_lock busy", acquires[1], map[string]string{"acquired": "false", "held_by": `"agent-7"`})
			_ = busy
			_, in, _ = pvCallRecord(h, "acquire_lock")
			pvHas(t, "acquire_lock inputs", in, map[string]string{"resource": `"pv/res"`, "owner": `"agent-8"`})

			_, in, out = pvCallRecord(h, "extend_lock")
			pvHas(t, "extend_lock", in, map[string]string{"resource": `"pv/res"`, "ttl_ms": "9000"})
			pvHas(t, "extend_lock outputs", out, map[string]string{"extended": "true", "owner": `"agent-7"`, "fencing_token": fmt.Sprint(a["fencing_token"])})
			var released map[string]any
			for _, m := range h.entries(keyspace.AuditLog) {
				if m.Values["module"] == "mcp-redis" && m.Values["procedure"] == "release_lock" && released == nil {
					_ = json.Unmarshal([]byte(m.Values["outputs"].(string)), &released)
				}
			}
			pvHas(t, "release_lock outputs (held)", released, map[string]string{"released": "true", "owner": `"agent-7"`, "fencing_token": fmt.Sprint(a["fencing_token"])})

			_, in, out = pvCallRecord(h, "release_lock")
			pvHas(t, "release_lock", in, map[string]string{"resource": `"pv/res"`})
			pvHas(t, "release_lock outputs", out, map[string]string{"released": "false", "reason": `"not_held"`})

			_, in, out = pvCallRecord(h, "check_rate")
			pvHas(t, "check_rate", in, map[string]string{"subject": `"agent-7"`, "policy": `"default"`, "cost": "3"})
			pvHas(t, "check_rate outputs", out, map[string]string{"allowed": "true", "remaining": "57"})

			// A successful audit_log call is its own record; a failed one is
			// recorded with its class.
			rec, in, _ = pvCallRecord(h, "audit_log")
			pvHas(t, "audit_log failure", rec, map[string]string{"status": `"error"`, "error_code": `"conflict"`})
			pvHas(t, "audit_log failure inputs", in, map[string]string{"module": `"m"`, "log_id": `"a1"`})
			n := 0
			for _, m := range msgs {
				if m.Values["procedure"] == "audit_log" {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d audit_log call records, want 1 (the failure)", n)
			}

			for _, m := range msgs {
				for k, v := range m.Values {
					if strings.Contains(k+"="+fmt.Sprint(v), token) {
						t.Errorf("the audit stream holds the lock token in %s: %.200v", k, v)
					}
				}
			}
		})
	}
}

// A call record carries the workflow_id, session_id and user_id of a valid
// call as the tool decoded them (escapes undone), so read_stream's filters
// find it; a call whose arguments were refused carries none of them.
func TestACallRecordCarriesTheIdsOfAValidCall(t *testing.T) {
	h := newHarness(t, nil)
	h.ok("emit_workflow_event", `{"workflow_id":"wf-\u0031","phase":"p","event_type":"e"}`)
	h.ok("submit_feedback", `{"feedback":"fine","session_id":"s\"1","user_id":"u1"}`)
	h.ok("read_stream", `{"stream":"user_feedback","start":"-","count":5,"session_id":"s2","user_id":"u2"}`)
	h.fails("emit_workflow_event", `{"workflow_id":"wf-9","phase":"p"}`)
	var got []string
	for _, e := range h.entries(keyspace.AuditLog) {
		got = append(got, fmt.Sprintf("%v workflow_id=%v session_id=%v user_id=%v", e.Values["procedure"], e.Values["workflow_id"], e.Values["session_id"], e.Values["user_id"]))
	}
	want := []string{
		"emit_workflow_event workflow_id=wf-1 session_id=<nil> user_id=<nil>",
		`submit_feedback workflow_id=<nil> session_id=s"1 user_id=u1`,
		"read_stream workflow_id=<nil> session_id=s2 user_id=u2",
		"emit_workflow_event workflow_id=<nil> session_id=<nil> user_id=<nil>",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the call records hold\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

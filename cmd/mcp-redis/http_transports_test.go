package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests run the binary with --transport http and reach it the ways a
// remote host would: mcp-go's Streamable HTTP client in both protocol eras
// and in stateless mode, its SSE client, and plain HTTP and raw TCP for the
// attacks. Every server is stopped with SIGTERM and must exit 0, and no
// bearer token it was given may appear in its log.

type writeOut struct {
	Stream    string `json:"stream"`
	EntryID   string `json:"entry_id"`
	Duplicate bool   `json:"duplicate"`
}

var allTools = []string{"ack_events", "acquire_lock", "append_batch", "audit_log", "check_rate", "claim_events", "emit_workflow_event", "extend_lock",
	"get_context", "publish_ccwj_delta", "read_stream", "release_lock", "show_dashboard", "stream_info", "submit_feedback", "verify_audit"}

// exerciseEveryTool lists the tools, calls each one over c, and reads what
// each left in Redis under prefix.
func exerciseEveryTool(t *testing.T, c *client.Client, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	list, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, allTools) {
		t.Fatalf("%d tools %v, want %v", len(names), names, allTools)
	}

	writes := []struct {
		tool, stream, args string
		want               map[string]string // the entry's fields, exactly
	}{
		{"audit_log", "audit_log_stream",
			`{"module":"planner","procedure":"draft","status":"ok","inputs":{"q":"x"},"workflow_id":"wf1","log_id":"L-1","timestamp":"2026-01-02T03:04:05.678Z"}`,
			map[string]string{"module": "planner", "procedure": "draft", "status": "ok", "inputs": `{"q":"x"}`, "workflow_id": "wf1", "log_id": "L-1", "timestamp": "2026-01-02T03:04:05.678Z"}},
		{"publish_ccwj_delta", "ccwj_update_stream",
			`{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1,"two"],"timestamp":"2026-01-02T03:04:06Z","event_id":"D-1"}`,
			map[string]string{"workflow_id": "wf1", "phase_id": "plan", "field": "steps", "value": `[1,"two"]`, "timestamp": "2026-01-02T03:04:06.000Z", "event_id": "D-1"}},
		{"submit_feedback", "user_feedback",
			`{"feedback":"good plan","session_id":"s1","user_id":"u1","event_id":"F-1"}`,
			map[string]string{"feedback": "good plan", "session_id": "s1", "user_id": "u1", "event_id": "F-1"}},
		{"emit_workflow_event", "workflow_events",
			`{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed","details":"all good","event_id":"W-1"}`,
			map[string]string{"workflow_id": "wf1", "phase": "plan", "event_type": "phase_completed", "details": "all good", "event_id": "W-1"}},
	}
	for _, w := range writes {
		var out writeOut
		okOver(t, c, w.tool, w.args, &out)
		key := prefix + w.stream
		if out.Stream != key || out.Duplicate || out.EntryID == "" {
			t.Fatalf("%s result = %+v", w.tool, out)
		}
		msgs, err := rdb.XRange(ctx, key, out.EntryID, out.EntryID).Result()
		if err != nil || len(msgs) != 1 {
			t.Fatalf("XRANGE %s %s: %v %v", key, out.EntryID, msgs, err)
		}
		got := pvStripStamp(t, w.tool, msgs[0].Values, "")
		if _, given := w.want["timestamp"]; !given {
			ts, _ := got["timestamp"].(string)
			if _, err := time.Parse("2006-01-02T15:04:05.000Z", ts); err != nil {
				t.Errorf("%s: filled timestamp %q: %v", w.tool, ts, err)
			}
			w.want["timestamp"] = ts
		}
		if len(got) != len(w.want) {
			t.Errorf("%s: entry has %d fields, want %d: %v", w.tool, len(got), len(w.want), got)
		}
		for k, v := range w.want {
			if got[k] != v {
				t.Errorf("%s: field %s = %q, want %q", w.tool, k, got[k], v)
			}
		}

		var page struct {
			Entries []struct {
				ID     string         `json:"id"`
				Fields map[string]any `json:"fields"`
			} `json:"entries"`
		}
		okOver(t, c, "read_stream", fmt.Sprintf(`{"stream":%q,"start":%q,"count":1}`, w.stream, out.EntryID), &page)
		if len(page.Entries) != 1 || page.Entries[0].ID != out.EntryID || len(page.Entries[0].Fields) != len(msgs[0].Values) {
			t.Errorf("read_stream %s = %+v", w.stream, page)
		}
	}

	var cx struct {
		WorkflowID  string                    `json:"workflow_id"`
		Context     map[string]map[string]any `json:"context"`
		LastDeltaID string                    `json:"last_delta_id"`
	}
	okOver(t, c, "get_context", `{"workflow_id":"wf1"}`, &cx)
	if steps, _ := json.Marshal(cx.Context["plan"]["steps"]); string(steps) != `[1,"two"]` || cx.WorkflowID != "wf1" || cx.LastDeltaID == "" {
		t.Errorf("get_context = %+v", cx)
	}

	const resource = "http/res"
	lockKey := prefix + "locks:" + resource
	var a acquireOut
	okOver(t, c, "acquire_lock", `{"resource":"http/res","ttl_ms":5000,"owner":"agent-7"}`, &a)
	if !a.Acquired || a.Key != lockKey || a.Token == "" || a.FencingToken != 1 || a.TTLMS != 5000 {
		t.Fatalf("acquire_lock = %+v", a)
	}
	if v, err := rdb.Get(ctx, lockKey).Result(); err != nil || v != a.Token {
		t.Errorf("while held, %s = %q (%v), want the owner token %q", lockKey, v, err, a.Token)
	}
	if p := rdb.PTTL(ctx, lockKey).Val(); p <= 3*time.Second || p > 5*time.Second {
		t.Errorf("while held, PTTL %s = %v, want about 5s", lockKey, p)
	}
	if v := rdb.Get(ctx, prefix+"owner:{"+lockKey+"}").Val(); v != "agent-7" {
		t.Errorf("owner label = %q", v)
	}
	if v := rdb.Get(ctx, prefix+"fence:{"+lockKey+"}").Val(); v != "1" {
		t.Errorf("fence counter = %q", v)
	}

	var e extendOut
	okOver(t, c, "extend_lock", fmt.Sprintf(`{"resource":"http/res","token":%q,"ttl_ms":20000}`, a.Token), &e)
	if !e.Extended || e.TTLMS != 20000 {
		t.Errorf("extend_lock = %+v", e)
	}
	if p := rdb.PTTL(ctx, lockKey).Val(); p <= 15*time.Second || p > 20*time.Second {
		t.Errorf("after extend_lock, PTTL %s = %v, want about 20s", lockKey, p)
	}

	var r releaseOut
	okOver(t, c, "release_lock", fmt.Sprintf(`{"resource":"http/res","token":%q}`, a.Token), &r)
	if !r.Released {
		t.Errorf("release_lock = %+v", r)
	}
	if n := rdb.Exists(ctx, lockKey, prefix+"owner:{"+lockKey+"}").Val(); n != 0 {
		t.Errorf("%d of the lock and owner keys left after release_lock", n)
	}

	var rate rateOut
	okOver(t, c, "check_rate", `{"subject":"agent-7","cost":3}`, &rate)
	if !rate.Allowed || rate.Policy != "default" || rate.Limit != 60 || rate.Remaining != 57 {
		t.Errorf("check_rate = %+v", rate)
	}
	rateKey := prefix + "rate:default:agent-7"
	if p := rdb.PTTL(ctx, rateKey).Val(); p <= 0 || p > time.Minute+time.Millisecond {
		t.Errorf("PTTL %s = %v, want at most the 1m window", rateKey, p)
	}
	if rdb.Exists(ctx, rateKey).Val() != 1 {
		t.Errorf("no %s", rateKey)
	}

	// A worker claims the one workflow event, acknowledges it, and the
	// stream's description shows the group settled.
	var claimed struct {
		Stream  string `json:"stream"`
		Created bool   `json:"created"`
		Entries []struct {
			ID            string         `json:"id"`
			Fields        map[string]any `json:"fields"`
			DeliveryCount int64          `json:"delivery_count"`
		} `json:"entries"`
	}
	okOver(t, c, "claim_events", `{"stream":"workflow_events","group":"g1","consumer":"w1","from":"0"}`, &claimed)
	events := prefix + "workflow_events"
	if claimed.Stream != events || !claimed.Created || len(claimed.Entries) != 1 || claimed.Entries[0].Fields["event_id"] != "W-1" || claimed.Entries[0].DeliveryCount != 1 {
		t.Fatalf("claim_events = %+v", claimed)
	}
	var acked struct {
		Acked      []string `json:"acked"`
		NotPending []string `json:"not_pending"`
	}
	okOver(t, c, "ack_events", fmt.Sprintf(`{"stream":"workflow_events","group":"g1","ids":[%q,"1-0"]}`, claimed.Entries[0].ID), &acked)
	if !slices.Equal(acked.Acked, []string{claimed.Entries[0].ID}) || !slices.Equal(acked.NotPending, []string{"1-0"}) {
		t.Errorf("ack_events = %+v", acked)
	}
	var info struct {
		Length           int64  `json:"length"`
		LastID           string `json:"last_id"`
		DeadLetterStream string `json:"dead_letter_stream"`
		Groups           []struct {
			Name    string `json:"name"`
			Pending int64  `json:"pending"`
			Lag     *int64 `json:"lag"`
		} `json:"groups"`
	}
	okOver(t, c, "stream_info", `{"stream":"workflow_events"}`, &info)
	if info.Length != 1 || info.LastID != claimed.Entries[0].ID || info.DeadLetterStream != prefix+"dead_letter:{"+events+"}" ||
		len(info.Groups) != 1 || info.Groups[0].Name != "g1" || info.Groups[0].Pending != 0 || info.Groups[0].Lag == nil || *info.Groups[0].Lag != 0 {
		t.Errorf("stream_info = %+v", info)
	}
	if p, err := rdb.XPending(ctx, events, "g1").Result(); err != nil || p.Count != 0 {
		t.Errorf("XPENDING %s g1 = %+v, %v", events, p, err)
	}

	// The overview shows the group, and the lock released above is gone.
	var ov struct {
		Streams []struct {
			Name   string `json:"name"`
			Length int64  `json:"length"`
		} `json:"streams"`
		Groups []struct {
			Stream string `json:"stream"`
			Name   string `json:"name"`
		} `json:"groups"`
		Locks []any `json:"locks"`
	}
	okOver(t, c, "show_dashboard", `{}`, &ov)
	if len(ov.Streams) != 4 || ov.Streams[3].Name != "workflow_events" || ov.Streams[3].Length != 1 ||
		len(ov.Groups) != 1 || ov.Groups[0].Name != "g1" || len(ov.Locks) != 0 {
		t.Errorf("show_dashboard = %+v", ov)
	}

	// A batch of two feedback entries appends both, in order, after F-1.
	var batch struct {
		Stream  string `json:"stream"`
		Entries []struct {
			EntryID string `json:"entry_id"`
			EventID string `json:"event_id"`
		} `json:"entries"`
		Appended int `json:"appended"`
	}
	okOver(t, c, "append_batch", `{"stream":"user_feedback","entries":[{"feedback":"first","event_id":"F-2"},{"feedback":"second","user_id":"u2"}]}`, &batch)
	feedback := prefix + "user_feedback"
	msgs, err := rdb.XRange(ctx, feedback, "-", "+").Result()
	if err != nil || batch.Stream != feedback || batch.Appended != 2 || len(batch.Entries) != 2 || len(msgs) != 3 ||
		msgs[1].ID != batch.Entries[0].EntryID || msgs[1].Values["feedback"] != "first" || msgs[1].Values["event_id"] != "F-2" ||
		msgs[2].ID != batch.Entries[1].EntryID || msgs[2].Values["feedback"] != "second" || msgs[2].Values["event_id"] != batch.Entries[1].EventID {
		t.Errorf("append_batch = %+v; %s holds %v (%v)", batch, feedback, msgs, err)
	}
}

// callRecords returns the server's own records of tool calls under prefix,
// once they are all written (settled).
func callRecords(t *testing.T, rdb *redis.Client, prefix string) []redis.XMessage {
	t.Helper()
	settled(t, rdb, prefix)
	msgs, err := rdb.XRange(context.Background(), prefix+"audit_log_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []redis.XMessage
	for _, m := range msgs {
		if m.Values["module"] == "mcp-redis" {
			out = append(out, m)
		}
	}
	return out
}

// settled waits until the audit stream under prefix stops growing: the
// server writes its call records in the background (audit.tool_calls_wait
// false), each within a millisecond and a round trip or two of the call's
// answer.
func settled(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	last := int64(-1)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		n, err := rdb.XLen(context.Background(), prefix+"audit_log_stream").Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == last {
			return
		}
		last = n
	}
}

// noSecretUnder fails when any value of any key under prefix contains one
// of secrets: every stream field, string, hash, set and list.
func noSecretUnder(t *testing.T, rdb *redis.Client, prefix string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	var keys []string
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		ks, err := rdb.Keys(ctx, pattern).Result()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
	}
	if len(keys) == 0 {
		t.Fatalf("no keys under %s", prefix)
	}
	var values []string
	for _, k := range keys {
		values = append(values, k)
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					values = append(values, f, fmt.Sprint(v))
				}
			}
		case "string":
			values = append(values, rdb.Get(ctx, k).Val())
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				values = append(values, f, v)
			}
		case "zset":
			values = append(values, rdb.ZRange(ctx, k, 0, -1).Val()...)
		case "set":
			values = append(values, rdb.SMembers(ctx, k).Val()...)
		case "list":
			values = append(values, rdb.LRange(ctx, k, 0, -1).Val()...)
		default:
			t.Errorf("%s has type %s, which this scan does not read", k, typ)
		}
	}
	for _, v := range values {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("a bearer token is stored in Redis: %.200q", v)
			}
		}
	}
}

// Over Streamable HTTP in the modern (default) and the legacy era, in
// stateless mode, and over SSE, a host lists the tools, calls every
// one, and each write is in Redis field by field; the per-call records
// name the caller by its token's name.
func TestOverStreamableHTTPInEveryEraAndOverSSEEveryToolWritesWhatItShould(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	stateless := []string{"MCP_REDIS_HTTP_STATELESS=true"}
	cases := []struct {
		name    string
		env     []string
		dial    func(t *testing.T, base, tok string) *client.Client
		version string
		// session: the per-call records carry the client's session id.
		session bool
	}{
		{"modern", nil, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok) }, mcp.LATEST_PROTOCOL_VERSION, false},
		{"legacy", nil, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok, legacyEra) }, mcp.ProtocolVersion20251125, true},
		{"stateless-modern", stateless, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok) }, mcp.LATEST_PROTOCOL_VERSION, false},
		{"stateless-legacy", stateless, func(t *testing.T, base, tok string) *client.Client { return dialStreamable(t, base, tok, legacyEra) }, mcp.ProtocolVersion20251125, false},
		{"sse", nil, dialSSE, mcp.LATEST_PROTOCOL_VERSION, true},
		{"sse-legacy", nil, dialSSELegacy, mcp.ProtocolVersion20251125, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := testredis.Shared(t)
			tok := newToken()
			p := startHTTP(t, append([]string{tokensEnv("ci-bot", tok)}, tc.env...), "--redis-url", testredis.URL(), "--prefix", prefix)
			c := tc.dial(t, p.base, tok)
			t.Logf("protocol %s, session %q", c.ProtocolVersion(), c.GetSessionId())
			if tc.version != "" && c.ProtocolVersion() != tc.version {
				t.Errorf("negotiated %s, want %s", c.ProtocolVersion(), tc.version)
			}
			if (c.GetSessionId() != "") != (tc.name == "legacy") {
				t.Errorf("Mcp-Session-Id %q", c.GetSessionId())
			}
			exerciseEveryTool(t, c, rdb, prefix)

			// Every call but audit_log's own is recorded, by the token's name.
			recs := callRecords(t, rdb, prefix)
			byTool := map[string]int{}
			for _, m := range recs {
				byTool[m.Values["procedure"].(string)]++
				if m.Values["caller"] != "ci-bot" || m.Values["status"] != "ok" {
					t.Errorf("call record %v: want caller ci-bot, status ok", m.Values)
				}
				sid, _ := m.Values["mcp_session_id"].(string)
				switch {
				case tc.session && tc.name == "legacy" && sid != c.GetSessionId():
					t.Errorf("call record mcp_session_id %q, want the session's %q", sid, c.GetSessionId())
				case tc.session && sid == "":
					t.Errorf("call record %v has no mcp_session_id", m.Values)
				case !tc.session && sid != "":
					t.Errorf("call record %v has mcp_session_id without a session", m.Values)
				}
			}
			want := map[string]int{"publish_ccwj_delta": 1, "submit_feedback": 1, "emit_workflow_event": 1, "read_stream": 4,
				"get_context": 1, "acquire_lock": 1, "extend_lock": 1, "release_lock": 1, "check_rate": 1,
				"claim_events": 1, "ack_events": 1, "stream_info": 1, "show_dashboard": 1, "append_batch": 1}
			if fmt.Sprint(byTool) != fmt.Sprint(want) {
				t.Errorf("call records by tool = %v, want %v", byTool, want)
			}
			noSecretUnder(t, rdb, prefix, tok)
		})
	}
}

// Per-call records made over HTTP carry the calling token's name and the
// legacy session's id, never a token: two callers with two tokens on one
// server are told apart.
func TestPerCallRecordsOverHTTPNameTheCallerAndTheSessionNeverTheToken(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	alice, bob := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("alice", alice, "Bob_2", bob)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ca := dialStreamable(t, p.base, alice, legacyEra)
	cb := dialStreamable(t, p.base, bob) // modern: no session
	cs := dialSSE(t, p.base, alice)

	callOver(t, ca, "emit_workflow_event", `{"workflow_id":"wa","phase":"p","event_type":"e"}`)
	callOver(t, cb, "emit_workflow_event", `{"workflow_id":"wb","phase":"p","event_type":"e"}`)
	callOver(t, cs, "emit_workflow_event", `{"workflow_id":"wc","phase":"p","event_type":"e"}`)
	// A failed call is recorded too, with the same caller.
	if res := callOver(t, cb, "read_stream", `{"stream":"nope"}`); !res.IsError {
		t.Fatalf("read_stream of an unknown stream: %s", resultText(res))
	}

	recs := callRecords(t, rdb, prefix)
	got := map[string]map[string]any{}
	for _, m := range recs {
		wf, _ := m.Values["workflow_id"].(string)
		k := fmt.Sprint(m.Values["procedure"], "/", wf)
		got[k] = m.Values
	}
	t.Logf("records: %v", got)
	if len(recs) != 4 {
		t.Fatalf("%d call records, want 4: %v", len(recs), got)
	}
	check := func(k, caller, session string, anySession bool) {
		t.Helper()
		v, ok := got[k]
		if !ok {
			t.Errorf("no record %s", k)
			return
		}
		if v["caller"] != caller {
			t.Errorf("%s: caller %v, want %s", k, v["caller"], caller)
		}
		sid, _ := v["mcp_session_id"].(string)
		if anySession {
			if sid == "" {
				t.Errorf("%s: no mcp_session_id", k)
			}
		} else if sid != session {
			t.Errorf("%s: mcp_session_id %q, want %q", k, sid, session)
		}
	}
	check("emit_workflow_event/wa", "alice", ca.GetSessionId(), false)
	check("emit_workflow_event/wb", "bob_2", "", false) // names are lower-cased
	check("emit_workflow_event/wc", "alice", "", true)
	check("read_stream/", "bob_2", "", false)
	if ca.GetSessionId() == "" {
		t.Error("the legacy client has no Mcp-Session-Id")
	}
	if got["read_stream/"]["status"] != "error" {
		t.Errorf("the failed call's record: %v", got["read_stream/"])
	}
	noSecretUnder(t, rdb, prefix, alice, bob)
}

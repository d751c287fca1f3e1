package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// pvStamped are the fields the server stamps on every entry it writes.
var pvStamped = []string{"caller", "mcp_session_id", "client", "recorded_at", "origin"}

// pvOSCaller is the caller the server stamps over stdio by default.
func pvOSCaller(t *testing.T) string {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username + "@" + host
}

// pvStripStamp checks the server's stamp on a client's entry — origin
// client, recorded_at now in the server's form, and caller when one is
// given — and returns the entry without it.
func pvStripStamp(t *testing.T, what string, got map[string]any, caller string) map[string]any {
	t.Helper()
	if got["origin"] != "client" {
		t.Errorf("%s: origin %v, want client", what, got["origin"])
	}
	rec, err := time.Parse("2006-01-02T15:04:05.000Z", fmt.Sprint(got["recorded_at"]))
	if err != nil || time.Since(rec) > time.Minute || time.Until(rec) > time.Second {
		t.Errorf("%s: recorded_at %v is not the server's time now", what, got["recorded_at"])
	}
	if caller != "" && got["caller"] != caller {
		t.Errorf("%s: caller %v, want %s", what, got["caller"], caller)
	}
	// A chained stream's entries end with their links.
	if h, ok := got["hash"].(string); ok {
		if p, _ := got["prev_hash"].(string); len(h) != 64 || len(p) != 64 {
			t.Errorf("%s: chain fields prev_hash %q, hash %q", what, p, h)
		}
	}
	out := make(map[string]any, len(got))
	for k, v := range got {
		if !slices.Contains(pvStamped, k) && k != "hash" && k != "prev_hash" {
			out[k] = v
		}
	}
	return out
}

// pvInit starts and initialises c as a client named name/version.
func pvInit(t *testing.T, c *client.Client, name, version string) *client.Client {
	t.Helper()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: version}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

// pvStreamable is a Streamable HTTP client named name/version.
func pvStreamable(t *testing.T, base, tok, name, version string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(base+"/mcp", transport.WithHTTPHeaders(bearer(tok)), transport.WithHTTPTimeout(30*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return pvInit(t, client.NewClient(tr, opts...), name, version)
}

// pvSSE is a legacy SSE client named name/version, and its session id.
func pvSSE(t *testing.T, base, tok, name, version string) (*client.Client, string) {
	t.Helper()
	tr, err := transport.NewSSE(base+"/sse", transport.WithHeaders(bearer(tok)))
	if err != nil {
		t.Fatal(err)
	}
	c := pvInit(t, client.NewClient(tr, legacyEra), name, version)
	return c, tr.GetEndpoint().Query().Get("sessionId")
}

// pvSpawn is spawn with a client named name/version.
func pvSpawn(t *testing.T, env []string, name, version string, args ...string) *client.Client {
	t.Helper()
	p := startBinary(t, true, env, append([]string{"serve"}, args...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stderr:\n%s", p.stderr.String())
		}
	})
	return pvInit(t, stdioClient(p), name, version)
}

// pvWriteAll writes one entry to each of the four streams over c, tagged
// with workflow/session id tag, and returns the entry ids by stream.
func pvWriteAll(t *testing.T, c *client.Client, tag string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, w := range []struct{ tool, stream, args string }{
		{"audit_log", "audit_log_stream", `{"module":"m","procedure":"p","status":"ok","workflow_id":%q}`},
		{"publish_ccwj_delta", "ccwj_update_stream", `{"workflow_id":%q,"phase_id":"p","field":"f","value":1}`},
		{"submit_feedback", "user_feedback", `{"feedback":"fine","session_id":%q}`},
		{"emit_workflow_event", "workflow_events", `{"workflow_id":%q,"phase":"p","event_type":"e"}`},
	} {
		var out writeOut
		okOver(t, c, w.tool, fmt.Sprintf(w.args, tag), &out)
		ids[w.stream] = out.EntryID
	}
	return ids
}

// pvEntry is one stream entry's fields.
func pvEntry(t *testing.T, rdb *redis.Client, key, id string) map[string]any {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), key, id, id).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE %s %s: %v %v", key, id, msgs, err)
	}
	return msgs[0].Values
}

// pvWant checks the stamp of an entry: caller, session ("" = none) and client.
func pvWant(t *testing.T, what string, got map[string]any, origin, caller, session, clientName string) {
	t.Helper()
	if got["origin"] != origin || got["caller"] != caller || got["client"] != clientName {
		t.Errorf("%s: origin %v caller %v client %v; want %s, %s, %s", what, got["origin"], got["caller"], got["client"], origin, caller, clientName)
	}
	if sid, _ := got["mcp_session_id"].(string); sid != session {
		t.Errorf("%s: mcp_session_id %q, want %q", what, sid, session)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", fmt.Sprint(got["recorded_at"])); err != nil {
		t.Errorf("%s: recorded_at %v", what, got["recorded_at"])
	}
}

// Every entry of the four streams, and every call record, names who wrote
// it as the transport knows it: over stdio the OS user (or
// audit.stdio_caller), over HTTP the token's name; the MCP session where
// there is one; the client as it named itself.
func TestProvenanceOverEveryTransportNamesTheCallerTheSessionAndTheClient(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	alice, bob := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("alice", alice, "bob", bob)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	legacy := pvStreamable(t, p.base, alice, "pv-legacy", "1.0", legacyEra)
	modern := pvStreamable(t, p.base, bob, "pv-modern", "2.0")
	sse, sseID := pvSSE(t, p.base, alice, "pv-sse", "3.0")
	stdio := pvSpawn(t, nil, "pv-stdio", "4.0", "--redis-url", testredis.URL(), "--prefix", prefix)
	named := pvSpawn(t, []string{"MCP_REDIS_AUDIT_STDIO_CALLER=ci-runner"}, "pv-named", "", "--redis-url", testredis.URL(), "--prefix", prefix)
	if legacy.GetSessionId() == "" || sseID == "" {
		t.Fatalf("sessions: streamable %q, sse %q", legacy.GetSessionId(), sseID)
	}

	cases := []struct {
		name                    string
		c                       *client.Client
		caller, session, client string
	}{
		{"streamable-legacy", legacy, "alice", legacy.GetSessionId(), "pv-legacy/1.0"},
		{"streamable-modern", modern, "bob", "", "pv-modern/2.0"},
		{"sse", sse, "alice", sseID, "pv-sse/3.0"},
		{"stdio", stdio, pvOSCaller(t), "", "pv-stdio/4.0"},
		{"stdio-named", named, "ci-runner", "", "pv-named"},
	}
	for _, tc := range cases {
		ids := pvWriteAll(t, tc.c, tc.name)
		for stream, id := range ids {
			pvWant(t, tc.name+" "+stream, pvEntry(t, rdb, prefix+stream, id), "client", tc.caller, tc.session, tc.client)
		}
		// read_stream gives the stamp back.
		var page struct {
			Entries []struct {
				Fields map[string]any `json:"fields"`
			} `json:"entries"`
		}
		okOver(t, tc.c, "read_stream", fmt.Sprintf(`{"stream":"workflow_events","start":%q,"count":1}`, ids["workflow_events"]), &page)
		if len(page.Entries) != 1 {
			t.Fatalf("%s: read_stream %+v", tc.name, page)
		}
		pvWant(t, tc.name+" read_stream", page.Entries[0].Fields, "client", tc.caller, tc.session, tc.client)
	}

	// The server's records of those calls carry the same, with origin server.
	seen := map[string]int{}
	for _, m := range callRecords(t, rdb, prefix) {
		wf, _ := m.Values["workflow_id"].(string)
		sid, _ := m.Values["session_id"].(string)
		for _, tc := range cases {
			if wf == tc.name || sid == tc.name {
				seen[tc.name]++
				pvWant(t, tc.name+" call record of "+fmt.Sprint(m.Values["procedure"]), m.Values, "server", tc.caller, tc.session, tc.client)
			}
		}
	}
	for _, tc := range cases {
		// audit_log's own call is its entry: three records each.
		if seen[tc.name] != 3 {
			t.Errorf("%s: %d call records, want 3", tc.name, seen[tc.name])
		}
	}
	noSecretUnder(t, rdb, prefix, alice, bob)
}

// No argument can set or spoof a stamped field, nor write as the server.
func TestProvenanceCannotBeSetBySpoofingArguments(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("mallory", tok), "MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	overHTTP := pvStreamable(t, p.base, tok, "pv-spoof", "1", legacyEra)
	overStdio := pvSpawn(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "pv-spoof", "1", "--redis-url", testredis.URL(), "--prefix", prefix)
	writes := map[string]string{
		"audit_log":           `{"module":"m","procedure":"p","status":"ok",%s}`,
		"publish_ccwj_delta":  `{"workflow_id":"w","phase_id":"p","field":"f","value":1,%s}`,
		"submit_feedback":     `{"feedback":"fine",%s}`,
		"emit_workflow_event": `{"workflow_id":"w","phase":"p","event_type":"e",%s}`,
	}
	spoofs := map[string]string{"caller": `"alice"`, "mcp_session_id": `"mcp-session-x"`, "client": `"claude/1"`,
		"recorded_at": `"2020-01-01T00:00:00.000Z"`, "origin": `"server"`}
	for via, c := range map[string]*client.Client{"http": overHTTP, "stdio": overStdio} {
		for tool, format := range writes {
			for name, v := range spoofs {
				res := callOver(t, c, tool, fmt.Sprintf(format, fmt.Sprintf("%q:%s", name, v)))
				if msg := resultText(res); !res.IsError || !strings.Contains(msg, name+": is set by the server") {
					t.Errorf("%s %s with %s: %v %s", via, tool, name, res.IsError, msg)
				}
			}
		}
		res := callOver(t, c, "audit_log", `{"module":"mcp-redis","procedure":"read_stream","status":"ok"}`)
		if msg := resultText(res); !res.IsError || !strings.HasPrefix(msg, "invalid arguments: module:") {
			t.Errorf("%s: audit_log as the server's module: %s", via, msg)
		}
	}
	nothingWritten(t, rdb, prefix)
}

// Every tool's call record says what happened, identifying the action,
// and the whole audit stream never holds a lock's token — also when the
// records keep all the arguments.
func TestCallRecordsOfTheTenToolsIdentifyTheActionAndNeverHoldALockToken(t *testing.T) {
	needsFull(t, "starts the binary")
	for _, mode := range []string{"identifying", "all"} {
		t.Run(mode, func(t *testing.T) {
			rdb, prefix := testredis.Shared(t)
			c := pvSpawn(t, []string{"MCP_REDIS_AUDIT_RECORD_ARGUMENTS=" + mode}, "pv-records", "1", "--redis-url", testredis.URL(), "--prefix", prefix)
			var w writeOut
			okOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok","log_id":"L1"}`, &w)
			callOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"error","log_id":"L1"}`) // a conflict: recorded
			okOver(t, c, "publish_ccwj_delta", `{"workflow_id":"wf","phase_id":"p","field":"f","value":{"secret_payload":"x"},"event_id":"D1"}`, &w)
			okOver(t, c, "submit_feedback", `{"feedback":"payload text","event_id":"F1"}`, &w)
			okOver(t, c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"e","event_id":"W1"}`, &w)
			var page map[string]any
			okOver(t, c, "read_stream", `{"stream":"workflow_events","count":3}`, &page)
			okOver(t, c, "get_context", `{"workflow_id":"wf"}`, &page)
			var a acquireOut
			okOver(t, c, "acquire_lock", `{"resource":"pv/r","owner":"agent-1"}`, &a)
			okOver(t, c, "extend_lock", fmt.Sprintf(`{"resource":"pv/r","token":%q,"ttl_ms":9000}`, a.Token), &page)
			okOver(t, c, "release_lock", fmt.Sprintf(`{"resource":"pv/r","token":%q}`, a.Token), &page)
			okOver(t, c, "check_rate", `{"subject":"s1"}`, &page)
			okOver(t, c, "claim_events", `{"stream":"workflow_events","group":"g","consumer":"c","from":"0","count":5}`, &page)
			okOver(t, c, "ack_events", `{"stream":"workflow_events","group":"g","ids":["1-0"]}`, &page)
			okOver(t, c, "stream_info", `{"stream":"workflow_events"}`, &page)

			want := map[string]struct{ inputs, outputs []string }{
				"audit_log":           {[]string{"module", "procedure", "status", "log_id"}, nil},
				"publish_ccwj_delta":  {[]string{"workflow_id", "phase_id", "field", "event_id"}, []string{"stream", "entry_id", "event_id", "duplicate"}},
				"submit_feedback":     {[]string{"event_id"}, []string{"stream", "entry_id", "event_id", "duplicate"}},
				"emit_workflow_event": {[]string{"workflow_id", "phase", "event_type", "event_id"}, []string{"stream", "entry_id", "event_id", "duplicate"}},
				"read_stream":         {[]string{"stream", "count"}, []string{"entries", "scanned"}},
				"get_context":         {[]string{"workflow_id"}, []string{"last_delta_id"}},
				"acquire_lock":        {[]string{"resource", "owner"}, []string{"acquired", "fencing_token", "expires_at"}},
				"extend_lock":         {[]string{"resource", "ttl_ms"}, []string{"extended", "expires_at"}},
				"release_lock":        {[]string{"resource"}, []string{"released"}},
				"check_rate":          {[]string{"subject", "policy", "cost"}, []string{"allowed", "remaining"}},
				"claim_events":        {[]string{"stream", "group", "consumer", "from", "count"}, []string{"entries", "reclaimed", "dead_lettered", "created", "first_id", "last_id"}},
				"ack_events":          {[]string{"stream", "group", "ids"}, []string{"acked", "not_pending"}},
				"stream_info":         {[]string{"stream"}, []string{"length", "groups", "dead_letters"}},
			}
			recs := callRecords(t, rdb, prefix)
			seen := map[string]bool{}
			for _, m := range recs {
				tool := fmt.Sprint(m.Values["procedure"])
				seen[tool] = true
				wt, ok := want[tool]
				if !ok {
					t.Errorf("record of %s", tool)
					continue
				}
				if m.Values["origin"] != "server" || m.Values["duration_ms"] == nil || m.Values["caller"] != pvOSCaller(t) || m.Values["client"] != "pv-records/1" {
					t.Errorf("%s record %v", tool, m.Values)
				}
				var in, out map[string]any
				_ = json.Unmarshal([]byte(fmt.Sprint(m.Values["inputs"])), &in)
				_ = json.Unmarshal([]byte(fmt.Sprint(m.Values["outputs"])), &out)
				for _, k := range wt.inputs {
					if _, ok := in[k]; !ok {
						t.Errorf("%s record inputs %v lack %s", tool, in, k)
					}
				}
				for _, k := range wt.outputs {
					if _, ok := out[k]; !ok {
						t.Errorf("%s record outputs %v lack %s", tool, out, k)
					}
				}
				_, hasValue := in["value"]
				_, hasFeedback := in["feedback"]
				if (hasValue || hasFeedback) != (mode == "all") && (tool == "publish_ccwj_delta" || tool == "submit_feedback") {
					t.Errorf("%s with record_arguments %s: inputs %v", tool, mode, in)
				}
				if tool == "audit_log" && (m.Values["status"] != "error" || m.Values["error_code"] != "conflict") {
					t.Errorf("audit_log record %v, want the conflict", m.Values)
				}
			}
			if len(seen) != len(want) {
				t.Errorf("records of %d tools, want %d: %v", len(seen), len(want), seen)
			}
			// The whole audit stream, every field and value.
			all, err := rdb.XRange(context.Background(), prefix+"audit_log_stream", "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range all {
				for k, v := range m.Values {
					if strings.Contains(k+fmt.Sprint(v), a.Token) {
						t.Errorf("the audit stream holds the lock token: %s=%.200v", k, v)
					}
				}
			}
		})
	}
}

// A caller's timestamp is stored in the server's form; one too far ahead
// is refused naming it.
func TestATimestampIsNormalisedAndBoundedByTheClockSkewOverStdio(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	c := pvSpawn(t, []string{"MCP_REDIS_AUDIT_MAX_CLOCK_SKEW=1h"}, "pv-ts", "1", "--redis-url", testredis.URL(), "--prefix", prefix)
	var w writeOut
	okOver(t, c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"e","timestamp":"2026-12-01T12:00:00+02:00"}`, &w)
	if got := pvEntry(t, rdb, prefix+"workflow_events", w.EntryID)["timestamp"]; got != "2026-12-01T10:00:00.000Z" {
		t.Errorf("stored timestamp %v, want 2026-12-01T10:00:00.000Z", got)
	}
	ahead := time.Now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	res := callOver(t, c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"late","timestamp":"`+ahead+`"}`)
	if msg := resultText(res); !res.IsError || !strings.HasPrefix(msg, "invalid arguments: timestamp:") || !strings.Contains(msg, "max_clock_skew") {
		t.Errorf("2h ahead with a 1h skew: %s", msg)
	}
	if n := rdb.XLen(context.Background(), prefix+"workflow_events").Val(); n != 1 {
		t.Errorf("workflow_events holds %d entries, want 1", n)
	}
	okOver(t, c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"soon","timestamp":"`+time.Now().Add(30*time.Minute).UTC().Format(time.RFC3339)+`"}`, &w)
}

package main_test

// read_stream's waiting reads (block_ms, start $), time bounds and
// filters, through the built binary: over stdio, over Streamable HTTP,
// and on a Redis Cluster as the least-privilege ACL user. Each server
// names its Redis connections (?client_name=), so a test finds its waits'
// connections ("<name>:wait") in CLIENT LIST, blocked or gone.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// rwEnv is one test's Redis: the shared one under a prefix of its own,
// and the connection name its servers use.
type rwEnv struct {
	t      *testing.T
	admin  redis.UniversalClient
	prefix string
	name   string
	url    string
}

func newRWEnv(t *testing.T) *rwEnv {
	t.Helper()
	admin, prefix := testredis.Shared(t)
	e := &rwEnv{t: t, admin: admin, prefix: prefix, name: "t-rw-" + testredis.Random(4)}
	sep := "?"
	if strings.Contains(testredis.URL(), "?") {
		sep = "&"
	}
	e.url = testredis.URL() + sep + "client_name=" + e.name
	return e
}

// args are a server's flags for e's Redis and prefix.
func (e *rwEnv) args() []string { return []string{"--redis-url", e.url, "--prefix", e.prefix} }

// waitConns counts the connections of the servers' waits, on every node
// admin reaches, and how many of them are blocked in XREAD.
func (e *rwEnv) waitConns() (all, blocked int) {
	e.t.Helper()
	count := func(ctx context.Context, c *redis.Client) error {
		list, err := c.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		for line := range strings.SplitSeq(list, "\n") {
			f := strings.Fields(line)
			if !slices.Contains(f, "name="+e.name+":wait") {
				continue
			}
			all++
			for _, kv := range f {
				if flags, ok := strings.CutPrefix(kv, "flags="); ok && strings.Contains(flags, "b") && slices.Contains(f, "cmd=xread") {
					blocked++
				}
			}
		}
		return nil
	}
	ctx := context.Background()
	var err error
	switch c := e.admin.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, count)
	case *redis.Client:
		err = count(ctx, c)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return all, blocked
}

// untilBlocked waits until n waits are blocked in Redis.
func (e *rwEnv) untilBlocked(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, b := e.waitConns()
		if b >= n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d waits never blocked in Redis (%d are)", n, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// untilNoWaitConns waits until Redis holds no connection of a wait.
func (e *rwEnv) untilNoWaitConns(why string) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		all, _ := e.waitConns()
		if all == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: Redis still holds %d connections of waits", why, all)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type rwCall struct {
	res *mcp.CallToolResult
	err error
	at  time.Time
}

// rwStart calls a tool on its own goroutine.
func rwStart(ctx context.Context, c *client.Client, tool, arguments string) <-chan rwCall {
	done := make(chan rwCall, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = tool
		req.Params.Arguments = json.RawMessage(arguments)
		res, err := c.CallTool(ctx, req)
		done <- rwCall{res, err, time.Now()}
	}()
	return done
}

// rwPage is read_stream's answer.
type rwPage struct {
	Entries []struct {
		ID     string         `json:"id"`
		Fields map[string]any `json:"fields"`
	} `json:"entries"`
	Next     string `json:"next"`
	Scanned  int    `json:"scanned"`
	TimedOut bool   `json:"timed_out"`
	WaitedMS int64  `json:"waited_ms"`
}

func (p rwPage) ids() []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.ID)
	}
	return out
}

// page decodes a read_stream answer that must not be an error.
func (d rwCall) page(t *testing.T) rwPage {
	t.Helper()
	if d.err != nil {
		t.Fatalf("read_stream: %v", d.err)
	}
	if d.res.IsError {
		t.Fatalf("read_stream is a tool error: %s", resultText(d.res))
	}
	var p rwPage
	if err := json.Unmarshal(d.res.RawStructuredContent, &p); err != nil {
		t.Fatalf("read_stream answer %s: %v", d.res.RawStructuredContent, err)
	}
	return p
}

func readOver(t *testing.T, c *client.Client, arguments string) rwPage {
	t.Helper()
	return (<-rwStart(context.Background(), c, "read_stream", arguments)).page(t)
}

// entryID writes with tool and returns the entry id.
func entryID(t *testing.T, c *client.Client, tool, arguments string) string {
	t.Helper()
	var out struct {
		EntryID string `json:"entry_id"`
	}
	okOver(t, c, tool, arguments, &out)
	return out.EntryID
}

func TestReadStreamOverStdioWaitsUntilAMatchingEntryNotOneThatDoesNotMatch(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	srv := spawn(t, nil, e.args()...)
	done := rwStart(context.Background(), srv.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":20000,"workflow_id":"wf"}`)
	e.untilBlocked(1)
	entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"other","phase":"p","event_type":"e"}`)
	select {
	case d := <-done:
		t.Fatalf("the wait ended on an entry that does not match: %v %s", d.err, resultText(d.res))
	case <-time.After(300 * time.Millisecond):
	}
	if _, blocked := e.waitConns(); blocked != 1 {
		t.Fatalf("after the non-matching entry %d waits are blocked in Redis; want 1, still waiting", blocked)
	}
	want := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"e"}`)
	p := (<-done).page(t)
	if !slices.Equal(p.ids(), []string{want}) || p.TimedOut || p.Scanned != 2 || p.Next != "("+want {
		t.Fatalf("the wait answered %+v; want [%s], not timed out, 2 scanned, next (%s", p, want, want)
	}
	if p.Entries[0].Fields["workflow_id"] != "wf" {
		t.Errorf("entry fields = %v", p.Entries[0].Fields)
	}
	e.untilNoWaitConns("after the wait answered")

	// A wait that runs out says so, and where to go on from.
	p = readOver(t, srv.c, `{"stream":"workflow_events","start":"$","block_ms":300}`)
	if !p.TimedOut || len(p.Entries) != 0 || p.Next != "("+want {
		t.Fatalf("a wait that runs out = %+v; want timed_out, no entries, next (%s", p, want)
	}
}

// The latency from a write to the answer of the read waiting for it,
// through the binary over stdio, over 100 waits each blocked in Redis
// first. Logged, not asserted.
func TestReadStreamOverStdioWakeLatency(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	srv := spawn(t, nil, e.args()...)
	ctx := context.Background()
	var direct, tool []time.Duration
	for i := range 100 {
		done := rwStart(ctx, srv.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":20000}`)
		e.untilBlocked(1)
		t0 := time.Now()
		if i%2 == 0 {
			// Another program's XADD.
			if err := e.admin.XAdd(ctx, &redis.XAddArgs{Stream: e.prefix + "workflow_events", Values: []string{"workflow_id", "wf"}}).Err(); err != nil {
				t.Fatal(err)
			}
		} else {
			// A write of another call to the same server.
			rwStart(ctx, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"e"}`)
		}
		d := <-done
		if p := d.page(t); len(p.Entries) != 1 {
			t.Fatalf("wait %d answered %+v", i, p)
		}
		if i%2 == 0 {
			direct = append(direct, d.at.Sub(t0))
		} else {
			tool = append(tool, d.at.Sub(t0))
		}
		e.untilNoWaitConns("after a wait answered")
	}
	all := append(slices.Clone(direct), tool...)
	for _, l := range [][]time.Duration{direct, tool, all} {
		slices.Sort(l)
	}
	pct := func(l []time.Duration, p int) time.Duration { return l[(len(l)-1)*p/100] }
	t.Logf("write → answer of the waiting read_stream over stdio: all 100: p50 %v p99 %v max %v; XADD by another client (50): p50 %v p99 %v; emit_workflow_event on the same server (50, from the call's start): p50 %v p99 %v",
		pct(all, 50), pct(all, 99), all[len(all)-1], pct(direct, 50), pct(direct, 99), pct(tool, 50), pct(tool, 99))
}

func TestReadStreamOverStdioCancelledWaitsEndAtOnceAndFreeTheirConnections(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	srv := spawn(t, nil, e.args()...)
	// More cancelled waits, one after another, than may wait at once.
	for i := range 2*stream.MaxWaiters + 1 {
		ctx, cancel := context.WithCancel(context.Background())
		done := rwStart(ctx, srv.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":30000}`)
		e.untilBlocked(1)
		cancel() // the client sends notifications/cancelled
		if d := <-done; d.err == nil {
			t.Fatalf("round %d: the cancelled call answered %s", i, resultText(d.res))
		}
		e.untilNoWaitConns(fmt.Sprintf("round %d, after the cancel", i))
	}
	// None of them holds a place: a new wait is not refused, and works.
	done := rwStart(context.Background(), srv.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":20000}`)
	e.untilBlocked(1)
	want := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"e"}`)
	if p := (<-done).page(t); !slices.Equal(p.ids(), []string{want}) {
		t.Fatalf("the wait after the cancelled ones = %+v", p)
	}
	// And the server's pool is fine: an ordinary call answers.
	readOver(t, srv.c, `{"stream":"workflow_events","count":1}`)
}

func TestReadStreamOverStdioStartNowAndRFC3339Bounds(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	srv := spawn(t, nil, e.args()...)
	a := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"a"}`)
	// $ without a wait: nothing yet, and the cursor after a.
	p := readOver(t, srv.c, `{"stream":"workflow_events","start":"$"}`)
	if len(p.Entries) != 0 || p.Next != "("+a {
		t.Fatalf("start $ = %+v; want nothing and next (%s", p, a)
	}
	time.Sleep(5 * time.Millisecond) // b in a later millisecond than a
	b := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"b"}`)
	if p := readOver(t, srv.c, fmt.Sprintf(`{"stream":"workflow_events","start":%q}`, p.Next)); !slices.Equal(p.ids(), []string{b}) {
		t.Fatalf("reading on from next = %v, want [%s]", p.ids(), b)
	}

	// Times: a's millisecond as a start holds a; as an end, a too; the
	// millisecond after it as a start, only b.
	at := func(id string, plusMS int64) string {
		ms, _, _ := strings.Cut(id, "-")
		n, _ := strconv.ParseInt(ms, 10, 64)
		return time.UnixMilli(n + plusMS).UTC().Format(time.RFC3339Nano)
	}
	atZone := func(id, offset string) string {
		ms, _, _ := strings.Cut(id, "-")
		n, _ := strconv.ParseInt(ms, 10, 64)
		z, _ := time.Parse("-07:00", offset)
		return time.UnixMilli(n).In(z.Location()).Format(time.RFC3339Nano)
	}
	for _, c := range []struct {
		args string
		want []string
	}{
		{fmt.Sprintf(`{"stream":"workflow_events","start":%q}`, at(a, 0)), []string{a, b}},
		{fmt.Sprintf(`{"stream":"workflow_events","start":%q}`, at(a, 1)), []string{b}},
		{fmt.Sprintf(`{"stream":"workflow_events","end":%q}`, at(a, 0)), []string{a}},
		{fmt.Sprintf(`{"stream":"workflow_events","start":%q,"end":%q}`, at(a, 0), at(a, 0)), []string{a}},
		{fmt.Sprintf(`{"stream":"workflow_events","end":%q,"reverse":true}`, at(b, 0)), []string{b, a}},
		// The same instant with an offset.
		{fmt.Sprintf(`{"stream":"workflow_events","start":%q,"end":%q}`, atZone(a, "+02:00"), atZone(a, "-05:30")), []string{a}},
	} {
		if got := readOver(t, srv.c, c.args).ids(); !slices.Equal(got, c.want) {
			t.Errorf("read_stream %s = %v, want %v", c.args, got, c.want)
		}
	}
	// An end in the future, with a wait: the next entry answers it.
	done := rwStart(context.Background(), srv.c, "read_stream",
		fmt.Sprintf(`{"stream":"workflow_events","start":"$","end":%q,"block_ms":20000}`, time.Now().Add(time.Hour).Format(time.RFC3339)))
	e.untilBlocked(1)
	c := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"c"}`)
	if p := (<-done).page(t); !slices.Equal(p.ids(), []string{c}) {
		t.Fatalf("a wait with a future end = %+v, want [%s]", p, c)
	}
	// An end in the past, with a wait: nothing can come, it answers at once.
	p = readOver(t, srv.c, fmt.Sprintf(`{"stream":"workflow_events","start":"$","end":%q,"block_ms":20000}`, at(a, 0)))
	if len(p.Entries) != 0 || p.TimedOut {
		t.Fatalf("a wait with a past end = %+v; want no entries, not timed out", p)
	}
}

// rwFilters are the filters of each stream: every identifying field of
// its entries, and caller (the server's stamp).
var rwFilters = map[string][]string{
	"audit_log_stream":   {"module", "procedure", "status", "workflow_id", "session_id", "user_id", "caller"},
	"ccwj_update_stream": {"workflow_id", "phase_id", "caller"},
	"user_feedback":      {"workflow_id", "phase_id", "session_id", "user_id", "module", "procedure", "caller"},
	"workflow_events":    {"workflow_id", "phase", "event_type", "caller"},
}

var rwAllFilters = []string{"event_type", "phase", "phase_id", "module", "status", "procedure", "workflow_id", "session_id", "user_id", "caller"}

func TestReadStreamOverStdioFiltersEveryIdentifyingFieldOfItsStream(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	off := "MCP_REDIS_AUDIT_TOOL_CALLS=false" // only the entries written here
	alice := spawn(t, []string{off, "MCP_REDIS_AUDIT_STDIO_CALLER=alice"}, e.args()...)
	bob := spawn(t, []string{off, "MCP_REDIS_AUDIT_STDIO_CALLER=bob"}, e.args()...)
	writes := func(v string) map[string]string {
		return map[string]string{
			"audit_log_stream":   fmt.Sprintf(`{"module":"%[1]s-module","procedure":"%[1]s-procedure","status":"%[1]s-status","workflow_id":"%[1]s-workflow_id","session_id":"%[1]s-session_id","user_id":"%[1]s-user_id"}`, v),
			"ccwj_update_stream": fmt.Sprintf(`{"workflow_id":"%[1]s-workflow_id","phase_id":"%[1]s-phase_id","field":"f","value":1}`, v),
			"user_feedback":      fmt.Sprintf(`{"feedback":"fb","workflow_id":"%[1]s-workflow_id","phase_id":"%[1]s-phase_id","session_id":"%[1]s-session_id","user_id":"%[1]s-user_id","module":"%[1]s-module","procedure":"%[1]s-procedure"}`, v),
			"workflow_events":    fmt.Sprintf(`{"workflow_id":"%[1]s-workflow_id","phase":"%[1]s-phase","event_type":"%[1]s-event_type"}`, v),
		}
	}
	tools := map[string]string{"audit_log_stream": "audit_log", "ccwj_update_stream": "publish_ccwj_delta", "user_feedback": "submit_feedback", "workflow_events": "emit_workflow_event"}
	xs := map[string]string{}
	for s, a := range writes("x") {
		xs[s] = entryID(t, alice.c, tools[s], a)
	}
	for s, a := range writes("y") {
		entryID(t, bob.c, tools[s], a)
	}
	for s, have := range rwFilters {
		for _, f := range rwAllFilters {
			v := "x-" + f
			if f == "caller" {
				v = "alice"
			}
			arguments := fmt.Sprintf(`{"stream":%q,%q:%q}`, s, f, v)
			if slices.Contains(have, f) {
				p := readOver(t, alice.c, arguments)
				if !slices.Equal(p.ids(), []string{xs[s]}) || p.Entries[0].Fields[f] != v {
					t.Errorf("%s = %v; want only [%s], whose %s is %s", arguments, p.ids(), xs[s], f, v)
				}
				continue
			}
			// A filter the stream has no field for: an error naming both.
			res := callOver(t, alice.c, "read_stream", arguments)
			if !res.IsError || !strings.Contains(resultText(res), f) || !strings.Contains(resultText(res), s) {
				t.Errorf("%s = %s; want a tool error naming %s and %s", arguments, resultText(res), f, s)
			}
		}
	}
	// Filters combine, and a waiting read filters what arrives.
	done := rwStart(context.Background(), alice.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":20000,"caller":"bob","phase":"x-phase"}`)
	e.untilBlocked(1)
	entryID(t, alice.c, "emit_workflow_event", `{"workflow_id":"w","phase":"x-phase","event_type":"e"}`) // alice's
	entryID(t, bob.c, "emit_workflow_event", `{"workflow_id":"w","phase":"y-phase","event_type":"e"}`)   // not the phase
	want := entryID(t, bob.c, "emit_workflow_event", `{"workflow_id":"w","phase":"x-phase","event_type":"e"}`)
	if p := (<-done).page(t); !slices.Equal(p.ids(), []string{want}) || p.Scanned != 3 {
		t.Fatalf("a wait for bob's x-phase events = %+v; want [%s] after 3 scanned", p, want)
	}
}

func TestReadStreamOverStdioBadWaitsAreToolErrorsNamingTheFieldAndTouchNothing(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	srv := spawn(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_STREAMS_MAX_BLOCK=1500ms"}, e.args()...)
	ctx := context.Background()
	list, err := srv.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		if tool.Name != "read_stream" {
			continue
		}
		if !strings.Contains(tool.Description, "at most 1500 ms") {
			t.Errorf("read_stream's description does not state the block cap in force: %s", tool.Description)
		}
		raw, _ := json.Marshal(tool.InputSchema.Properties["block_ms"])
		if !strings.Contains(string(raw), `"maximum":1500`) {
			t.Errorf("read_stream's schema does not bound block_ms by streams.max_block: %s", raw)
		}
	}
	for _, c := range []struct{ args, field string }{
		{`{"stream":"workflow_events","block_ms":-1}`, "block_ms"},
		{`{"stream":"workflow_events","block_ms":1501}`, "block_ms"},
		{`{"stream":"workflow_events","block_ms":30000}`, "block_ms"},
		{`{"stream":"workflow_events","block_ms":1.5}`, "block_ms"},
		{`{"stream":"workflow_events","block_ms":"100"}`, "block_ms"},
		{`{"stream":"workflow_events","block_ms":100,"reverse":true}`, "block_ms"},
		{`{"stream":"workflow_events","start":"$","reverse":true}`, "start"},
		{`{"stream":"workflow_events","end":"$"}`, "end"},
		{`{"stream":"workflow_events","start":"yesterday","block_ms":100}`, "start"},
		{`{"stream":"workflow_events","start":"2026-13-45T00:00:00Z"}`, "start"},
		{`{"stream":"workflow_events","end":"2026-01-02 03:04:05"}`, "end"},
		{`{"stream":"workflow_events","start":"(2026-01-02T03:04:05Z"}`, "start"},
		{`{"stream":"workflow_events","start":"1969-12-31T23:59:59Z"}`, "start"},
		{`{"stream":"audit_log_stream","event_type":"x","block_ms":100}`, "event_type"},
		{`{"stream":"workflow_events","caller":""}`, "caller"},
		{`{"stream":"workflow_events","phase":"a\nb"}`, "phase"},
	} {
		res := callOver(t, srv.c, "read_stream", c.args)
		if !res.IsError || !strings.Contains(resultText(res), c.field) {
			t.Errorf("read_stream %s = %s; want a tool error naming %s", c.args, resultText(res), c.field)
		}
	}
	// Nothing reached Redis: no key under the prefix, no wait's connection.
	keys, err := e.admin.Keys(ctx, e.prefix+"*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("after the bad calls, keys under the prefix: %v %v", keys, err)
	}
	if all, _ := e.waitConns(); all != 0 {
		t.Errorf("after the bad calls, %d wait connections", all)
	}
	// The cap in force is the configured one: 1500 ms is allowed.
	p := readOver(t, srv.c, `{"stream":"workflow_events","start":"$","block_ms":1500}`)
	if !p.TimedOut {
		t.Errorf("a wait of the cap = %+v; want timed out", p)
	}
}

func TestReadStreamOverStreamableHTTPWaitsAndEndsWithTheClient(t *testing.T) {
	needsFull(t, "starts the binary")
	e := newRWEnv(t)
	tok := newToken()
	srv := startHTTP(t, []string{tokensEnv("agent", tok)}, e.args()...)
	reader, writer := dialStreamable(t, srv.base, tok), dialStreamable(t, srv.base, tok)

	done := rwStart(context.Background(), reader, "read_stream", `{"stream":"user_feedback","start":"$","block_ms":20000,"caller":"agent"}`)
	e.untilBlocked(1)
	want := entryID(t, writer, "submit_feedback", `{"feedback":"good"}`)
	p := (<-done).page(t)
	if !slices.Equal(p.ids(), []string{want}) || p.Entries[0].Fields["caller"] != "agent" {
		t.Fatalf("the wait over HTTP answered %+v; want [%s] by agent", p, want)
	}

	// The client gives up mid-wait: the wait ends and frees its connection.
	for i := range 5 {
		ctx, cancel := context.WithCancel(context.Background())
		done := rwStart(ctx, reader, "read_stream", `{"stream":"user_feedback","start":"$","block_ms":30000}`)
		e.untilBlocked(1)
		cancel()
		if d := <-done; d.err == nil {
			t.Fatalf("round %d: the cancelled call answered %s", i, resultText(d.res))
		}
		e.untilNoWaitConns(fmt.Sprintf("round %d, after the HTTP client gave up", i))
	}
	p = readOver(t, reader, `{"stream":"user_feedback","start":"$","block_ms":200}`)
	if !p.TimedOut {
		t.Fatalf("a wait over HTTP that runs out = %+v", p)
	}
}

func TestReadStreamWaitsOnAClusterAsTheLeastPrivilegeUser(t *testing.T) {
	needsFull(t, "starts a real cluster")
	t.Parallel()
	c := testredis.StartCluster(t, testredis.ClusterOptions{ReplicasPerMaster: -1, Args: topoACLUser})
	name := "t-rw-" + testredis.Random(4)
	url := topoWithUser(c.URL(), "mcp", "pass")
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	e := &rwEnv{t: t, admin: c.Client(t), name: name}
	srv := spawn(t, topoEnv(url+sep+"client_name="+name, nil))
	// Each stream's waits go to the master of its slot; one has an end,
	// which asks Redis's TIME.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, w := range []struct{ tool, stream, filter, args string }{
		{"emit_workflow_event", "workflow_events", `"workflow_id":"wf","end":"` + future + `"`, `{"workflow_id":"wf","phase":"p","event_type":"e"}`},
		{"submit_feedback", "user_feedback", `"session_id":"s"`, `{"feedback":"good","session_id":"s"}`},
		{"publish_ccwj_delta", "ccwj_update_stream", `"workflow_id":"wf"`, `{"workflow_id":"wf","phase_id":"p","field":"f","value":1}`},
		{"audit_log", "audit_log_stream", `"module":"m"`, `{"module":"m","procedure":"p","status":"ok"}`},
	} {
		done := rwStart(context.Background(), srv.c, "read_stream", fmt.Sprintf(`{"stream":%q,"start":"$","block_ms":20000,%s}`, w.stream, w.filter))
		e.untilBlocked(1)
		want := entryID(t, srv.c, w.tool, w.args)
		if p := (<-done).page(t); !slices.Equal(p.ids(), []string{want}) {
			t.Fatalf("%s: the wait on the cluster = %+v, want [%s]", w.stream, p, want)
		}
		e.untilNoWaitConns(w.stream)
	}
}

func TestReadStreamWaitsBehindSentinelOnTheMaster(t *testing.T) {
	needsFull(t, "starts a real sentinel topology")
	t.Parallel()
	sn := testredis.StartSentinel(t, testredis.SentinelOptions{})
	name := "t-rw-" + testredis.Random(4)
	e := &rwEnv{t: t, admin: sn.Client(t), name: name}
	srv := spawn(t, topoEnv(sn.URL()+"&client_name="+name, nil))
	done := rwStart(context.Background(), srv.c, "read_stream", `{"stream":"workflow_events","start":"$","block_ms":20000,"event_type":"done"}`)
	e.untilBlocked(1)
	entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"started"}`)
	want := entryID(t, srv.c, "emit_workflow_event", `{"workflow_id":"wf","phase":"p","event_type":"done"}`)
	if p := (<-done).page(t); !slices.Equal(p.ids(), []string{want}) || p.Scanned != 2 {
		t.Fatalf("the wait behind sentinel = %+v, want [%s] after 2 scanned", p, want)
	}
	e.untilNoWaitConns("after the wait answered")
}

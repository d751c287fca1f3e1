package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests drive the MCP resources through the binary: resources/list
// and templates, a read of each resource, and subscriptions — resources/
// subscribe (2025-11-25) over stdio, Streamable HTTP and SSE, and
// subscriptions/listen (2026-07-28) over stdio and Streamable HTTP.

// updates collects the URIs of the notifications/resources/updated a
// client is sent.
type updates struct {
	mu   sync.Mutex
	uris []string
	meta []map[string]any
	ch   chan struct{}
}

func watchUpdates(c *client.Client) *updates {
	u := &updates{ch: make(chan struct{}, 1)}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != mcp.MethodNotificationResourceUpdated {
			return
		}
		uri, _ := n.Params.AdditionalFields["uri"].(string)
		u.mu.Lock()
		u.uris = append(u.uris, uri)
		u.meta = append(u.meta, n.Params.Meta)
		u.mu.Unlock()
		select {
		case u.ch <- struct{}{}:
		default:
		}
	})
	return u
}

func (u *updates) count(uri string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := 0
	for _, x := range u.uris {
		if x == uri {
			n++
		}
	}
	return n
}

func (u *updates) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.uris)
}

// await waits until uri has been told more than n times.
func (u *updates) await(t *testing.T, uri string, n int, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for u.count(uri) <= n {
		select {
		case <-u.ch:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no notifications/resources/updated for %s within %v (told: %v)", uri, within, u.all())
		}
	}
}

// quietFor fails when uri is told of more than n times within d.
func (u *updates) quietFor(t *testing.T, uri string, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := u.count(uri); got > n {
		t.Errorf("%s told %d times; want %d (all: %v)", uri, got, n, u.all())
	}
}

// spawnLegacy starts `mcp-redis serve args…` over stdio and initialises
// mcp-go's client in the 2025-11-25 era, where resources/subscribe is.
func spawnLegacy(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return spawnWith(t, []client.ClientOption{legacyEra}, env, args...)
}

// readResource reads uri, which must be one JSON content, and decodes it.
func readResource(t *testing.T, c *client.Client, uri string) map[string]any {
	t.Helper()
	text := readText(t, c, uri)
	var out map[string]any
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("read %s: %q: %v", uri, text, err)
	}
	return out
}

func readText(t *testing.T, c *client.Client, uri string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(ctx, req)
	if err != nil {
		t.Fatalf("read %s: %v", uri, err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("read %s: %d contents", uri, len(res.Contents))
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.MIMEType != "application/json" || tc.URI != uri {
		t.Fatalf("read %s: content %#v; want JSON text of that URI", uri, res.Contents[0])
	}
	return tc.Text
}

func readFails(t *testing.T, c *client.Client, uri string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.ReadResourceRequest{}
	req.Params.URI = uri
	res, err := c.ReadResource(ctx, req)
	if err == nil {
		t.Fatalf("read %s answered %v; want an error", uri, res)
	}
	return err
}

func subscribe(t *testing.T, c *client.Client, uris ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, uri := range uris {
		req := mcp.SubscribeRequest{}
		req.Params.URI = uri
		//lint:ignore SA1019 the 2025-11-25 era (resources/subscribe, the GET stream) is tested on purpose.
		if err := c.Subscribe(ctx, req); err != nil {
			t.Fatalf("subscribe %s: %v", uri, err)
		}
	}
}

func unsubscribe(t *testing.T, c *client.Client, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := mcp.UnsubscribeRequest{}
	req.Params.URI = uri
	//lint:ignore SA1019 the 2025-11-25 era (resources/subscribe, the GET stream) is tested on purpose.
	if err := c.Unsubscribe(ctx, req); err != nil {
		t.Fatalf("unsubscribe %s: %v", uri, err)
	}
}

// A host lists the four streams as resources and the rest as templates, all
// JSON, and reads each: a stream's newest entries and an entry as
// read_stream decodes them, a workflow's context as get_context answers
// it, its entries across the streams, and a lock with its holder, ttl and
// fencing token but never its token. A URI that names nothing is a
// JSON-RPC error that names the part at fault.
func TestResourcesAreListedAndReadAsTheToolsAnswer(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	srv := spawnLegacy(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := srv.c
	ctx := context.Background()

	list, err := c.ListResources(ctx, mcp.ListResourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var uris []string
	for _, r := range list.Resources {
		uris = append(uris, r.URI)
		if r.URI == "ui://mcp-redis/dashboard" {
			// The MCP App (dashboard_test.go): HTML, not JSON.
			continue
		}
		if r.MIMEType != "application/json" || r.Description == "" {
			t.Errorf("resource %+v: want JSON and a description", r)
		}
	}
	slices.Sort(uris)
	if got := strings.Join(uris, " "); got != "mcp-redis://streams/audit_log_stream mcp-redis://streams/ccwj_update_stream mcp-redis://streams/user_feedback mcp-redis://streams/workflow_events ui://mcp-redis/dashboard" {
		t.Errorf("resources = %s", got)
	}
	tpls, err := c.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var forms []string
	for _, tp := range tpls.ResourceTemplates {
		forms = append(forms, tp.URITemplate.Raw())
		if tp.MIMEType != "application/json" {
			t.Errorf("template %s: mimeType %q", tp.URITemplate.Raw(), tp.MIMEType)
		}
	}
	slices.Sort(forms)
	if got := strings.Join(forms, " "); got != "mcp-redis://locks/{+resource} mcp-redis://streams/{stream} mcp-redis://streams/{stream}/{entry_id} "+
		"mcp-redis://workflows/{workflow_id}/context mcp-redis://workflows/{workflow_id}/events" {
		t.Errorf("templates = %s", got)
	}
	comp, err := c.Complete(ctx, mcp.CompleteRequest{Params: mcp.CompleteParams{
		Ref: mcp.ResourceReference{Type: "ref/resource", URI: "mcp-redis://streams/{stream}/{entry_id}"}, Argument: mcp.CompleteArgument{Name: "stream", Value: "u"}}})
	if err != nil || fmt.Sprint(comp.Completion.Values) != "[user_feedback]" {
		t.Errorf("completion of stream u…: %+v %v", comp, err)
	}

	// Entries of one millisecond have no order across streams: the writes
	// are a few ms apart.
	var audit, delta, event writeOut
	must(t, srv, "audit_log", args(`{"module":"planner","procedure":"draft","status":"ok","inputs":{"n":[1,2]},"workflow_id":"wf/1","log_id":"R-1"}`), &audit)
	time.Sleep(3 * time.Millisecond)
	must(t, srv, "publish_ccwj_delta", args(`{"workflow_id":"wf/1","phase_id":"plan","field":"steps","value":{"n":3}}`), &delta)
	time.Sleep(3 * time.Millisecond)
	must(t, srv, "emit_workflow_event", args(`{"workflow_id":"wf/1","phase":"plan","event_type":"phase_completed","details":"done"}`), &event)
	must(t, srv, "submit_feedback", args(`{"feedback":"good","session_id":"s1","user_id":"u1","module":"planner","procedure":"draft"}`), nil)
	must(t, srv, "emit_workflow_event", args(`{"workflow_id":"other","phase":"plan","event_type":"phase_started"}`), nil)

	// A stream: the newest entries, newest first, as read_stream decodes them.
	var page struct {
		Entries []map[string]any `json:"entries"`
	}
	must(t, srv, "read_stream", args(`{"stream":"audit_log_stream","reverse":true,"count":20}`), &page)
	st := readResource(t, c, "mcp-redis://streams/audit_log_stream")
	if st["stream"] != "audit_log_stream" || st["key"] != prefix+"audit_log_stream" || st["limit"] != float64(20) {
		t.Errorf("stream resource %v", st)
	}
	if got, want := mustJSON(st["entries"]), mustJSON(page.Entries); got != want {
		t.Errorf("the stream resource's entries\n%s\nare not read_stream's (reverse)\n%s", got, want)
	}

	// An entry.
	en := readResource(t, c, "mcp-redis://streams/audit_log_stream/"+audit.EntryID)
	if entry, _ := en["entry"].(map[string]any); entry["id"] != audit.EntryID || mustJSON(entry) != mustJSON(page.Entries[0]) {
		t.Errorf("the entry resource %v; want read_stream's %v", en, page.Entries[0])
	}

	// A workflow's context, as get_context answers it.
	var gc map[string]any
	must(t, srv, "get_context", args(`{"workflow_id":"wf/1"}`), &gc)
	cx := readResource(t, c, "mcp-redis://workflows/wf%2F1/context")
	if mustJSON(cx["context"]) != mustJSON(gc["context"]) || cx["last_delta_id"] != gc["last_delta_id"] || cx["updated_at"] != gc["updated_at"] || cx["workflow_id"] != "wf/1" {
		t.Errorf("the context resource %v; get_context %v", cx, gc)
	}

	// A workflow's entries across the streams, newest first, and only its.
	ev := readResource(t, c, "mcp-redis://workflows/wf%2F1/events")
	var got []string
	for _, e := range ev["entries"].([]any) {
		m := e.(map[string]any)
		got = append(got, m["stream"].(string)+"/"+m["id"].(string))
	}
	want := []string{"workflow_events/" + event.EntryID, "ccwj_update_stream/" + delta.EntryID, "audit_log_stream/" + audit.EntryID}
	if fmt.Sprint(got) != fmt.Sprint(want) || ev["more"] != false {
		t.Errorf("the workflow's events %v (more %v); want %v", got, ev["more"], want)
	}

	// A lock: holder, fencing token, ttl; never the token.
	var grant acquireOut
	must(t, srv, "acquire_lock", args(`{"resource":"db/1","owner":"agent-7","ttl_ms":60000}`), &grant)
	text := readText(t, c, "mcp-redis://locks/db/1")
	var lk map[string]any
	_ = json.Unmarshal([]byte(text), &lk)
	if lk["held"] != true || lk["owner"] != "agent-7" || lk["fencing_token"] != float64(grant.FencingToken) || lk["key"] != prefix+"locks:db/1" {
		t.Errorf("the lock resource %v; the grant %+v", lk, grant)
	}
	if ttl, _ := lk["ttl_ms"].(float64); ttl <= 50000 || ttl > 60000 || lk["expires_at"] == nil {
		t.Errorf("the lock's ttl_ms %v, expires_at %v", lk["ttl_ms"], lk["expires_at"])
	}
	if strings.Contains(text, grant.Token) {
		t.Errorf("the lock resource shows the token: %s", text)
	}
	if again := readResource(t, c, "mcp-redis://locks/db%2F1"); again["resource"] != "db/1" || again["held"] != true {
		t.Errorf("the same lock, its / encoded: %v", again)
	}
	must(t, srv, "release_lock", map[string]any{"resource": "db/1", "token": grant.Token}, nil)
	if free := readResource(t, c, "mcp-redis://locks/db/1"); free["held"] != false || free["last_fencing_token"] != float64(grant.FencingToken) || free["owner"] != nil {
		t.Errorf("the lock once released %v", free)
	}

	// A URI that names nothing says which part is at fault.
	for _, tc := range []struct{ uri, part string }{
		{"mcp-redis://streams/nope", `stream: "nope" is not one of the server's streams`},
		{"mcp-redis://streams/audit_log_stream/12x", `entry_id: "12x" is not a stream entry id`},
		{"mcp-redis://workflows/wf%0A1/context", "workflow_id"},
		{"mcp-redis://workflows/wf1/phases", "a workflow's resources are"},
		{"mcp-redis://locks/a%20b", `resource: "a b" may hold only letters`},
		{"mcp-redis://queues/q", `names no resource of the server ("queues")`},
	} {
		if err := readFails(t, c, tc.uri); !strings.Contains(err.Error(), tc.part) || !strings.Contains(err.Error(), tc.uri) {
			t.Errorf("read %s: %v; want it to name %q and the URI", tc.uri, err, tc.part)
		}
	}
	if err := readFails(t, c, "mcp-redis://streams/audit_log_stream/1-0"); !strings.Contains(err.Error(), `entry_id: "1-0" is not in `+prefix+"audit_log_stream") {
		t.Errorf("read of an entry not in the stream: %v", err)
	}
	if err := readFails(t, c, "file:///etc/passwd"); !strings.Contains(err.Error(), "not found") {
		t.Errorf("read of another scheme: %v", err)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Over stdio a subscriber is told of each change of what it follows — an
// appended entry, a context field set, a lock acquired, released and
// expired — and of nothing it does not follow; once it unsubscribes it is
// told no more.
func TestOverStdioASubscriberIsToldOfEachChangeUntilItUnsubscribes(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	srv := spawnLegacy(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	// Writes come from another process, as another agent's would.
	other := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	u := watchUpdates(srv.c)
	const (
		stream  = "mcp-redis://streams/workflow_events"
		context = "mcp-redis://workflows/wf-s/context"
		events  = "mcp-redis://workflows/wf-s/events"
		lock    = "mcp-redis://locks/db-s"
		elsewhr = "mcp-redis://workflows/wf-other/context"
	)
	subscribe(t, srv.c, stream, context, events, lock, elsewhr)

	must(t, other, "emit_workflow_event", args(`{"workflow_id":"wf-s","phase":"plan","event_type":"phase_started"}`), nil)
	u.await(t, stream, 0, 5*time.Second)
	u.await(t, events, 0, 5*time.Second)

	must(t, other, "publish_ccwj_delta", args(`{"workflow_id":"wf-s","phase_id":"plan","field":"steps","value":[1]}`), nil)
	u.await(t, context, 0, 5*time.Second)
	u.await(t, events, 1, 5*time.Second)
	if cx := readResource(t, srv.c, context); mustJSON(cx["context"]) != `{"plan":{"steps":[1]}}` {
		t.Errorf("the context re-read after the notice: %v", cx["context"])
	}

	var grant acquireOut
	must(t, other, "acquire_lock", args(`{"resource":"db-s","ttl_ms":60000}`), &grant)
	u.await(t, lock, 0, 5*time.Second)
	must(t, other, "release_lock", map[string]any{"resource": "db-s", "token": grant.Token}, nil)
	u.await(t, lock, 1, 5*time.Second)
	// An expiry announces nothing: the server reads the lock again when its
	// ttl runs out.
	must(t, other, "acquire_lock", args(`{"resource":"db-s","ttl_ms":400}`), nil)
	u.await(t, lock, 2, 5*time.Second)
	start := time.Now()
	u.await(t, lock, 3, 5*time.Second)
	if took := time.Since(start); took < 200*time.Millisecond {
		t.Errorf("the expiry was told %v after the grant's notice; the ttl was 400ms", took)
	}
	if lk := readResource(t, srv.c, lock); lk["held"] != false {
		t.Errorf("the lock after its expiry notice: %v", lk)
	}
	if got := u.count(elsewhr); got != 0 {
		t.Errorf("a workflow nobody wrote to was told %d times", got)
	}

	for _, uri := range []string{stream, context, events, lock} {
		unsubscribe(t, srv.c, uri)
	}
	before := map[string]int{}
	for _, uri := range []string{stream, context, events, lock} {
		before[uri] = u.count(uri)
	}
	must(t, other, "publish_ccwj_delta", args(`{"workflow_id":"wf-s","phase_id":"plan","field":"steps","value":[2]}`), nil)
	must(t, other, "acquire_lock", args(`{"resource":"db-s","ttl_ms":300}`), nil)
	time.Sleep(600 * time.Millisecond)
	for uri, n := range before {
		if got := u.count(uri); got != n {
			t.Errorf("%s told %d more times after it was unsubscribed", uri, got-n)
		}
	}
}

// Over Streamable HTTP (with its GET stream) and SSE, in the 2025-11-25
// era, a subscriber is told of an entry appended by another client, and
// of nothing once it unsubscribes.
func TestOverStreamableHTTPAndSSEASubscriberIsToldOfAnAppend(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci-bot", tok), "MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	writer := dialStreamable(t, p.base, tok)
	for _, tc := range []struct {
		name string
		dial func() *client.Client
	}{
		{"streamable-http", func() *client.Client {
			//lint:ignore SA1019 the 2025-11-25 era (resources/subscribe, the GET stream) is tested on purpose.
			return dialStreamableWith(t, p.base, tok, []transport.StreamableHTTPCOption{transport.WithContinuousListening()}, legacyEra)
		}},
		{"sse", func() *client.Client { return dialSSELegacy(t, p.base, tok) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial()
			u := watchUpdates(c)
			const uri = "mcp-redis://streams/user_feedback"
			subscribe(t, c, uri)
			time.Sleep(100 * time.Millisecond) // the GET stream opens in the background
			var out writeOut
			okOver(t, writer, "submit_feedback", `{"feedback":"`+tc.name+`","session_id":"s","user_id":"u","module":"m","procedure":"p"}`, &out)
			u.await(t, uri, 0, 5*time.Second)
			st := readResource(t, c, uri)
			if e := st["entries"].([]any); len(e) == 0 || e[0].(map[string]any)["id"] != out.EntryID {
				t.Errorf("the stream re-read after the notice does not start with the new entry %s: %v", out.EntryID, st)
			}
			unsubscribe(t, c, uri)
			n := u.count(uri)
			okOver(t, writer, "submit_feedback", `{"feedback":"after","session_id":"s","user_id":"u","module":"m","procedure":"p"}`, &out)
			u.quietFor(t, uri, n, 400*time.Millisecond)
		})
	}
}

// A subscriber that never takes its notifications — a Streamable HTTP
// session with no stream open — does not hold up another subscriber of the
// same resources, and when it reads at last it is told each resource once
// or twice (one notice queued, one pending), not once per change.
func TestASlowSubscriberDoesNotStallAnother(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	slow := &badHTTPDriver{p: p}
	if a := slow.send(t, `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"slow","version":"1"}}}`, nil, true); slow.session == "" {
		t.Fatalf("initialize: %s", a)
	}
	slow.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, nil, false)
	const n = 100 // the most one session may hold
	uri := func(i int) string { return fmt.Sprintf("mcp-redis://workflows/wf-%d/context", i) }
	for i := range n {
		a := slow.send(t, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"resources/subscribe","params":{"uri":%q}}`, i+1, uri(i)), nil, true)
		if len(a.msgs) == 0 || a.msgs[len(a.msgs)-1].Error != nil {
			t.Fatalf("subscribe %s: %s", uri(i), a)
		}
	}
	if a := slow.send(t, `{"jsonrpc":"2.0","id":"over","method":"resources/subscribe","params":{"uri":"mcp-redis://streams/user_feedback"}}`, nil, true); !strings.Contains(a.raw, "too many subscriptions") {
		t.Errorf("a subscription over the bound: %s", a)
	}

	fast := dialSSELegacy(t, p.base, "")
	u := watchUpdates(fast)
	subscribe(t, fast, uri(0), uri(n-1))
	const rounds = 3
	for r := range rounds {
		for i := range n {
			okOver(t, fast, "publish_ccwj_delta", fmt.Sprintf(`{"workflow_id":"wf-%d","phase_id":"p","field":"f","value":%d}`, i, r), &writeOut{})
		}
		// Each round is told to the fast subscriber while the slow one
		// holds a full queue.
		u.await(t, uri(0), r, 5*time.Second)
		u.await(t, uri(n-1), r, 5*time.Second)
	}

	// The slow session opens its stream at last.
	req, err := http.NewRequest(http.MethodGet, p.base+"/mcp", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Mcp-Session-Id", slow.session)
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	told := map[string]int{}
	buf := make([]byte, 64<<10)
	var rest string
	for ctx.Err() == nil {
		k, err := res.Body.Read(buf)
		rest += string(buf[:k])
		for {
			line, more, ok := strings.Cut(rest, "\n")
			if !ok {
				break
			}
			rest = more
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				var m struct {
					Method string `json:"method"`
					Params struct {
						URI string `json:"uri"`
					} `json:"params"`
				}
				if json.Unmarshal([]byte(d), &m) == nil && m.Method == mcp.MethodNotificationResourceUpdated {
					told[m.Params.URI]++
				}
			}
		}
		if err != nil {
			break
		}
	}
	total := 0
	for i := range n {
		c := told[uri(i)]
		total += c
		if c < 1 || c > 2 {
			t.Errorf("the slow subscriber was told of %s %d times after %d changes; want once or twice", uri(i), c, rounds)
		}
	}
	t.Logf("the slow subscriber, reading at last, was told %d notices for %d changes", total, n*rounds)
}

// In the 2026-07-28 era a client opens a subscriptions/listen stream: over
// stdio every notifications/resources/updated on it carries the stream's
// subscription id (the listen request's id), and ends with the stream.
func TestOverStdioAListenStreamTagsEachUpdateWithItsSubscriptionID(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	p := startRawStdio(t, 64, quietEnv, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)
	other := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"listen","version":"1"}}`
	send := func(s string) {
		if _, err := fmt.Fprintln(p.stdin, s); err != nil {
			t.Fatal(err)
		}
	}
	next := func(what string) map[string]any {
		t.Helper()
		select {
		case line, ok := <-p.lines:
			if !ok {
				t.Fatalf("stdout closed waiting for %s\nstderr:\n%s", what, p.stderr.String())
			}
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("%s: %q", what, line)
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s within 5s", what)
			return nil
		}
	}
	const uri = "mcp-redis://workflows/wf-l/context"
	send(`{"jsonrpc":"2.0","id":"sub-1","method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["` + uri + `"]},` + meta + `}}`)
	ack := next("the acknowledgement")
	if ack["method"] != "notifications/subscriptions/acknowledged" || !strings.Contains(mustJSON(ack), `"io.modelcontextprotocol/subscriptionId":"sub-1"`) {
		t.Fatalf("first message %v; want the acknowledgement tagged sub-1", ack)
	}
	must(t, other, "publish_ccwj_delta", args(`{"workflow_id":"wf-l","phase_id":"p","field":"f","value":1}`), nil)
	up := next("the update")
	if up["method"] != mcp.MethodNotificationResourceUpdated || mustJSON(up["params"]) != `{"_meta":{"io.modelcontextprotocol/subscriptionId":"sub-1"},"uri":"`+uri+`"}` {
		t.Errorf("update %v", up)
	}

	// A URI that names nothing refuses the stream, naming the part.
	send(`{"jsonrpc":"2.0","id":"sub-2","method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["mcp-redis://streams/nope"]},` + meta + `}}`)
	if bad := next("the refusal"); bad["id"] != "sub-2" || !strings.Contains(mustJSON(bad["error"]), `stream: \"nope\"`) {
		t.Errorf("a listen of a bad URI: %v", bad)
	}

	send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"sub-1"}}`)
	time.Sleep(200 * time.Millisecond)
	must(t, other, "publish_ccwj_delta", args(`{"workflow_id":"wf-l","phase_id":"p","field":"f","value":2}`), nil)
	select {
	case line := <-p.lines:
		if strings.Contains(string(line), "resources/updated") {
			t.Errorf("an update after the stream was cancelled: %s", line)
		}
	case <-time.After(400 * time.Millisecond):
	}
}

// In the 2026-07-28 era over Streamable HTTP (and SSE), a client's
// subscriptions/listen stream carries notifications/resources/updated,
// each tagged with the stream's subscription id; closing the stream ends
// them.
func TestOverHTTPAListenStreamCarriesTheUpdates(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	// A short http.write_timeout (the bound of every POST): the listen
	// stream outlives it.
	p := startHTTP(t, []string{tokensEnv("ci-bot", tok), "MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_HTTP_WRITE_TIMEOUT=2s",
		"MCP_REDIS_LOCKS_MAX_WAIT=500ms", "MCP_REDIS_STREAMS_MAX_BLOCK=500ms", "MCP_REDIS_REDIS_TIMEOUT=1s"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	writer := dialStreamable(t, p.base, tok, legacyEra)
	for _, tc := range []struct {
		name string
		dial func() *client.Client
	}{
		{"streamable-http", func() *client.Client { return dialStreamable(t, p.base, tok) }},
		{"sse", func() *client.Client { return dialSSE(t, p.base, tok) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.dial()
			if c.ProtocolVersion() != mcp.ProtocolVersion20260728 {
				t.Skipf("negotiated %s, not the 2026-07-28 era", c.ProtocolVersion())
			}
			u := watchUpdates(c)
			uri := "mcp-redis://workflows/wf-" + tc.name + "/context"
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- c.Listen(ctx, mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}}) }()
			time.Sleep(2500 * time.Millisecond) // past http.write_timeout
			okOver(t, writer, "publish_ccwj_delta", `{"workflow_id":"wf-`+tc.name+`","phase_id":"p","field":"f","value":1}`, &writeOut{})
			u.await(t, uri, 0, 5*time.Second)
			u.mu.Lock()
			tag := u.meta[0][mcp.MetaKeySubscriptionID]
			u.mu.Unlock()
			if tag == nil {
				t.Errorf("the update carries no subscription id: %v", u.meta[0])
			}
			cancel()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("Listen did not end when its context was cancelled")
			}
			if tc.name == "sse" {
				// mcp-go's client cancels nothing over HTTP (it counts on
				// the request's own stream ending, which an SSE request
				// has not): the listen ends with the session, or with a
				// notifications/cancelled (as over stdio).
				return
			}
			time.Sleep(300 * time.Millisecond)
			n := u.count(uri)
			okOver(t, writer, "publish_ccwj_delta", `{"workflow_id":"wf-`+tc.name+`","phase_id":"p","field":"f","value":2}`, &writeOut{})
			u.quietFor(t, uri, n, 400*time.Millisecond)
		})
	}
}

// On a Cluster, as the least-privilege user, a subscriber is told of an
// append and of a lock's grant and release, with plain pub/sub (SUBSCRIBE
// on one node hears every PUBLISH) and with sharded pub/sub (an SSUBSCRIBE
// per channel, each on its shard).
func TestTopologyClusterSubscribersAreToldPlainAndSharded(t *testing.T) {
	needsFull(t, "starts a real cluster")
	rule := strings.Fields(leastPrivilege + " +cluster|slots")
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Args: append([]string{"--user", "agent"}, rule...)})
	url := strings.Replace(cl.URL(), "redis+cluster://", "redis+cluster://agent:pass@", 1)
	for _, tc := range []struct {
		name string
		env  []string
	}{{"plain", nil}, {"sharded", []string{"MCP_REDIS_REDIS_SHARDED_PUBSUB=true"}}} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"MCP_REDIS_REDIS_URL=" + url, "MCP_REDIS_AUDIT_TOOL_CALLS=false"}, tc.env...)
			srv := spawnLegacy(t, env)
			other := spawn(t, env)
			u := watchUpdates(srv.c)
			streams := []string{"audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"}
			lock := "mcp-redis://locks/db-" + tc.name
			for _, s := range streams {
				subscribe(t, srv.c, "mcp-redis://streams/"+s)
			}
			subscribe(t, srv.c, lock)
			must(t, other, "audit_log", args(`{"module":"m","procedure":"p","status":"ok"}`), nil)
			must(t, other, "publish_ccwj_delta", args(`{"workflow_id":"wf","phase_id":"p","field":"f","value":1}`), nil)
			must(t, other, "submit_feedback", args(`{"feedback":"ok","session_id":"s","user_id":"u","module":"m","procedure":"p"}`), nil)
			must(t, other, "emit_workflow_event", args(`{"workflow_id":"wf","phase":"p","event_type":"phase_started"}`), nil)
			for _, s := range streams {
				u.await(t, "mcp-redis://streams/"+s, 0, 5*time.Second)
			}
			var grant acquireOut
			must(t, other, "acquire_lock", args(`{"resource":"db-`+tc.name+`","ttl_ms":60000}`), &grant)
			u.await(t, lock, 0, 5*time.Second)
			must(t, other, "release_lock", map[string]any{"resource": "db-" + tc.name, "token": grant.Token}, nil)
			u.await(t, lock, 1, 5*time.Second)
		})
	}
}

// The official TypeScript SDK client lists the resources and templates,
// subscribes to a stream, is told of the entry it appends, reads the stream
// back and unsubscribes, over Streamable HTTP and over HTTP+SSE
// (e2e/node/resources.mjs).
func TestNodeSDKClientSubscribesToAResourceOverStreamableHTTPAndSSE(t *testing.T) {
	needsFull(t, "runs the Node SDK client against the binary")
	dir := nodeE2EDir(t)
	_, prefix := testredis.Shared(t)
	token := testredis.Random(24)
	srv := startHTTP(t, []string{"MCP_REDIS_HTTP_AUTH_TOKENS=node-e2e=" + token, "MCP_REDIS_AUDIT_TOOL_CALLS=false"},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	for _, tr := range []struct{ name, path string }{{"streamable", "/mcp"}, {"sse", "/sse"}} {
		t.Run(tr.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "resources.mjs"), "--url", srv.base+tr.path, "--transport", tr.name)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "MCP_REDIS_TOKEN="+token)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()
			var rep struct {
				OK        bool     `json:"ok"`
				Resources []string `json:"resources"`
				Templates []string `json:"templates"`
				Updated   []string `json:"updated"`
				Failures  []string `json:"failures"`
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil || runErr != nil || !rep.OK {
				t.Fatalf("resources.mjs over %s (%v, %v): %s\nstderr:\n%s\nserver stderr:\n%s", tr.name, runErr, err, stdout.String(), stderr.String(), srv.stderr.String())
			}
			if len(rep.Resources) != 5 || len(rep.Templates) != 5 || !slices.Contains(rep.Updated, "mcp-redis://streams/workflow_events") {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

// A stateless server has no session to send updates to: resources/
// subscribe is refused, saying what to do instead; reads still work.
func TestAStatelessServerRefusesResourcesSubscribe(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, []string{"MCP_REDIS_HTTP_STATELESS=true", "MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, "", legacyEra)
	req := mcp.SubscribeRequest{}
	req.Params.URI = "mcp-redis://streams/audit_log_stream"
	//lint:ignore SA1019 the 2025-11-25 era (resources/subscribe, the GET stream) is tested on purpose.
	if err := c.Subscribe(context.Background(), req); err == nil || !strings.Contains(err.Error(), "stateless") || !strings.Contains(err.Error(), "subscriptions/listen") {
		t.Errorf("subscribe on a stateless server: %v; want a refusal naming subscriptions/listen", err)
	}
	if st := readResource(t, c, "mcp-redis://streams/audit_log_stream"); st["stream"] != "audit_log_stream" {
		t.Errorf("read on a stateless server: %v", st)
	}

	// A subscriptions/listen stream needs no session: it is the POST's own
	// answer.
	modern := dialStreamable(t, p.base, "")
	u := watchUpdates(modern)
	const uri = "mcp-redis://streams/audit_log_stream"
	stop, err := modern.ListenAsync(context.Background(), mcp.SubscriptionFilter{ResourceSubscriptions: []string{uri}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	time.Sleep(300 * time.Millisecond)
	okOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok"}`, &writeOut{})
	u.await(t, uri, 0, 5*time.Second)
}

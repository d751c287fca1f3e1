package main_test

// The dashboard's server side through the real binary and the real Redis:
// the page and its security, the read-only calls, the live event stream
// (order, filters, catch-up, a slow page dropped), and the MCP App. The
// page itself is driven in a browser by dashboard_browser_test.go.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name string
	data string
}

// openLive opens /ui/api/live?query with the token and returns its events
// on a channel (closed when the stream ends) and a func that closes it.
func openLive(t *testing.T, base, tok, query string) (<-chan sseEvent, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ui/api/live?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("live?%s: %d %s", query, res.StatusCode, b)
	}
	out := make(chan sseEvent, 1024)
	go func() {
		defer close(out)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	t.Cleanup(cancel)
	return out, cancel
}

// nextEntries waits for entries events until n entry ids have come, and
// returns the ids in order.
func nextEntries(t *testing.T, events <-chan sseEvent, n int, within time.Duration) []string {
	t.Helper()
	var ids []string
	deadline := time.After(within)
	for len(ids) < n {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("the stream ended after %d of %d entries: %v", len(ids), n, ids)
			}
			if ev.name != "entries" {
				continue
			}
			var e struct {
				Entries []struct {
					ID     string         `json:"id"`
					Fields map[string]any `json:"fields"`
				} `json:"entries"`
			}
			if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
				t.Fatalf("entries %q: %v", ev.data, err)
			}
			for _, x := range e.Entries {
				ids = append(ids, x.ID)
			}
		case <-deadline:
			t.Fatalf("%d of %d entries within %v: %v", len(ids), n, within, ids)
		}
	}
	return ids
}

func emit(t *testing.T, c interface {
	CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
}, workflow, eventType string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		req := mcp.CallToolRequest{}
		req.Params.Name = "emit_workflow_event"
		req.Params.Arguments = map[string]any{"workflow_id": workflow, "phase": "build", "event_type": eventType,
			"details": fmt.Sprintf("step %d", i)}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := c.CallTool(ctx, req)
		cancel()
		if err != nil || res.IsError {
			t.Fatalf("emit_workflow_event: %v %s", err, resultText(res))
		}
		var out struct {
			EntryID string `json:"entry_id"`
		}
		_ = json.Unmarshal(res.RawStructuredContent, &out)
		ids = append(ids, out.EntryID)
	}
	return ids
}

func TestDashboardPagesAndTheirSecurity(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ops", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)

	res, _ := p.get(t, "/ui", nil)
	if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/ui/" {
		t.Errorf("/ui: %d at %s, want the page at /ui/", res.StatusCode, res.Request.URL.Path)
	}
	for _, path := range []string{"/ui/", "/ui/app.js", "/ui/app.css"} {
		res, body := p.get(t, path, nil)
		if res.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("%s without a token: %d (the page holds no data: it is served to show the token form)", path, res.StatusCode)
		}
		if !res.Uncompressed {
			t.Errorf("%s was not gzipped for a client that takes gzip", path)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: Content-Security-Policy %q lacks %s", path, csp, want)
			}
		}
	}
	res, _ = p.get(t, "/ui/secret.txt", nil)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("/ui/secret.txt: %d, want 404", res.StatusCode)
	}
	call := "/ui/api/call?name=show_dashboard"
	for _, c := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"a wrong token", bearer(newToken()), http.StatusUnauthorized},
		{"the token", bearer(tok), http.StatusOK},
		{"the token from a foreign Origin", map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://evil.example"}, http.StatusForbidden},
	} {
		res, body := p.get(t, call, c.header)
		if res.StatusCode != c.want {
			t.Errorf("%s with %s: %d %s, want %d", call, c.name, res.StatusCode, body, c.want)
		}
		if c.want == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s with %s: no Bearer challenge", call, c.name)
		}
	}
	res, _ = p.get(t, "/ui/api/live", map[string]string{"Origin": "http://evil.example"})
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("/ui/api/live from a foreign Origin: %d, want 403", res.StatusCode)
	}
	// A foreign Host (DNS rebinding), sent raw: net/http sets Host from
	// the URL.
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /ui/ HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n")
	status, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	if !strings.Contains(status, " 403 ") && !strings.Contains(status, " 421 ") {
		t.Errorf("/ui/ with Host evil.example (DNS rebinding): %q, want it refused", strings.TrimSpace(status))
	}

	// The dashboard calls only its read-only tools, and writes nothing.
	for _, c := range []struct {
		query string
		want  int
		says  string
	}{
		{"name=audit_log&arguments=" + url.QueryEscape(`{"log_id":"x","module":"m","procedure":"p","status":"ok"}`), http.StatusForbidden, "may call only"},
		{"name=read_stream&arguments=" + url.QueryEscape(`{"stream":"workflow_events","count":0}`), http.StatusBadRequest, "count"},
		{"name=read_stream&arguments=" + url.QueryEscape(`{"stream":"user_feedback","event_type":"w"}`), http.StatusBadRequest, "event_type"},
		{"name=get_context&arguments=" + url.QueryEscape(`{"workflow_id":"nothing-here"}`), http.StatusOK, "workflow_id"},
		{"name=read_stream&oops=1", http.StatusBadRequest, "oops"},
	} {
		res, body := p.get(t, "/ui/api/call?"+c.query, bearer(tok))
		if res.StatusCode != c.want || !strings.Contains(body, c.says) {
			t.Errorf("api/call?%s: %d %s, want %d naming %s", c.query, res.StatusCode, body, c.want, c.says)
		}
	}
	for _, c := range []struct{ query, says string }{
		{"tail=nowhere", "tail"},
		{"tail=user_feedback&event_type=w", "event_type"},
		{"tail=workflow_events&after=yesterday", "after"},
		{"workflow_id=w", "workflow_id"},
		{"workflow=" + strings.Repeat("w", 300), "workflow"},
	} {
		res, body := p.get(t, "/ui/api/live?"+c.query, bearer(tok))
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, c.says) {
			t.Errorf("api/live?%s: %d %s, want 400 naming %s", c.query, res.StatusCode, body, c.says)
		}
	}
}

func TestDashboardIsOffWithHTTPUIFalse(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, []string{"MCP_REDIS_HTTP_UI=false"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, path := range []string{"/ui/", "/ui/api/call?name=show_dashboard", "/ui/api/live"} {
		if res, _ := p.get(t, path, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s with http.ui false: %d, want 404", path, res.StatusCode)
		}
	}
	// The tool and the App stay: they are MCP, not the listener's page.
	c := dialStreamable(t, p.base, "")
	var ov struct {
		Streams []any `json:"streams"`
	}
	okOver(t, c, "show_dashboard", `{}`, &ov)
	if len(ov.Streams) != 4 {
		t.Errorf("show_dashboard: %d streams, want 4", len(ov.Streams))
	}
}

func TestDashboardOverviewShowsLocksRatesAndCounts(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, "")
	var grant struct {
		Token        string `json:"token"`
		FencingToken int64  `json:"fencing_token"`
	}
	okOver(t, c, "acquire_lock", `{"resource":"repo/main","ttl_ms":30000,"owner":"agent-7"}`, &grant)
	for range 40 {
		okOver(t, c, "check_rate", `{"subject":"agent-7"}`, &map[string]any{})
	}
	emit(t, c, "wf-1", "started", 3)

	res, body := p.get(t, "/ui/api/call?name=show_dashboard", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("show_dashboard: %d %s", res.StatusCode, body)
	}
	if strings.Contains(body, grant.Token) {
		t.Fatalf("the overview shows the lock's token: %s", body)
	}
	var ov struct {
		Result struct {
			Server struct {
				RedisOK bool `json:"redis_ok"`
			} `json:"server"`
			Streams []struct {
				Name      string  `json:"name"`
				Length    int64   `json:"length"`
				PerMinute []int64 `json:"per_minute"`
			} `json:"streams"`
			Locks []struct {
				Resource     string `json:"resource"`
				Owner        string `json:"owner"`
				FencingToken int64  `json:"fencing_token"`
				TTLMS        int64  `json:"ttl_ms"`
			} `json:"locks"`
			Rates []struct {
				Subject string `json:"subject"`
				Used    int64  `json:"used"`
				Limit   int64  `json:"limit"`
			} `json:"rates"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(body), &ov); err != nil {
		t.Fatal(err)
	}
	o := ov.Result
	if !o.Server.RedisOK {
		t.Errorf("redis_ok false")
	}
	if len(o.Locks) != 1 || o.Locks[0].Resource != "repo/main" || o.Locks[0].Owner != "agent-7" || o.Locks[0].FencingToken != grant.FencingToken ||
		o.Locks[0].TTLMS <= 0 || o.Locks[0].TTLMS > 30000 {
		t.Errorf("locks %+v, want repo/main held by agent-7 with fencing token %d", o.Locks, grant.FencingToken)
	}
	if len(o.Rates) != 1 || o.Rates[0].Subject != "agent-7" || o.Rates[0].Used != 40 || o.Rates[0].Limit != 60 {
		t.Errorf("rates %+v, want agent-7 at 40 of 60", o.Rates)
	}
	for _, s := range o.Streams {
		if s.Name == "workflow_events" {
			last := s.PerMinute[len(s.PerMinute)-1] + s.PerMinute[len(s.PerMinute)-2]
			if s.Length != 3 || last != 3 {
				t.Errorf("workflow_events: length %d, per_minute %v; want 3 entries this minute", s.Length, s.PerMinute)
			}
		}
	}

	// Released, the lock leaves the overview (the cached one is dropped
	// on the release notice).
	okOver(t, c, "release_lock", fmt.Sprintf(`{"resource":"repo/main","token":%q}`, grant.Token), &map[string]any{})
	deadline := time.Now().Add(3 * time.Second)
	for {
		_, body := p.get(t, "/ui/api/call?name=show_dashboard", nil)
		if strings.Contains(body, `"locks":[]`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the released lock is still in the overview: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestDashboardLiveTailDeliversEveryMatchingEntryInOrder(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ops", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, tok)

	all, _ := openLive(t, p.base, tok, "tail=workflow_events")
	only, _ := openLive(t, p.base, tok, "tail=workflow_events&event_type=done&workflow_id=wf-2")
	wf, _ := openLive(t, p.base, tok, "workflow=wf-2")
	time.Sleep(200 * time.Millisecond)

	a := emit(t, c, "wf-1", "started", 5)
	b := emit(t, c, "wf-2", "done", 3)
	d := emit(t, c, "wf-2", "started", 2)
	want := append(append(append([]string{}, a...), b...), d...)
	if got := nextEntries(t, all, len(want), 5*time.Second); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the unfiltered tail got %v, want %v", got, want)
	}
	if got := nextEntries(t, only, len(b), 5*time.Second); strings.Join(got, " ") != strings.Join(b, " ") {
		t.Errorf("the filtered tail got %v, want %v", got, b)
	}
	sawWorkflow := false
	for !sawWorkflow {
		select {
		case ev := <-wf:
			sawWorkflow = ev.name == "workflow" && strings.Contains(ev.data, "wf-2")
		case <-time.After(5 * time.Second):
			t.Fatal("no workflow event for wf-2 within 5s")
		}
	}

	// A page that reconnects with after= the newest id it has gets what
	// was added meanwhile, then what comes.
	more := emit(t, c, "wf-3", "started", 4)
	again, _ := openLive(t, p.base, tok, "tail=workflow_events&after="+url.QueryEscape(want[len(want)-1]))
	later := emit(t, c, "wf-3", "started", 2)
	wantAgain := append(append([]string{}, more...), later...)
	if got := nextEntries(t, again, len(wantAgain), 5*time.Second); strings.Join(got, " ") != strings.Join(wantAgain, " ") {
		t.Errorf("the reconnected tail got %v, want %v", got, wantAgain)
	}
}

// A page that stops reading is dropped; the others get every entry.
func TestDashboardDropsASlowPageAndNotTheOthers(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, "")

	// The stalled page: a raw socket that never reads past the headers.
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ui/api/live?tail=workflow_events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
	good, _ := openLive(t, p.base, "", "tail=workflow_events")
	time.Sleep(200 * time.Millisecond)

	big := strings.Repeat("x", 60<<10)
	var want []string
	// 18 MB: more than the kernel holds for the stalled socket (a few
	// MiB) and the page may have waiting (8 MiB) together.
	for range 300 {
		req := mcp.CallToolRequest{}
		req.Params.Name = "emit_workflow_event"
		req.Params.Arguments = map[string]any{"workflow_id": "wf-big", "phase": "p", "event_type": "blob", "details": big}
		res, err := c.CallTool(context.Background(), req)
		if err != nil || res.IsError {
			t.Fatalf("emit: %v %s", err, resultText(res))
		}
		var out struct {
			EntryID string `json:"entry_id"`
		}
		_ = json.Unmarshal(res.RawStructuredContent, &out)
		want = append(want, out.EntryID)
	}
	if got := nextEntries(t, good, len(want), 20*time.Second); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the reading page got %d entries, not the %d written in order", len(got), len(want))
	}
	// The stalled page's stream was closed by the server: reading it now
	// ends (EOF) after less than was written.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	n, err := io.Copy(io.Discard, conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the stalled page's stream is still open after 20s (%d bytes read)", n)
	}
	if n >= int64(len(want)*len(big)) {
		t.Errorf("the stalled page got %d bytes: it was not dropped", n)
	}
	t.Logf("the stalled page was dropped after %d of ≥%d bytes", n, len(want)*len(big))
}

func TestDashboardIsAnMCPApp(t *testing.T) {
	needsFull(t, "starts the binary over stdio")
	_, prefix := testredis.Shared(t)
	s := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := s.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range list.Tools {
		if tool.Name != "show_dashboard" {
			continue
		}
		found = true
		b, _ := json.Marshal(tool)
		var def struct {
			Meta struct {
				UI struct {
					ResourceURI string `json:"resourceUri"`
				} `json:"ui"`
				Flat string `json:"ui/resourceUri"`
			} `json:"_meta"`
			Annotations struct {
				ReadOnly bool `json:"readOnlyHint"`
			} `json:"annotations"`
		}
		_ = json.Unmarshal(b, &def)
		if def.Meta.UI.ResourceURI != "ui://mcp-redis/dashboard" || def.Meta.Flat != "ui://mcp-redis/dashboard" || !def.Annotations.ReadOnly {
			t.Errorf("show_dashboard: %s, want read-only with _meta.ui.resourceUri ui://mcp-redis/dashboard", b)
		}
	}
	if !found {
		t.Fatal("no show_dashboard tool")
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "ui://mcp-redis/dashboard"
	res, err := s.c.ReadResource(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Contents) != 1 {
		t.Fatalf("%d contents", len(res.Contents))
	}
	tc, ok := res.Contents[0].(mcp.TextResourceContents)
	if !ok || tc.MIMEType != "text/html;profile=mcp-app" {
		t.Fatalf("contents %T %+v, want text/html;profile=mcp-app", res.Contents[0], res.Contents[0])
	}
	for _, want := range []string{`data-mode="app"`, "<script>", "<style>"} {
		if !strings.Contains(tc.Text, want) {
			t.Errorf("the App's HTML lacks %s", want)
		}
	}
	for _, bad := range []string{`src="http`, `href="http`, `src="app.js"`, `href="app.css"`} {
		if strings.Contains(tc.Text, bad) {
			t.Errorf("the App's HTML fetches something (%s): an App has no server to fetch from", bad)
		}
	}
	if kb := len(tc.Text) / 1024; kb > 200 {
		t.Errorf("the App is %d KiB, over 200", kb)
	}
}

// Feedback may name the workflow and phase it is about; read_stream's
// workflow_id filter, the workflow's resource and the dashboard's
// workflow view then find it.
func TestFeedbackTiedToAWorkflowIsFoundByIt(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	p := startHTTP(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, "")
	var w struct {
		EntryID string `json:"entry_id"`
	}
	okOver(t, c, "submit_feedback", `{"feedback":"the plan skipped a test","workflow_id":"wf-fb","phase_id":"plan","user_id":"u-1"}`, &w)
	okOver(t, c, "submit_feedback", `{"feedback":"unrelated"}`, &map[string]any{})

	var page struct {
		Entries []struct {
			ID     string         `json:"id"`
			Fields map[string]any `json:"fields"`
		} `json:"entries"`
	}
	okOver(t, c, "read_stream", `{"stream":"user_feedback","workflow_id":"wf-fb","phase_id":"plan"}`, &page)
	if len(page.Entries) != 1 || page.Entries[0].ID != w.EntryID || page.Entries[0].Fields["workflow_id"] != "wf-fb" {
		t.Errorf("read_stream user_feedback workflow_id wf-fb: %+v, want the one entry %s", page.Entries, w.EntryID)
	}
	req := mcp.ReadResourceRequest{}
	req.Params.URI = "mcp-redis://workflows/wf-fb/events"
	res, err := c.ReadResource(context.Background(), req)
	if err != nil || len(res.Contents) != 1 {
		t.Fatalf("resources/read %s: %v %v", req.Params.URI, res, err)
	}
	if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || !strings.Contains(tc.Text, w.EntryID) {
		t.Errorf("the workflow's entries lack the feedback %s: %+v", w.EntryID, res.Contents[0])
	}
}

package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The hostile-client cases of the HTTP service: slow bodies, connection
// and session floods, an SSE client that stops reading, sessions used by
// another token, streams without a session, and what a caller without a
// token may learn. `make attack` runs them (go test -run Attack). Every
// loop here is bounded in count and time, and every socket is on
// loopback.

// eaStatus reads a field of /proc/<pid>/status in KiB (VmRSS, VmHWM).
func eaStatus(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read /proc status: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// eaOpenSockets counts the server's open TCP sockets (its listener
// included).
func eaOpenSockets(t *testing.T, pid int) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// eaPost POSTs a JSON-RPC body to path with headers and returns the
// answer with its body.
func eaPost(t *testing.T, c *http.Client, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	return res, string(b)
}

const eaInitialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"attack","version":"1"}}}`

// eaSession opens a Streamable HTTP session with tok and returns its id.
func eaSession(t *testing.T, p *httpProc, tok string) string {
	t.Helper()
	res, body := eaPost(t, plain, p.base+"/mcp", eaInitialize, bearer(tok))
	id := res.Header.Get("Mcp-Session-Id")
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: %d %q %s", res.StatusCode, id, body)
	}
	h := eaHeader(tok, id)
	if res, body := eaPost(t, plain, p.base+"/mcp", `{"jsonrpc":"2.0","method":"notifications/initialized"}`, h); res.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", res.StatusCode, body)
	}
	return id
}

func eaHeader(tok, session string) map[string]string {
	h := bearer(tok)
	h["Mcp-Session-Id"] = session
	h["Mcp-Protocol-Version"] = "2025-11-25"
	return h
}

func eaToolCall(id int, tool, arguments string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, arguments)
}

// eaSSE is a raw legacy SSE client: it opens GET /sse and reads the
// endpoint event, then reads nothing more unless told to.
type eaSSE struct {
	conn     net.Conn
	r        *bufio.Reader
	endpoint string
}

func eaOpenSSE(t *testing.T, p *httpProc, tok string, readBuffer int) *eaSSE {
	t.Helper()
	d := net.Dialer{Control: nil}
	conn, err := d.Dial("tcp", "127.0.0.1:"+p.port)
	if err != nil {
		t.Fatal(err)
	}
	if readBuffer > 0 {
		_ = conn.(*net.TCPConn).SetReadBuffer(readBuffer)
	}
	t.Cleanup(func() { _ = conn.Close() })
	fmt.Fprintf(conn, "GET /sse HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAccept: text/event-stream\r\nAuthorization: Bearer %s\r\n\r\n", p.port, tok)
	s := &eaSSE{conn: conn, r: bufio.NewReader(conn)}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := s.r.ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("GET /sse: %q %v", status, err)
	}
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("GET /sse: no endpoint event: %v", err)
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok && strings.Contains(v, "sessionId=") {
			s.endpoint = p.base + v
			return s
		}
	}
}

// next reads the next "data:" line of the stream within d.
func (s *eaSSE) next(d time.Duration) (string, error) {
	_ = s.conn.SetReadDeadline(time.Now().Add(d))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok {
			return strings.TrimSpace(v), nil
		}
	}
}

// Every request, on every path and method, with or without a token, is
// bounded by http.read_timeout from its first byte: a body that stops
// short is answered (or the connection closed) by then, not held.
func TestAttackSlowBodiesAreCutOffAtTheReadTimeoutOnEveryPath(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_READ_TIMEOUT=1s", "MCP_REDIS_HTTP_READ_HEADER_TIMEOUT=1s"},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	var wg sync.WaitGroup
	for _, path := range []string{"/healthz", "/readyz", "/metrics", "/mcp", "/message?sessionId=x", "/sse", "/nowhere"} {
		for _, auth := range []string{"", "Authorization: Bearer " + tok + "\r\n"} {
			wg.Go(func() {
				conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
				if err != nil {
					t.Error(err)
					return
				}
				defer conn.Close()
				start := time.Now()
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{", path, auth)
				// Read until the server closes; 10s is far past the 1s bound.
				_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, err = io.Copy(io.Discard, conn)
				took := time.Since(start)
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Errorf("POST %s (token: %v) with a body that stops short: still open after %v", path, auth != "", took.Round(time.Millisecond))
					return
				}
				t.Logf("POST %s (token: %v): closed after %v", path, auth != "", took.Round(time.Millisecond))
			})
		}
	}
	// A connection that sends nothing at all is closed too.
	wg.Go(func() {
		conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil {
			t.Errorf("a silent connection: still open after 10s (%v)", err)
		}
	})
	wg.Wait()
}

// The open connections are bounded by http.max_connections: a flood of
// slow sockets gets the bound and no more (the rest are answered 503 at
// once), and a real client gets in once the read timeout frees a slot.
func TestAttackConnectionFloodIsBoundedAndARealClientStillGetsIn(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	const max, flood = 32, 300
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_READ_TIMEOUT=2s", "MCP_REDIS_HTTP_READ_HEADER_TIMEOUT=2s",
		"MCP_REDIS_HTTP_MAX_CONNECTIONS=" + strconv.Itoa(max)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	base := eaOpenSockets(t, p.pid())

	var refused, held atomic.Int64
	conns := make([]net.Conn, 0, flood)
	for range flood {
		conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, conn)
		fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	}
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			line, err := bufio.NewReader(c).ReadString('\n')
			switch {
			case err == nil && strings.Contains(line, " 503 "):
				refused.Add(1)
			case err != nil:
				held.Add(1)
			}
		})
	}
	wg.Wait()
	open := eaOpenSockets(t, p.pid()) - base
	t.Logf("flood of %d slow sockets at http.max_connections=%d: %d refused with 503 at once, %d held; server sockets open: %d",
		flood, max, refused.Load(), held.Load(), open)
	if held.Load() > max || open > max+2 {
		t.Errorf("%d sockets held and %d open at the server; want at most %d", held.Load(), open, max)
	}
	if refused.Load() < flood-max-2 {
		t.Errorf("only %d of %d connections beyond the bound were refused", refused.Load(), flood-max)
	}

	// A real client gets in once the read timeout has freed the slots.
	start := time.Now()
	hc := &http.Client{Timeout: 5 * time.Second}
	for {
		res, err := hc.Get(p.base + "/healthz")
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("no real request served within 20s of the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a real client was served %v after the flood", time.Since(start).Round(time.Millisecond))
	c := dialStreamable(t, p.base, tok, legacyEra)
	var w writeOut
	okOver(t, c, "audit_log", `{"module":"m","procedure":"after_flood","status":"ok"}`, &w)
	if n, _ := rdb.XLen(context.Background(), prefix+"audit_log_stream").Result(); n < 1 {
		t.Errorf("audit stream has %d entries after the flood", n)
	}
}

// A legacy SSE client that stops reading cannot grow the server's memory:
// its calls in flight are bounded (429 beyond), its session is ended when
// its stream falls behind (404 for it then), and others are served.
func TestAttackAnSSEClientThatStopsReadingLosesItsSessionNotTheServersMemory(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	// 100 entries of 20 KB: each read_stream answer below (25 of them) is
	// about 1 MB.
	big := strings.Repeat("x", 20<<10)
	pipe := rdb.Pipeline()
	for range 100 {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: prefix + "workflow_events", Values: []string{"workflow_id", "w", "phase", "p", "event_type", "e", "details", big}})
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	before := eaStatus(t, p.pid(), "VmRSS")

	s := eaOpenSSE(t, p, tok, 4096)
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"stall","version":"1"}}}`
	if res, body := eaPost(t, plain, s.endpoint, init, bearer(tok)); res.StatusCode != http.StatusAccepted {
		t.Fatalf("initialize: %d %s", res.StatusCode, body)
	}
	if _, err := s.next(5 * time.Second); err != nil {
		t.Fatalf("initialize answer: %v", err)
	}
	// From here on the client reads nothing.
	codes := map[int]int{}
	for i := range 300 {
		res, _ := eaPost(t, plain, s.endpoint, eaToolCall(i+1, "read_stream", `{"stream":"workflow_events","count":25}`), bearer(tok))
		codes[res.StatusCode]++
	}
	time.Sleep(time.Second) // let the calls taken finish
	peak := eaStatus(t, p.pid(), "VmHWM")
	t.Logf("300 read_stream calls of ~1 MB to a stalled SSE stream: statuses %v; RSS %d MiB before, peak %d MiB", codes, before>>10, peak>>10)
	// Unbounded, the 300 answers (each held in several copies while it is
	// encoded) would take well over 1 GiB.
	if growth := (peak - before) >> 10; growth > 150 {
		t.Errorf("peak RSS grew by %d MiB; want it bounded", growth)
	}
	if codes[http.StatusAccepted] >= 300 {
		t.Errorf("every POST was taken (%v): the work of a stalled session is not bounded", codes)
	}
	if res, body := eaPost(t, plain, s.endpoint, eaToolCall(999, "read_stream", `{"stream":"workflow_events","count":1}`), bearer(tok)); res.StatusCode < 400 {
		t.Errorf("a POST to the ended session: %d %s; want an error status", res.StatusCode, body)
	}
	// Others are served as before.
	c := dialSSELegacy(t, p.base, tok)
	var out map[string]any
	okOver(t, c, "read_stream", `{"stream":"workflow_events","count":1}`, &out)
}

// Closing an SSE stream cancels that session's calls: a lock wait of a
// client that left is not granted to nobody afterwards.
func TestAttackClosingAnSSEStreamCancelsItsLockWait(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	holder := dialStreamable(t, p.base, tok, legacyEra)
	var g struct {
		Acquired bool   `json:"acquired"`
		Token    string `json:"token"`
	}
	okOver(t, holder, "acquire_lock", `{"resource":"sse-left","ttl_ms":600000}`, &g)
	if !g.Acquired {
		t.Fatal("the holder did not get the lock")
	}

	s := eaOpenSSE(t, p, tok, 0)
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2024-11-05","capabilities":{},"clientInfo":{"name":"leaver","version":"1"}}}`
	eaPost(t, plain, s.endpoint, init, bearer(tok))
	if _, err := s.next(5 * time.Second); err != nil {
		t.Fatalf("initialize answer: %v", err)
	}
	if res, body := eaPost(t, plain, s.endpoint, eaToolCall(1, "acquire_lock", `{"resource":"sse-left","ttl_ms":600000,"wait_ms":10000}`), bearer(tok)); res.StatusCode != http.StatusAccepted {
		t.Fatalf("acquire_lock: %d %s", res.StatusCode, body)
	}
	time.Sleep(300 * time.Millisecond) // the wait is under way
	_ = s.conn.Close()
	time.Sleep(300 * time.Millisecond)

	var rel struct {
		Released bool `json:"released"`
	}
	okOver(t, holder, "release_lock", fmt.Sprintf(`{"resource":"sse-left","token":%q}`, g.Token), &rel)
	// A waiter still running would take the lock within a poll (250 ms) of
	// the release; give it several.
	time.Sleep(1500 * time.Millisecond)
	if v, err := rdb.Get(context.Background(), prefix+"locks:sse-left").Result(); err != redis.Nil {
		ttl := rdb.PTTL(context.Background(), prefix+"locks:sse-left").Val()
		t.Errorf("after the SSE client left, the lock is held by %q (ttl %v): its wait was not cancelled", v, ttl)
	}
}

// Streamable HTTP sessions are bounded by http.max_sessions: an initialize
// beyond it is answered 503 with Retry-After, memory stays bounded, and an
// idle session is freed after http.session_idle_timeout.
func TestAttackSessionFloodIsCappedAndIdleSessionsAreFreed(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	const max, flood = 2000, 20000
	// The default idle timeout (10m): no session of the flood expires
	// while it runs, however slow the machine.
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_MAX_SESSIONS=" + strconv.Itoa(max)},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	before := eaStatus(t, p.pid(), "VmRSS")
	var ok, busy, other atomic.Int64
	var retryAfter atomic.Value
	jobs := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	for range 8 {
		wg.Go(func() {
			for range jobs {
				res, _ := eaPost(t, hc, p.base+"/mcp", eaInitialize, bearer(tok))
				switch res.StatusCode {
				case http.StatusOK:
					ok.Add(1)
				case http.StatusServiceUnavailable:
					busy.Add(1)
					retryAfter.Store(res.Header.Get("Retry-After"))
				default:
					other.Add(1)
				}
			}
		})
	}
	start := time.Now()
	for range flood {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	took := time.Since(start)
	peak := eaStatus(t, p.pid(), "VmHWM")
	t.Logf("%d initializes in %v at http.max_sessions=%d: %d opened, %d refused 503 (Retry-After %v), %d other; RSS %d MiB before, peak %d MiB",
		flood, took.Round(time.Millisecond), max, ok.Load(), busy.Load(), retryAfter.Load(), other.Load(), before>>10, peak>>10)
	if ok.Load() != max || busy.Load() != flood-max || other.Load() != 0 {
		t.Errorf("%d opened, %d refused, %d other; want %d, %d, 0", ok.Load(), busy.Load(), other.Load(), max, flood-max)
	}
	if ra, _ := retryAfter.Load().(string); ra == "" {
		t.Error("a refused initialize carries no Retry-After")
	}
	if growth := (peak - before) >> 10; growth > 100 {
		t.Errorf("peak RSS grew by %d MiB over the flood; want it bounded", growth)
	}

	// Idle sessions are freed, and then there is room again: a server with
	// room for two, and a 1s idle timeout (the sweeper runs every second).
	q := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_MAX_SESSIONS=2", "MCP_REDIS_HTTP_SESSION_IDLE_TIMEOUT=1s"},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	first := eaSession(t, q, tok)
	eaSession(t, q, tok)
	if res, _ := eaPost(t, plain, q.base+"/mcp", eaInitialize, bearer(tok)); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a third session of two: %d; want 503", res.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, _ := eaPost(t, plain, q.base+"/mcp", eaInitialize, bearer(tok))
		if res.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no room for a new session 20s after the others went idle: %d", res.StatusCode)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if res, body := eaPost(t, plain, q.base+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, eaHeader(tok, first)); res.StatusCode != http.StatusNotFound {
		t.Errorf("a session idle past http.session_idle_timeout: %d %s; want 404", res.StatusCode, body)
	}
}

// A session belongs to the token that opened it: another token's requests
// carrying it — a call, a stream, a DELETE, an SSE message — are answered
// as for an unknown session (404) and change nothing.
func TestAttackASessionBelongsToTheTokenThatOpenedIt(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	alice, bob := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("alice", alice, "bob", bob)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	id := eaSession(t, p, alice)

	call := eaToolCall(7, "audit_log", `{"module":"m","procedure":"hijack","status":"ok"}`)
	if res, body := eaPost(t, plain, p.base+"/mcp", call, eaHeader(bob, id)); res.StatusCode != http.StatusNotFound {
		t.Errorf("bob calls in alice's session: %d %s; want 404", res.StatusCode, body)
	}
	get, _ := http.NewRequest(http.MethodGet, p.base+"/mcp", nil)
	for k, v := range eaHeader(bob, id) {
		get.Header.Set(k, v)
	}
	get.Header.Set("Accept", "text/event-stream")
	if res, _ := p.do(t, get); res.StatusCode != http.StatusNotFound {
		t.Errorf("bob opens alice's stream: %d; want 404", res.StatusCode)
	}
	del, _ := http.NewRequest(http.MethodDelete, p.base+"/mcp", nil)
	for k, v := range eaHeader(bob, id) {
		del.Header.Set(k, v)
	}
	if res, _ := p.do(t, del); res.StatusCode != http.StatusNotFound {
		t.Errorf("bob deletes alice's session: %d; want 404", res.StatusCode)
	}
	// Alice's session still works, and nothing of bob's was written.
	if res, body := eaPost(t, plain, p.base+"/mcp", eaToolCall(8, "audit_log", `{"module":"m","procedure":"mine","status":"ok"}`), eaHeader(alice, id)); res.StatusCode != http.StatusOK || strings.Contains(body, `"isError":true`) {
		t.Errorf("alice's own call after bob's attempts: %d %s", res.StatusCode, body)
	}
	msgs, _ := rdb.XRange(context.Background(), prefix+"audit_log_stream", "-", "+").Result()
	for _, m := range msgs {
		if m.Values["procedure"] == "hijack" {
			t.Errorf("bob's call was written: %v", m.Values)
		}
	}

	// The same holds for an SSE session.
	s := eaOpenSSE(t, p, alice, 0)
	if res, body := eaPost(t, plain, s.endpoint, call, bearer(bob)); res.StatusCode != http.StatusNotFound {
		t.Errorf("bob posts to alice's SSE session: %d %s; want 404", res.StatusCode, body)
	}
}

// Streams and calls need a session on a stateful server: GET /mcp without
// Mcp-Session-Id is 400 and with an unknown one 404 (no stream is opened),
// and a POST other than initialize without one is 400.
func TestAttackGETWithoutASessionOpensNoStream(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, c := range []struct {
		session string
		want    int
	}{{"", http.StatusBadRequest}, {"mcp-session-6b1c9a52-6d0e-4a4b-9d5e-0a7c2f5e9b11", http.StatusNotFound}, {"junk", http.StatusNotFound}} {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/mcp", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Accept", "text/event-stream")
		if c.session != "" {
			req.Header.Set("Mcp-Session-Id", c.session)
		}
		hc := &http.Client{Timeout: 3 * time.Second}
		res, err := hc.Do(req)
		if err != nil {
			t.Errorf("GET /mcp session %q: %v (a stream held open?)", c.session, err)
			continue
		}
		_ = res.Body.Close()
		if res.StatusCode != c.want {
			t.Errorf("GET /mcp session %q: %d; want %d", c.session, res.StatusCode, c.want)
		}
	}
	h := bearer(tok)
	h["Mcp-Protocol-Version"] = "2025-11-25"
	if res, body := eaPost(t, plain, p.base+"/mcp", eaToolCall(1, "read_stream", `{"stream":"audit_log_stream"}`), h); res.StatusCode != http.StatusBadRequest {
		t.Errorf("tools/call without a session: %d %s; want 400", res.StatusCode, body)
	}

	// A stateless server has no stream a GET could open.
	sl := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_STATELESS=true"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	req, _ := http.NewRequest(http.MethodGet, sl.base+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	if res, _ := (&http.Client{Timeout: 3 * time.Second}).Do(req); res == nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /mcp on a stateless server: %v; want 405", res)
	} else {
		_ = res.Body.Close()
	}
}

// Without a valid token, /readyz says only whether the server is ready;
// the cause (the Redis address, NOAUTH/WRONGPASS) is in the log and shown
// to a token holder. Tool errors and call records carry a class and a log
// reference, never Redis' own error text.
func TestAttackReadyzAndToolErrorsLeakNothingOfRedis(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	srv := testredis.Start(t, "--requirepass", "right-password")
	tok := newToken()
	_, port, _ := net.SplitHostPort(srv.Addr)
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", "redis://:wrong-password@"+srv.Addr, "--prefix", "leak:")
	for _, h := range []map[string]string{nil, bearer("not-the-token-at-all")} {
		res, body := p.get(t, "/readyz", h)
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("/readyz on a wrong password: %d %s", res.StatusCode, body)
		}
		for _, leak := range []string{port, "WRONGPASS", "NOAUTH", "password", "127.0.0.1"} {
			if strings.Contains(body, leak) {
				t.Errorf("/readyz without a valid token shows %q: %s", leak, body)
			}
		}
	}
	if _, body := p.get(t, "/readyz", bearer(tok)); !strings.Contains(body, "WRONGPASS") {
		t.Errorf("/readyz with the token does not say why: %s", body)
	}
	if !strings.Contains(p.stderr.String(), "WRONGPASS") {
		t.Errorf("the log does not say why Redis is not ready:\n%s", p.stderr.String())
	}

	c := dialStreamable(t, p.base, tok, legacyEra)
	res := callOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok"}`)
	text := resultText(res)
	if !res.IsError || !strings.Contains(text, "ref ") {
		t.Errorf("a call while Redis refuses the password: %v %s; want a tool error with a log reference", res.IsError, text)
	}
	for _, leak := range []string{port, "WRONGPASS", "NOAUTH", "127.0.0.1"} {
		if strings.Contains(text, leak) {
			t.Errorf("the tool error shows %q: %s", leak, text)
		}
	}
}

// A call that fails inside Redis (a key of the wrong type) is recorded in
// the audit stream with what the caller was told: no Redis error text, no
// script SHA.
func TestAttackACallRecordCarriesNoRawRedisError(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	if err := rdb.Set(ctx, prefix+"workflow_events", "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c := dialStreamable(t, p.base, tok, legacyEra)
	res := callOver(t, c, "emit_workflow_event", `{"workflow_id":"w","phase":"p","event_type":"e","details":"d"}`)
	if !res.IsError {
		t.Fatalf("a write to a wrong-typed stream key succeeded: %s", resultText(res))
	}
	var rec map[string]any
	for _, m := range callRecords(t, rdb, prefix) {
		if m.Values["procedure"] == "emit_workflow_event" {
			rec = m.Values
		}
	}
	if rec == nil {
		t.Fatal("no call record of the failed call")
	}
	raw := fmt.Sprint(rec["error"])
	for _, leak := range []string{"WRONGTYPE", "ERR ", "script", "@user_script", "f_"} {
		if strings.Contains(raw, leak) || strings.Contains(resultText(res), leak) {
			t.Errorf("the call record or answer carries Redis text %q: record %q, answer %q", leak, raw, resultText(res))
		}
	}
	if !strings.Contains(raw, "ref ") || !strings.Contains(resultText(res), raw[:min(len(raw), 20)]) {
		t.Errorf("the call record's error %q is not what the caller was told (%q)", raw, resultText(res))
	}
}

// go-redis' connect-time CLIENT SETINFO, which Redis 7.0 refuses, is not
// sent: a fresh server that has served calls counts no Redis error.
func TestAFreshServerCountsNoRedisErrors(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	c := dialStreamable(t, p.base, tok, legacyEra)
	var w writeOut
	for range 5 {
		okOver(t, c, "audit_log", `{"module":"m","procedure":"p","status":"ok"}`, &w)
	}
	for k, v := range metricsText(t, p, tok) {
		if strings.HasPrefix(k, "mcp_redis_redis_errors_total") && v != "0" {
			t.Errorf("%s = %s on a healthy server", k, v)
		}
	}
}

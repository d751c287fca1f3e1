package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// These tests check what happens when a client goes away, or gives up on a
// call, while a tool call is still running: a waiting acquire_lock must be
// cancelled (it returns long before its wait_ms), must take no lock
// afterwards, and must leave no goroutine behind.

// awayWait is the wait_ms of the calls that get abandoned: long enough that
// a call returning within awayEarly can only have been cancelled.
const (
	awayWait  = 20000
	awayEarly = 3 * time.Second
	// awaySlack is how many goroutines above the baseline are tolerated:
	// the runtime and go-redis's pool may start one or two of their own.
	awaySlack = 2
)

// awayEnv is a server built in-process on the shared Redis.
type awayEnv struct {
	t    *testing.T
	app  *app.App
	rdb  *redis.Client
	keys keyspace.Keyspace
}

func awayApp(t *testing.T, edit func(*config.Config)) *awayEnv {
	t.Helper()
	a, rdb, prefix := newApp(t, edit)
	e := &awayEnv{t: t, app: a, rdb: rdb, keys: keyspace.Keyspace{Prefix: prefix}}
	// Open the lock-release subscription (one per server, for its whole
	// life) before the baseline is taken: a waited acquire opens it.
	res := a.MCP.HandleMessage(context.Background(), []byte(awayModernCall("warm", "acquire_lock",
		`{"resource":"away-warmup","ttl_ms":1000,"wait_ms":100}`)))
	if raw, _ := json.Marshal(res); !strings.Contains(string(raw), `"acquired":true`) {
		t.Fatalf("warm-up acquire: %s", raw)
	}
	return e
}

// awayModernCall is a stateless (2026-07-28) tools/call request.
func awayModernCall(id, tool, arguments string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"method":"tools/call","params":{"name":%q,"arguments":%s,`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},`+
		`"io.modelcontextprotocol/clientInfo":{"name":"away","version":"1"}}}}`, id, tool, arguments, mcp.LATEST_PROTOCOL_VERSION)
}

// awayBaseline lets goroutines that are ending end, and counts the rest.
func awayBaseline() int {
	n := runtime.NumGoroutine()
	for range 20 {
		time.Sleep(25 * time.Millisecond)
		m := runtime.NumGoroutine()
		if m == n {
			return n
		}
		n = m
	}
	return n
}

// awayNoLeak waits up to 5s for the goroutine count to come back to within
// awaySlack of base, and fails with every goroutine's stack otherwise.
func (e *awayEnv) awayNoLeak(base int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	n := runtime.NumGoroutine()
	for n > base+awaySlack && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	if n > base+awaySlack {
		var b strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
		e.t.Fatalf("%d goroutines 5s after the client went away, baseline %d (+%d slack):\n%s", n, base, awaySlack, b.String())
	}
	e.t.Logf("goroutines: baseline %d, after %d", base, n)
}

// awayUntilRunning waits until n tool calls run, then a moment more so a
// waiting acquire is in its wait.
func (e *awayEnv) awayUntilRunning(n int64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.app.Metrics.Running() != n {
		if time.Now().After(deadline) {
			e.t.Fatalf("%d tool calls running, want %d", e.app.Metrics.Running(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
}

// awayUntilIdle waits until no tool call runs and returns how long that
// took; more than awayEarly fails.
func (e *awayEnv) awayUntilIdle() time.Duration {
	e.t.Helper()
	start := time.Now()
	for e.app.Metrics.Running() != 0 {
		if time.Since(start) > awayEarly {
			e.t.Fatalf("the abandoned call still runs %v later: its context was not cancelled", awayEarly)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// awayHold takes resource's lock key directly in Redis, as another server
// would, for 30s.
func (e *awayEnv) awayHold(resource string) {
	e.t.Helper()
	if err := e.rdb.Set(context.Background(), e.keys.Lock(resource), "someone-else", 30*time.Second).Err(); err != nil {
		e.t.Fatal(err)
	}
}

// awayNeverGranted checks, after the holder let go and the waiter had time
// to take the lock had it still been waiting, that nobody holds resource
// and that the fencing counter is still fence.
func (e *awayEnv) awayNeverGranted(resource string, fence int64) {
	e.t.Helper()
	ctx := context.Background()
	time.Sleep(700 * time.Millisecond) // > the 250ms poll of a waiter
	if n := e.rdb.Exists(ctx, e.keys.Lock(resource)).Val(); n != 0 {
		v := e.rdb.Get(ctx, e.keys.Lock(resource)).Val()
		e.t.Fatalf("the abandoned waiter took the lock after the holder let go (value %q)", v)
	}
	got, err := e.rdb.Get(ctx, e.keys.LockFence(resource)).Int64()
	if errors.Is(err, redis.Nil) {
		got, err = 0, nil
	}
	if err != nil || got != fence {
		e.t.Fatalf("fencing counter %d (%v), want %d: a grant happened", got, err, fence)
	}
}

// awayStdio is a stdio session with the app over in-memory pipes.
type awayStdio struct {
	t       *testing.T
	in      *io.PipeWriter
	replies chan awayReply
	pending map[string]awayReply
	done    chan error
}

type awayReply struct {
	ID     any `json:"id"`
	Result *struct {
		IsError           bool            `json:"isError"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Content           []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Method string `json:"method"`
}

func (e *awayEnv) awayServeStdio() *awayStdio {
	e.t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &awayStdio{t: e.t, in: inW, replies: make(chan awayReply, 64), pending: map[string]awayReply{}, done: make(chan error, 1)}
	go func() {
		s.done <- e.app.ServeStdio(context.Background(), inR, outW)
		_ = outW.Close()
	}()
	go func() {
		defer close(s.replies)
		sc := bufio.NewScanner(outR)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var r awayReply
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				continue
			}
			s.replies <- r
		}
		_, _ = io.Copy(io.Discard, outR)
	}()
	e.t.Cleanup(func() { _ = inW.Close() })
	s.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"away","version":"1"}}}`)
	if r := s.await("init"); r.Error != nil {
		e.t.Fatalf("initialize: %+v", r.Error)
	}
	s.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return s
}

func (s *awayStdio) send(line string) {
	s.t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		s.t.Fatal(err)
	}
}

func (s *awayStdio) call(id, tool, arguments string) {
	s.t.Helper()
	s.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, arguments))
}

// await returns the answer to id, keeping the others for later.
func (s *awayStdio) await(id string) awayReply {
	s.t.Helper()
	if r, ok := s.pending[id]; ok {
		delete(s.pending, id)
		return r
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r, ok := <-s.replies:
			if !ok {
				s.t.Fatalf("the output ended before the answer to %s", id)
			}
			if r.Method != "" {
				continue // a notification
			}
			got := fmt.Sprint(r.ID)
			if got == id {
				return r
			}
			s.pending[got] = r
		case <-timeout:
			s.t.Fatalf("no answer to %s within 10s", id)
		}
	}
}

// ok awaits id's answer, which must be a tool result without error, and
// decodes its structured content into out.
func (s *awayStdio) ok(id string, out any) {
	s.t.Helper()
	r := s.await(id)
	if r.Error != nil || r.Result == nil || r.Result.IsError {
		s.t.Fatalf("%s: %+v %+v", id, r.Error, r.Result)
	}
	if err := json.Unmarshal(r.Result.StructuredContent, out); err != nil {
		s.t.Fatalf("%s: %v", id, err)
	}
}

// hangUp closes the input (EOF, the host went away) and waits for
// ServeStdio to return, which must be well before the abandoned calls'
// wait_ms.
func (s *awayStdio) hangUp() time.Duration {
	s.t.Helper()
	start := time.Now()
	_ = s.in.Close()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Fatalf("ServeStdio after EOF: %v", err)
		}
	case <-time.After(awayEarly):
		s.t.Fatalf("ServeStdio has not returned %v after EOF", awayEarly)
	}
	return time.Since(start)
}

type awayGrant struct {
	Acquired     bool   `json:"acquired"`
	Token        string `json:"token"`
	FencingToken int64  `json:"fencing_token"`
}

// (a) The host closes stdin while a waited acquire runs: the call is
// cancelled, ServeStdio returns, and no goroutine is left.
func TestClientAwayStdioEOFCancelsTheCallInFlight(t *testing.T) {
	e := awayApp(t, nil)
	base := awayBaseline()
	e.awayHold("away-a")

	s := e.awayServeStdio()
	s.call("w1", "acquire_lock", fmt.Sprintf(`{"resource":"away-a","ttl_ms":5000,"wait_ms":%d}`, awayWait))
	e.awayUntilRunning(1)

	took := s.hangUp()
	t.Logf("ServeStdio returned %v after EOF, with a %dms wait in flight", took, awayWait)
	if n := e.app.Metrics.Running(); n != 0 {
		t.Fatalf("%d tool calls still running after ServeStdio returned", n)
	}
	if v := e.rdb.Get(context.Background(), e.keys.Lock("away-a")).Val(); v != "someone-else" {
		t.Fatalf("the holder's lock is now %q", v)
	}
	e.rdb.Del(context.Background(), e.keys.Lock("away-a"))
	e.awayNeverGranted("away-a", 0)
	e.awayNoLeak(base)
}

// (b) An HTTP client disconnects while its waited acquire runs: the call
// is cancelled, it takes no lock once the holder lets go, and no goroutine
// is left.
func TestClientAwayHTTPDisconnectCancelsTheCallInFlight(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := awayApp(t, func(c *config.Config) { c.HTTP.Listen = ln.Addr().String() })
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- e.app.ServeHTTP(ctx, ln) }()
	defer func() {
		stop()
		select {
		case err := <-served:
			if err != nil {
				t.Errorf("ServeHTTP: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("ServeHTTP has not returned 20s after its context ended")
		}
	}()
	url := "http://" + ln.Addr().String() + "/mcp"

	post := func(ctx context.Context, id, tool, arguments string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(awayModernCall(id, tool, arguments)))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_PROTOCOL_VERSION)
		req.Header.Set(mcp.HeaderMethod, "tools/call")
		req.Header.Set(mcp.HeaderName, tool)
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		return (&http.Client{Transport: tr}).Do(req)
	}
	// A first call that completes: the server serves, and whatever it
	// starts on first use is in the baseline.
	res, err := post(context.Background(), "c0", "emit_workflow_event", `{"workflow_id":"away","phase":"p","event_type":"e"}`)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "entry_id") {
		t.Fatalf("control call: %d %s", res.StatusCode, body)
	}
	base := awayBaseline()
	e.awayHold("away-b")

	cctx, cancel := context.WithCancel(context.Background())
	called := make(chan error, 1)
	go func() {
		res, err := post(cctx, "w1", "acquire_lock", fmt.Sprintf(`{"resource":"away-b","ttl_ms":5000,"wait_ms":%d}`, awayWait))
		if err == nil {
			_, err = io.ReadAll(res.Body)
			_ = res.Body.Close()
		}
		called <- err
	}()
	e.awayUntilRunning(1)
	cancel()
	if err := <-called; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned request: %v, want context.Canceled", err)
	}
	took := e.awayUntilIdle()
	t.Logf("the server's call ended %v after the client hung up, with a %dms wait", took, awayWait)

	e.rdb.Del(context.Background(), e.keys.Lock("away-b"))
	e.awayNeverGranted("away-b", 0)
	e.awayNoLeak(base)
}

// (c) notifications/cancelled for a waiting acquire cancels it; it takes no
// lock when the holder releases, and the session goes on serving.
func TestClientAwayNotificationsCancelledCancelsTheCallInFlight(t *testing.T) {
	e := awayApp(t, nil)
	base := awayBaseline()
	s := e.awayServeStdio()

	var held awayGrant
	s.call("h1", "acquire_lock", `{"resource":"away-c","ttl_ms":30000}`)
	s.ok("h1", &held)
	if !held.Acquired || held.FencingToken != 1 {
		t.Fatalf("holder: %+v", held)
	}
	s.call("w1", "acquire_lock", fmt.Sprintf(`{"resource":"away-c","ttl_ms":30000,"wait_ms":%d}`, awayWait))
	e.awayUntilRunning(1)
	s.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"w1","reason":"the user gave up"}}`)
	took := e.awayUntilIdle()
	t.Logf("the cancelled call ended %v after notifications/cancelled, with a %dms wait", took, awayWait)

	var rel struct {
		Released bool `json:"released"`
	}
	s.call("r1", "release_lock", fmt.Sprintf(`{"resource":"away-c","token":%q}`, held.Token))
	s.ok("r1", &rel)
	if !rel.Released {
		t.Fatalf("release: %+v", rel)
	}
	e.awayNeverGranted("away-c", 1)
	// If the cancelled call answered at all, it must not be a grant.
	if r, ok := s.pending["w1"]; ok && r.Result != nil && strings.Contains(string(r.Result.StructuredContent), `"acquired":true`) {
		t.Fatalf("the cancelled call answered a grant: %s", r.Result.StructuredContent)
	}

	// The session still serves, and the next grant is the next fence.
	var next awayGrant
	s.call("h2", "acquire_lock", `{"resource":"away-c","ttl_ms":30000,"wait_ms":1000}`)
	s.ok("h2", &next)
	if !next.Acquired || next.FencingToken != 2 {
		t.Fatalf("after the cancel: %+v", next)
	}
	s.call("r2", "release_lock", fmt.Sprintf(`{"resource":"away-c","token":%q}`, next.Token))
	s.ok("r2", &rel)

	s.hangUp()
	e.awayNoLeak(base)
}

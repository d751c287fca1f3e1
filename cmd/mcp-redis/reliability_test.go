package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests take Redis away from a running server — killed and restarted
// mid-load, stopped, frozen, made slow — and hold the server to README
// "Retries, idempotency and failure": every call answers, a failure is a
// tool error within redis.timeout, nothing acknowledged is lost, a retry by
// log_id never duplicates, and the server recovers with no restart.

// relBound is how long past redis.timeout a failing call may take: the
// contract is "within the timeout", plus room for the process hops.
const relBound = 500 * time.Millisecond

// relPid is the server's pid, and whether the process is still running:
// a test tells by it that the server was never restarted.
func (s *server) relPid() (int, bool) { return s.proc.pid(), s.proc.running() }

// relCall calls tool with a hard deadline of its own (a hang is an error
// here, not a stuck test) and returns the result, how long it took, and
// the protocol error. It is safe from any goroutine.
func relCall(c *client.Client, tool, arguments string, hang time.Duration) (*mcp.CallToolResult, time.Duration, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = json.RawMessage(arguments)
	ctx, cancel := context.WithTimeout(context.Background(), hang)
	defer cancel()
	start := time.Now()
	res, err := c.CallTool(ctx, req)
	return res, time.Since(start), err
}

// relWrite is a write tool's structured result.
type relWrite struct {
	Stream    string `json:"stream"`
	EntryID   string `json:"entry_id"`
	Duplicate bool   `json:"duplicate"`
}

func relDecode(res *mcp.CallToolResult, out any) error {
	return json.Unmarshal(res.RawStructuredContent, out)
}

// relOutcome is what one audit_log call answered.
type relOutcome struct {
	ok        bool
	entryID   string
	duplicate bool
	toolErr   string // the tool error's text, when isError
	protoErr  error  // a protocol error or a hang: never allowed
	began     time.Time
	ended     time.Time
}

func relAudit(c *client.Client, logID string) relOutcome {
	o := relOutcome{began: time.Now()}
	res, _, err := relCall(c, "audit_log",
		fmt.Sprintf(`{"module":"reliability","procedure":"crash","status":"ok","log_id":%q}`, logID), 10*time.Second)
	o.ended = time.Now()
	switch {
	case err != nil:
		o.protoErr = err
	case res.IsError:
		o.toolErr = resultText(res)
		if o.toolErr == "" {
			o.toolErr = "(empty tool error)"
		}
	default:
		var w relWrite
		if err := relDecode(res, &w); err != nil || w.EntryID == "" {
			o.protoErr = fmt.Errorf("structured content %q: %v", res.RawStructuredContent, err)
			break
		}
		o.ok, o.entryID, o.duplicate = true, w.EntryID, w.Duplicate
	}
	return o
}

// relClient is a plain go-redis client on a private server, for checks.
func relClient(t *testing.T, addr string, readTimeout time.Duration) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: readTimeout, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Redis is SIGKILLed and restarted twice while sixteen goroutines send 10,000
// audit_log calls with unique log_ids through one stdio client. Redis runs
// with appendfsync always, so what it acknowledged is on disk when it dies.
//
// A call that fails is retried once, after the load, with the same log_id:
// that is how a client gets exactly-once writes (README). A first attempt
// whose reply was lost with Redis may have been written; its retry must then
// answer duplicate:true with the first entry id instead of appending again.
//
// Afterwards: every acknowledged call is in the stream (0 lost), no log_id
// is there twice (0 duplicated), every failure was a tool error (never a
// protocol error or a hang), every retry succeeded (so each of the 10,000
// log_ids is in the stream exactly once), and the server is the same
// process it was and still answers.
func TestRedisCrashesTwiceUnderLoadAndNoAcknowledgedWriteIsLostOrDuplicated(t *testing.T) {
	needsFull(t, "sends 10,000 calls while Redis crashes twice")
	const (
		calls   = 10000
		workers = 16
		// down is how long Redis stays dead before its restart, so calls
		// land on a dead Redis and not only on a dying one.
		down = 200 * time.Millisecond
		// Sixteen calls in flight let Redis batch the appendfsync-always
		// fsyncs (one per event-loop turn): ~1,000 calls/s here against
		// ~300 with eight.
		// backoff is a worker's pause after a tool error, as a real client
		// would pause: without it a worker burns through log_ids at the
		// speed of "connection refused".
		backoff = 20 * time.Millisecond
	)
	priv := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	srv := spawn(t, []string{"MCP_REDIS_REDIS_TIMEOUT=500ms", "MCP_REDIS_AUDIT_TOOL_CALLS=false"},
		"--redis-url", priv.URL())
	pid0, alive := srv.relPid()
	if !alive {
		t.Fatal("the server is not running after initialize")
	}

	results := make([]relOutcome, calls)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= calls {
					return
				}
				results[i] = relAudit(srv.c, fmt.Sprintf("crash-%05d", i))
				done.Add(1)
				if !results[i].ok {
					time.Sleep(backoff)
				}
			}
		})
	}

	// The crashes, from this goroutine (testredis fails the test from it).
	type restart struct {
		atCall            int64
		killed, startedAt time.Time // SIGKILL sent; redis-server answering TCP again
	}
	var restarts []restart
	for _, at := range []int64{calls / 3, 2 * calls / 3} {
		for done.Load() < at && next.Load() < calls {
			time.Sleep(time.Millisecond)
		}
		r := restart{atCall: done.Load(), killed: time.Now()}
		priv.Stop()
		time.Sleep(down)
		priv.Start()
		r.startedAt = time.Now()
		restarts = append(restarts, r)
	}
	wg.Wait()
	loadTook := time.Since(began)

	// Retry each failure once, with its log_id.
	var failed []int
	for i, o := range results {
		if o.protoErr != nil {
			t.Errorf("call %d: protocol error or hang, not a tool error: %v", i, o.protoErr)
		} else if !o.ok {
			failed = append(failed, i)
		}
	}
	retries := map[int]relOutcome{}
	writtenAnyway := 0 // failed first attempts that Redis had written
	for _, i := range failed {
		o := relAudit(srv.c, fmt.Sprintf("crash-%05d", i))
		retries[i] = o
		switch {
		case o.protoErr != nil:
			t.Errorf("retry of call %d: protocol error or hang: %v", i, o.protoErr)
		case !o.ok:
			t.Errorf("retry of call %d with Redis up: tool error %s", i, o.toolErr)
		case o.duplicate:
			writtenAnyway++
		}
	}

	// The whole stream, straight from Redis.
	rc := relClient(t, priv.Addr, 10*time.Second)
	ctx := context.Background()
	key := "mcp:audit_log_stream"
	msgs, err := rc.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	byID := map[string]string{} // entry id → log_id
	count := map[string]int{}   // log_id → entries
	for _, m := range msgs {
		id, _ := m.Values["log_id"].(string)
		byID[m.ID] = id
		count[id]++
	}
	lost, duplicated, firstOK := 0, 0, 0
	check := func(i int, o relOutcome) {
		if !o.ok {
			return
		}
		want := fmt.Sprintf("crash-%05d", i)
		if got, there := byID[o.entryID]; !there || got != want {
			lost++
			if lost <= 10 {
				t.Errorf("call %d (%s) was acknowledged as entry %s, which the stream does not hold (has %q)", i, want, o.entryID, got)
			}
		}
	}
	for i, o := range results {
		if o.ok {
			firstOK++
		}
		check(i, o)
	}
	for i, o := range retries {
		check(i, o)
	}
	for id, n := range count {
		if n > 1 {
			duplicated += n - 1
			if duplicated <= 10 {
				t.Errorf("log_id %s is in the stream %d times", id, n)
			}
		}
	}
	missing := 0
	for i := range calls {
		if count[fmt.Sprintf("crash-%05d", i)] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of the %d log_ids are not in the stream after the retries", missing, calls)
	}
	if len(msgs) != calls {
		t.Errorf("the stream holds %d entries, want exactly %d", len(msgs), calls)
	}

	// Recovery: from redis-server answering TCP again to the first call,
	// begun after that, that succeeded. It is up to ~1s, not "at once":
	// after PoolSize failed dials go-redis fails every dial with the last
	// dial error and probes in the background once a second
	// (internal/pool/pool.go, dialErrorsNum/tryDial), so calls keep failing
	// with "dial tcp …: connection refused" until the next probe.
	recoveries := make([]time.Duration, len(restarts))
	for k, r := range restarts {
		first := time.Time{}
		for _, o := range results {
			if o.ok && !o.began.Before(r.startedAt) && (first.IsZero() || o.ended.Before(first)) {
				first = o.ended
			}
		}
		if first.IsZero() {
			recoveries[k] = -1
			t.Logf("restart %d (at call %d): no first-attempt call began after it (the load had finished)", k+1, r.atCall)
			continue
		}
		recoveries[k] = first.Sub(r.startedAt)
		t.Logf("restart %d at call %d: Redis dead %v, killed→restarted %v, restarted→first success %v",
			k+1, r.atCall, down, r.startedAt.Sub(r.killed), recoveries[k])
		if recoveries[k] > 2*time.Second {
			t.Errorf("restart %d: the first success came %v after Redis was back", k+1, recoveries[k])
		}
	}
	if len(failed) == 0 {
		t.Error("no call failed: the crashes did not land during the load")
	}

	pid, alive := srv.relPid()
	if pid != pid0 || !alive {
		t.Errorf("the server process changed or died: pid %d → %d, alive %v", pid0, pid, alive)
	}
	if o := relAudit(srv.c, "crash-after"); !o.ok {
		t.Errorf("the server does not answer after the crashes: %v %s", o.protoErr, o.toolErr)
	}

	t.Logf("%d calls by %d goroutines in %v (%.0f calls/s): %d ok first time, %d failed with a tool error, "+
		"0 protocol errors; %d retried once, %d of them found written by the failed attempt (duplicate:true); "+
		"lost %d, duplicated %d; stream holds %d entries; server pid %d unchanged",
		calls, workers, loadTook.Round(time.Millisecond), float64(calls)/loadTook.Seconds(), firstOK, len(failed),
		len(failed), writtenAnyway, lost, duplicated, len(msgs), pid0)
	relFailureKinds(t, results, failed)
}

// relTools is a valid call of every tool; token is a held lock's token.
func relTools(token string) [][2]string {
	return [][2]string{
		{"audit_log", `{"module":"m","procedure":"p","status":"ok"}`},
		{"publish_ccwj_delta", `{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1]}`},
		{"submit_feedback", `{"feedback":"good","session_id":"s1"}`},
		{"emit_workflow_event", `{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed"}`},
		{"read_stream", `{"stream":"audit_log_stream","count":5}`},
		{"get_context", `{"workflow_id":"wf1"}`},
		{"acquire_lock", `{"resource":"rel/other","ttl_ms":60000}`},
		{"release_lock", fmt.Sprintf(`{"resource":"rel/r","token":%q}`, token)},
		{"extend_lock", fmt.Sprintf(`{"resource":"rel/r","token":%q,"ttl_ms":60000}`, token)},
		{"check_rate", `{"subject":"s"}`},
		// The claim makes the group the acknowledgement needs.
		{"claim_events", `{"stream":"workflow_events","group":"rel","consumer":"c"}`},
		{"ack_events", `{"stream":"workflow_events","group":"rel","ids":["1-0"]}`},
		{"stream_info", `{"stream":"workflow_events"}`},
	}
}

// relLock takes the lock rel/r and returns its token.
func relLock(t *testing.T, c *client.Client) string {
	t.Helper()
	res, _, err := relCall(c, "acquire_lock", `{"resource":"rel/r","ttl_ms":600000}`, 10*time.Second)
	if err != nil || res.IsError {
		t.Fatalf("acquire_lock: %v %s", err, func() string {
			if res != nil {
				return resultText(res)
			}
			return ""
		}())
	}
	var a struct {
		Acquired bool   `json:"acquired"`
		Token    string `json:"token"`
	}
	if err := relDecode(res, &a); err != nil || !a.Acquired || a.Token == "" {
		t.Fatalf("acquire_lock: %s %v", res.RawStructuredContent, err)
	}
	return a.Token
}

// relAllFail calls every tool at once and wants each to answer a tool error
// saying Redis is unavailable, within timeout + relBound.
func relAllFail(t *testing.T, c *client.Client, token string, timeout time.Duration, what string) {
	t.Helper()
	tools := relTools(token)
	type answer struct {
		res  *mcp.CallToolResult
		err  error
		took time.Duration
	}
	answers := make([]answer, len(tools))
	var wg sync.WaitGroup
	for k, call := range tools {
		wg.Go(func() {
			res, took, err := relCall(c, call[0], call[1], 4*timeout)
			answers[k] = answer{res, err, took}
		})
	}
	wg.Wait()
	var slowest time.Duration
	for k, a := range answers {
		tool := tools[k][0]
		slowest = max(slowest, a.took)
		switch {
		case a.err != nil:
			t.Errorf("%s, %s: protocol error or hang after %v: %v", what, tool, a.took, a.err)
		case !a.res.IsError:
			t.Errorf("%s, %s succeeded: %s", what, tool, resultText(a.res))
		case !strings.Contains(resultText(a.res), "unavailable"):
			t.Errorf("%s, %s: the tool error does not say Redis is unavailable: %s", what, tool, resultText(a.res))
		}
		if a.took > timeout+relBound {
			t.Errorf("%s, %s answered after %v, over redis.timeout %v + %v", what, tool, a.took, timeout, relBound)
		}
	}
	t.Logf("%s: all %d tools answered a tool error, slowest in %v (bound %v)", what, len(tools), slowest, timeout+relBound)
}

// relAllSucceedWithin calls every tool until each succeeds, and wants all
// to within limit of since; it returns when the last did.
func relAllSucceedWithin(t *testing.T, c *client.Client, token string, since time.Time, limit time.Duration, what string) time.Duration {
	t.Helper()
	var last time.Duration
	for _, call := range relTools(token) {
		for {
			res, _, err := relCall(c, call[0], call[1], 10*time.Second)
			if err != nil {
				t.Fatalf("%s, %s: protocol error: %v", what, call[0], err)
			}
			if !res.IsError {
				break
			}
			if time.Since(since) > limit {
				t.Fatalf("%s, %s still fails %v after: %s", what, call[0], time.Since(since), resultText(res))
			}
			time.Sleep(20 * time.Millisecond)
		}
		last = time.Since(since)
	}
	t.Logf("%s: every tool succeeded again within %v", what, last.Round(time.Millisecond))
	return last
}

func relReadyz(t *testing.T, p *httpProc) (int, time.Duration) {
	t.Helper()
	start := time.Now()
	res, _ := p.get(t, "/readyz", nil)
	return res.StatusCode, time.Since(start)
}

// relWaitReady polls /readyz until 200, and wants that within limit of since.
func relWaitReady(t *testing.T, p *httpProc, since time.Time, limit time.Duration, what string) {
	t.Helper()
	for {
		code, _ := relReadyz(t, p)
		if code == http.StatusOK {
			t.Logf("%s: /readyz 200 again %v after", what, time.Since(since).Round(time.Millisecond))
			return
		}
		if time.Since(since) > limit {
			t.Fatalf("%s: /readyz still %d after %v", what, code, time.Since(since))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// relRedisPid is the pid of the redis-server at addr.
func relRedisPid(t *testing.T, rc *redis.Client) int {
	t.Helper()
	info, err := rc.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process_id in INFO server:\n%s", info)
	return 0
}

// With Redis away — killed, then frozen (SIGSTOP: connections open, no
// answers) — every tool answers a tool error within
// redis.timeout (1s) + 500ms, and /readyz over HTTP says 503. When Redis is
// back every tool succeeds within 2s, from the same server process.
func TestWithRedisAwayEveryToolAnswersAToolErrorInTimeAndRecoversWithoutARestart(t *testing.T) {
	needsFull(t, "takes a redis-server away from the binary")
	const timeout = time.Second
	priv := testredis.Start(t)
	env := []string{"MCP_REDIS_REDIS_TIMEOUT=1s", "MCP_REDIS_AUDIT_TOOL_CALLS=false"}
	srv := spawn(t, env, "--redis-url", priv.URL())
	web := startHTTP(t, env, "--redis-url", priv.URL())
	pid0, _ := srv.relPid()
	token := relLock(t, srv.c)
	relAllSucceedWithin(t, srv.c, token, time.Now(), 5*time.Second, "Redis up")
	if code, _ := relReadyz(t, web); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d", code)
	}

	t.Run("killed", func(t *testing.T) {
		priv.Stop()
		relAllFail(t, srv.c, token, timeout, "Redis killed")
		code, took := relReadyz(t, web)
		if code != http.StatusServiceUnavailable || took > timeout+relBound {
			t.Errorf("/readyz with Redis killed: %d in %v", code, took)
		}
		priv.Start()
		back := time.Now()
		relAllSucceedWithin(t, srv.c, token, back, 2*time.Second, "Redis restarted")
		relWaitReady(t, web, back, 2*time.Second, "Redis restarted")
	})

	t.Run("frozen", func(t *testing.T) {
		rc := relClient(t, priv.Addr, 5*time.Second)
		rpid := relRedisPid(t, rc)
		if err := syscall.Kill(rpid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				_ = syscall.Kill(rpid, syscall.SIGCONT)
			}
		}
		t.Cleanup(thaw)
		relAllFail(t, srv.c, token, timeout, "Redis frozen")
		code, took := relReadyz(t, web)
		if code != http.StatusServiceUnavailable || took > timeout+relBound {
			t.Errorf("/readyz with Redis frozen: %d in %v", code, took)
		}
		thaw()
		back := time.Now()
		relAllSucceedWithin(t, srv.c, token, back, 2*time.Second, "Redis thawed")
		relWaitReady(t, web, back, 2*time.Second, "Redis thawed")
	})

	if pid, alive := srv.relPid(); pid != pid0 || !alive {
		t.Errorf("the stdio server process changed or died: pid %d → %d, alive %v", pid0, pid, alive)
	}
	select {
	case <-web.done:
		t.Errorf("the HTTP server exited: %v", web.err)
	default:
	}
}

// While Redis sleeps in DEBUG SLEEP 3, every tool answers a tool error
// within redis.timeout (1s) + 500ms and nothing hangs; after the sleep
// every tool succeeds. An audit_log that timed out during the sleep may
// still have been run by Redis when it woke: its retry with the same
// log_id must not append a second entry.
func TestRedisSlowCallsTimeOutCleanlyAndSucceedAfter(t *testing.T) {
	needsFull(t, "puts a redis-server to sleep under the binary")
	const timeout = time.Second
	priv := testredis.Start(t, "--enable-debug-command", "yes")
	srv := spawn(t, []string{"MCP_REDIS_REDIS_TIMEOUT=1s", "MCP_REDIS_AUDIT_TOOL_CALLS=false"},
		"--redis-url", priv.URL())
	pid0, _ := srv.relPid()
	token := relLock(t, srv.c)
	relAllSucceedWithin(t, srv.c, token, time.Now(), 5*time.Second, "Redis quick")

	rc := relClient(t, priv.Addr, 10*time.Second)
	ctx := context.Background()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	slept := make(chan error, 1)
	var woke atomic.Int64
	sleepAt := time.Now()
	go func() {
		err := rc.Do(ctx, "DEBUG", "SLEEP", "3").Err()
		woke.Store(time.Now().UnixNano())
		slept <- err
	}()
	time.Sleep(100 * time.Millisecond) // DEBUG SLEEP is running

	relAllFail(t, srv.c, token, timeout, "Redis asleep")
	o := relAudit(srv.c, "slow-1")
	if o.protoErr != nil || o.ok {
		t.Errorf("audit_log slow-1 during the sleep: ok=%v %v", o.ok, o.protoErr)
	}
	if took := o.ended.Sub(o.began); took > timeout+relBound {
		t.Errorf("audit_log slow-1 during the sleep answered after %v", took)
	}
	if woke.Load() != 0 {
		t.Fatalf("DEBUG SLEEP 3 ended before the calls did (%v): the calls did not meet a sleeping Redis", time.Since(sleepAt))
	}

	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	awake := time.Unix(0, woke.Load())
	relAllSucceedWithin(t, srv.c, token, awake, 2*time.Second, "Redis awake")

	r := relAudit(srv.c, "slow-1")
	if !r.ok {
		t.Fatalf("retry of slow-1: %v %s", r.protoErr, r.toolErr)
	}
	msgs, err := rc.XRange(ctx, "mcp:audit_log_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Values["log_id"] == "slow-1" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("log_id slow-1 is in the stream %d times, want once", n)
	}
	t.Logf("the timed-out audit_log slow-1 had been run by Redis when it woke: %v (its retry answered duplicate:%v)", r.duplicate, r.duplicate)
	if pid, alive := srv.relPid(); pid != pid0 || !alive {
		t.Errorf("the server process changed or died: pid %d → %d, alive %v", pid0, pid, alive)
	}
}

// relFailureKinds logs the failures by kind and by when they began.
func relFailureKinds(t *testing.T, results []relOutcome, failed []int) {
	kinds := map[string]int{}
	for _, i := range failed {
		o := results[i]
		k := o.toolErr
		if a, _, ok := strings.Cut(k, ": "); ok {
			b := strings.TrimPrefix(k, a+": ")
			if c, _, ok := strings.Cut(b, " 127.0.0.1"); ok {
				b = c
			}
			k = a + ": " + b
			if len(k) > 120 {
				k = k[:120]
			}
		}
		kinds[k]++
	}
	for k, n := range kinds {
		t.Logf("%5d failures: %s", n, k)
	}
}

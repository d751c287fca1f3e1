package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The report, exactly: with redis.timeout 1s and Redis in DEBUG SLEEP 2.5,
// acquire_lock ORPHAN with ttl_ms 600000 answers "redis is unavailable"
// after a second, and Redis takes the lock when it wakes, for a token the
// server minted and nobody learnt. The server gives it back as soon as
// Redis answers again instead of leaving ORPHAN held for ten minutes.
func TestATimedOutAcquireLockLeavesNoOrphanedLockBehind(t *testing.T) {
	needsFull(t, "starts the binary")
	priv := testredis.Start(t, "--enable-debug-command", "yes")
	prefix := "el:" + testredis.Random(4) + ":"
	srv := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + priv.URL(), "MCP_REDIS_REDIS_TIMEOUT=1s"}, "--prefix", prefix)
	// A running server has its connections open and acquire.lua cached
	// (else the timed-out EVALSHA meets NOSCRIPT and takes nothing).
	srv.ok("acquire_lock", args(`{"resource":"warm-up","ttl_ms":1000}`))

	rc := redis.NewClient(&redis.Options{Addr: priv.Addr, ReadTimeout: 10 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	awake := make(chan time.Time, 1)
	go func() {
		if err := rc.Do(ctx, "DEBUG", "SLEEP", "2.5").Err(); err != nil {
			t.Errorf("DEBUG SLEEP: %v", err)
		}
		awake <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond) // DEBUG SLEEP is running

	start := time.Now()
	res := srv.call("acquire_lock", args(`{"resource":"ORPHAN","ttl_ms":600000}`))
	took := time.Since(start)
	if !res.IsError || !strings.Contains(resultText(res), "redis is unavailable") {
		t.Fatalf("acquire_lock while Redis sleeps: isError=%v %q; want redis is unavailable", res.IsError, resultText(res))
	}
	if took > 5*time.Second {
		t.Errorf("acquire_lock while Redis sleeps answered after %v", took)
	}
	answered := <-awake

	// The fence shows Redis ran the timed-out acquire when it woke; only
	// then does the lock's absence mean it was given back.
	key, fence := prefix+"locks:ORPHAN", prefix+"fence:{"+prefix+"locks:ORPHAN}"
	deadline := answered.Add(10 * time.Second) // far below the 600 s ttl
	for rc.Get(ctx, fence).Val() != "1" || rc.Exists(ctx, key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still held %v after Redis answered again (pttl %v, fence %q): an orphaned lock\nstderr:\n%s",
				key, time.Since(answered).Round(time.Millisecond), rc.PTTL(ctx, key).Val(), rc.Get(ctx, fence).Val(), srv.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("acquire_lock answered unavailable after %v; orphan freed %d ms after Redis answered",
		took.Round(time.Millisecond), time.Since(answered).Milliseconds())

	var g acquireOut
	must(t, srv, "acquire_lock", map[string]any{"resource": "ORPHAN", "ttl_ms": 1000}, &g)
	if !g.Acquired || g.FencingToken != 2 {
		t.Errorf("the next acquire_lock ORPHAN = %+v; want acquired with fencing token 2", g)
	}
}

// The report: a workflow's context key made a plain string (SET) made
// publish_ccwj_delta answer an internal error after its stream entry and
// idempotency record were written, so a retry said duplicate although the
// context never changed. Now the failed call leaves nothing, and the retry
// after the key is fixed is a fresh write.
func TestAPublishCCWJDeltaThatFailsOnAWrongTypedContextWritesNothing(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	stream := prefix + "ccwj_update_stream"
	ctxKey := prefix + "ctx:{" + stream + "}:wf-el"
	idem := prefix + "idem:{" + stream + "}:D-el-1"
	if err := rdb.Set(ctx, ctxKey, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	sub := rdb.Subscribe(ctx, prefix+"events:ccwj_update_stream")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	notices := sub.Channel()

	delta := `{"workflow_id":"wf-el","phase_id":"plan","field":"steps","value":[1,2],"event_id":"D-el-1"}`
	res := srv.call("publish_ccwj_delta", args(delta))
	if msg := resultText(res); !res.IsError || !strings.Contains(msg, "internal error") {
		t.Fatalf("publish_ccwj_delta on a string context: isError=%v %q; want an internal error", res.IsError, msg)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 0 {
		t.Errorf("the failed call left %d stream entries", n)
	}
	if rdb.Exists(ctx, idem).Val() != 0 {
		t.Errorf("the failed call left its idempotency record %s = %q", idem, rdb.Get(ctx, idem).Val())
	}
	if v := rdb.Get(ctx, ctxKey).Val(); v != "not a hash" {
		t.Errorf("the context key is now %q", v)
	}
	select {
	case m := <-notices:
		t.Errorf("the failed call announced %s", m.Payload)
	case <-time.After(200 * time.Millisecond):
	}

	rdb.Del(ctx, ctxKey)
	out := srv.ok("publish_ccwj_delta", args(delta))
	if out["duplicate"] != false {
		t.Fatalf("the retry after fixing the key = %v; want a fresh write", out)
	}
	if n := rdb.XLen(ctx, stream).Val(); n != 1 {
		t.Errorf("the stream has %d entries after the retry, want 1", n)
	}
	if v := rdb.HGet(ctx, ctxKey, `["plan","steps"]`).Val(); v != `[1,2]` {
		t.Errorf("the context cell is %q after the retry, want [1,2]", v)
	}
	select {
	case <-notices:
	case <-time.After(5 * time.Second):
		t.Error("the retry was not announced: the no-notice check above proves nothing")
	}
}

// A retry is the same payload whatever it says of the timestamp: given or
// not, the server's own or another. It returns the first entry's id and
// timestamp. Any other field differing is a conflict.
func TestARetryIsADuplicateWhateverItsTimestamp(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	const t1, t2 = "2026-01-02T03:04:05.678Z", "2026-01-02T09:09:09Z"
	audit := func(id, ts, status string) string {
		s := `{"module":"m","procedure":"p","status":"` + status + `","log_id":"` + id + `"`
		if ts != "" {
			s += `,"timestamp":"` + ts + `"`
		}
		return s + "}"
	}
	event := func(id, ts string) string {
		s := `{"workflow_id":"wf","phase":"plan","event_type":"done","event_id":"` + id + `"`
		if ts != "" {
			s += `,"timestamp":"` + ts + `"`
		}
		return s + "}"
	}
	filled := "" // the server's timestamp for the calls below that give none
	cases := []struct {
		name          string
		tool          string
		first, retry  func() string
		wantTimestamp func() string
	}{
		{"with a timestamp, then without", "audit_log",
			func() string { return audit("L-el-1", t1, "ok") }, func() string { return audit("L-el-1", "", "ok") },
			func() string { return t1 }},
		{"without, then with the timestamp the server filled", "audit_log",
			func() string { return audit("L-el-2", "", "ok") }, func() string { return audit("L-el-2", filled, "ok") },
			func() string { return filled }},
		{"with one timestamp, then another", "audit_log",
			func() string { return audit("L-el-3", t1, "ok") }, func() string { return audit("L-el-3", t2, "ok") },
			func() string { return t1 }},
		{"an event with one timestamp, then without", "emit_workflow_event",
			func() string { return event("W-el-1", t2) }, func() string { return event("W-el-1", "") },
			func() string { return "2026-01-02T09:09:09.000Z" }}, // t2 in the server's form
	}
	for _, c := range cases {
		first, ok := elWrite(t, srv, c.tool, c.first())
		if !ok {
			continue
		}
		filled, _ = first["timestamp"].(string)
		retry, ok := elWrite(t, srv, c.tool, c.retry())
		if ok && (retry["duplicate"] != true || retry["entry_id"] != first["entry_id"] || retry["timestamp"] != c.wantTimestamp()) {
			t.Errorf("%s:\nfirst = %v\nretry = %v; want a duplicate with the first entry id and timestamp %s",
				c.name, first, retry, c.wantTimestamp())
		}
	}
	ctx := context.Background()
	if a, w := rdb.XLen(ctx, prefix+"audit_log_stream").Val(), rdb.XLen(ctx, prefix+"workflow_events").Val(); a != 3 || w != 1 {
		t.Errorf("the streams hold %d audit entries and %d events, want 3 and 1 (one per id)", a, w)
	}

	// Another field differing, with or without the timestamp, is a conflict.
	for _, retry := range []string{audit("L-el-1", t1, "error"), audit("L-el-1", "", "error")} {
		res := srv.call("audit_log", args(retry))
		if msg := resultText(res); !res.IsError || !strings.Contains(msg, "already used") {
			t.Errorf("audit_log %s: isError=%v %q; want a conflict", retry, res.IsError, msg)
		}
	}
	if n := rdb.XLen(ctx, prefix+"audit_log_stream").Val(); n != 3 {
		t.Errorf("the audit stream holds %d entries after the conflicts, want 3", n)
	}
}

// elWrite calls a write tool and returns its structured result; a tool
// error is reported (not fatal) and gives false.
func elWrite(t *testing.T, srv *server, tool, arguments string) (map[string]any, bool) {
	t.Helper()
	res := srv.call(tool, args(arguments))
	if res.IsError {
		t.Errorf("%s %s: %s", tool, arguments, resultText(res))
		return nil, false
	}
	var out map[string]any
	if err := json.Unmarshal(res.RawStructuredContent, &out); err != nil {
		t.Fatalf("%s structured content %q: %v", tool, res.RawStructuredContent, err)
	}
	return out, true
}

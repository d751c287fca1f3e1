package main_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// migrateRun runs `mcp-redis migrate` against the shared Redis.
func migrateRun(t *testing.T, prefix string, extra ...string) (string, bool) {
	t.Helper()
	out, err := runBinary(t, runBound, nil, append([]string{"migrate", "--redis-url", testredis.URL(), "--prefix", prefix}, extra...)...)
	return out, err == nil
}

// snapshot is every key under the prefix, both layouts, with its content.
func snapshot(t *testing.T, rdb *redis.Client, prefix string) map[string]testredis.KeyState {
	t.Helper()
	ctx := context.Background()
	got := map[string]testredis.KeyState{}
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		for _, k := range rdb.Keys(ctx, pattern).Val() {
			got[k] = testredis.StateOf(t, rdb, k)
		}
	}
	return got
}

// diff says which keys differ between two snapshots, or "".
func diff(before, after map[string]testredis.KeyState) string {
	var d []string
	for k, s := range before {
		a, ok := after[k]
		if !ok {
			d = append(d, k+" is gone")
		} else if c := s.Changed(a); c != "" {
			d = append(d, k+" "+c)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d = append(d, k+" is new")
		}
	}
	return strings.Join(d, "; ")
}

func TestMigrateCarriesTheEarlierLayoutOverOnceAndNeverLowersAFence(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	ctx := context.Background()
	old := func(main, rest string) string { return "{" + prefix + main + "}" + rest }
	pipe := rdb.TxPipeline()
	pipe.Set(ctx, old("locks:db1", ":fence"), 42, 0)
	pipe.Set(ctx, prefix+"fence:{"+prefix+"locks:db1}", 40, 0) // a newer server granted from 1 meanwhile
	pipe.Set(ctx, old("locks:db2", ":fence"), 7, 0)
	pipe.Set(ctx, prefix+"fence:{"+prefix+"locks:db3}", 9, 0)
	pipe.Set(ctx, old("locks:db3", ":fence"), 3, 0) // the current counter is ahead: it stays
	pipe.Set(ctx, old("locks:db2", ":owner"), "agent-7", time.Minute)
	pipe.HSet(ctx, old("ccwj_update_stream", ":ctx:wf-1"), `["plan","steps"]`, `[1,2]`)
	pipe.Set(ctx, old("audit_log_stream", ":chain"), "1-1 abc 1", 0)
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: old("audit_log_stream", ":checkpoints"), ID: "1-1", Values: []string{"entry_id", "1-1"}})
	pipe.Set(ctx, old("audit_log_stream", ":idem:L-1"), "1-1 fp", time.Hour)
	pipe.Set(ctx, old("other", ":idem:x"), "not ours", 0) // not one of the server's keys
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}

	before := snapshot(t, rdb, prefix)
	out, ok := migrateRun(t, prefix, "--dry-run")
	if !ok || !strings.Contains(out, "would be merged "+old("locks:db1", ":fence")) || !strings.Contains(out, "8 keys of the earlier layout") {
		t.Fatalf("migrate --dry-run:\n%s", out)
	}
	if d := diff(before, snapshot(t, rdb, prefix)); d != "" {
		t.Fatalf("--dry-run changed keys: %s", d)
	}

	out, ok = migrateRun(t, prefix)
	if !ok {
		t.Fatalf("migrate failed:\n%s", out)
	}
	t.Logf("migrate:\n%s", out)
	for key, want := range map[string]string{
		prefix + "fence:{" + prefix + "locks:db1}":           "42",
		prefix + "fence:{" + prefix + "locks:db2}":           "7",
		prefix + "fence:{" + prefix + "locks:db3}":           "9",
		prefix + "owner:{" + prefix + "locks:db2}":           "agent-7",
		prefix + "chain:{" + prefix + "audit_log_stream}":    "1-1 abc 1",
		prefix + "idem:{" + prefix + "audit_log_stream}:L-1": "1-1 fp",
	} {
		if got := rdb.Get(ctx, key).Val(); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if ttl := rdb.PTTL(ctx, prefix+"idem:{"+prefix+"audit_log_stream}:L-1").Val(); ttl < 59*time.Minute {
		t.Errorf("the idempotency record's TTL is %v; it keeps the one it had", ttl)
	}
	if ttl := rdb.PTTL(ctx, prefix+"owner:{"+prefix+"locks:db2}").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("the owner label's TTL is %v; it keeps the one it had", ttl)
	}
	if got := rdb.HGet(ctx, prefix+"ctx:{"+prefix+"ccwj_update_stream}:wf-1", `["plan","steps"]`).Val(); got != "[1,2]" {
		t.Errorf("the context was not carried over: %q", got)
	}
	if n := rdb.XLen(ctx, prefix+"checkpoints:{"+prefix+"audit_log_stream}").Val(); n != 1 {
		t.Errorf("the checkpoints stream holds %d entries, want 1", n)
	}
	left := rdb.Keys(ctx, "{"+prefix+"*").Val()
	if len(left) != 1 || left[0] != old("other", ":idem:x") {
		t.Errorf("keys left under the earlier layout: %v; only the one that is not the server's", left)
	}

	migrated := snapshot(t, rdb, prefix)
	out, ok = migrateRun(t, prefix)
	if !ok || !strings.Contains(out, "0 keys of the earlier layout") {
		t.Errorf("a second migrate:\n%s", out)
	}
	if d := diff(migrated, snapshot(t, rdb, prefix)); d != "" {
		t.Errorf("a second migrate changed keys: %s", d)
	}
}

func TestMigrateLeavesAContextWhoseCurrentKeyExistsAndSaysSo(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	ctx := context.Background()
	oldKey, newKey := "{"+prefix+"ccwj_update_stream}:ctx:wf", prefix+"ctx:{"+prefix+"ccwj_update_stream}:wf"
	rdb.HSet(ctx, oldKey, "a", "old")
	rdb.HSet(ctx, newKey, "a", "new")
	out, ok := migrateRun(t, prefix)
	if ok || !strings.Contains(out, "left "+oldKey) {
		t.Errorf("migrate exited ok=%v:\n%s", ok, out)
	}
	if rdb.HGet(ctx, oldKey, "a").Val() != "old" || rdb.HGet(ctx, newKey, "a").Val() != "new" {
		t.Error("a context under both names was changed")
	}
}

// leastPrivilege is the ACL rule the README documents for the server's
// Redis user: its keys and channels, and only the command categories it uses.
const leastPrivilege = "on >pass resetkeys ~mcp:* resetchannels &mcp:* -@all +@read +@write +@scripting +@pubsub +@connection +time -@dangerous"

func TestALeastPrivilegeACLUserRunsEveryTool(t *testing.T) {
	needsFull(t, "starts the binary")
	s := testredis.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer admin.Close()
	ctx := context.Background()
	if err := admin.Do(ctx, append([]any{"ACL", "SETUSER", "agent"}, toAny(strings.Fields(leastPrivilege))...)...).Err(); err != nil {
		t.Fatalf("ACL SETUSER: %v", err)
	}
	agent := redis.NewClient(&redis.Options{Addr: s.Addr, Username: "agent", Password: "pass"})
	defer agent.Close()
	// The earlier layout's helper keys lie outside the user's keys.
	if err := agent.Set(ctx, "{mcp:locks:db1}:fence", 1, 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the earlier layout's fence key is writable by the agent user (%v): the rule is not least-privilege", err)
	}

	dir := t.TempDir()
	srv := spawn(t, []string{"MCP_REDIS_AUDIT_SIGNING_KEY_FILE=" + filepath.Join(dir, "signing.key"), "MCP_REDIS_AUDIT_CHECKPOINT_EVERY=1",
		"MCP_REDIS_GROUPS_MAX_DELIVERIES=1"},
		"--redis-url", "redis://agent:pass@"+s.Addr, "--prefix", "mcp:")
	ok := func(tool string, a any) map[string]any {
		t.Helper()
		res := srv.call(tool, a)
		if res.IsError {
			t.Fatalf("%s: %s\nthe server's log:\n%s", tool, resultText(res), srv.stderr.String())
		}
		var out map[string]any
		if err := json.Unmarshal(res.RawStructuredContent, &out); err != nil {
			t.Fatalf("%s structured content %q: %v", tool, res.RawStructuredContent, err)
		}
		return out
	}
	ok("audit_log", args(`{"module":"planner","procedure":"draft","status":"ok","log_id":"L-1"}`))
	if out := ok("audit_log", args(`{"module":"planner","procedure":"draft","status":"ok","log_id":"L-1"}`)); out["duplicate"] != true {
		t.Errorf("a retried log_id = %v, want a duplicate", out)
	}
	ok("publish_ccwj_delta", args(`{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1],"event_id":"D-1"}`))
	ok("submit_feedback", args(`{"feedback":"good","session_id":"s1","user_id":"u1","module":"m","procedure":"p","event_id":"F-1"}`))
	ok("emit_workflow_event", args(`{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed","event_id":"W-1"}`))
	got := ok("acquire_lock", args(`{"resource":"db1","ttl_ms":5000,"owner":"agent-7"}`))
	if got["acquired"] != true {
		t.Fatalf("acquire_lock = %v", got)
	}
	held := ok("acquire_lock", args(`{"resource":"db1"}`))
	if held["acquired"] != false || held["owner"] != "agent-7" {
		t.Errorf("a held lock = %v, want not acquired, owner agent-7", held)
	}
	tok := got["token"].(string)
	ok("extend_lock", map[string]any{"resource": "db1", "token": tok, "ttl_ms": 5000})
	ok("release_lock", map[string]any{"resource": "db1", "token": tok})
	// A bounded wait subscribes to the lock channel.
	w := ok("acquire_lock", args(`{"resource":"db1","wait_ms":200}`))
	ok("release_lock", map[string]any{"resource": "db1", "token": w["token"]})
	ok("check_rate", args(`{"subject":"u1"}`))
	ok("read_stream", args(`{"stream":"audit_log_stream","count":10}`))
	if c := ok("get_context", args(`{"workflow_id":"wf1"}`)); c["context"] == nil {
		t.Errorf("get_context = %v", c)
	}
	// Consumer groups, down to a dead letter (max_deliveries 1 here): its
	// stream and notice are under the prefix too.
	claimed := ok("claim_events", args(`{"stream":"workflow_events","group":"g","consumer":"c1","from":"0","block_ms":100}`))
	if es, _ := claimed["entries"].([]any); len(es) != 1 {
		t.Errorf("claim_events = %v", claimed)
	}
	ok("ack_events", args(`{"stream":"workflow_events","group":"g","ids":["1-0"]}`))
	time.Sleep(150 * time.Millisecond)
	if moved := ok("claim_events", args(`{"stream":"workflow_events","group":"g","consumer":"c2","reclaim_idle_ms":100}`)); moved["dead_lettered"] == nil {
		t.Errorf("claim_events after max_deliveries = %v, want a dead letter", moved)
	}
	if n := admin.XLen(ctx, "mcp:dead_letter:{mcp:workflow_events}").Val(); n != 1 {
		t.Errorf("%d dead letters", n)
	}
	ok("stream_info", args(`{"stream":"workflow_events"}`))
	deadline := time.Now().Add(5 * time.Second)
	for admin.XLen(ctx, "mcp:checkpoints:{mcp:audit_log_stream}").Val() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if v := ok("verify_audit", args(`{}`)); v["ok"] != true {
		t.Errorf("verify_audit = %v", v)
	}
	for _, k := range admin.Keys(ctx, "*").Val() {
		if !strings.HasPrefix(k, "mcp:") {
			t.Errorf("key %q lies outside the prefix", k)
		}
	}
	if admin.XLen(ctx, "mcp:checkpoints:{mcp:audit_log_stream}").Val() == 0 {
		t.Error("no checkpoint was signed")
	}
	if l := srv.stderr.String(); strings.Contains(l, "NOPERM") || strings.Contains(l, "level=ERROR") {
		t.Errorf("the server's log:\n%s", l)
	}
	// migrate runs under the same user.
	if out, err := runBinary(t, runBound, nil, "migrate", "--redis-url", "redis://agent:pass@"+s.Addr); err != nil || !strings.Contains(out, "0 keys") {
		t.Errorf("migrate as the agent user: %v\n%s", err, out)
	}
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func TestTheServerWarnsAtStartWhenKeysOfTheEarlierLayoutExist(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	rdb.Set(context.Background(), "{"+prefix+"locks:db1}:fence", 5, 0)
	srv := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(srv.stderr.String(), `run \"mcp-redis migrate\"`) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if l := srv.stderr.String(); !strings.Contains(l, `run \"mcp-redis migrate\"`) || !strings.Contains(l, "{"+prefix+"locks:db1}:fence") {
		t.Errorf("no warning naming the earlier key in the server's log:\n%s", l)
	}
}

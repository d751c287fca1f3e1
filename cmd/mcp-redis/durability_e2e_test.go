package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// waitLinked waits until master counts n replicas that acknowledge its
// writes (a replica reports its link up before the master streams to it).
func waitLinked(t *testing.T, master *testredis.Server, n int) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer c.Close()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		c.Set(ctx, "t:replication-probe", time.Now().String(), 0)
		if got, _ := c.Wait(ctx, n, 100*time.Millisecond).Result(); got >= int64(n) {
			c.Del(ctx, "t:replication-probe")
			return
		}
	}
	t.Fatalf("master %s never had %d replicas acknowledging", master.Addr, n)
}

// With redis.wait_replicas 1 and no replica to confirm, a write is a tool
// error saying durability was not confirmed and that a retry with the same
// log_id is safe; a lock grant is not handed out (and is given back). Once
// a replica confirms, the retry answers the first entry, written once, and
// a lock is granted with its fencing token.
func TestWithWaitReplicasAnUnconfirmedWriteIsAToolErrorAndItsRetryIsSafe(t *testing.T) {
	needsFull(t, "starts a redis-server, a replica and the binary")
	master := testredis.Start(t, "--repl-diskless-sync-delay", "0")
	admin := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer admin.Close()
	srv := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + master.URL(), "MCP_REDIS_REDIS_WAIT_REPLICAS=1",
		"MCP_REDIS_REDIS_WAIT_TIMEOUT=200ms", "MCP_REDIS_AUDIT_TOOL_CALLS=false"})

	entry := args(`{"module":"dur","procedure":"p","status":"ok","log_id":"D-1"}`)
	res := srv.call("audit_log", entry)
	text := resultText(res)
	if !res.IsError || !strings.Contains(text, "durability not confirmed") || !strings.Contains(text, "0 of the 1 replicas") ||
		!strings.Contains(text, "same log_id") || strings.Contains(text, "internal error") {
		t.Errorf("audit_log with no replica to confirm: isError=%v %q", res.IsError, text)
	}
	res = srv.call("acquire_lock", args(`{"resource":"db1","ttl_ms":60000}`))
	if text := resultText(res); !res.IsError || !strings.Contains(text, "durability not confirmed") || !strings.Contains(text, "acquire_lock again") {
		t.Errorf("acquire_lock with no replica to confirm: isError=%v %q", res.IsError, text)
	}
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for admin.Exists(ctx, "mcp:locks:db1").Val() == 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if admin.Exists(ctx, "mcp:locks:db1").Val() == 1 {
		t.Error("the unconfirmed grant was not given back: the lock is held by a token nobody has")
	}

	_, port, _ := strings.Cut(master.Addr, ":")
	replica := testredis.Start(t, "--replicaof", "127.0.0.1", port)
	waitLinked(t, master, 1)
	out := srv.ok("audit_log", entry)
	if out["duplicate"] != true {
		t.Errorf("the retry with the same log_id = %v; want the first entry, a duplicate", out)
	}
	if n := admin.XLen(ctx, "mcp:audit_log_stream").Val(); n != 1 {
		t.Errorf("audit_log_stream holds %d entries after the retry; want 1", n)
	}
	got := srv.ok("acquire_lock", args(`{"resource":"db1","ttl_ms":60000}`))
	if got["acquired"] != true {
		t.Fatalf("acquire_lock once a replica confirms = %v", got)
	}
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	defer rc.Close()
	if f := rc.Get(ctx, "mcp:fence:{mcp:locks:db1}").Val(); f == "" || f != admin.Get(ctx, "mcp:fence:{mcp:locks:db1}").Val() {
		t.Errorf("the replica's fencing counter %q is not the master's once the grant was answered", f)
	}
	srv.ok("release_lock", args(`{"resource":"db1","token":"`+got["token"].(string)+`"}`))
	srv.ok("check_rate", args(`{"subject":"s1"}`))
}

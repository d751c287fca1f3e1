package main_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// receive waits for one message on ps.
func receive(t *testing.T, ps *redis.PubSub, what string) *redis.Message {
	t.Helper()
	select {
	case m := <-ps.Channel():
		return m
	case <-time.After(5 * time.Second):
		t.Fatalf("no notice on %s", what)
		return nil
	}
}

// Over a cluster, notices reach a subscriber in both modes: PUBLISH on
// mcp:events:<stream> (SUBSCRIBE on any node), and with
// redis.sharded_pubsub SPUBLISH on mcp:events:{mcp:<stream>}, the stream's
// own slot (SSUBSCRIBE), from the same script that writes the entry. A
// lock waiter is woken by the sharded release notice on mcp:events:locks.
// The ACL rule with +cluster|slots covers both.
func TestTopologyClusterNoticesReachSubscribersPlainAndSharded(t *testing.T) {
	needsFull(t, "starts a real cluster")
	rule := strings.Fields(leastPrivilege + " +cluster|slots")
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Args: append([]string{"--user", "agent"}, rule...)})
	url := strings.Replace(cl.URL(), "redis+cluster://", "redis+cluster://agent:pass@", 1)
	c := cl.Client(t)
	ctx := context.Background()

	t.Run("PUBLISH", func(t *testing.T) {
		ps := c.Subscribe(ctx, "mcp:events:audit_log_stream")
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		srv := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + url, "MCP_REDIS_AUDIT_TOOL_CALLS=false"})
		out := srv.ok("audit_log", args(`{"module":"m","procedure":"plain","status":"ok"}`))
		if m := receive(t, ps, "mcp:events:audit_log_stream"); !strings.Contains(m.Payload, out["entry_id"].(string)) {
			t.Errorf("notice %q does not name the entry %v", m.Payload, out["entry_id"])
		}
	})

	t.Run("SPUBLISH", func(t *testing.T) {
		channel := "mcp:events:{mcp:audit_log_stream}"
		ps := c.SSubscribe(ctx, channel)
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		srv := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + url, "MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_REDIS_SHARDED_PUBSUB=true"})
		out := srv.ok("audit_log", args(`{"module":"m","procedure":"sharded","status":"ok"}`))
		if m := receive(t, ps, channel); !strings.Contains(m.Payload, out["entry_id"].(string)) {
			t.Errorf("notice %q does not name the entry %v", m.Payload, out["entry_id"])
		}
		for _, tool := range []struct{ name, args, stream string }{
			{"publish_ccwj_delta", `{"workflow_id":"wf1","phase_id":"plan","field":"steps","value":[1]}`, "ccwj_update_stream"},
			{"submit_feedback", `{"feedback":"good","session_id":"s1","user_id":"u1","module":"m","procedure":"p"}`, "user_feedback"},
			{"emit_workflow_event", `{"workflow_id":"wf1","phase":"plan","event_type":"phase_completed"}`, "workflow_events"},
		} {
			ch := "mcp:events:{mcp:" + tool.stream + "}"
			ps := c.SSubscribe(ctx, ch)
			if _, err := ps.Receive(ctx); err != nil {
				t.Fatal(err)
			}
			srv.ok(tool.name, args(tool.args))
			receive(t, ps, ch)
			_ = ps.Close()
		}

		// A dead letter is announced by the script that moves it, on its
		// channel in the stream's slot (max_deliveries 1 here).
		dlCh := "mcp:events:dead_letter:{mcp:workflow_events}"
		dps := c.SSubscribe(ctx, dlCh)
		defer dps.Close()
		if _, err := dps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		poisoner := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + url, "MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_REDIS_SHARDED_PUBSUB=true", "MCP_REDIS_GROUPS_MAX_DELIVERIES=1"})
		poisoner.ok("claim_events", args(`{"stream":"workflow_events","group":"poison","consumer":"c1","from":"0","count":100}`))
		time.Sleep(150 * time.Millisecond)
		moved := poisoner.ok("claim_events", args(`{"stream":"workflow_events","group":"poison","consumer":"c2","reclaim_idle_ms":100,"count":100}`))
		if dead, _ := moved["dead_lettered"].([]any); len(dead) == 0 {
			t.Errorf("claim_events after max_deliveries = %v, want dead letters", moved)
		}
		if m := receive(t, dps, dlCh); !strings.Contains(m.Payload, `"original_id"`) || !strings.Contains(m.Payload, `"poison"`) {
			t.Errorf("dead-letter notice %q", m.Payload)
		}

		locks := c.SSubscribe(ctx, "mcp:events:locks")
		defer locks.Close()
		if _, err := locks.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		held := srv.ok("acquire_lock", args(`{"resource":"db1","ttl_ms":30000}`))
		other := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + url, "MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_REDIS_SHARDED_PUBSUB=true"})
		done := make(chan map[string]any, 1)
		go func() {
			res, err := other.try("acquire_lock", map[string]any{"resource": "db1", "ttl_ms": 1000, "wait_ms": 20000})
			if err != nil || res.IsError {
				done <- nil
				return
			}
			done <- structured(res)
		}()
		time.Sleep(300 * time.Millisecond)
		srv.ok("release_lock", args(`{"resource":"db1","token":"`+held["token"].(string)+`"}`))
		// The grant is announced too (SPUBLISH after acquire.lua), first.
		if m := receive(t, locks, "mcp:events:locks"); !strings.Contains(m.Payload, `"acquired"`) || !strings.Contains(m.Payload, `"fencing_token"`) {
			t.Errorf("grant notice %q", m.Payload)
		}
		if m := receive(t, locks, "mcp:events:locks"); !strings.Contains(m.Payload, `"released"`) {
			t.Errorf("release notice %q", m.Payload)
		}
		if got := <-done; got == nil || got["acquired"] != true {
			t.Errorf("the waiter after a sharded release notice: %v", got)
		}
	})
}

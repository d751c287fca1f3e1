package main_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// batchEndToEnd sends batches through the binary over stdio: one of 50
// audit entries (the chained stream), the same again (all duplicates), one
// of CCWJ deltas (the context), and one with a bad entry (refused, nothing
// written); then counts what Redis holds under prefix and verifies the
// chain.
func batchEndToEnd(t *testing.T, s *server, check redis.UniversalClient, prefix string) {
	t.Helper()
	ctx := context.Background()
	var entries []string
	for i := range 50 {
		entries = append(entries, fmt.Sprintf(`{"module":"e2e","procedure":"step","status":"ok","log_id":"E2E-%d","inputs":{"i":%d}}`, i, i))
	}
	batch := args(`{"stream":"audit_log_stream","entries":[` + strings.Join(entries, ",") + `]}`)
	first := s.ok("append_batch", batch)
	if first["appended"] != float64(50) || first["stream"] != prefix+"audit_log_stream" {
		t.Fatalf("append_batch = %v", first)
	}
	again := s.ok("append_batch", batch)
	if again["appended"] != float64(0) || again["duplicates"] != float64(50) {
		t.Errorf("resent = %v", again)
	}
	msgs, err := check.XRange(ctx, prefix+"audit_log_stream", "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range msgs {
		if m.Values["module"] != "e2e" {
			continue // the server's call records
		}
		want := first["entries"].([]any)[n].(map[string]any)
		if m.ID != want["entry_id"] || m.Values["log_id"] != fmt.Sprintf("E2E-%d", n) || m.Values["hash"] == nil {
			t.Errorf("entry %d = %v, want %v", n, m, want)
		}
		n++
	}
	if n != 50 {
		t.Errorf("the audit stream holds %d batch entries, want 50", n)
	}

	delta := s.ok("append_batch", args(`{"stream":"ccwj_update_stream","entries":[`+
		`{"workflow_id":"wf-b","phase_id":"plan","field":"a","value":1},{"workflow_id":"wf-b","phase_id":"plan","field":"a","value":[2]}]}`))
	if delta["appended"] != float64(2) {
		t.Errorf("deltas = %v", delta)
	}
	cx := s.ok("get_context", args(`{"workflow_id":"wf-b"}`))
	if fmt.Sprint(cx["context"]) != "map[plan:map[a:[2]]]" {
		t.Errorf("get_context = %v", cx)
	}

	res := s.call("append_batch", args(`{"stream":"workflow_events","entries":[{"workflow_id":"w","phase":"p","event_type":"e"},{"workflow_id":"w","phase":"p"}]}`))
	if !res.IsError || !strings.Contains(resultText(res), "entries[1].event_type: is required") {
		t.Errorf("a bad entry: %s", resultText(res))
	}
	if l := check.XLen(ctx, prefix+"workflow_events").Val(); l != 0 {
		t.Errorf("a refused batch wrote %d events", l)
	}

	v := s.ok("verify_audit", args(`{}`))
	if v["ok"] != true || v["from_genesis"] != true {
		t.Errorf("verify_audit = %v", v)
	}
}

func TestAppendBatchThroughTheBinaryOverStdio(t *testing.T) {
	needsFull(t, "runs the built binary")
	rdb, prefix := testredis.Shared(t)
	s := spawn(t, []string{"MCP_REDIS_REDIS_URL=" + testredis.URL(), "MCP_REDIS_REDIS_PREFIX=" + prefix})
	batchEndToEnd(t, s, rdb, prefix)
}

// On Redis Cluster every key of a batch is in its stream's slot, so the
// one script runs there (with sharded notices too).
func TestAppendBatchThroughTheBinaryOnRedisCluster(t *testing.T) {
	needsFull(t, "starts a real cluster topology")
	t.Parallel()
	begin := time.Now()
	c := testredis.StartCluster(t, testredis.ClusterOptions{})
	t.Logf("cluster ready in %v", time.Since(begin).Round(time.Millisecond))
	check := c.Client(t)
	t.Run("publish", func(t *testing.T) {
		batchEndToEnd(t, spawn(t, []string{"MCP_REDIS_REDIS_URL=" + c.URL(), "MCP_REDIS_REDIS_PREFIX=b1:"}), check, "b1:")
	})
	t.Run("spublish", func(t *testing.T) {
		batchEndToEnd(t, spawn(t, []string{"MCP_REDIS_REDIS_URL=" + c.URL(), "MCP_REDIS_REDIS_PREFIX=b2:", "MCP_REDIS_REDIS_SHARDED_PUBSUB=true"}), check, "b2:")
	})
}

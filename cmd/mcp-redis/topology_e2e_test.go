package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests run every tool through the built binary against real
// topologies started for the test: a Redis Cluster (3 masters, 3
// replicas), Sentinel (a master, a replica, 3 sentinels), each also with
// mutual TLS, and the cluster as a least-privilege ACL user. Each
// topology is the test's own, so the default prefix mcp: is used.

// topoACLUser is the least-privilege user of the ACL test, set on every
// cluster node. The rule is the documented one plus +cluster|slots:
// go-redis's ClusterClient learns the slot map with CLUSTER SLOTS
// (loadState in osscluster.go; it never calls CLUSTER SHARDS), which
// none of the granted categories holds (it is @slow only). The final
// rule:
//
//	on >pass resetkeys ~mcp:* resetchannels &mcp:* -@all +@read +@write +@scripting +@pubsub +@connection +time -@dangerous +cluster|slots
var topoACLUser = []string{"--user", "mcp", "on", ">pass", "resetkeys", "~mcp:*", "resetchannels", "&mcp:*",
	"-@all", "+@read", "+@write", "+@scripting", "+@pubsub", "+@connection", "+time", "-@dangerous", "+cluster|slots"}

// topoEnv is the environment of a server on url, with p's CA and client
// certificate when p is set.
func topoEnv(url string, p *testredis.PKI) []string {
	env := []string{"MCP_REDIS_REDIS_URL=" + url}
	if p != nil {
		env = append(env, "MCP_REDIS_REDIS_TLS_CA_FILE="+p.CAFile,
			"MCP_REDIS_REDIS_TLS_CERT_FILE="+p.ClientCert, "MCP_REDIS_REDIS_TLS_KEY_FILE="+p.ClientKey)
	}
	return env
}

// topoWithUser puts user:pass into a redis+cluster:// or redis+sentinel:// URL.
func topoWithUser(url, user, pass string) string {
	return strings.Replace(url, "://", "://"+user+":"+pass+"@", 1)
}

func TestTopologyClusterEveryToolAnswersAsTheDefaultAndALeastPrivilegeUser(t *testing.T) {
	needsFull(t, "starts a real cluster/sentinel topology")
	t.Parallel()
	begin := time.Now()
	c := testredis.StartCluster(t, testredis.ClusterOptions{Args: topoACLUser})
	t.Logf("cluster ready in %v", time.Since(begin).Round(time.Millisecond))
	check := c.Client(t)
	t.Run("default user", func(t *testing.T) {
		topoEveryTool(t, spawn(t, topoEnv(c.URL(), nil)), check, "default")
	})
	t.Run("acl user", func(t *testing.T) {
		// The user is on every node, with CLUSTER SLOTS and not more of
		// CLUSTER (ACL DRYRUN answers OK, or why not as a string).
		err := check.ForEachShard(context.Background(), func(ctx context.Context, n *redis.Client) error {
			if got, err := n.Do(ctx, "acl", "dryrun", "mcp", "cluster", "slots").Text(); err != nil || got != "OK" {
				return fmt.Errorf("%s: ACL DRYRUN mcp CLUSTER SLOTS = %q, %v", n.Options().Addr, got, err)
			}
			if got, err := n.Do(ctx, "acl", "dryrun", "mcp", "cluster", "shards").Text(); err != nil || got == "OK" {
				return fmt.Errorf("%s: ACL DRYRUN mcp CLUSTER SHARDS = %q, %v", n.Options().Addr, got, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		topoEveryTool(t, spawn(t, topoEnv(topoWithUser(c.URL(), "mcp", "pass"), nil)), check, "acl")
	})
}

func TestTopologySentinelEveryToolAnswers(t *testing.T) {
	needsFull(t, "starts a real cluster/sentinel topology")
	t.Parallel()
	begin := time.Now()
	sn := testredis.StartSentinel(t, testredis.SentinelOptions{})
	t.Logf("sentinel topology ready in %v", time.Since(begin).Round(time.Millisecond))
	topoEveryTool(t, spawn(t, topoEnv(sn.URL(), nil)), sn.Client(t), "sentinel")
}

func TestTopologyTLSClusterEveryToolAnswersOverMutualTLS(t *testing.T) {
	needsFull(t, "starts a real cluster/sentinel topology")
	t.Parallel()
	begin := time.Now()
	pki := testredis.NewPKI(t)
	c := testredis.StartCluster(t, testredis.ClusterOptions{PKI: pki})
	t.Logf("TLS cluster ready in %v", time.Since(begin).Round(time.Millisecond))
	topoEveryTool(t, spawn(t, topoEnv(c.URL(), pki)), c.Client(t), "tls-cluster")
}

func TestTopologyTLSSentinelEveryToolAnswersOverMutualTLS(t *testing.T) {
	needsFull(t, "starts a real cluster/sentinel topology")
	t.Parallel()
	begin := time.Now()
	pki := testredis.NewPKI(t)
	sn := testredis.StartSentinel(t, testredis.SentinelOptions{PKI: pki})
	t.Logf("TLS sentinel topology ready in %v", time.Since(begin).Round(time.Millisecond))
	topoEveryTool(t, spawn(t, topoEnv(sn.URL(), pki)), sn.Client(t), "tls-sentinel")
}

// topoEveryTool calls every tool once on srv, each as its own subtest so one
// failing call does not hide the others, and checks with rdb (the default
// user, on the same topology) what the writes left. tag keeps the ids and
// resources of one run apart from another's on the same topology.
func topoEveryTool(t *testing.T, srv *server, rdb redis.UniversalClient, tag string) {
	t.Helper()
	ctx := context.Background()
	// call runs one call as a subtest; a tool error fails it with the
	// text, and then checks the result.
	call := func(name, tool string, a any, then func(t *testing.T, out map[string]any)) {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			out := topoOK(t, srv, tag, tool, a)
			t.Logf("%s in %v", tool, time.Since(start).Round(time.Millisecond))
			if then != nil {
				then(t, out)
			}
		})
	}
	// readBack: the entry just written is in its stream, through
	// read_stream and directly.
	readBack := func(stream string, want map[string]string) func(t *testing.T, out map[string]any) {
		return func(t *testing.T, out map[string]any) {
			id, _ := out["entry_id"].(string)
			if out["stream"] != "mcp:"+stream || out["duplicate"] != false || id == "" {
				t.Fatalf("result = %v", out)
			}
			page := topoOK(t, srv, tag, "read_stream", map[string]any{"stream": stream, "start": id, "count": 1})
			entries, _ := page["entries"].([]any)
			if len(entries) != 1 {
				t.Fatalf("read_stream %s from %s = %v", stream, id, page)
			}
			e := entries[0].(map[string]any)
			fields, _ := e["fields"].(map[string]any)
			if e["id"] != id {
				t.Errorf("read_stream gives entry %v, want %s", e["id"], id)
			}
			for k, v := range want {
				if !sameJSON(fields[k], v) {
					t.Errorf("read_stream field %s = %#v, want %s", k, fields[k], v)
				}
			}
			msgs, err := rdb.XRange(ctx, "mcp:"+stream, id, id).Result()
			if err != nil || len(msgs) != 1 {
				t.Errorf("XRANGE mcp:%s %s: %v %v", stream, id, msgs, err)
			}
		}
	}

	logID := "L-" + tag
	call("audit_log with log_id", "audit_log",
		map[string]any{"module": "planner", "procedure": "draft", "status": "ok", "inputs": map[string]any{"q": "x"}, "log_id": logID},
		readBack("audit_log_stream", map[string]string{"module": "planner", "procedure": "draft", "status": "ok", "inputs": `{"q":"x"}`, "log_id": logID}))
	call("audit_log without log_id", "audit_log",
		map[string]any{"module": "planner", "procedure": "review", "status": "error", "error_code": "E1"},
		readBack("audit_log_stream", map[string]string{"module": "planner", "procedure": "review", "status": "error", "error_code": "E1"}))
	wf := "wf-" + tag
	call("publish_ccwj_delta", "publish_ccwj_delta",
		map[string]any{"workflow_id": wf, "phase_id": "plan", "field": "steps", "value": []any{map[string]any{"a": 1}, "two"}},
		readBack("ccwj_update_stream", map[string]string{"workflow_id": wf, "phase_id": "plan", "field": "steps", "value": `[{"a":1},"two"]`}))
	call("submit_feedback", "submit_feedback",
		map[string]any{"feedback": "good plan", "session_id": "s1", "user_id": "u1", "module": "planner", "procedure": "draft"},
		readBack("user_feedback", map[string]string{"feedback": "good plan", "session_id": "s1", "user_id": "u1"}))
	call("emit_workflow_event", "emit_workflow_event",
		map[string]any{"workflow_id": wf, "phase": "plan", "event_type": "phase_completed", "details": "all good"},
		readBack("workflow_events", map[string]string{"workflow_id": wf, "phase": "plan", "event_type": "phase_completed"}))
	for _, stream := range []string{"audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"} {
		call("read_stream "+stream, "read_stream", map[string]any{"stream": stream, "count": 100}, func(t *testing.T, out map[string]any) {
			if entries, _ := out["entries"].([]any); len(entries) == 0 {
				t.Errorf("read_stream %s = %v, want the entries written", stream, out)
			}
		})
	}
	call("get_context", "get_context", map[string]any{"workflow_id": wf, "phase_id": "plan"}, func(t *testing.T, out map[string]any) {
		plan, _ := out["context"].(map[string]any)["plan"].(map[string]any)
		steps, _ := json.Marshal(plan["steps"])
		if string(steps) != `[{"a":1},"two"]` || out["last_delta_id"] == "" {
			t.Errorf("get_context = %v", out)
		}
	})

	resource := "res-" + tag
	lockKey := "mcp:locks:" + resource
	var token string
	call("acquire_lock", "acquire_lock", map[string]any{"resource": resource, "ttl_ms": 60000, "owner": "o-" + tag}, func(t *testing.T, out map[string]any) {
		token, _ = out["token"].(string)
		if out["acquired"] != true || token == "" {
			t.Fatalf("acquire_lock = %v", out)
		}
		if got, err := rdb.Get(ctx, lockKey).Result(); err != nil || got != token {
			t.Errorf("GET %s = %q, %v; want the token %q", lockKey, got, err, token)
		}
		if p := rdb.PTTL(ctx, lockKey).Val(); p <= 0 || p > time.Minute {
			t.Errorf("PTTL %s = %v", lockKey, p)
		}
	})
	call("extend_lock", "extend_lock", map[string]any{"resource": resource, "token": token, "ttl_ms": 120000}, func(t *testing.T, out map[string]any) {
		if out["extended"] != true {
			t.Errorf("extend_lock = %v", out)
		}
		if p := rdb.PTTL(ctx, lockKey).Val(); p <= time.Minute {
			t.Errorf("PTTL %s after extend_lock = %v", lockKey, p)
		}
	})
	call("release_lock", "release_lock", map[string]any{"resource": resource, "token": token}, func(t *testing.T, out map[string]any) {
		if out["released"] != true {
			t.Errorf("release_lock = %v", out)
		}
		if n := rdb.Exists(ctx, lockKey).Val(); n != 0 {
			t.Errorf("%s still exists after release_lock", lockKey)
		}
	})
	call("check_rate", "check_rate", map[string]any{"subject": "s-" + tag}, func(t *testing.T, out map[string]any) {
		if out["allowed"] != true {
			t.Errorf("check_rate = %v", out)
		}
	})
	call("verify_audit", "verify_audit", map[string]any{}, func(t *testing.T, out map[string]any) {
		if out["ok"] != true || fmt.Sprint(out["checked"]) == "0" {
			t.Errorf("verify_audit = %v", out)
		}
	})

	// Consumer groups: the stream, its dead letters and their channel are
	// in one slot, so every claim's script runs on one shard. A worker
	// claims and acknowledges; a poison entry, never acknowledged, goes to
	// the dead letters after groups.max_deliveries (5) deliveries.
	group := "g-" + tag
	var claimed []any
	call("claim_events", "claim_events", map[string]any{"stream": "workflow_events", "group": group, "consumer": "w1", "from": "0", "count": 100}, func(t *testing.T, out map[string]any) {
		claimed, _ = out["entries"].([]any)
		if out["created"] != true || len(claimed) == 0 || out["dead_letter_stream"] != "mcp:dead_letter:{mcp:workflow_events}" {
			t.Fatalf("claim_events = %v", out)
		}
	})
	var ids []string
	for _, e := range claimed {
		ids = append(ids, e.(map[string]any)["id"].(string))
	}
	call("ack_events", "ack_events", map[string]any{"stream": "workflow_events", "group": group, "ids": ids}, func(t *testing.T, out map[string]any) {
		if acked, _ := out["acked"].([]any); len(acked) != len(ids) {
			t.Errorf("ack_events = %v, want %d acked", out, len(ids))
		}
	})
	call("stream_info", "stream_info", map[string]any{"stream": "workflow_events"}, func(t *testing.T, out map[string]any) {
		groups, _ := out["groups"].([]any)
		found := false
		for _, g := range groups {
			if g := g.(map[string]any); g["name"] == group {
				found = true
				if fmt.Sprint(g["pending"]) != "0" || fmt.Sprint(g["lag"]) != "0" {
					t.Errorf("group %s = %v", group, g)
				}
			}
		}
		if !found || fmt.Sprint(out["length"]) == "0" {
			t.Errorf("stream_info = %v", out)
		}
	})
	t.Run("dead letters", func(t *testing.T) {
		poison := "poison-" + tag
		before, _ := rdb.XLen(ctx, "mcp:dead_letter:{mcp:workflow_events}").Result()
		topoOK(t, srv, tag, "claim_events", map[string]any{"stream": "workflow_events", "group": poison, "consumer": "p", "from": "$"})
		topoOK(t, srv, tag, "emit_workflow_event", map[string]any{"workflow_id": wf, "phase": "poison", "event_type": "e"})
		var dead []any
		for i := 0; i < 10 && len(dead) == 0; i++ {
			out := topoOK(t, srv, tag, "claim_events", map[string]any{"stream": "workflow_events", "group": poison, "consumer": fmt.Sprint("p", i), "reclaim_idle_ms": 100})
			dead, _ = out["dead_lettered"].([]any)
			time.Sleep(120 * time.Millisecond)
		}
		if len(dead) != 1 || fmt.Sprint(dead[0].(map[string]any)["delivery_count"]) != "5" {
			t.Fatalf("dead_lettered = %v", dead)
		}
		if n, _ := rdb.XLen(ctx, "mcp:dead_letter:{mcp:workflow_events}").Result(); n != before+1 {
			t.Errorf("dead letters %d, were %d", n, before)
		}
	})
}

// topoOK is srv.ok failing t, the caller's (sub)test, not srv's: a tool
// error fails t with the tool's text.
func topoOK(t *testing.T, srv *server, tag, tool string, a any) map[string]any {
	t.Helper()
	res, err := srv.try(tool, a)
	if err != nil {
		t.Fatalf("%s on %s: %v\nstderr:\n%s", tool, tag, err, srv.stderr.String())
	}
	if res.IsError {
		t.Fatalf("%s(%v) on %s: tool error: %s", tool, a, tag, resultText(res))
	}
	var out map[string]any
	if err := json.Unmarshal(res.RawStructuredContent, &out); err != nil {
		t.Fatalf("%s structured content %q: %v", tool, res.RawStructuredContent, err)
	}
	return out
}

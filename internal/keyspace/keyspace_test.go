package keyspace_test

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

var keys = keyspace.Keyspace{Prefix: "mcp:"}

// helpers lists every helper key with the main key whose slot it must share.
var helpers = []struct{ helper, main string }{
	{keys.Idempotency(keyspace.AuditLog, "L-1"), "mcp:audit_log_stream"},
	{keys.Idempotency(keyspace.WorkflowEvent, "E{x}:1"), "mcp:workflow_events"},
	{keys.Context("wf-{7}"), "mcp:ccwj_update_stream"},
	{keys.ChainHead(keyspace.AuditLog), "mcp:audit_log_stream"},
	{keys.Checkpoints(keyspace.AuditLog), "mcp:audit_log_stream"},
	{keys.LockFence("db1"), "mcp:locks:db1"},
	{keys.LockOwner("a/b:c@d.e-f_g"), "mcp:locks:a/b:c@d.e-f_g"},
	{keys.DeadLetter(keyspace.WorkflowEvent), "mcp:workflow_events"},
	// Not a key, but SPUBLISH from the script that writes the dead letter
	// needs it in the stream's slot.
	{keys.DeadLetterEvents(keyspace.WorkflowEvent), "mcp:workflow_events"},
}

func TestEveryKeyAndChannelStartsWithThePrefix(t *testing.T) {
	all := []string{keys.Stream(keyspace.AuditLog), keys.Events(keyspace.AuditLog), keys.Lock("db1"),
		keys.LockEvents(), keys.Rate("p", "s")}
	for _, h := range helpers {
		all = append(all, h.helper)
	}
	for _, k := range all {
		if !strings.HasPrefix(k, "mcp:") {
			t.Errorf("%q does not start with the prefix mcp:", k)
		}
	}
}

func TestHelperKeysHaveTheirDocumentedNames(t *testing.T) {
	for got, want := range map[string]string{
		keys.Idempotency(keyspace.AuditLog, "L-1"): "mcp:idem:{mcp:audit_log_stream}:L-1",
		keys.Context("wf"):                         "mcp:ctx:{mcp:ccwj_update_stream}:wf",
		keys.ChainHead(keyspace.AuditLog):          "mcp:chain:{mcp:audit_log_stream}",
		keys.Checkpoints(keyspace.AuditLog):        "mcp:checkpoints:{mcp:audit_log_stream}",
		keys.LockFence("db1"):                      "mcp:fence:{mcp:locks:db1}",
		keys.LockOwner("db1"):                      "mcp:owner:{mcp:locks:db1}",
		keys.DeadLetter(keyspace.WorkflowEvent):    "mcp:dead_letter:{mcp:workflow_events}",
		keys.DeadLetterEvents(keyspace.AuditLog):   "mcp:events:dead_letter:{mcp:audit_log_stream}",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// Redis computes the slots: CLUSTER KEYSLOT needs a cluster-enabled node,
// but no assigned slots.
func TestEveryHelperKeyHashesToItsMainKeysSlot(t *testing.T) {
	s := testredis.Start(t, "--cluster-enabled", "yes")
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx := context.Background()
	for _, h := range helpers {
		want, err := c.ClusterKeySlot(ctx, h.main).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", h.main, err)
		}
		if got := c.ClusterKeySlot(ctx, h.helper).Val(); got != want {
			t.Errorf("%s hashes to slot %d, its main key %s to %d", h.helper, got, h.main, want)
		}
		if l, ok := legacyOf(h.helper); ok {
			if got := c.ClusterKeySlot(ctx, l).Val(); got != want {
				t.Errorf("the old name %s hashes to slot %d, not %d", l, got, want)
			}
		}
	}
}

// legacyOf rebuilds the earlier layout's name of a helper key.
func legacyOf(helper string) (string, bool) {
	rest := strings.TrimPrefix(helper, "mcp:")
	kind, rest, _ := strings.Cut(rest, ":")
	main, id, _ := strings.Cut(rest[1:], "}")
	old := "{" + main + "}:" + kind + id
	if l, ok := keys.ParseLegacy(old); ok && l.New == helper {
		return old, true
	}
	return "", false
}

func TestParseLegacyNamesTheCurrentKey(t *testing.T) {
	for old, want := range map[string]string{
		"{mcp:audit_log_stream}:idem:L-1":    "mcp:idem:{mcp:audit_log_stream}:L-1",
		"{mcp:workflow_events}:idem:E:a}b":   "mcp:idem:{mcp:workflow_events}:E:a}b",
		"{mcp:ccwj_update_stream}:ctx:wf-1":  "mcp:ctx:{mcp:ccwj_update_stream}:wf-1",
		"{mcp:audit_log_stream}:chain":       "mcp:chain:{mcp:audit_log_stream}",
		"{mcp:audit_log_stream}:checkpoints": "mcp:checkpoints:{mcp:audit_log_stream}",
		"{mcp:locks:db1}:fence":              "mcp:fence:{mcp:locks:db1}",
		"{mcp:locks:a/b:c}:owner":            "mcp:owner:{mcp:locks:a/b:c}",
	} {
		l, ok := keys.ParseLegacy(old)
		if !ok || l.New != want || l.Old != old {
			t.Errorf("ParseLegacy(%q) = %+v, %v; want new name %q", old, l, ok, want)
		}
	}
	for _, other := range []string{
		"mcp:idem:{mcp:audit_log_stream}:L-1", // the current layout
		"{mcp:audit_log_stream}:idem:",
		"{mcp:user_feedback}:ctx:wf", // contexts belong to the CCWJ stream only
		"{mcp:other_stream}:chain",
		"{mcp:locks:}:fence",
		"{mcp:locks:db1}:fencing",
		"{mcp:locks:db1}",
		"{mcp:audit_log_stream",
		"{other:locks:db1}:fence",
	} {
		if l, ok := keys.ParseLegacy(other); ok {
			t.Errorf("ParseLegacy(%q) = %+v; it is not an earlier helper key", other, l)
		}
	}
}

package main_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// auditVerify runs `mcp-redis audit verify` and returns its output and
// whether it exited 0.
func auditVerify(t *testing.T, prefix, pubFile string, extra ...string) (string, bool) {
	t.Helper()
	args := append([]string{"audit", "verify", "--redis-url", testredis.URL(), "--prefix", prefix, "--public-key", pubFile}, extra...)
	out, err := runBinary(t, runBound, nil, args...)
	return out, err == nil
}

// Four server processes on one Redis, 2,000 concurrent audit_log calls
// each: one unbroken chain of 8,000 entries with signed checkpoints, and
// `audit verify` exits 0. Then one field of one entry is changed with a
// Redis client, and verify exits 1 naming that entry.
func TestFourServersAppendingConcurrentlyKeepOneChainThatVerifies(t *testing.T) {
	needsFull(t, "runs four servers appending 8,000 entries")
	rdb, prefix := testredis.Shared(t)
	keyFile := filepath.Join(t.TempDir(), "sub", "audit-signing.key")
	env := []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_AUDIT_SIGNING_KEY_FILE=" + keyFile, "MCP_REDIS_AUDIT_CHECKPOINT_EVERY=500"}
	pubFile := filepath.Join(t.TempDir(), "audit.pub")
	if out, err := runBinary(t, runBound, env, "audit", "public-key", "--out", pubFile); err != nil || !strings.Contains(out, "BEGIN PUBLIC KEY") {
		t.Fatalf("audit public-key: %v\n%s", err, out)
	}
	const servers, perServer, workers = 4, 2000, 16
	srvs := make([]*server, servers)
	for i := range srvs {
		srvs[i] = spawn(t, env, "--redis-url", testredis.URL(), "--prefix", prefix)
	}
	var wg sync.WaitGroup
	for i, s := range srvs {
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < perServer/workers; k++ {
					s.ok("audit_log", map[string]any{"module": fmt.Sprintf("srv%d", i), "procedure": fmt.Sprintf("w%d-%d", w, k), "status": "ok"})
				}
			}()
		}
	}
	wg.Wait()
	key := prefix + "audit_log_stream"
	if n := rdb.XLen(context.Background(), key).Val(); n != servers*perServer {
		t.Fatalf("%d entries, want %d", n, servers*perServer)
	}
	deadline := time.Now().Add(5 * time.Second)
	for rdb.XLen(context.Background(), prefix+"checkpoints:{"+key+"}").Val() < servers*perServer/500 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	out, ok := auditVerify(t, prefix, pubFile)
	if !ok || !strings.Contains(out, "8000 entries checked") || !strings.Contains(out, "from the genesis") || !strings.Contains(out, "last signed checkpoint") {
		t.Fatalf("audit verify:\n%s", out)
	}
	t.Log(out)

	es := rdb.XRangeN(context.Background(), key, "-", "+", 100).Val()
	victim := es[77]
	raw := rdb.Do(context.Background(), "XRANGE", key, victim.ID, victim.ID).Val().([]any)[0].([]any)[1].([]any)
	// Modify its procedure: XADD refuses an id below the stream's top,
	// so the stream is rebuilt in a copy and renamed over it.
	tmp := key + ":rebuild"
	all := rdb.Do(context.Background(), "XRANGE", key, "-", "+").Val().([]any)
	pipe := rdb.Pipeline()
	for _, x := range all {
		m := x.([]any)
		args := []any{"XADD", tmp, m[0]}
		kv := m[1].([]any)
		if m[0] == victim.ID {
			kv = append([]any(nil), raw...)
			for j := 0; j < len(kv); j += 2 {
				if kv[j] == "procedure" {
					kv[j+1] = "forged"
				}
			}
		}
		pipe.Do(context.Background(), append(args, kv...)...)
	}
	pipe.Rename(context.Background(), tmp, key)
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	out, ok = auditVerify(t, prefix, pubFile)
	if ok || !strings.Contains(out, "broken at entry "+victim.ID+" (modified)") {
		t.Fatalf("audit verify after modifying %s:\n%s", victim.ID, out)
	}
	t.Log(out)
}

// With no configuration, the embedded Redis chains the audit stream: the
// verify_audit tool answers ok over entries it wrote.
func TestTheEmbeddedServerKeepsAChainThatVerifyAuditChecks(t *testing.T) {
	needsFull(t, "starts the binary")
	env := []string{"MCP_REDIS_AUDIT_SIGNING_KEY_FILE=" + filepath.Join(t.TempDir(), "k", "audit-signing.key"), "MCP_REDIS_AUDIT_CHECKPOINT_EVERY=5"}
	s := spawn(t, env)
	for i := 0; i < 20; i++ {
		s.ok("audit_log", map[string]any{"module": "m", "procedure": fmt.Sprint(i), "status": "ok"})
	}
	time.Sleep(200 * time.Millisecond)
	got := s.ok("verify_audit", map[string]any{})
	if got["ok"] != true || got["checked"].(float64) < 20 || got["from_genesis"] != true || got["signatures_checked"] != true || got["last_checkpoint"] == nil {
		t.Fatalf("verify_audit = %v", got)
	}
	page := s.ok("verify_audit", map[string]any{"max_entries": 7})
	if page["next"] == nil || page["checked"].(float64) != 7 {
		t.Fatalf("verify_audit page = %v", page)
	}
	rest := s.ok("verify_audit", map[string]any{"cursor": page["next"]})
	if rest["ok"] != true || rest["from_genesis"] != false {
		t.Fatalf("verify_audit resumed = %v", rest)
	}
}

// The other kinds of tampering, each on a fresh chain that a server wrote,
// through `audit verify`: an entry deleted with XDEL, one added with XADD
// (correctly linked onto the head), and the tail rewritten with every hash
// and the head recomputed, which only the signed checkpoints give away.
func TestAuditVerifyNamesADeletedAnInsertedAndARewrittenEntry(t *testing.T) {
	needsFull(t, "starts the binary")
	for _, tc := range []struct {
		name, kind string
		tamper     func(t *testing.T, rdb *redis.Client, key string, es []redis.XMessage) string // the entry id named
	}{
		{"deleted", "deleted", func(t *testing.T, rdb *redis.Client, key string, es []redis.XMessage) string {
			rdb.XDel(context.Background(), key, es[20].ID)
			return es[21].ID
		}},
		{"inserted", "inserted", func(t *testing.T, rdb *redis.Client, key string, es []redis.XMessage) string {
			last := es[len(es)-1]
			f := []audit.Pair{{Name: "module", Value: "m"}, {Name: "procedure", Value: "forged"}, {Name: audit.PrevHashField, Value: last.Values["hash"].(string)}}
			return rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key,
				Values: []string{"module", "m", "procedure", "forged", audit.PrevHashField, f[2].Value, audit.HashField, audit.Hash(key, f)}}).Val()
		}},
		{"rewritten", "rewritten", func(t *testing.T, rdb *redis.Client, key string, es []redis.XMessage) string {
			eaRewriteChain(t, rdb, key, 25)
			return es[29].ID // the first checkpoint at or after entry 25 (every 10th: the 30th entry)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rdb, prefix := testredis.Shared(t)
			env := []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_AUDIT_CHECKPOINT_EVERY=10",
				"MCP_REDIS_AUDIT_SIGNING_KEY_FILE=" + filepath.Join(t.TempDir(), "audit-signing.key")}
			pubFile := filepath.Join(t.TempDir(), "audit.pub")
			if out, err := runBinary(t, runBound, env, "audit", "public-key", "--out", pubFile); err != nil {
				t.Fatalf("audit public-key: %v\n%s", err, out)
			}
			s := spawn(t, env, "--redis-url", testredis.URL(), "--prefix", prefix)
			for i := range 50 {
				s.ok("audit_log", map[string]any{"module": "m", "procedure": fmt.Sprint("p", i), "status": "ok"})
			}
			key := prefix + "audit_log_stream"
			deadline := time.Now().Add(5 * time.Second)
			for rdb.XLen(context.Background(), prefix+"checkpoints:{"+key+"}").Val() < 5 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if out, ok := auditVerify(t, prefix, pubFile); !ok {
				t.Fatalf("audit verify before tampering:\n%s", out)
			}
			want := tc.tamper(t, rdb, key, rdb.XRange(context.Background(), key, "-", "+").Val())
			out, ok := auditVerify(t, prefix, pubFile)
			if ok || !strings.Contains(out, "broken at entry "+want+" ("+tc.kind+")") {
				t.Fatalf("audit verify after the entry was %s (want %s named):\n%s", tc.name, want, out)
			}
			t.Log(out)
		})
	}
}

// eaRewriteChain changes the procedure of every entry from the from-th on
// and recomputes every prev_hash, hash and the chain head, as someone with
// write access to Redis but not the signing key could: the stream is
// rebuilt in a copy with the same ids and renamed over the original.
func eaRewriteChain(t *testing.T, rdb *redis.Client, key string, from int) {
	t.Helper()
	ctx := context.Background()
	all := rdb.Do(ctx, "XRANGE", key, "-", "+").Val().([]any)
	tmp := key + ":rebuild"
	pipe := rdb.TxPipeline()
	prev, last := "", ""
	for i, x := range all {
		m := x.([]any)
		id, kv := m[0].(string), m[1].([]any)
		var pairs []audit.Pair
		for j := 0; j+1 < len(kv); j += 2 {
			pairs = append(pairs, audit.Pair{Name: kv[j].(string), Value: kv[j+1].(string)})
		}
		if i >= from {
			var body []audit.Pair
			for _, p := range pairs {
				switch p.Name {
				case audit.HashField:
				case audit.PrevHashField:
					body = append(body, audit.Pair{Name: p.Name, Value: prev})
				case "procedure":
					body = append(body, audit.Pair{Name: p.Name, Value: p.Value + "!"})
				default:
					body = append(body, p)
				}
			}
			pairs = append(body, audit.Pair{Name: audit.HashField, Value: audit.Hash(key, body)})
		}
		args := []any{"XADD", tmp, id}
		for _, p := range pairs {
			args = append(args, p.Name, p.Value)
			if p.Name == audit.HashField {
				prev = p.Value
			}
		}
		pipe.Do(ctx, args...)
		last = id
	}
	pipe.Rename(ctx, tmp, key)
	pipe.Set(ctx, strings.TrimSuffix(key, "audit_log_stream")+"chain:{"+key+"}", fmt.Sprintf("%s %s %d", last, prev, len(all)), 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

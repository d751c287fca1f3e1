package main_test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// auditVerify runs `mcp-redis audit verify` and returns its output and
// whether it exited 0.
func auditVerify(t *testing.T, prefix, pubFile string, extra ...string) (string, bool) {
	t.Helper()
	args := append([]string{"audit", "verify", "--redis-url", testredis.URL(), "--prefix", prefix, "--public-key", pubFile}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatal(err)
	}
	return string(out), err == nil
}

// Four server processes on one Redis, 2,000 concurrent audit_log calls
// each: one unbroken chain of 8,000 entries with signed checkpoints, and
// `audit verify` exits 0. Then one field of one entry is changed with a
// Redis client, and verify exits 1 naming that entry.
func TestFourServersAppendingConcurrentlyKeepOneChainThatVerifies(t *testing.T) {
	rdb, prefix := testredis.Shared(t)
	keyFile := filepath.Join(t.TempDir(), "sub", "audit-signing.key")
	env := []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false", "MCP_REDIS_AUDIT_SIGNING_KEY_FILE=" + keyFile, "MCP_REDIS_AUDIT_CHECKPOINT_EVERY=500"}
	pubFile := filepath.Join(t.TempDir(), "audit.pub")
	pk := exec.Command(bin, "audit", "public-key", "--out", pubFile)
	pk.Env = append(pk.Environ(), env...)
	if out, err := pk.CombinedOutput(); err != nil || !strings.Contains(string(out), "BEGIN PUBLIC KEY") {
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
	for rdb.XLen(context.Background(), "{"+key+"}:checkpoints").Val() < servers*perServer/500 && time.Now().Before(deadline) {
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

package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkVerifyMillion fills a chain of 1,000,000 audit-like entries
// on the shared Redis under a test prefix (pipelined XADDs hashed by the
// encoder, a signed checkpoint every 1000), times Verify over it, and
// deletes it. Run with -benchtime=1x:
//
//	go test -run XXX -bench VerifyMillion -benchtime=1x -timeout 30m ./internal/audit/
func BenchmarkVerifyMillion(b *testing.B) {
	const n = 1_000_000
	c, prefix := testredis.Shared(b)
	keys := keyspace.Keyspace{Prefix: prefix}
	key := keys.Stream(keyspace.AuditLog)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer := audit.NewSigner(priv)
	ctx := context.Background()
	fillStart := time.Now()
	prev := audit.Genesis
	pipe := c.Pipeline()
	for i := 1; i <= n; i++ {
		f := []audit.Pair{{"module", "planner"}, {"procedure", "draft"}, {"status", "ok"},
			{"inputs", `{"query":"find flights","limit":10}`}, {"session_id", "s-1"}, {"workflow_id", "wf-1"},
			{"log_id", "L-" + strconv.Itoa(i)}, {"timestamp", "2026-01-02T03:04:05.678Z"}, {audit.PrevHashField, prev}}
		h := audit.Hash(key, f)
		args := []any{"XADD", key, strconv.Itoa(i) + "-1"}
		for _, p := range f {
			args = append(args, p.Name, p.Value)
		}
		args = append(args, audit.HashField, h)
		pipe.Do(ctx, args...)
		prev = h
		if i%1000 == 0 {
			if err := audit.WriteCheckpoint(ctx, pipe, keys, keyspace.AuditLog, signer, audit.Checkpoint{EntryID: strconv.Itoa(i) + "-1", Hash: h, Length: int64(i)}); err != nil {
				b.Fatal(err)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	c.Set(ctx, keys.ChainHead(keyspace.AuditLog), strconv.Itoa(n)+"-1 "+prev+" "+strconv.Itoa(n), 0)
	fmt.Printf("filled %d entries in %v\n", n, time.Since(fillStart).Round(time.Millisecond))
	v := audit.NewVerifier(c, keys, signer.Public())
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		r, err := v.Verify(ctx, audit.Request{Stream: keyspace.AuditLog})
		if err != nil || !r.OK() || r.Checked != n || r.Checkpoints != n/1000 {
			b.Fatalf("verify: %+v %v", r, err)
		}
		d := time.Since(start)
		fmt.Printf("verify: %d entries, %d checkpoints in %v: %.0f entries/s\n", r.Checked, r.Checkpoints, d.Round(time.Millisecond), float64(n)/d.Seconds())
		b.ReportMetric(float64(n)/d.Seconds(), "entries/s")
	}
}

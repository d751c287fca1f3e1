package stream

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkAppend prints entries/s at one write in flight on the shared
// Redis: a typical audit entry by raw XADD … MAXLEN ~ through go-redis,
// by Store.Append (with a log_id, so the idempotency record and the
// notice too), and by Store.Append on a hash-chained stream. Medians of
// interleaved rounds, this process's CPU per entry, and the ratio to raw:
//
//	go test -run XXX -bench Append -benchtime=1x ./internal/stream/
func BenchmarkAppend(b *testing.B) {
	c, prefix := testredis.Shared(b)
	ctx := context.Background()
	const maxLen = 100000 // the server's default retention
	retain := func(string) int64 { return maxLen }
	plain := NewStore(c, keyspace.Keyspace{Prefix: prefix + "plain:"}, retain, time.Hour)
	chained := NewStore(c, keyspace.Keyspace{Prefix: prefix + "chained:"}, retain, time.Hour,
		WithChain([]string{keyspace.AuditLog}, nil))
	w := benchWriters(ctx, c, prefix+"raw", maxLen)
	raw, appendTo := w.raw, w.appendTo
	for range b.N {
		testredis.Rounds(b, "entries", []*testredis.Series{
			{Name: "raw XADD, go-redis", Unit: "raw_entries/s", Run: raw},
			{Name: "Store.Append", Unit: "store_entries/s", Run: appendTo(plain)},
			{Name: "Store.Append, chained", Unit: "chained_entries/s", Run: appendTo(chained)},
		})
	}
}

// BenchmarkAppendConcurrently prints entries/s with 8 writes in flight on
// the shared Redis, and the Redis server's CPU per entry beside this
// process's: raw XADD through go-redis, and Store.Append on a hash-chained
// stream with each turn sent as one append_batch.lua call (coalesce.go) and
// as a pipeline of append.lua calls. The Redis CPU is the whole server's
// (INFO cpu), so other clients of it count too:
//
//	go test -run XXX -bench AppendConcurrently -benchtime=1x ./internal/stream/
func BenchmarkAppendConcurrently(b *testing.B) {
	c, prefix := testredis.Shared(b)
	ctx := context.Background()
	const maxLen, conc = 100000, 8
	retain := func(string) int64 { return maxLen }
	chained := func(name string, pipelineOnly bool) *Store {
		s := NewStore(c, keyspace.Keyspace{Prefix: prefix + name + ":"}, retain, time.Hour,
			WithChain([]string{keyspace.AuditLog}, nil))
		s.pipelineOnly = pipelineOnly
		return s
	}
	coalesced, pipelined := chained("coalesced", false), chained("pipelined", true)
	w := benchWriters(ctx, c, prefix+"raw", maxLen)
	raw, appendTo := w.raw, w.appendTo
	redisCPU := func() time.Duration {
		info, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		var total time.Duration
		for line := range strings.SplitSeq(info, "\r\n") {
			name, v, _ := strings.Cut(line, ":")
			if name == "used_cpu_sys" || name == "used_cpu_user" {
				f, _ := strconv.ParseFloat(v, 64)
				total += time.Duration(f * float64(time.Second))
			}
		}
		return total
	}
	for range b.N {
		testredis.Rounds(b, "entries, 8 in flight", []*testredis.Series{
			{Name: "raw XADD, go-redis", Unit: "raw_entries/s", Run: raw, Conc: conc, ServerCPU: redisCPU},
			{Name: "chained, one append_batch.lua a turn", Unit: "coalesced_entries/s", Run: appendTo(coalesced), Conc: conc, ServerCPU: redisCPU},
			{Name: "chained, a pipeline of append.lua", Unit: "pipelined_entries/s", Run: appendTo(pipelined), Conc: conc, ServerCPU: redisCPU},
		})
	}
}

// writers are the series of the Append benchmarks: a typical audit entry
// (a log_id each) by raw XADD … MAXLEN ~ to rawKey, and by a Store's
// Append; both are safe for concurrent use.
type writers struct {
	raw      func() error
	appendTo func(s *Store) func() error
}

func benchWriters(ctx context.Context, c redis.UniversalClient, rawKey string, maxLen int64) writers {
	var n atomic.Int64
	entry := func() []Field {
		return []Field{
			{"module", "planner-agent"}, {"procedure", "select_tool"}, {"status", "ok"},
			{"inputs", `{"query":"summarise the open incidents of service checkout","top_k":5,"filters":{"severity":["high","critical"],"since":"24h"}}`},
			{"session_id", "sess-7f3a9c"}, {"workflow_id", "wf-checkout-incidents"},
			{"log_id", "log-" + strconv.FormatInt(n.Add(1), 10)}, {"timestamp", time.Now().UTC().Format(time.RFC3339Nano)},
		}
	}
	return writers{
		raw: func() error {
			var values []string
			for _, f := range entry() {
				values = append(values, f.Name, f.Value)
			}
			return c.XAdd(ctx, &redis.XAddArgs{Stream: rawKey, MaxLen: maxLen, Approx: true, Values: values}).Err()
		},
		appendTo: func(s *Store) func() error {
			return func() error {
				fields := entry()
				_, err := s.Append(ctx, Append{Stream: keyspace.AuditLog, Fields: fields, IdemID: fields[6].Value,
					Fingerprint: strings.Repeat("f", 64), Notice: fields[:3]})
				return err
			}
		},
	}
}

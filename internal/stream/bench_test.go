package stream

import (
	"context"
	"strconv"
	"strings"
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
	n := 0
	entry := func() []Field {
		n++
		return []Field{
			{"module", "planner-agent"}, {"procedure", "select_tool"}, {"status", "ok"},
			{"inputs", `{"query":"summarise the open incidents of service checkout","top_k":5,"filters":{"severity":["high","critical"],"since":"24h"}}`},
			{"session_id", "sess-7f3a9c"}, {"workflow_id", "wf-checkout-incidents"},
			{"log_id", "log-" + strconv.Itoa(n)}, {"timestamp", time.Now().UTC().Format(time.RFC3339Nano)},
		}
	}
	rawKey := prefix + "raw"
	raw := func() error {
		var values []string
		for _, f := range entry() {
			values = append(values, f.Name, f.Value)
		}
		return c.XAdd(ctx, &redis.XAddArgs{Stream: rawKey, MaxLen: maxLen, Approx: true, Values: values}).Err()
	}
	appendTo := func(s *Store) func() error {
		return func() error {
			fields := entry()
			_, err := s.Append(ctx, Append{Stream: keyspace.AuditLog, Fields: fields, IdemID: fields[6].Value,
				Fingerprint: strings.Repeat("f", 64), Notice: fields[:3]})
			return err
		}
	}
	for range b.N {
		testredis.Rounds(b, "entries", []*testredis.Series{
			{Name: "raw XADD, go-redis", Unit: "raw_entries/s", Run: raw},
			{Name: "Store.Append", Unit: "store_entries/s", Run: appendTo(plain)},
			{Name: "Store.Append, chained", Unit: "chained_entries/s", Run: appendTo(chained)},
		})
	}
}

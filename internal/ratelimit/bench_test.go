package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkAllow prints decisions/s at one in flight on the shared Redis:
// window.lua run raw through go-redis with the key and arguments Limiter
// passes, and Limiter.Allow. Every call is allowed: the window is the
// shortest a configuration may set, so it holds only the last 10ms of
// calls, far below the limit (a full window would take the denying path
// instead). Medians of interleaved rounds, this process's CPU per call,
// and the ratio to raw:
//
//	go test -run XXX -bench Allow -benchtime=1x ./internal/ratelimit/
func BenchmarkAllow(b *testing.B) {
	c, prefix := testredis.Shared(b)
	keys := keyspace.Keyspace{Prefix: prefix}
	l := New(c, keys)
	ctx := context.Background()
	p := Policy{Name: "bench", Limit: 10000, Window: 10 * time.Millisecond}
	key := []string{keys.Rate(p.Name, "raw")}
	raw := func() error {
		res, err := windowScript.Run(ctx, c, key, p.Limit, p.Window.Microseconds(), 1, nonce()).Int64Slice()
		if err != nil || res[0] != 1 {
			return fmt.Errorf("window.lua: %v, %v", res, err)
		}
		return nil
	}
	limiter := func() error {
		d, err := l.Allow(ctx, "limiter", p, 1)
		if err != nil || !d.Allowed {
			return fmt.Errorf("allow: %+v, %v", d, err)
		}
		return nil
	}
	for range b.N {
		testredis.Rounds(b, "rate decisions", []*testredis.Series{
			{Name: "raw window.lua, go-redis", Unit: "raw_calls/s", Run: raw},
			{Name: "Limiter.Allow", Unit: "limiter_calls/s", Run: limiter},
		})
	}
}

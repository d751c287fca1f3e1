package rdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A write script of the shape the server runs (XADD, SET, PUBLISH), with
// and without the prelude's rights check before its first write.
const benchBody = `
redis.call('XADD', KEYS[1], 'MAXLEN', '~', '1000', '*', 'f', ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('PUBLISH', ARGV[2], ARGV[1])
`

var (
	benchPlain   = redis.NewScript(benchBody)
	benchChecked = redis.NewScript(ScriptPrelude + `
local denied = refuse({{'xadd', KEYS[1], '*', 'f', 'v'}, {'set', KEYS[2], 'v'}, {'publish', ARGV[2], 'n'}})
if denied then
  return denied
end
` + benchBody)
)

// BenchmarkWriteScriptCosts prints, side by side in one run on a private
// master with one replica, what a write costs: the script raw, with the
// rights check (the prelude every write script now has), and through
// Durable (WAIT 1 in the same pipeline), each as calls/s at one call in
// flight, the median of interleaved rounds, and as a ratio to the first.
//
//	go test -run XXX -bench WriteScriptCosts -benchtime=1x ./internal/rdb/
func BenchmarkWriteScriptCosts(b *testing.B) {
	master := testredis.Start(b, "--repl-diskless-sync-delay", "0")
	_, port, _ := strings.Cut(master.Addr, ":")
	testredis.Start(b, "--replicaof", "127.0.0.1", port)
	plain := redis.NewClient(&redis.Options{Addr: master.Addr})
	defer plain.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(20 * time.Second); ; {
		plain.Set(ctx, "probe", "1", 0)
		if n, _ := plain.Wait(ctx, 1, 100*time.Millisecond).Result(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the replica never acknowledged")
		}
	}
	durable := &Durable{UniversalClient: plain, replicas: 1, timeout: time.Second}
	keys := []string{"bench:stream", "bench:idem"}
	testredis.Rounds(b, "a write", []*testredis.Series{
		{Name: "script, no rights check", Unit: "plain_calls/s", Run: func() error { return benchPlain.Run(ctx, plain, keys, "v", "bench:events").Err() }},
		{Name: "script with the rights check", Unit: "checked_calls/s", Run: func() error { return benchChecked.Run(ctx, plain, keys, "v", "bench:events").Err() }},
		{Name: "with the rights check, then WAIT 1", Unit: "durable_calls/s", Run: func() error { return benchChecked.Run(ctx, durable, keys, "v", "bench:events").Err() }},
	})
}

package app

import (
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/groups"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// newGroups builds the consumer groups of claim_events, ack_events and
// stream_info: their scripts run through conn.Writer (WAIT after each with
// redis.wait_replicas), and a stream's dead letters keep its retention.
func newGroups(cfg config.Config, conn *rdb.Conn, keys keyspace.Keyspace) *groups.Groups {
	var opts []groups.Option
	if cfg.Redis.ShardedPubSub {
		opts = append(opts, groups.WithShardedPubSub())
	}
	maxLen := func(stream string) int64 { return cfg.Streams.Get(stream).MaxLen }
	return groups.New(conn.Writer, keys, cfg.Groups.MaxDeliveries, maxLen, opts...)
}

// groupNeeds are the commands the consumer groups run, on the keys and
// channel of each stream (see Needs); publish is "publish" or "spublish".
func groupNeeds(k keyspace.Keyspace, publish string) [][]string {
	var n [][]string
	for _, s := range keyspace.Streams {
		key, dead := k.Stream(s), k.DeadLetter(s)
		n = append(n,
			[]string{"xgroup", "create", key, "g", "$", "mkstream"}, []string{"xpending", key, "g"},
			[]string{"xclaim", key, "g", "c", "0", "0-1"}, []string{"xreadgroup", "group", "g", "c", "streams", key, ">"},
			[]string{"xack", key, "g", "0-1"}, []string{"xread", "streams", key, "0-0"},
			[]string{"xinfo", "groups", key}, []string{"xlen", key},
			[]string{"type", dead}, []string{"xadd", dead, "*", "f", "v"}, []string{"xlen", dead},
			[]string{publish, k.DeadLetterEvents(s), "n"})
	}
	return n
}

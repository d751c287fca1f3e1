package groups

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// Info describes a stream and its consumer groups.
type Info struct {
	Key string
	// Length is the number of entries; FirstID and LastID the oldest and
	// newest ("" when empty).
	Length          int64
	FirstID, LastID string
	// NewestAge is how long ago the newest entry was added, by Redis'
	// clock (its id's time); 0 when empty.
	NewestAge     time.Duration
	DeadLetterKey string
	DeadLetters   int64
	// Groups are the stream's groups by name, at most MaxGroups of
	// GroupsTotal.
	Groups      []GroupInfo
	GroupsTotal int
}

// GroupInfo describes one consumer group.
type GroupInfo struct {
	Name      string
	Consumers int64
	// Pending counts the entries handed out and not yet acknowledged.
	Pending int64
	// Lag counts the entries not yet handed out; LagKnown is false when
	// neither Redis nor a count up to LagLimit could tell.
	Lag      int64
	LagKnown bool
	// LastDeliveredID is the newest entry the group has handed out.
	LastDeliveredID string
	// OldestPendingID is the lowest pending id ("" when none pending);
	// OldestPendingAge how long ago it was added (its id's time), and
	// OldestPendingIdle how long since it was last handed out.
	OldestPendingID   string
	OldestPendingAge  time.Duration
	OldestPendingIdle time.Duration
	// PendingByConsumer lists the consumers with pending entries, most
	// pending first, at most MaxConsumers of them.
	PendingByConsumer []ConsumerPending
}

// ConsumerPending is how many entries one consumer holds pending.
type ConsumerPending struct {
	Consumer string
	Pending  int64
}

// Info describes streamName: its length, oldest and newest entries, dead
// letters and groups. It only reads, in two round trips, plus a count of
// entries for a group whose lag Redis cannot tell.
func (g *Groups) Info(ctx context.Context, streamName string) (Info, error) {
	if !slices.Contains(keyspace.Streams, streamName) {
		return Info{}, fault.Invalidf("stream", "%q is not one of %s", streamName, strings.Join(keyspace.Streams, ", "))
	}
	key, dead := g.keys.Stream(streamName), g.keys.DeadLetter(streamName)
	out := Info{Key: key, DeadLetterKey: dead}
	wrap := func(err error) error { return rdb.Wrap("describe "+key, err) }

	pipe := g.r.Pipeline()
	typ := pipe.Type(ctx, key)
	now := pipe.Time(ctx)
	length := pipe.XLen(ctx, key)
	first := pipe.XRangeN(ctx, key, "-", "+", 1)
	last := pipe.XRevRangeN(ctx, key, "+", "-", 1)
	deadLen := pipe.XLen(ctx, dead)
	groups := pipe.Do(ctx, "XINFO", "GROUPS", key)
	_, _ = pipe.Exec(ctx)
	for _, c := range []redis.Cmder{typ, now, length, first, last, deadLen} {
		if err := c.Err(); err != nil {
			return Info{}, wrap(err)
		}
	}
	switch t := typ.Val(); t {
	case "none":
		return out, nil
	case "stream":
	default:
		return Info{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("describe %s: it holds a %s, not a stream", key, t)}
	}
	if err := groups.Err(); err != nil {
		return Info{}, wrap(err)
	}
	clock := now.Val()
	out.Length, out.DeadLetters = length.Val(), deadLen.Val()
	if m := first.Val(); len(m) > 0 {
		out.FirstID = m[0].ID
	}
	if m := last.Val(); len(m) > 0 {
		out.LastID = m[0].ID
		out.NewestAge = age(clock, m[0].ID)
	}
	raw := parseGroups(groups.Val())
	out.GroupsTotal = len(raw)
	slices.SortFunc(raw, func(a, b rawGroup) int { return strings.Compare(a.name, b.name) })
	if len(raw) > MaxGroups {
		raw = raw[:MaxGroups]
	}
	if len(raw) == 0 {
		return out, nil
	}

	pipe = g.r.Pipeline()
	summaries := make([]*redis.XPendingCmd, len(raw))
	oldest := make([]*redis.XPendingExtCmd, len(raw))
	lags := make([]*redis.Cmd, len(raw))
	for i, r := range raw {
		summaries[i] = pipe.XPending(ctx, key, r.name)
		oldest[i] = pipe.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: r.name, Start: "-", End: "+", Count: 1})
		if r.lag < 0 {
			lags[i] = lagScript.Eval(ctx, pipe, []string{key}, r.lastDelivered, LagLimit)
		}
	}
	_, _ = pipe.Exec(ctx)
	for i, r := range raw {
		gi := GroupInfo{Name: r.name, Consumers: r.consumers, Pending: r.pending, LastDeliveredID: r.lastDelivered,
			Lag: r.lag, LagKnown: r.lag >= 0}
		if lags[i] != nil {
			n, err := lags[i].Int64()
			if err != nil {
				return Info{}, wrap(err)
			}
			gi.Lag, gi.LagKnown = max(n, 0), n >= 0
		}
		s, err := summaries[i].Result()
		if err != nil {
			return Info{}, wrap(err)
		}
		gi.Pending = s.Count
		if s.Count > 0 {
			gi.OldestPendingID = s.Lower
			gi.OldestPendingAge = age(clock, s.Lower)
			if o, err := oldest[i].Result(); err != nil {
				return Info{}, wrap(err)
			} else if len(o) > 0 {
				gi.OldestPendingIdle = o[0].Idle
			}
		}
		for c, n := range s.Consumers {
			gi.PendingByConsumer = append(gi.PendingByConsumer, ConsumerPending{Consumer: c, Pending: n})
		}
		slices.SortFunc(gi.PendingByConsumer, func(a, b ConsumerPending) int {
			return cmp.Or(cmp.Compare(b.Pending, a.Pending), strings.Compare(a.Consumer, b.Consumer))
		})
		if len(gi.PendingByConsumer) > MaxConsumers {
			gi.PendingByConsumer = gi.PendingByConsumer[:MaxConsumers]
		}
		out.Groups = append(out.Groups, gi)
	}
	return out, nil
}

// age is how long before now the entry id was added: its milliseconds
// part is Redis' clock when it was. Never negative.
func age(now time.Time, id string) time.Duration {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0
	}
	return max(now.Sub(time.UnixMilli(n)), 0)
}

// rawGroup is one group as XINFO GROUPS tells it; lag is -1 when Redis
// cannot tell it, or does not track what it needs (entries-read).
type rawGroup struct {
	name, lastDelivered string
	consumers, pending  int64
	lag                 int64
}

// parseGroups reads XINFO GROUPS in either protocol: each group a map
// (RESP3) or a flat list of names and values (RESP2). go-redis' XInfoGroups
// reads a nil entries-read as 0, and the embedded Redis answers a lag it
// does not compute (its length) with a nil entries-read: so the raw reply.
func parseGroups(v any) []rawGroup {
	list, _ := v.([]any)
	out := make([]rawGroup, 0, len(list))
	for _, item := range list {
		m := map[string]any{}
		switch g := item.(type) {
		case map[any]any:
			for k, v := range g {
				m[fmt.Sprint(k)] = v
			}
		case []any:
			for i := 0; i+1 < len(g); i += 2 {
				m[fmt.Sprint(g[i])] = g[i+1]
			}
		default:
			continue
		}
		r := rawGroup{lag: -1}
		r.name, _ = m["name"].(string)
		r.lastDelivered, _ = m["last-delivered-id"].(string)
		r.consumers, _ = m["consumers"].(int64)
		r.pending, _ = m["pending"].(int64)
		_, read := m["entries-read"].(int64)
		if lag, ok := m["lag"].(int64); ok && read {
			r.lag = lag
		}
		out = append(out, r)
	}
	return out
}

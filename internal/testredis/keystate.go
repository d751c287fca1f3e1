package testredis

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// KeyState is what a key holds: its type, its content by type, and its
// remaining ttl (negative: none, or no key). Tests take one before and
// after a call that must change nothing.
type KeyState struct {
	Type, Content string
	PTTL          time.Duration
}

// StateOf reads key's state.
func StateOf(t testing.TB, c redis.UniversalClient, key string) KeyState {
	t.Helper()
	ctx := context.Background()
	s := KeyState{Type: c.Type(ctx, key).Val(), PTTL: c.PTTL(ctx, key).Val()}
	var content any
	switch s.Type {
	case "string":
		content = c.Get(ctx, key).Val()
	case "hash":
		content = c.HGetAll(ctx, key).Val() // fmt prints maps sorted
	case "stream":
		content = c.XRange(ctx, key, "-", "+").Val()
	case "zset":
		content = c.ZRangeWithScores(ctx, key, 0, -1).Val()
	case "list":
		content = c.LRange(ctx, key, 0, -1).Val()
	case "set":
		m := c.SMembers(ctx, key).Val()
		slices.Sort(m)
		content = m
	}
	s.Content = fmt.Sprint(content)
	return s
}

// Changed says how after differs from s, or "": a ttl may only have run
// down meanwhile.
func (s KeyState) Changed(after KeyState) string {
	if s.Type != after.Type || s.Content != after.Content {
		return fmt.Sprintf("was %s %s, is %s %s", s.Type, s.Content, after.Type, after.Content)
	}
	if (s.PTTL < 0 || after.PTTL < 0) && s.PTTL != after.PTTL ||
		s.PTTL >= 0 && (after.PTTL > s.PTTL || s.PTTL-after.PTTL > time.Second) {
		return fmt.Sprintf("ttl was %v, is %v", s.PTTL, after.PTTL)
	}
	return ""
}

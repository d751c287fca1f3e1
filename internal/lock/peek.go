package lock

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

var (
	//go:embed peek.lua
	peekSrc    string
	peekScript = redis.NewScript(peekSrc)
)

// State is what a lock is at one moment, as anyone may see it: never its
// token.
type State struct {
	Key  string
	Held bool
	// Owner is the holder's label; "" when none was given or not held.
	Owner string
	// Fence is the holder's fencing token while held; the resource's last
	// fencing token (0: never granted) when not.
	Fence int64
	// TTL is the holder's remaining ttl: negative when its key has no
	// expiry (set outside this server); zero when not held.
	TTL time.Duration
	// ExpiresAt is when the lock expires (Redis clock); zero when not held
	// or without an expiry.
	ExpiresAt time.Time
}

// Peek reads resource's lock without changing it: whether it is held, by
// which owner label, its fencing token and remaining ttl. It reads in one
// script, so the parts belong together; it never reads the owner token.
// It runs without WAIT (a read has nothing to make durable).
func (l *Locker) Peek(ctx context.Context, resource string) (State, error) {
	key := l.keys.Lock(resource)
	res, err := peekScript.Run(ctx, l.plain, l.holderKeys(resource)).Slice()
	if err != nil {
		return State{}, rdb.Wrap("read "+key, err)
	}
	left, ok1 := elem[int64](res, 0)
	owner, ok2 := elem[string](res, 1)
	fence, ok3 := elem[string](res, 2)
	now, ok4 := elem[int64](res, 3)
	n, err := strconv.ParseInt(fence, 10, 64)
	if !ok1 || !ok2 || !ok3 || !ok4 || err != nil {
		return State{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("read %s: unexpected reply %v", key, res)}
	}
	s := State{Key: key, Held: left != -2, Owner: owner, Fence: n}
	switch {
	case left > 0:
		s.TTL = time.Duration(left) * time.Millisecond
		s.ExpiresAt = time.UnixMilli(now).Add(s.TTL)
	case left == -1:
		s.TTL = -1
	}
	return s, nil
}

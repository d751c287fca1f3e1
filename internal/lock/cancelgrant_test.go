package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// cancelAfterHook cancels the caller's context once a command whose keys
// include key has been answered: the client went away while its acquire
// script ran in Redis.
type cancelAfterHook struct {
	key    string
	cancel context.CancelFunc
}

func (h cancelAfterHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cancelAfterHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h cancelAfterHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && s == h.key {
				h.cancel()
				break
			}
		}
		return err
	}
}

// A caller that goes away while the acquire script runs must not leave the
// lock held by a token nobody will ever learn: Acquire gives it back and
// reports the cancellation; Close waits for that.
func TestCancelledWhileTheGrantIsOnItsWayLeavesNoLockHeld(t *testing.T) {
	c, prefix := testredis.Shared(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.AddHook(cancelAfterHook{key: keys.Lock("orphan"), cancel: cancel})
	l := lock.New(c, keys)
	t.Cleanup(l.Close)

	g, err := l.Acquire(ctx, "orphan", time.Minute, 0, "gone")
	if ctx.Err() == nil {
		t.Fatal("the hook did not cancel the call")
	}
	l.Close() // waits for the lock to be given back
	pttl := c.PTTL(context.Background(), keys.Lock("orphan")).Val()
	if err == nil || g.Acquired || pttl > 0 {
		t.Fatalf("cancelled during the grant: acquired %v, err %v; the lock is held for another %v", g.Acquired, err, pttl)
	}
}

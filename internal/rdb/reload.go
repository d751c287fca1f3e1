package rdb

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// reloadEvery bounds how often a failing command asks for a new slot map.
const reloadEvery = 500 * time.Millisecond

// reloader asks a ClusterClient for a new slot map when a command meets a
// dead or failing node, at most once per reloadEvery. go-redis reloads the
// map on MOVED and ASK and every 60 s, but not when a master's address
// stops answering: after a failover it would dial the dead address until
// the next periodic reload, leaving the shard dark for up to a minute.
type reloader struct {
	cc   *redis.ClusterClient
	last atomic.Int64 // unix ns of the last reload asked for
}

// nudge reloads the slot map if err means the node did not answer and no
// reload was asked for within reloadEvery. A nil reloader does nothing.
func (r *reloader) nudge(err error) {
	if r == nil || err == nil || !reloadOn(err) {
		return
	}
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(reloadEvery) || !r.last.CompareAndSwap(last, now) {
		return
	}
	// Lazy: loaded in the background from any node that answers, and
	// coalesced with go-redis's own reloads.
	r.cc.ReloadState(context.Background())
}

// reloadOn: the node could not be reached, or answered that it is no
// master of the slot or that the cluster is down.
func reloadOn(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, redis.Nil) {
		return false
	}
	return Unreachable(err) || movedOrAsk(err)
}

// hook is the reloader as a go-redis hook on the ClusterClient.
type hook struct{ r *reloader }

func (h hook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h hook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.r.nudge(err)
		return err
	}
}

func (h hook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			if e := c.Err(); e != nil {
				h.r.nudge(e)
				break
			}
		}
		return err
	}
}

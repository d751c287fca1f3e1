// Package lock implements distributed locks on Redis: one SET NX PX to
// take, compare-and-delete and compare-and-pexpire in Lua to release and
// extend, a fencing counter per resource, and a bounded wait that wakes on
// a release notice.
package lock

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

var (
	//go:embed acquire.lua
	acquireSrc string
	//go:embed release.lua
	releaseSrc string
	//go:embed extend.lua
	extendSrc string

	// Scripts are exported for the benchmark, which runs them raw.
	AcquireScript = redis.NewScript(acquireSrc)
	ReleaseScript = redis.NewScript(releaseSrc)
	ExtendScript  = redis.NewScript(extendSrc)
)

// pollEvery bounds how long a waiter sleeps between attempts when no
// release notice comes: pub/sub is at-most-once, and an expiry announces
// nothing.
const pollEvery = 250 * time.Millisecond

// Locker takes and gives back locks under one keyspace.
type Locker struct {
	rdb   redis.UniversalClient
	keys  keyspace.Keyspace
	waker *waker
}

// New returns a Locker. Close it to end its release subscription.
func New(c redis.UniversalClient, keys keyspace.Keyspace) *Locker {
	return &Locker{rdb: c, keys: keys, waker: newWaker(c, keys.LockEvents())}
}

// Close ends the release subscription, if one was opened.
func (l *Locker) Close() { l.waker.close() }

// Grant is the outcome of an Acquire.
type Grant struct {
	Acquired bool
	// Key is the lock's Redis key.
	Key string
	// Token is the owner token, needed to release or extend; set only when
	// acquired.
	Token string
	// Fence is the fencing token: it grows with every grant of the resource.
	Fence int64
	// TTL is the granted ttl, or the holder's remaining ttl when not
	// acquired: negative when the holder's key has no expiry (it was set
	// outside this server).
	TTL time.Duration
	// ExpiresAt is when the grant expires (Redis clock); zero when the
	// holder's key has no expiry.
	ExpiresAt time.Time
	// Owner is the holder's label when not acquired.
	Owner string
	// Waited is how long the call waited.
	Waited time.Duration
}

// NewToken mints an owner token: 128 random bits in hex.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Acquire takes resource for ttl, waiting up to wait for it to come free.
// Not getting the lock is a Grant with Acquired false, not an error.
func (l *Locker) Acquire(ctx context.Context, resource string, ttl, wait time.Duration, owner string) (Grant, error) {
	start := time.Now()
	deadline := start.Add(wait)
	token := NewToken()
	for {
		var woken <-chan struct{}
		var stop func()
		if wait > 0 {
			// Listen before trying, so a release between the try and the
			// wait is not missed.
			woken, stop = l.waker.listen(ctx, resource)
		}
		g, err := l.try(ctx, resource, token, ttl, owner)
		if err == nil && g.Acquired && errors.Is(ctx.Err(), context.Canceled) {
			// The caller went away while the grant was on its way: nobody
			// will learn the token, so give the lock back now rather than
			// leave it held for its whole ttl. (A call that merely ran out
			// of time still gets its answer, and so its grant.)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_, _ = l.Release(rctx, resource, token)
			cancel()
			g, err = Grant{Key: g.Key}, rdb.Wrap("acquire "+resource, ctx.Err())
		}
		g.Waited = time.Since(start)
		left := time.Until(deadline)
		if err != nil || g.Acquired || left <= 0 {
			if stop != nil {
				stop()
			}
			return g, err
		}
		sleep := min(left, pollEvery)
		if g.TTL > 0 {
			// Wake when the holder's lock runs out; a lock without an
			// expiry (set outside this server) is polled.
			sleep = min(sleep, g.TTL+time.Millisecond)
		}
		timer := time.NewTimer(sleep)
		select {
		case <-woken:
		case <-timer.C:
		case <-ctx.Done():
		}
		timer.Stop()
		stop()
		if err := ctx.Err(); err != nil {
			return Grant{Key: l.keys.Lock(resource), Waited: time.Since(start)}, rdb.Wrap("wait for lock "+resource, err)
		}
	}
}

func (l *Locker) try(ctx context.Context, resource, token string, ttl time.Duration, owner string) (Grant, error) {
	key := l.keys.Lock(resource)
	res, err := AcquireScript.Run(ctx, l.rdb,
		[]string{key, l.keys.LockFence(resource), l.keys.LockOwner(resource)},
		token, ttl.Milliseconds(), owner).Slice()
	if err != nil {
		return Grant{}, rdb.Wrap("acquire "+key, err)
	}
	if len(res) < 3 {
		return Grant{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("acquire %s: unexpected reply %v", key, res)}
	}
	now := time.UnixMilli(res[2].(int64))
	if res[0].(int64) == 1 {
		return Grant{Acquired: true, Key: key, Token: token, Fence: res[1].(int64), TTL: ttl, ExpiresAt: now.Add(ttl)}, nil
	}
	left := time.Duration(res[1].(int64)) * time.Millisecond
	g := Grant{Key: key, TTL: left}
	if left > 0 {
		g.ExpiresAt = now.Add(left)
	}
	if len(res) > 3 {
		g.Owner, _ = res[3].(string)
	}
	return g, nil
}

// Release deletes the lock if token holds it, and announces the release.
// It reports false, leaving the lock untouched, when token does not hold
// it (wrong, empty, foreign or expired).
func (l *Locker) Release(ctx context.Context, resource, token string) (bool, error) {
	key := l.keys.Lock(resource)
	note, _ := json.Marshal(map[string]string{"event": "released", "resource": resource, "key": key})
	n, err := ReleaseScript.Run(ctx, l.rdb, []string{key, l.keys.LockOwner(resource)},
		token, l.keys.LockEvents(), string(note)).Int64()
	if err != nil {
		return false, rdb.Wrap("release "+key, err)
	}
	return n == 1, nil
}

// Extend sets the lock's ttl to ttl from now if token holds it, and
// returns the new expiry. It reports false, leaving the lock untouched,
// when token does not hold it.
func (l *Locker) Extend(ctx context.Context, resource, token string, ttl time.Duration) (bool, time.Time, error) {
	key := l.keys.Lock(resource)
	res, err := ExtendScript.Run(ctx, l.rdb, []string{key, l.keys.LockOwner(resource)}, token, ttl.Milliseconds()).Int64Slice()
	if err != nil {
		return false, time.Time{}, rdb.Wrap("extend "+key, err)
	}
	if len(res) != 2 {
		return false, time.Time{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("extend %s: unexpected reply %v", key, res)}
	}
	if res[0] != 1 {
		return false, time.Time{}, nil
	}
	return true, time.UnixMilli(res[1]).Add(ttl), nil
}

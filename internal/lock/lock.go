// Package lock implements distributed locks on Redis: one SET NX PX to
// take, compare-and-delete and compare-and-pexpire in Lua to release and
// extend, a fencing counter per resource, and a bounded wait that wakes on
// a release notice. A grant whose token nobody learnt (its call timed out
// or went away) is given back in the background once Redis answers.
package lock

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
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

	acquireScript = redis.NewScript(rdb.ScriptPrelude + acquireSrc)
	releaseScript = redis.NewScript(rdb.ScriptPrelude + releaseSrc)
	extendScript  = redis.NewScript(rdb.ScriptPrelude + extendSrc)
)

// pollEvery bounds how long a waiter sleeps between attempts when no
// release notice comes: pub/sub is at-most-once, and an expiry announces
// nothing.
const pollEvery = 250 * time.Millisecond

// Giving back an orphaned grant (see giveBack): the first retry waits
// retryFirst, each next one twice as long up to retryMost; one attempt
// waits at most attemptMost for an answer; Close lets the attempts go on
// for closeGrace before it gives up on them.
const (
	retryFirst  = 50 * time.Millisecond
	retryMost   = time.Second
	attemptMost = time.Second
	closeGrace  = time.Second
)

// Locker takes and gives back locks under one keyspace.
type Locker struct {
	rdb redis.UniversalClient
	// plain is rdb without WAIT (rdb.Durable): a grant nobody holds is
	// given back without waiting for replicas.
	plain redis.UniversalClient
	keys  keyspace.Keyspace
	waker *waker
	log   *slog.Logger
	// sharded: release notices go out with SPUBLISH, after the script.
	sharded bool

	// orphans counts the grants being given back in the background; mu
	// orders its Add against Close's Wait.
	mu      sync.Mutex
	closed  bool
	orphans sync.WaitGroup
	// quit ends the give-backs still running a grace after Close.
	quit   context.Context
	cancel context.CancelFunc
}

// Option configures a Locker.
type Option func(*Locker)

// WithLogger sets where the Locker reports the grants it gave back;
// slog.Default() otherwise.
func WithLogger(log *slog.Logger) Option { return func(l *Locker) { l.log = log } }

// WithShardedPubSub announces releases with SPUBLISH (Redis 7 sharded
// pub/sub) and listens for them with SSUBSCRIBE. The release channel is
// in no lock's slot, so the notice is sent after the release script, not
// from it: a release whose notice is lost (pub/sub is at-most-once anyway)
// costs a waiter one poll interval.
func WithShardedPubSub() Option {
	return func(l *Locker) {
		l.sharded = true
		l.waker.sharded = true
	}
}

// New returns a Locker. Close it to end its release subscription and its
// give-backs.
func New(c redis.UniversalClient, keys keyspace.Keyspace, opts ...Option) *Locker {
	l := &Locker{rdb: c, plain: c, keys: keys, waker: newWaker(c, keys.LockEvents()), log: slog.Default()}
	if d, ok := c.(*rdb.Durable); ok {
		l.plain = d.UniversalClient
	}
	l.quit, l.cancel = context.WithCancel(context.Background())
	for _, o := range opts {
		o(l)
	}
	return l
}

// Close waits for the grants being given back (up to a short grace, after
// which they are left to expire with their ttl) and ends the release
// subscription. Calling it again does nothing more.
func (l *Locker) Close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.orphans.Wait()
		close(done)
	}()
	grace := time.NewTimer(closeGrace)
	select {
	case <-done:
	case <-grace.C:
		l.cancel()
		<-done
	}
	grace.Stop()
	l.cancel()
	l.waker.close()
}

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

// newToken mints an owner token: 128 random bits in hex.
func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Acquire takes resource for ttl, waiting up to wait for it to come free.
// Not getting the lock is a Grant with Acquired false, not an error.
func (l *Locker) Acquire(ctx context.Context, resource string, ttl, wait time.Duration, owner string) (Grant, error) {
	start := time.Now()
	deadline := start.Add(wait)
	token := newToken()
	for {
		var woken <-chan struct{}
		var stop func()
		if wait > 0 {
			// Listen before trying, so a release between the try and the
			// wait is not missed.
			woken, stop = l.waker.listen(ctx, resource)
		}
		sent := time.Now()
		g, err := l.try(ctx, resource, token, ttl, owner)
		switch {
		case err != nil && mayHaveRun(err):
			// No answer (a timeout, a lost connection, a cancel): Redis may
			// still run the script, granting the lock to a token nobody will
			// learn.
			l.giveBack(resource, token, sent.Add(ttl), err)
		case err == nil && g.Acquired && errors.Is(ctx.Err(), context.Canceled):
			// The caller went away while the grant was on its way: nobody
			// will learn the token either. (A call that merely ran out of
			// time still gets its answer, and so its grant.)
			g, err = Grant{Key: g.Key}, rdb.Wrap("acquire "+resource, ctx.Err())
			l.giveBack(resource, token, sent.Add(ttl), err)
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

// mayHaveRun reports whether a failed acquire may have taken the lock all
// the same: anything but an error reply from Redis (the scripts check
// everything before their first write, so a script that answered an error
// took nothing) or a failure to get a connection (nothing was sent).
func mayHaveRun(err error) bool {
	var re redis.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &re), errors.Is(err, redis.ErrPoolTimeout), errors.Is(err, redis.ErrClosed),
		errors.As(err, &oe) && oe.Op == "dial":
		return false
	}
	return true
}

// giveBack releases a grant whose token nobody will learn, in the
// background: rather than leave the resource held for its whole ttl, the
// release is retried with a growing pause until Redis answers, until
// expires (the lock is gone by then anyway), or until a grace after Close.
func (l *Locker) giveBack(resource, token string, expires time.Time, cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		l.log.Warn("lock: closed, so a grant nobody holds is left to expire with its ttl",
			"resource", resource, "expires_in", time.Until(expires).Round(time.Millisecond), "cause", cause)
		return
	}
	l.orphans.Add(1)
	go func() {
		defer l.orphans.Done()
		l.releaseOrphan(resource, token, expires, cause)
	}()
}

func (l *Locker) releaseOrphan(resource, token string, expires time.Time, cause error) {
	start := time.Now()
	pause := retryFirst
	answers := 0
	for attempt := 1; ; attempt++ {
		deadline := time.Now().Add(attemptMost)
		if expires.Before(deadline) {
			deadline = expires
		}
		ctx, cancel := context.WithDeadline(l.quit, deadline)
		_, released, err := l.release(ctx, l.plain, resource, token)
		cancel()
		switch {
		case err == nil && released:
			l.log.Info("lock: gave back a grant nobody holds", "resource", resource,
				"took", time.Since(start).Round(time.Millisecond), "attempts", attempt, "cause", cause)
			return
		case err == nil:
			// Not held: the acquire never ran, or not yet. Redis runs
			// what it read before in order on each connection, but not
			// across connections: a release sent as Redis wakes can run
			// before the acquire it had read while asleep. Once Redis has
			// answered, a second release is read after that acquire.
			answers++
			if answers == 2 {
				l.log.Debug("lock: a failed acquire had taken nothing", "resource", resource, "cause", cause)
				return
			}
			continue
		case !rdb.Unreachable(err) && !errors.Is(err, context.Canceled):
			l.log.Warn("lock: could not give back a grant nobody holds; it expires with its ttl", "resource", resource,
				"expires_in", time.Until(expires).Round(time.Millisecond), "err", err, "cause", cause)
			return
		}
		if !time.Now().Add(pause).Before(expires) {
			l.log.Info("lock: Redis did not answer before a grant nobody holds expired", "resource", resource,
				"attempts", attempt, "cause", cause)
			return
		}
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-l.quit.Done():
			timer.Stop()
			l.log.Warn("lock: closed before Redis answered; a grant nobody holds expires with its ttl", "resource", resource,
				"expires_in", time.Until(expires).Round(time.Millisecond), "attempts", attempt, "cause", cause)
			return
		}
		pause = min(2*pause, retryMost)
	}
}

func (l *Locker) try(ctx context.Context, resource, token string, ttl time.Duration, owner string) (Grant, error) {
	key := l.keys.Lock(resource)
	channel := l.keys.LockEvents()
	if l.sharded {
		channel = ""
	}
	res, err := acquireScript.Run(ctx, l.rdb,
		[]string{key, l.keys.LockFence(resource), l.keys.LockOwner(resource)},
		token, ttl.Milliseconds(), owner, channel, acquiredNotice(resource, key, owner)).Slice()
	if err != nil {
		return Grant{}, rdb.WrapNotDurable("acquire "+key, err,
			"The grant is being given back, so nobody holds it; call acquire_lock again.")
	}
	if len(res) < 3 {
		return Grant{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("acquire %s: unexpected reply %v", key, res)}
	}
	now := time.UnixMilli(res[2].(int64))
	if res[0].(int64) == 1 {
		if l.sharded {
			l.announceGrant(ctx, resource, key, owner, res[1].(int64))
		}
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

// Holder is what a release or an extend learns of the grant whose token
// held the lock: its owner label and fencing token.
type Holder struct {
	Owner string
	Fence int64
}

// Release deletes the lock if token holds it, and announces the release.
// It reports false, leaving the lock untouched, when token does not hold
// it (wrong, empty, foreign or expired).
func (l *Locker) Release(ctx context.Context, resource, token string) (bool, error) {
	_, ok, err := l.ReleaseHeld(ctx, resource, token)
	return ok, err
}

// ReleaseHeld is Release, telling also which grant it ended.
func (l *Locker) ReleaseHeld(ctx context.Context, resource, token string) (Holder, bool, error) {
	return l.release(ctx, l.rdb, resource, token)
}

func (l *Locker) release(ctx context.Context, c redis.UniversalClient, resource, token string) (Holder, bool, error) {
	key := l.keys.Lock(resource)
	note, _ := json.Marshal(map[string]string{"event": "released", "resource": resource, "key": key})
	channel := l.keys.LockEvents()
	if l.sharded {
		channel = ""
	}
	res, err := releaseScript.Run(ctx, c, l.holderKeys(resource), token, channel, string(note)).Slice()
	if err != nil {
		return Holder{}, false, rdb.WrapNotDurable("release "+key, err,
			"The lock is released on the master; should a failover lose that, it stays held until its ttl runs out. A repeated release_lock answers released: false either way.")
	}
	if l.sharded && len(res) > 1 {
		if err := l.rdb.SPublish(ctx, l.keys.LockEvents(), string(note)).Err(); err != nil {
			l.log.Warn("lock: released, but the release notice was not sent", "resource", resource, "err", err)
		}
	}
	if len(res) == 1 && res[0] == int64(0) {
		return Holder{}, false, nil
	}
	h, ok := holder(res, 1)
	if !ok || res[0] != int64(1) {
		return Holder{}, false, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("release %s: unexpected reply %v", key, res)}
	}
	return h, true, nil
}

// Extend sets the lock's ttl to ttl from now if token holds it, and
// returns the new expiry. It reports false, leaving the lock untouched,
// when token does not hold it.
func (l *Locker) Extend(ctx context.Context, resource, token string, ttl time.Duration) (bool, time.Time, error) {
	_, ok, until, err := l.ExtendHeld(ctx, resource, token, ttl)
	return ok, until, err
}

// ExtendHeld is Extend, telling also which grant it extended.
func (l *Locker) ExtendHeld(ctx context.Context, resource, token string, ttl time.Duration) (Holder, bool, time.Time, error) {
	key := l.keys.Lock(resource)
	res, err := extendScript.Run(ctx, l.rdb, l.holderKeys(resource), token, ttl.Milliseconds()).Slice()
	if err != nil {
		return Holder{}, false, time.Time{}, rdb.WrapNotDurable("extend "+key, err,
			"The new ttl is set on the master; should a failover lose it, the lock expires at its earlier time. Calling extend_lock again is safe.")
	}
	now, _ := elem[int64](res, 1)
	switch {
	case len(res) == 2 && res[0] == int64(0) && now > 0:
		return Holder{}, false, time.Time{}, nil
	case len(res) == 4 && res[0] == int64(1) && now > 0:
		if h, ok := holder(res, 2); ok {
			return h, true, time.UnixMilli(now).Add(ttl), nil
		}
	}
	return Holder{}, false, time.Time{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("extend %s: unexpected reply %v", key, res)}
}

// holderKeys are the keys release.lua and extend.lua take.
func (l *Locker) holderKeys(resource string) []string {
	return []string{l.keys.Lock(resource), l.keys.LockOwner(resource), l.keys.LockFence(resource)}
}

// holder reads the owner label and fencing token at res[i], res[i+1].
func holder(res []any, i int) (Holder, bool) {
	owner, ok1 := elem[string](res, i)
	fence, ok2 := elem[string](res, i+1)
	n, err := strconv.ParseInt(fence, 10, 64)
	return Holder{Owner: owner, Fence: n}, ok1 && ok2 && err == nil
}

// elem is res[i] as a T, when it is one.
func elem[T any](res []any, i int) (T, bool) {
	var zero T
	if i >= len(res) {
		return zero, false
	}
	v, ok := res[i].(T)
	return v, ok
}

package lock_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// backend is a Redis the suite runs against.
type backend struct {
	name string
	open func(t *testing.T) (redis.UniversalClient, string)
	// contenders and rounds size the contention test: see there.
	contenders, rounds int
}

// backends: the real Redis (what every claim is about) and the embedded
// in-process Redis, which is a product feature of its own. The embedded one
// runs with ClockTTL so that lock expiry follows the wall clock, as the
// server configures it.
var backends = []backend{
	{"real redis", func(t *testing.T) (redis.UniversalClient, string) {
		c, prefix := testredis.Shared(t)
		return c, prefix
	}, 32, 200},
	{"embedded", func(t *testing.T) (redis.UniversalClient, string) {
		return testredis.Embedded(t)
	}, 8, 25},
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func newLocker(t *testing.T, b backend) (*lock.Locker, redis.UniversalClient, keyspace.Keyspace) {
	c, prefix := b.open(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	l := lock.New(c, keys)
	t.Cleanup(l.Close)
	return l, c, keys
}

// fragileClient talks to addr the way the server does (rdb.Open's policy):
// short timeouts, no retries, context deadlines on the socket.
func fragileClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
		PoolTimeout: time.Second, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1,
	})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func mustAcquire(t *testing.T, l *lock.Locker, resource string, ttl time.Duration, owner string) lock.Grant {
	t.Helper()
	g, err := l.Acquire(context.Background(), resource, ttl, 0, owner)
	if err != nil {
		t.Fatalf("acquire %s: %v", resource, err)
	}
	if !g.Acquired {
		t.Fatalf("acquire %s: not acquired: %+v", resource, g)
	}
	return g
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// Every release wakes every waiter, and each runs the acquire script again:
// a grant costs about one script run per waiter. The embedded Redis runs
// scripts one at a time in an interpreted Lua at about 1.5ms each under
// -race (real Redis: about 0.3ms, round trip included), so 32 waiters there
// get about 20 grants/s and 6400 grants would take minutes: the embedded run
// is scaled down to 8 goroutines × 25 rounds.
func TestContendingGoroutinesHoldTheLockOneAtATimeWithGrowingFences(t *testing.T) {
	if testing.Short() {
		t.Skip("runs long contention rounds; not in the -short tier")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		workers, rounds := b.contenders, b.rounds
		var (
			longest       atomic.Int64
			timeouts      atomic.Int32
			holders, most atomic.Int32
			mu            sync.Mutex
			fences        []int64 // in grant order: appended inside the critical section
			wg            sync.WaitGroup
		)
		start := time.Now()
		for w := range workers {
			wg.Go(func() {
				owner := fmt.Sprintf("worker-%d", w)
				for r := range rounds {
					g, err := l.Acquire(ctx, "hot", 5*time.Second, 5*time.Second, owner)
					for err == nil && !g.Acquired {
						// Not a failure: the lock is not fair (a releaser
						// that asks again at once often wins), and this test
						// is about exclusion. Counted and logged.
						timeouts.Add(1)
						t.Logf("%s round %d: not acquired within 5s (%+v); asking again", owner, r, g)
						g, err = l.Acquire(ctx, "hot", 5*time.Second, 5*time.Second, owner)
					}
					if err != nil {
						t.Errorf("%s round %d: %v", owner, r, err)
						return
					}
					for m := longest.Load(); int64(g.Waited) > m && !longest.CompareAndSwap(m, int64(g.Waited)); m = longest.Load() {
					}
					n := holders.Add(1)
					if n != 1 {
						t.Errorf("%s round %d: %d holders at once", owner, r, n)
					}
					for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
					}
					mu.Lock()
					fences = append(fences, g.Fence)
					mu.Unlock()
					if r%4 == 0 {
						time.Sleep(20 * time.Microsecond)
					}
					holders.Add(-1)
					if ok, err := l.Release(ctx, "hot", g.Token); err != nil || !ok {
						t.Errorf("%s round %d: release = %v, %v", owner, r, ok, err)
					}
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		t.Logf("%d grants to %d goroutines in %v (%.0f grants/s); longest wait %v; waits timed out: %d; most holders at once: %d",
			len(fences), workers, took, float64(len(fences))/took.Seconds(), time.Duration(longest.Load()), timeouts.Load(), most.Load())
		if len(fences) != workers*rounds {
			t.Errorf("%d grants, want %d", len(fences), workers*rounds)
		}
		for i := 1; i < len(fences); i++ {
			if fences[i] <= fences[i-1] {
				t.Fatalf("grant %d has fence %d after %d: fences must strictly grow", i, fences[i], fences[i-1])
			}
		}
		// Only grants count: a caller that finds the lock taken burns no fence.
		if n, err := c.Get(ctx, keys.LockFence("hot")).Int64(); err != nil || n != int64(len(fences)) {
			t.Errorf("fence counter = %d, %v; want %d, one per grant", n, err, len(fences))
		}
		if ttl := c.PTTL(ctx, keys.LockFence("hot")).Val(); ttl != -1 {
			t.Errorf("fence counter PTTL = %v, want -1ns (no expiry)", ttl)
		}
	})
}

func TestOfAHundredSimultaneousAcquiresOfAFreeLockExactlyOneWins(t *testing.T) {
	if testing.Short() {
		t.Skip("runs 50 rounds of 100 contenders; not in the -short tier")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _, _ := newLocker(t, b)
		ctx := context.Background()
		const callers, rounds = 100, 50
		for round := range rounds {
			resource := fmt.Sprintf("free-%d", round)
			gate := make(chan struct{})
			grants := make([]lock.Grant, callers)
			errs := make([]error, callers)
			var wg sync.WaitGroup
			for i := range callers {
				wg.Go(func() {
					<-gate
					grants[i], errs[i] = l.Acquire(ctx, resource, 10*time.Second, 0, fmt.Sprintf("caller-%d", i))
				})
			}
			close(gate)
			wg.Wait()
			winner := -1
			for i, g := range grants {
				if errs[i] != nil {
					t.Fatalf("round %d caller %d: %v", round, i, errs[i])
				}
				if g.Acquired {
					if winner >= 0 {
						t.Fatalf("round %d: callers %d and %d both acquired %s", round, winner, i, resource)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatalf("round %d: nobody acquired the free lock %s", round, resource)
			}
			if w := grants[winner]; w.Fence != 1 || w.Token == "" || w.TTL != 10*time.Second {
				t.Errorf("round %d: winning grant = %+v, want fence 1, a token and ttl 10s", round, w)
			}
			for i, g := range grants {
				if i == winner {
					continue
				}
				if g.Token != "" || g.Fence != 0 || g.Owner != fmt.Sprintf("caller-%d", winner) || g.TTL <= 0 || g.TTL > 10*time.Second {
					t.Fatalf("round %d: losing grant %d = %+v; want no token or fence, owner caller-%d, ttl in (0, 10s]", round, i, g, winner)
				}
			}
		}
	})
}

func TestAnyTokenButTheHoldersNeitherReleasesNorExtendsTheLock(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		held := mustAcquire(t, l, "guarded", 10*time.Second, "holder")
		other := mustAcquire(t, l, "other", 10*time.Second, "someone-else")
		tokens := []struct{ name, token string }{
			{"a wrong token", testredis.Random(16)},
			{"an empty token", ""},
			{"a 1 MiB token", strings.Repeat("f", 1<<20)},
			{"another lock's token", other.Token},
			{"the token less its last character", held.Token[:len(held.Token)-1]},
			{"the token with a suffix", held.Token + "0"},
		}
		key, label := keys.Lock("guarded"), keys.LockOwner("guarded")
		for _, tc := range tokens {
			t.Run(tc.name, func(t *testing.T) {
				before := c.PTTL(ctx, key).Val()
				ok, err := l.Release(ctx, "guarded", tc.token)
				if err != nil || ok {
					t.Errorf("release = %v, %v; want false, nil", ok, err)
				}
				ok, until, err := l.Extend(ctx, "guarded", tc.token, time.Hour)
				if err != nil || ok || !until.IsZero() {
					t.Errorf("extend = %v, %v, %v; want false, zero time, nil", ok, until, err)
				}
				if v := c.Get(ctx, key).Val(); v != held.Token {
					t.Errorf("lock value = %.40q, want the holder's token %q", v, held.Token)
				}
				if v := c.Get(ctx, label).Val(); v != "holder" {
					t.Errorf("owner label = %q, want holder", v)
				}
				if after := c.PTTL(ctx, key).Val(); after <= 0 || after > before {
					t.Errorf("lock PTTL went from %v to %v; want it positive and not increased", before, after)
				}
				if after := c.PTTL(ctx, label).Val(); after <= 0 || after > 10*time.Second {
					t.Errorf("owner label PTTL = %v, want (0, 10s]", after)
				}
			})
		}
		// The holder's own token still works, on its own lock only.
		ok, until, err := l.Extend(ctx, "guarded", held.Token, 30*time.Second)
		if err != nil || !ok || time.Until(until) < 25*time.Second {
			t.Fatalf("holder's extend = %v, %v (in %v), %v", ok, until, time.Until(until), err)
		}
		if ttl := c.PTTL(ctx, key).Val(); ttl <= 25*time.Second || ttl > 30*time.Second {
			t.Errorf("PTTL after the holder's extend = %v, want (25s, 30s]", ttl)
		}
		if ttl := c.PTTL(ctx, label).Val(); ttl <= 25*time.Second || ttl > 30*time.Second {
			t.Errorf("owner label PTTL after the holder's extend = %v, want (25s, 30s]", ttl)
		}
		if ok, err := l.Release(ctx, "guarded", held.Token); err != nil || !ok {
			t.Fatalf("holder's release = %v, %v", ok, err)
		}
		if n := c.Exists(ctx, key, label).Val(); n != 0 {
			t.Errorf("%d of the lock and its owner label left after release", n)
		}
		if v := c.Get(ctx, keys.Lock("other")).Val(); v != other.Token {
			t.Errorf("the other lock's value = %q, want %q", v, other.Token)
		}
		if ok, err := l.Release(ctx, "guarded", held.Token); err != nil || ok {
			t.Errorf("a second release = %v, %v; want false, nil", ok, err)
		}
	})
}

func TestAHolderThatOutlivesItsTTLCanNeitherReleaseNorExtendAndTheNextGrantFencesHigher(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		first := mustAcquire(t, l, "brief", 150*time.Millisecond, "slow")
		time.Sleep(250 * time.Millisecond)
		if ok, err := l.Release(ctx, "brief", first.Token); err != nil || ok {
			t.Errorf("release after expiry = %v, %v; want false, nil", ok, err)
		}
		if ok, _, err := l.Extend(ctx, "brief", first.Token, time.Minute); err != nil || ok {
			t.Errorf("extend after expiry = %v, %v; want false, nil", ok, err)
		}
		if n := c.Exists(ctx, keys.Lock("brief"), keys.LockOwner("brief")).Val(); n != 0 {
			t.Errorf("extend after expiry revived %d keys", n)
		}
		next := mustAcquire(t, l, "brief", 10*time.Second, "next")
		if next.Fence <= first.Fence {
			t.Errorf("next fence = %d, want > %d", next.Fence, first.Fence)
		}
		// The stale holder cannot touch the new holder's lock either.
		if ok, err := l.Release(ctx, "brief", first.Token); err != nil || ok {
			t.Errorf("stale release = %v, %v; want false, nil", ok, err)
		}
		if ok, _, err := l.Extend(ctx, "brief", first.Token, time.Minute); err != nil || ok {
			t.Errorf("stale extend = %v, %v; want false, nil", ok, err)
		}
		if v := c.Get(ctx, keys.Lock("brief")).Val(); v != next.Token {
			t.Errorf("lock value = %q, want the new holder's %q", v, next.Token)
		}
		if ttl := c.PTTL(ctx, keys.Lock("brief")).Val(); ttl <= 0 || ttl > 10*time.Second {
			t.Errorf("lock PTTL = %v, want (0, 10s]", ttl)
		}
	})
}

func TestAWaiterWakesPromptlyWhenTheLockIsReleased(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _, _ := newLocker(t, b)
		ctx := context.Background()
		type result struct {
			g   lock.Grant
			err error
			at  time.Time
		}
		var delays []time.Duration
		for i := range 10 {
			resource := fmt.Sprintf("wake-%d", i)
			held := mustAcquire(t, l, resource, 10*time.Second, "holder")
			done := make(chan result, 1)
			go func() {
				g, err := l.Acquire(ctx, resource, 10*time.Second, 5*time.Second, "waiter")
				done <- result{g, err, time.Now()}
			}()
			// Release well inside the waiter's first 250ms poll sleep, so
			// only the release notice can wake it soon.
			time.Sleep(30 * time.Millisecond)
			if ok, err := l.Release(ctx, resource, held.Token); err != nil || !ok {
				t.Fatalf("release = %v, %v", ok, err)
			}
			released := time.Now()
			r := <-done
			if r.err != nil || !r.g.Acquired {
				t.Fatalf("waiter: %+v, %v", r.g, r.err)
			}
			if r.g.Fence <= held.Fence {
				t.Errorf("waiter's fence %d, want > %d", r.g.Fence, held.Fence)
			}
			delays = append(delays, r.at.Sub(released))
		}
		m := median(delays)
		t.Logf("release-to-grant delays: %v; median %v, max %v", delays, m, slices.Max(delays))
		// A behaviour check, not a benchmark: a waiter woken only by its poll
		// would take about 220ms here.
		if m >= 100*time.Millisecond {
			t.Errorf("median release-to-grant delay %v; the release notice does not seem to wake waiters", m)
		}
	})
}

func TestAWaiterGetsALockThatExpiresSoonAfterItsExpiry(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out six lock expiries; not in the -short tier")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _, _ := newLocker(t, b)
		ctx := context.Background()
		const ttl = 300 * time.Millisecond
		var lates []time.Duration
		for i := range 3 {
			resource := fmt.Sprintf("lapse-%d", i)
			before := time.Now()
			held := mustAcquire(t, l, resource, ttl, "vanished")
			after := time.Now()
			g, err := l.Acquire(ctx, resource, 10*time.Second, 3*time.Second, "waiter")
			got := time.Now()
			if err != nil || !g.Acquired {
				t.Fatalf("waiter: %+v, %v", g, err)
			}
			if g.Fence <= held.Fence {
				t.Errorf("waiter's fence %d, want > %d", g.Fence, held.Fence)
			}
			// Redis and this process share a clock, to the millisecond.
			if early := before.Add(ttl - 2*time.Millisecond).Sub(got); early > 0 {
				t.Errorf("waiter got the lock %v before the holder's expiry", early)
			}
			late := got.Sub(after.Add(ttl))
			lates = append(lates, late)
			if late > 150*time.Millisecond {
				t.Errorf("waiter got the lock %v after the holder's expiry", late)
			}
		}
		t.Logf("expiry-to-grant delays (upper bounds): %v", lates)
	})
}

func TestCancellingTheContextEndsAWaitEarly(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		held := mustAcquire(t, l, "busy", 10*time.Second, "holder")
		t.Run("cancel", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			start := time.Now()
			g, err := l.Acquire(ctx, "busy", 10*time.Second, 5*time.Second, "waiter")
			took := time.Since(start)
			if !errors.Is(err, context.Canceled) || g.Acquired || g.Token != "" {
				t.Errorf("acquire = %+v, %v; want not acquired and a cancellation error", g, err)
			}
			if took < 90*time.Millisecond || took > time.Second {
				t.Errorf("cancelled wait took %v, want about 100ms", took)
			}
			t.Logf("cancelled after %v: %v (code %s)", took, err, fault.CodeOf(err))
		})
		t.Run("deadline", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			g, err := l.Acquire(ctx, "busy", 10*time.Second, 5*time.Second, "waiter")
			took := time.Since(start)
			if err == nil || g.Acquired {
				t.Errorf("acquire = %+v, %v; want not acquired and an error", g, err)
			}
			if took > time.Second {
				t.Errorf("wait past the deadline took %v, want about 150ms", took)
			}
		})
		if v := c.Get(context.Background(), keys.Lock("busy")).Val(); v != held.Token {
			t.Errorf("the holder lost its lock: value %q", v)
		}
	})
}

func TestAWaitThatRunsOutReportsTheHolder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _, _ := newLocker(t, b)
		ctx := context.Background()
		mustAcquire(t, l, "taken", 10*time.Second, "holder-label")
		for _, wait := range []time.Duration{0, 100 * time.Millisecond, 400 * time.Millisecond} {
			t.Run(fmt.Sprint("wait ", wait), func(t *testing.T) {
				g, err := l.Acquire(ctx, "taken", 10*time.Second, wait, "waiter")
				if err != nil {
					t.Fatal(err)
				}
				if g.Acquired || g.Token != "" || g.Fence != 0 {
					t.Errorf("grant = %+v, want not acquired, no token, no fence", g)
				}
				if g.Owner != "holder-label" {
					t.Errorf("owner = %q, want holder-label", g.Owner)
				}
				if g.TTL <= 8*time.Second || g.TTL > 10*time.Second {
					t.Errorf("holder's remaining ttl = %v, want (8s, 10s]", g.TTL)
				}
				if until := time.Until(g.ExpiresAt); until <= 7*time.Second || until > 10*time.Second {
					t.Errorf("holder's expiry in %v, want (7s, 10s]", until)
				}
				if g.Waited < wait || g.Waited > wait+200*time.Millisecond {
					t.Errorf("waited %v, want about %v", g.Waited, wait)
				}
			})
		}
	})
}

func TestAHolderWithoutALabelShowsAnEmptyOwner(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		mustAcquire(t, l, "unlabelled", 10*time.Second, "")
		g, err := l.Acquire(ctx, "unlabelled", time.Second, 0, "waiter")
		if err != nil || g.Acquired || g.Owner != "" {
			t.Errorf("acquire = %+v, %v; want not acquired with no owner label", g, err)
		}
		if n := c.Exists(ctx, keys.LockOwner("unlabelled")).Val(); n != 0 {
			t.Errorf("an owner label exists for a holder without one")
		}
	})
}

func TestAnUnreachableRedisIsUnavailable(t *testing.T) {
	check := func(t *testing.T, l *lock.Locker, token string) {
		t.Helper()
		ctx := context.Background()
		for _, wait := range []time.Duration{0, 300 * time.Millisecond} {
			start := time.Now()
			g, err := l.Acquire(ctx, "r", time.Second, wait, "x")
			if fault.CodeOf(err) != fault.Unavailable || g.Acquired {
				t.Errorf("acquire (wait %v) = %+v, %v; want an unavailable error", wait, g, err)
			}
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("acquire (wait %v) took %v to fail", wait, took)
			}
		}
		ok, err := l.Release(ctx, "r", token)
		if fault.CodeOf(err) != fault.Unavailable || ok {
			t.Errorf("release = %v, %v; want an unavailable error", ok, err)
		}
		ok, _, err = l.Extend(ctx, "r", token, time.Second)
		if fault.CodeOf(err) != fault.Unavailable || ok {
			t.Errorf("extend = %v, %v; want an unavailable error", ok, err)
		}
	}
	t.Run("a stopped server", func(t *testing.T) {
		s := testredis.Start(t)
		l := lock.New(fragileClient(t, s.Addr), keyspace.Keyspace{Prefix: "mcp:"})
		defer l.Close()
		// Open pooled connections and the release subscription first.
		g, err := l.Acquire(context.Background(), "r", time.Minute, 100*time.Millisecond, "x")
		if err != nil || !g.Acquired {
			t.Fatalf("acquire while up = %+v, %v", g, err)
		}
		s.Stop()
		check(t, l, g.Token)
	})
	t.Run("a closed port", func(t *testing.T) {
		addr := fmt.Sprintf("127.0.0.1:%d", testredis.FreePort(t))
		l := lock.New(fragileClient(t, addr), keyspace.Keyspace{Prefix: "mcp:"})
		defer l.Close()
		check(t, l, testredis.Random(16))
	})
}

// Real Redis only: the embedded Redis has no persistence.
func TestTheFenceSurvivesARestartWithPersistence(t *testing.T) {
	s := testredis.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	keys := keyspace.Keyspace{Prefix: "mcp:"}
	open := func() *lock.Locker {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		l := lock.New(c, keys)
		t.Cleanup(func() { l.Close(); _ = c.Close() })
		return l
	}
	ctx := context.Background()
	l := open()
	var last int64
	for range 3 {
		g := mustAcquire(t, l, "durable", time.Minute, "before")
		if g.Fence <= last {
			t.Fatalf("fence %d after %d", g.Fence, last)
		}
		last = g.Fence
		if ok, err := l.Release(ctx, "durable", g.Token); err != nil || !ok {
			t.Fatalf("release = %v, %v", ok, err)
		}
	}
	s.Stop() // SIGKILL: only what the AOF holds survives
	s.Start()
	g := mustAcquire(t, open(), "durable", time.Minute, "after")
	if g.Fence <= last {
		t.Errorf("fence after restart = %d, want > %d", g.Fence, last)
	}
}

// scriptCounter counts the scripts a client runs.
type scriptCounter struct{ n atomic.Int64 }

func (h *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}
func (h *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A key written without an expiry by another program never runs out: a
// waiter polls it instead of retrying without pause.
func TestAWaiterPollsALockThatHasNoExpiry(t *testing.T) {
	c, prefix := testredis.Shared(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	counter := &scriptCounter{}
	c.AddHook(counter)
	l := lock.New(c, keys)
	defer l.Close()
	ctx := context.Background()
	if err := c.Set(ctx, keys.Lock("stuck"), "someone", 0).Err(); err != nil {
		t.Fatal(err)
	}
	g, err := l.Acquire(ctx, "stuck", time.Second, 600*time.Millisecond, "")
	if err != nil || g.Acquired {
		t.Fatalf("acquire = %+v, %v", g, err)
	}
	if g.TTL >= 0 || !g.ExpiresAt.IsZero() {
		t.Errorf("a holder without expiry reads as ttl %v, expires %v", g.TTL, g.ExpiresAt)
	}
	// 600ms at one try per 250ms poll is about 4 tries; allow slack.
	if n := counter.n.Load(); n > 10 {
		t.Errorf("%d tries in a 600ms wait", n)
	}
}

// A release or an extend says which grant it ended or moved: the holder's
// owner label and fencing token, the same the acquire answered.
func TestReleaseAndExtendNameTheGrantTheyActedOn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, _, _ := newLocker(t, b)
		ctx := context.Background()
		g := mustAcquire(t, l, "unnamed", time.Minute, "")
		h, ok, _, err := l.ExtendHeld(ctx, "unnamed", g.Token, time.Minute)
		if err != nil || !ok || h.Owner != "" || h.Fence != g.Fence {
			t.Errorf("extend = %+v %v %v; want no owner and fence %d", h, ok, err, g.Fence)
		}
		for i := range 3 {
			held := mustAcquire(t, l, "twice", time.Minute, fmt.Sprint("agent-", i))
			h, ok, _, err := l.ExtendHeld(ctx, "twice", held.Token, time.Minute)
			if err != nil || !ok || h != (lock.Holder{Owner: fmt.Sprint("agent-", i), Fence: held.Fence}) {
				t.Errorf("extend %d = %+v %v %v; want agent-%d, fence %d", i, h, ok, err, i, held.Fence)
			}
			h, ok, err = l.ReleaseHeld(ctx, "twice", held.Token)
			if err != nil || !ok || h != (lock.Holder{Owner: fmt.Sprint("agent-", i), Fence: held.Fence}) {
				t.Errorf("release %d = %+v %v %v; want agent-%d, fence %d", i, h, ok, err, i, held.Fence)
			}
			if h, ok, err := l.ReleaseHeld(ctx, "twice", held.Token); err != nil || ok || h != (lock.Holder{}) {
				t.Errorf("a second release = %+v %v %v; want nothing", h, ok, err)
			}
		}
	})
}

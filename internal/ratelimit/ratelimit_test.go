package ratelimit_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// backend is a Redis the suite runs against.
type backend struct {
	name string
	open func(t *testing.T) (*redis.Client, string)
}

// backends: the real Redis (what every claim is about) and the embedded
// in-process Redis, which is a product feature of its own. The embedded one
// runs with ClockTTL so that keys expire with the wall clock, as the server
// configures it.
var backends = []backend{
	{"real redis", func(t *testing.T) (*redis.Client, string) {
		c, prefix := testredis.Shared(t)
		return c, prefix
	}},
	{"embedded", func(t *testing.T) (*redis.Client, string) {
		return testredis.Embedded(t)
	}},
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func newLimiter(t *testing.T, b backend) (*ratelimit.Limiter, *redis.Client, keyspace.Keyspace) {
	c, prefix := b.open(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	return ratelimit.New(c, keys), c, keys
}

func allow(t *testing.T, l *ratelimit.Limiter, subject string, p ratelimit.Policy, cost int) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(context.Background(), subject, p, cost)
	if err != nil {
		t.Fatalf("allow %s %s cost %d: %v", p.Name, subject, cost, err)
	}
	return d
}

// commandCounter counts the commands a client sends.
type commandCounter struct{ n atomic.Int64 }

func (h *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func TestOfConcurrentCallsExactlyTheLimitIsAllowedAndTheFiguresAgree(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		// The window is long enough for every call to fall inside it even on
		// the embedded Redis, which takes about 2s for the 400 under -race.
		p := ratelimit.Policy{Name: "burst", Limit: 100, Window: 30 * time.Second}
		const calls = 400
		results := make([]ratelimit.Decision, calls)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i := range calls {
			wg.Go(func() {
				<-gate
				d, err := l.Allow(context.Background(), "alice", p, 1)
				if err != nil {
					t.Error(err)
				}
				results[i] = d
			})
		}
		start := time.Now()
		close(gate)
		wg.Wait()
		took := time.Since(start)
		t.Logf("%d concurrent calls took %v", calls, took)
		if took >= p.Window {
			t.Fatalf("the calls took %v, longer than the %v window: the test cannot judge the count", took, p.Window)
		}
		var remaining []int
		for _, d := range results {
			if d.Limit != p.Limit {
				t.Errorf("limit = %d, want %d", d.Limit, p.Limit)
			}
			if d.ResetAfter <= 0 || d.ResetAfter > p.Window {
				t.Errorf("reset after = %v, want (0, %v]: %+v", d.ResetAfter, p.Window, d)
			}
			if d.Allowed {
				remaining = append(remaining, d.Remaining)
				if d.RetryAfter != 0 {
					t.Errorf("allowed with retry after %v", d.RetryAfter)
				}
				continue
			}
			if d.Remaining != 0 {
				t.Errorf("denied with %d remaining", d.Remaining)
			}
			if d.RetryAfter <= 0 || d.RetryAfter > d.ResetAfter {
				t.Errorf("denied: retry after %v, want (0, reset after %v]", d.RetryAfter, d.ResetAfter)
			}
		}
		if len(remaining) != p.Limit {
			t.Fatalf("%d of %d calls allowed, want exactly %d", len(remaining), calls, p.Limit)
		}
		// Each allowed call saw one fewer unit left: 99, 98, …, 0.
		slices.Sort(remaining)
		for i, r := range remaining {
			if r != i {
				t.Fatalf("remaining figures of the allowed calls = %v, want 0..%d once each", remaining, p.Limit-1)
			}
		}
		key := keys.Rate(p.Name, "alice")
		if n := c.ZCard(context.Background(), key).Val(); n != int64(p.Limit) {
			t.Errorf("window holds %d units, want %d", n, p.Limit)
		}
	})
}

func TestADeniedSubjectIsAllowedAgainAfterItsRetryAfterAndStartsAfreshAfterTheWindow(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		p := ratelimit.Policy{Name: "slide", Limit: 3, Window: 400 * time.Millisecond}
		allow(t, l, "hana", p, 1)
		time.Sleep(100 * time.Millisecond)
		allow(t, l, "hana", p, 2)
		d := allow(t, l, "hana", p, 1)
		last := time.Now()
		if d.Allowed || d.Remaining != 0 {
			t.Fatalf("a fourth unit in the window: %+v, want denied", d)
		}
		// The first unit leaves about 300ms from now, the other two 100ms later.
		if d.RetryAfter <= 200*time.Millisecond || d.RetryAfter > 300*time.Millisecond ||
			d.ResetAfter <= 300*time.Millisecond || d.ResetAfter > 400*time.Millisecond {
			t.Fatalf("denied with retry after %v and reset after %v; want (200ms, 300ms] and (300ms, 400ms]", d.RetryAfter, d.ResetAfter)
		}
		windowEnd := last.Add(d.ResetAfter)
		time.Sleep(d.RetryAfter + 5*time.Millisecond)
		if d := allow(t, l, "hana", p, 1); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("after the retry_after: %+v, want allowed with none remaining", d)
		}
		// A sliding window: the two later units still count.
		if d := allow(t, l, "hana", p, 1); d.Allowed {
			t.Fatalf("one more right after: %+v, want denied", d)
		}
		time.Sleep(time.Until(windowEnd.Add(5 * time.Millisecond)))
		if d := allow(t, l, "hana", p, 2); !d.Allowed || d.Remaining != 0 {
			t.Errorf("once the pair left the window: %+v, want allowed with none remaining", d)
		}
		if n := c.ZCard(context.Background(), keys.Rate(p.Name, "hana")).Val(); n != 3 {
			t.Errorf("window holds %d units, want 3", n)
		}
	})
}

func TestACostLargerThanTheLimitIsInvalidWithoutTouchingRedis(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		counter := &commandCounter{}
		c.AddHook(counter)
		l := ratelimit.New(c, keyspace.Keyspace{Prefix: prefix})
		p := ratelimit.Policy{Name: "small", Limit: 3, Window: time.Second}
		for _, cost := range []int{4, 1000, 0, -1} {
			d, err := l.Allow(context.Background(), "bob", p, cost)
			if fault.CodeOf(err) != fault.Invalid || d.Allowed {
				t.Errorf("cost %d: %+v, %v; want an invalid-argument error", cost, d, err)
			}
			if fe, ok := fault.As(err); !ok || fe.Field != "cost" {
				t.Errorf("cost %d: error %v does not name the cost field", cost, err)
			}
		}
		if n := counter.n.Load(); n != 0 {
			t.Errorf("%d commands sent to Redis for invalid costs", n)
		}
		if d := allow(t, l, "bob", p, 3); !d.Allowed || d.Remaining != 0 {
			t.Errorf("cost equal to the limit: %+v, want allowed with none remaining", d)
		}
	})
}

func TestACostOfFiveCountsAsFiveUnits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		p := ratelimit.Policy{Name: "bulk", Limit: 12, Window: 10 * time.Second}
		key := keys.Rate(p.Name, "carol")
		d := allow(t, l, "carol", p, 5)
		if !d.Allowed || d.Remaining != 7 {
			t.Fatalf("first 5: %+v, want allowed with 7 remaining", d)
		}
		if n := c.ZCard(context.Background(), key).Val(); n != 5 {
			t.Errorf("window holds %d units after a cost of 5", n)
		}
		if d := allow(t, l, "carol", p, 5); !d.Allowed || d.Remaining != 2 {
			t.Fatalf("second 5: %+v, want allowed with 2 remaining", d)
		}
		d = allow(t, l, "carol", p, 5)
		if d.Allowed || d.Remaining != 2 || d.RetryAfter <= 0 || d.RetryAfter > p.Window {
			t.Fatalf("third 5: %+v, want denied with 2 remaining and a retry after in (0, %v]", d, p.Window)
		}
		if n := c.ZCard(context.Background(), key).Val(); n != 10 {
			t.Errorf("a denied call changed the window: %d units, want 10", n)
		}
		if d := allow(t, l, "carol", p, 2); !d.Allowed || d.Remaining != 0 {
			t.Fatalf("last 2: %+v, want allowed with none remaining", d)
		}
		if d := allow(t, l, "carol", p, 1); d.Allowed {
			t.Fatalf("one over: %+v, want denied", d)
		}
	})
}

func TestEveryLimiterKeyExpires(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		ctx := context.Background()
		p := ratelimit.Policy{Name: "ttl", Limit: 2, Window: 5 * time.Second}
		key := keys.Rate(p.Name, "dave")
		check := func(when string) {
			t.Helper()
			if ttl := c.PTTL(ctx, key).Val(); ttl <= 0 || ttl > p.Window+time.Millisecond {
				t.Errorf("PTTL %s = %v, want (0, %v]", when, ttl, p.Window+time.Millisecond)
			}
		}
		if d := allow(t, l, "dave", p, 1); !d.Allowed {
			t.Fatalf("first call denied: %+v", d)
		}
		check("after an allowed call")
		if d := allow(t, l, "dave", p, 1); !d.Allowed {
			t.Fatalf("second call denied: %+v", d)
		}
		check("after the last allowed call")
		// Take the expiry away: a denied call must put one back.
		if err := c.Persist(ctx, key).Err(); err != nil {
			t.Fatal(err)
		}
		if d := allow(t, l, "dave", p, 1); d.Allowed {
			t.Fatalf("third call allowed: %+v", d)
		}
		check("after a denied call")
		// A short window's key is gone soon after its last unit leaves.
		short := ratelimit.Policy{Name: "short", Limit: 5, Window: 100 * time.Millisecond}
		allow(t, l, "dave", short, 1)
		time.Sleep(250 * time.Millisecond)
		if n := c.Exists(ctx, keys.Rate(short.Name, "dave")).Val(); n != 0 {
			t.Errorf("the key of a 100ms window still exists 250ms later")
		}
	})
}

func TestSubjectsAndPoliciesDoNotShareState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLimiter(t, b)
		a := ratelimit.Policy{Name: "a", Limit: 2, Window: 10 * time.Second}
		bb := ratelimit.Policy{Name: "b", Limit: 2, Window: 10 * time.Second}
		allow(t, l, "erin", a, 2)
		if d := allow(t, l, "erin", a, 1); d.Allowed {
			t.Fatalf("erin under a after spending it all: %+v", d)
		}
		if d := allow(t, l, "frank", a, 1); !d.Allowed || d.Remaining != 1 {
			t.Errorf("frank under a: %+v, want allowed with 1 remaining", d)
		}
		if d := allow(t, l, "erin", bb, 1); !d.Allowed || d.Remaining != 1 {
			t.Errorf("erin under b: %+v, want allowed with 1 remaining", d)
		}
		// A subject whose name looks like another key's tail stays apart too.
		if d := allow(t, l, "erin:x", a, 1); !d.Allowed || d.Remaining != 1 {
			t.Errorf("erin:x under a: %+v, want allowed with 1 remaining", d)
		}
		ctx := context.Background()
		for key, want := range map[string]int64{
			keys.Rate("a", "erin"): 2, keys.Rate("a", "frank"): 1, keys.Rate("b", "erin"): 1, keys.Rate("a", "erin:x"): 1,
		} {
			if n := c.ZCard(ctx, key).Val(); n != want {
				t.Errorf("%s holds %d units, want %d", key, n, want)
			}
		}
	})
}

func TestAnUnreachableRedisIsAnErrorNeverAnAllowance(t *testing.T) {
	p := ratelimit.Policy{Name: "any", Limit: 10, Window: time.Second}
	client := func(t *testing.T, addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{
			Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second,
			PoolTimeout: time.Second, ContextTimeoutEnabled: true, MaxRetries: -1, DialerRetries: 1,
		})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	check := func(t *testing.T, l *ratelimit.Limiter) {
		for i := range 3 {
			d, err := l.Allow(context.Background(), "gina", p, 1)
			if fault.CodeOf(err) != fault.Unavailable || d.Allowed {
				t.Errorf("call %d: %+v, %v; want not allowed and an unavailable error", i, d, err)
			}
		}
	}
	t.Run("a closed port", func(t *testing.T) {
		check(t, ratelimit.New(client(t, fmt.Sprintf("127.0.0.1:%d", testredis.FreePort(t))), keyspace.Keyspace{Prefix: "mcp:"}))
	})
	t.Run("a stopped server", func(t *testing.T) {
		s := testredis.Start(t)
		l := ratelimit.New(client(t, s.Addr), keyspace.Keyspace{Prefix: "mcp:"})
		if d, err := l.Allow(context.Background(), "gina", p, 1); err != nil || !d.Allowed {
			t.Fatalf("while up: %+v, %v", d, err)
		}
		s.Stop()
		check(t, l)
	})
}

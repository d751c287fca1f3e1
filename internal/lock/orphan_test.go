package lock_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// An acquire that times out while Redis sleeps is still run by Redis when
// it wakes: the lock is taken with a token the server minted and nobody
// learnt. The server gives it back as soon as Redis answers again, rather
// than leave the resource held for its whole ttl.
func TestATimedOutAcquireLeavesNoOrphanedLockOnceRedisAnswersAgain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server and waits out a DEBUG SLEEP; not in the -short tier")
	}
	s := testredis.Start(t, "--enable-debug-command", "yes")
	keys := keyspace.Keyspace{Prefix: "mcp:"}
	l := lock.New(fragileClient(t, s.Addr), keys)
	t.Cleanup(l.Close)
	ctx := context.Background()
	// Open a pooled connection first, as a running server has.
	mustAcquire(t, l, "warm", time.Second, "")

	other := redis.NewClient(&redis.Options{Addr: s.Addr, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = other.Close() })
	if err := other.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	awake := make(chan time.Time, 1)
	go func() {
		if err := other.Do(ctx, "DEBUG", "SLEEP", "2.5").Err(); err != nil {
			t.Errorf("DEBUG SLEEP: %v", err)
		}
		awake <- time.Now()
	}()
	time.Sleep(100 * time.Millisecond) // DEBUG SLEEP is running

	actx, cancel := context.WithTimeout(ctx, time.Second)
	g, err := l.Acquire(actx, "ORPHAN", 600*time.Second, 0, "")
	cancel()
	if fault.CodeOf(err) != fault.Unavailable || g.Acquired {
		t.Fatalf("acquire while Redis sleeps = %+v, %v; want an unavailable error", g, err)
	}
	answered := <-awake

	// The fence shows that Redis has run the timed-out acquire (it does,
	// once awake): only then can the lock's absence mean it was freed.
	key, fence := keys.Lock("ORPHAN"), keys.LockFence("ORPHAN")
	deadline := answered.Add(10 * time.Second) // far below the 600 s ttl
	for other.Get(ctx, fence).Val() != "1" || other.Exists(ctx, key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s is still held %v after Redis answered again (pttl %v, fence %q): an orphaned lock",
				key, time.Since(answered).Round(time.Millisecond), other.PTTL(ctx, key).Val(), other.Get(ctx, fence).Val())
		}
		time.Sleep(5 * time.Millisecond)
	}
	freed := time.Since(answered)
	t.Logf("orphan freed %d ms after Redis answered", freed.Milliseconds())

	g = mustAcquire(t, l, "ORPHAN", time.Second, "next")
	if g.Fence != 2 {
		t.Errorf("the next grant has fence %d, want 2", g.Fence)
	}
}

package lock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkLockPairs prints acquire+release pairs/s at one pair in flight
// on the shared Redis: acquire.lua and release.lua run raw through
// go-redis with the keys and arguments Locker passes, and the same pair
// through Locker. Medians of interleaved rounds, this process's CPU per
// pair, and the ratio to raw:
//
//	go test -run XXX -bench LockPairs -benchtime=1x ./internal/lock/
func BenchmarkLockPairs(b *testing.B) {
	c, prefix := testredis.Shared(b)
	keys := keyspace.Keyspace{Prefix: prefix}
	l := New(c, keys)
	defer l.Close()
	ctx := context.Background()
	const resource, owner, ttl = "bench", "bench-agent", 30 * time.Second
	key := keys.Lock(resource)
	note, _ := json.Marshal(map[string]string{"event": "released", "resource": resource, "key": key})
	raw := func() error {
		token := newToken()
		res, err := acquireScript.Run(ctx, c, []string{key, keys.LockFence(resource), keys.LockOwner(resource)},
			token, ttl.Milliseconds(), owner, keys.LockEvents(), acquiredNotice(resource, key, owner)).Slice()
		if err != nil || res[0] != int64(1) {
			return fmt.Errorf("acquire: %v, %v", res, err)
		}
		res, err = releaseScript.Run(ctx, c, l.holderKeys(resource), token, keys.LockEvents(), string(note)).Slice()
		if err != nil || res[0] != int64(1) {
			return fmt.Errorf("release: %v, %v", res, err)
		}
		return nil
	}
	locker := func() error {
		g, err := l.Acquire(ctx, resource, ttl, 0, owner)
		if err != nil || !g.Acquired {
			return fmt.Errorf("acquire: %+v, %v", g, err)
		}
		if ok, err := l.Release(ctx, resource, g.Token); err != nil || !ok {
			return fmt.Errorf("release: %v, %v", ok, err)
		}
		return nil
	}
	for range b.N {
		testredis.Rounds(b, "acquire+release pairs", []*testredis.Series{
			{Name: "raw scripts, go-redis", Unit: "raw_pairs/s", Run: raw},
			{Name: "Locker", Unit: "locker_pairs/s", Run: locker},
		})
	}
}

// BenchmarkWakeAfterRelease prints how soon a waiting Acquire returns with
// the lock once the holder calls Release, the waiter's Locker on a client
// of its own (as two servers would be): median, min and max of 20 runs;
// next to the floor, a PUBLISH reaching a go-redis subscriber on another
// connection, from the PUBLISH's start, measured in the same runs.
//
//	go test -run XXX -bench WakeAfterRelease -benchtime=1x ./internal/lock/
func BenchmarkWakeAfterRelease(b *testing.B) {
	c, prefix := testredis.Shared(b)
	opts, err := redis.ParseURL(testredis.URL())
	if err != nil {
		b.Fatal(err)
	}
	c2 := redis.NewClient(opts)
	defer c2.Close()
	keys := keyspace.Keyspace{Prefix: prefix}
	holder, waiter := New(c, keys), New(c2, keys)
	defer holder.Close()
	defer waiter.Close()
	ctx := context.Background()
	ps := c2.Subscribe(ctx, prefix+"floor")
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	msgs := ps.Channel()

	wake := func() (time.Duration, error) {
		h, err := holder.Acquire(ctx, "wake", 10*time.Second, 0, "holder")
		if err != nil || !h.Acquired {
			return 0, fmt.Errorf("holder: %+v, %v", h, err)
		}
		type outcome struct {
			g   Grant
			err error
			at  time.Time
		}
		done := make(chan outcome, 1)
		go func() {
			g, err := waiter.Acquire(ctx, "wake", 10*time.Second, 5*time.Second, "waiter")
			done <- outcome{g, err, time.Now()}
		}()
		// Well inside the waiter's first 250ms poll sleep: only the
		// release notice wakes it soon.
		time.Sleep(20 * time.Millisecond)
		start := time.Now()
		if ok, err := holder.Release(ctx, "wake", h.Token); err != nil || !ok {
			return 0, fmt.Errorf("release: %v, %v", ok, err)
		}
		w := <-done
		if w.err != nil || !w.g.Acquired {
			return 0, fmt.Errorf("waiter: %+v, %v", w.g, w.err)
		}
		_, err = waiter.Release(ctx, "wake", w.g.Token)
		return w.at.Sub(start), err
	}
	floor := func() (time.Duration, error) {
		sent := time.Now()
		if err := c.Publish(ctx, prefix+"floor", "x").Err(); err != nil {
			return 0, err
		}
		select {
		case <-msgs:
			return time.Since(sent), nil
		case <-time.After(time.Second):
			return 0, errors.New("the message did not arrive within 1s")
		}
	}
	for range b.N {
		var woken, floors []time.Duration
		for i := -2; i < 20; i++ { // two untimed runs: the subscription opens on the first wait
			w, err := wake()
			if err != nil {
				b.Fatal(err)
			}
			f, err := floor()
			if err != nil {
				b.Fatal(err)
			}
			if i >= 0 {
				woken, floors = append(woken, w), append(floors, f)
			}
		}
		slices.Sort(woken)
		slices.Sort(floors)
		mw, mf := woken[len(woken)/2], floors[len(floors)/2]
		us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
		fmt.Printf("wake-up after release, 20 runs: median %.0f µs (%.0f–%.0f); PUBLISH to a subscriber: median %.0f µs (%.0f–%.0f); %.1fx\n",
			us(mw), us(woken[0]), us(woken[len(woken)-1]), us(mf), us(floors[0]), us(floors[len(floors)-1]), us(mw)/us(mf))
		b.ReportMetric(float64(mw.Microseconds()), "wake_µs")
		b.ReportMetric(float64(mf.Microseconds()), "publish_µs")
	}
}

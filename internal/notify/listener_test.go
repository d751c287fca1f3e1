package notify_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/notify"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

type heard struct {
	mu   sync.Mutex
	msgs []string
}

func (h *heard) handle(channel, payload string) {
	h.mu.Lock()
	h.msgs = append(h.msgs, channel+" "+payload)
	h.mu.Unlock()
}

func (h *heard) has(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m == msg {
			return true
		}
	}
	return false
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Start returns once Redis has confirmed every channel, so a notice sent
// right after it is heard, on each channel.
func TestAListenerHearsANoticeSentRightAfterStart(t *testing.T) {
	c, prefix := testredis.Shared(t)
	ctx := context.Background()
	h := &heard{}
	chans := []string{prefix + "events:a", prefix + "events:locks"}
	l := notify.NewListener(c, chans, false, h.handle, func() {}, quiet)
	defer l.Close()
	l.Start(ctx, 5*time.Second)
	if !l.Ready() {
		t.Fatal("Start returned before Redis confirmed the subscription")
	}
	for _, ch := range chans {
		if err := c.Publish(ctx, ch, "n1").Err(); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "both notices are heard", func() bool {
		return h.has(chans[0]+" n1") && h.has(chans[1]+" n1")
	})
	l.Start(ctx, time.Second) // again: a no-op
	if n, _ := c.PubSubNumSub(ctx, chans[0]).Result(); n[chans[0]] != 1 {
		t.Errorf("%d subscriptions to %s after a second Start; want 1", n[chans[0]], chans[0])
	}
}

// A subscription whose connection is cut is made again by itself, and the
// Listener says so, as notices sent meanwhile were lost.
func TestALostSubscriptionIsMadeAgainAndReported(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server of its own; not in the -short tier")
	}
	s := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer c.Close()
	ctx := context.Background()
	h := &heard{}
	var again atomic.Int32
	l := notify.NewListener(c, []string{"mcp:events:a", "mcp:events:b"}, false, h.handle, func() { again.Add(1) }, quiet)
	defer l.Close()
	l.Start(ctx, 5*time.Second)
	if err := c.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "the subscription is made again and reported", func() bool { return again.Load() > 0 })
	if err := c.Publish(ctx, "mcp:events:b", "after").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "a notice after the reconnection is heard", func() bool { return h.has("mcp:events:b after") })
	if n := again.Load(); n != 1 {
		t.Errorf("one reconnection reported %d times", n)
	}
}

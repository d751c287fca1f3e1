package lock_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Peek tells what a lock is — held or not, the holder's label, fencing
// token and remaining ttl — and never its token; it changes nothing.
func TestPeekTellsTheHolderFenceAndTTLButNeverTheToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()

		free, err := l.Peek(ctx, "pk")
		if err != nil {
			t.Fatal(err)
		}
		if free.Held || free.Fence != 0 || free.TTL != 0 || !free.ExpiresAt.IsZero() || free.Key != keys.Lock("pk") {
			t.Errorf("a lock never taken: %+v", free)
		}

		g := mustAcquire(t, l, "pk", time.Minute, "agent-7")
		held, err := l.Peek(ctx, "pk")
		if err != nil {
			t.Fatal(err)
		}
		if !held.Held || held.Owner != "agent-7" || held.Fence != g.Fence || held.TTL <= 50*time.Second || held.TTL > time.Minute {
			t.Errorf("a held lock: %+v (grant %+v)", held, g)
		}
		if d := held.ExpiresAt.Sub(g.ExpiresAt); d < -time.Second || d > time.Second {
			t.Errorf("expires at %v; the grant said %v", held.ExpiresAt, g.ExpiresAt)
		}
		if s := fmt.Sprintf("%+v", held); strings.Contains(s, g.Token) {
			t.Errorf("Peek shows the token: %s", s)
		}
		if v := c.Get(ctx, keys.Lock("pk")).Val(); v != g.Token {
			t.Errorf("Peek changed the lock: %q", v)
		}

		if ok, err := l.Release(ctx, "pk", g.Token); err != nil || !ok {
			t.Fatalf("release: %v %v", ok, err)
		}
		after, err := l.Peek(ctx, "pk")
		if err != nil {
			t.Fatal(err)
		}
		if after.Held || after.Owner != "" || after.Fence != g.Fence || after.TTL != 0 {
			t.Errorf("after the release: %+v; want free, with the last fencing token %d", after, g.Fence)
		}

		short := mustAcquire(t, l, "pk", 150*time.Millisecond, "")
		time.Sleep(300 * time.Millisecond)
		if s, err := l.Peek(ctx, "pk"); err != nil || s.Held || s.Fence != short.Fence {
			t.Errorf("after the ttl ran out: %+v %v", s, err)
		}

		if err := c.Set(ctx, keys.Lock("pk"), "set-by-hand", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if s, err := l.Peek(ctx, "pk"); err != nil || !s.Held || s.TTL >= 0 || !s.ExpiresAt.IsZero() {
			t.Errorf("a lock without an expiry: %+v %v", s, err)
		}
	})
}

// A grant is announced on the lock channel, with its fencing token (and
// the owner label, never the token); a refused acquire announces nothing.
func TestAGrantIsAnnouncedWithItsFencingToken(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		l, c, keys := newLocker(t, b)
		ctx := context.Background()
		ps := c.Subscribe(ctx, keys.LockEvents())
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		notices := ps.Channel()

		g := mustAcquire(t, l, "an", time.Minute, "agent-7")
		m := next(t, notices)
		var note map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &note); err != nil {
			t.Fatalf("notice %q: %v", m.Payload, err)
		}
		want := map[string]any{"event": "acquired", "resource": "an", "key": keys.Lock("an"), "owner": "agent-7", "fencing_token": float64(g.Fence)}
		if fmt.Sprint(note) != fmt.Sprint(want) {
			t.Errorf("grant notice %s; want %v", m.Payload, want)
		}
		if strings.Contains(m.Payload, g.Token) {
			t.Errorf("the grant notice holds the token: %s", m.Payload)
		}

		if other, err := l.Acquire(ctx, "an", time.Minute, 0, "agent-8"); err != nil || other.Acquired {
			t.Fatalf("a second acquire: %+v %v", other, err)
		}
		if ok, err := l.Release(ctx, "an", g.Token); err != nil || !ok {
			t.Fatalf("release: %v %v", ok, err)
		}
		if m := next(t, notices); !strings.Contains(m.Payload, `"event":"released"`) {
			t.Errorf("after a refused acquire and a release, the next notice is %s; want the release", m.Payload)
		}
		unnamed := mustAcquire(t, l, "an", time.Minute, "")
		if m := next(t, notices); m.Payload != fmt.Sprintf(`{"event":"acquired","resource":"an","key":%q,"fencing_token":%d}`, keys.Lock("an"), unnamed.Fence) {
			t.Errorf("grant notice without an owner label: %s", m.Payload)
		}
	})
}

func next(t *testing.T, ch <-chan *redis.Message) *redis.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no notice within 5s")
		return nil
	}
}

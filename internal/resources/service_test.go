package resources

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/notify"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// fakeLocks is a lock that is held until a set time, then free.
type fakeLocks struct {
	mu    sync.Mutex
	until time.Time
	fence int64
	peeks int
}

func (f *fakeLocks) Peek(_ context.Context, resource string) (lock.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peeks++
	if left := time.Until(f.until); left > 0 {
		return lock.State{Held: true, Fence: f.fence, TTL: left, ExpiresAt: f.until}, nil
	}
	return lock.State{Fence: f.fence}, nil
}

type noStreams struct{}

func (noStreams) Read(context.Context, stream.Query) (stream.Page, error) { return stream.Page{}, nil }
func (noStreams) Context(context.Context, string) (stream.WorkflowContext, error) {
	return stream.WorkflowContext{}, nil
}

// told records what one hub subscriber is sent.
type told struct {
	mu   sync.Mutex
	uris []string
}

func (t *told) send(label string) notify.Delivery {
	t.mu.Lock()
	t.uris = append(t.uris, label)
	t.mu.Unlock()
	return notify.Sent
}

func (t *told) has(uri string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Contains(t.uris, uri)
}

func (t *told) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.uris)
}

func within(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func service(t *testing.T, locks Locks) (*Service, keyspace.Keyspace) {
	keys := keyspace.Keyspace{Prefix: "mcp:"}
	s := New(&Reader{Streams: noStreams{}, Locks: locks, Keys: keys, Timeout: time.Second}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(s.Close)
	return s, keys
}

// A stream notice changes the stream's resource and, by its workflow_id,
// the workflow's events (and, for a CCWJ delta, its context); a lock
// notice changes the lock's; in either channel form, plain or sharded.
func TestANoticeChangesTheResourcesItNames(t *testing.T) {
	s, keys := service(t, &fakeLocks{})
	r := &told{}
	for _, uri := range []string{StreamURI("ccwj_update_stream"), StreamURI("audit_log_stream"), ContextURI("wf/1"), EventsURI("wf/1"),
		ContextURI("other"), LockURI("db/1")} {
		if err := s.hub.Subscribe("k", uri, uri, r.send); err != nil {
			t.Fatal(err)
		}
	}
	s.Notice(keys.ShardedEvents("ccwj_update_stream"), `{"stream":"ccwj_update_stream","id":"1-0","workflow_id":"wf/1","phase_id":"p","field":"f"}`)
	within(t, time.Second, "the delta's stream, context and events", func() bool {
		return r.has(StreamURI("ccwj_update_stream")) && r.has(ContextURI("wf/1")) && r.has(EventsURI("wf/1"))
	})
	s.Notice(keys.Events("audit_log_stream"), `{"stream":"audit_log_stream","id":"2-0"}`)
	s.Notice(keys.LockEvents(), `{"event":"released","resource":"db/1","key":"mcp:locks:db/1"}`)
	within(t, time.Second, "the audit stream and the lock", func() bool {
		return r.has(StreamURI("audit_log_stream")) && r.has(LockURI("db/1"))
	})
	s.Notice("mcp:events:elsewhere", `{"stream":"x"}`)
	s.Notice(keys.Events("audit_log_stream"), `not json`)
	time.Sleep(100 * time.Millisecond)
	if r.has(ContextURI("other")) {
		t.Errorf("a workflow no notice named was told: %v", r.uris)
	}
}

// A lock followed is read again when its holder's ttl runs out: the expiry,
// which announces nothing, is a change; a lock nobody follows is not read.
func TestALockFollowedIsReadAgainWhenItsTTLRunsOut(t *testing.T) {
	f := &fakeLocks{until: time.Now().Add(150 * time.Millisecond), fence: 7}
	s, _ := service(t, f)
	r := &told{}
	uri := LockURI("db1")
	if err := s.hub.Subscribe("k", uri, uri, r.send); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if r.count() != 0 {
		t.Fatalf("told before anything changed: %v", r.uris)
	}
	within(t, time.Second, "the expiry is told", func() bool { return r.has(uri) })
	f.mu.Lock()
	n := f.peeks
	f.mu.Unlock()
	if n > 3 {
		t.Errorf("%d reads of one lock for one expiry", n)
	}

	// Unfollowed, it is not read again, even when it is granted and expires.
	s.hub.Forget("k")
	f.mu.Lock()
	f.until, f.fence = time.Now().Add(50*time.Millisecond), 8
	before := f.peeks
	f.mu.Unlock()
	s.locks.poke("db1")
	time.Sleep(150 * time.Millisecond)
	f.mu.Lock()
	after := f.peeks
	f.mu.Unlock()
	if after != before {
		t.Errorf("a lock nobody follows was read %d times", after-before)
	}
}

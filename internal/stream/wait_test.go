package stream_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// waitEnv is a store whose client has a name of its own, so the test can
// find its waits' connections (named "<name>:wait") in CLIENT LIST.
type waitEnv struct {
	s     *stream.Store
	c     *redis.Client
	keys  keyspace.Keyspace
	name  string
	real  bool // CLIENT LIST works (not the embedded Redis)
	admin *redis.Client
}

func newWaitEnv(t *testing.T, b backend) *waitEnv {
	t.Helper()
	admin, prefix := b.open(t)
	e := &waitEnv{keys: keyspace.Keyspace{Prefix: prefix}, name: "t-wait-" + testredis.Random(4)}
	o := *admin.(*redis.Client).Options()
	o.ClientName = e.name
	o.PushNotificationProcessor = nil // the client's own, not admin's
	e.c = redis.NewClient(&o)
	t.Cleanup(func() { _ = e.c.Close() })
	e.admin = admin.(*redis.Client)
	e.real = b.name == "real redis"
	e.s = stream.NewStore(e.c, e.keys, func(string) int64 { return 1000 }, time.Hour)
	return e
}

func (e *waitEnv) key(name string) string { return e.keys.Stream(name) }

// add appends a workflow event for workflow wf and returns its id.
func (e *waitEnv) add(t *testing.T, wf string) string {
	t.Helper()
	a, err := e.s.Append(context.Background(), stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("workflow_id", wf, "phase", "p", "event_type", "e")})
	if err != nil {
		t.Fatal(err)
	}
	return a.ID
}

// waitConns counts the connections of e's waits Redis has, and how many
// of them are blocked in XREAD; -1, -1 on the embedded Redis.
func (e *waitEnv) waitConns(t *testing.T) (all, blocked int) {
	t.Helper()
	if !e.real {
		return -1, -1
	}
	list, err := e.admin.ClientList(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(list, "\n") {
		f := strings.Fields(line)
		if !slices.Contains(f, "name="+e.name+":wait") {
			continue
		}
		all++
		for _, kv := range f {
			if flags, ok := strings.CutPrefix(kv, "flags="); ok && strings.Contains(flags, "b") && slices.Contains(f, "cmd=xread") {
				blocked++
			}
		}
	}
	return all, blocked
}

// untilBlocked waits until n of e's waits are blocked in Redis (on the
// embedded Redis: until n reads wait, and a moment more).
func (e *waitEnv) untilBlocked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if e.real {
			if _, b := e.waitConns(t); b >= n {
				return
			}
		} else if e.s.Waiting() >= n {
			time.Sleep(50 * time.Millisecond)
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d waits never blocked (waiting: %d)", n, e.s.Waiting())
}

type readDone struct {
	page stream.Page
	err  error
	at   time.Time
}

// startRead runs s.Read on its own goroutine.
func startRead(ctx context.Context, s *stream.Store, q stream.Query) <-chan readDone {
	done := make(chan readDone, 1)
	go func() {
		p, err := s.Read(ctx, q)
		done <- readDone{p, err, time.Now()}
	}()
	return done
}

func waitQuery(q stream.Query) stream.Query {
	if q.Stream == "" {
		q.Stream = keyspace.WorkflowEvent
	}
	if q.Start == "" {
		q.Start = stream.StartNow
	}
	if q.End == "" {
		q.End = "+"
	}
	if q.Count == 0 {
		q.Count = 10
	}
	return q
}

func ids(p stream.Page) []string {
	var out []string
	for _, e := range p.Entries {
		out = append(out, e.ID)
	}
	return out
}

func TestAWaitingReadIsReleasedByAMatchingEntryNotByOneThatDoesNotMatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		e.add(t, "other") // before the read: $ leaves it out
		done := startRead(context.Background(), e.s, waitQuery(stream.Query{Block: 10 * time.Second, Match: map[string]string{"workflow_id": "wf"}}))
		e.untilBlocked(t, 1)
		e.add(t, "other")
		// The non-matching entry reached the wait (scanned counts it, below);
		// the read goes on waiting.
		select {
		case d := <-done:
			t.Fatalf("the read ended on an entry that does not match: %+v %v", d.page, d.err)
		case <-time.After(200 * time.Millisecond):
		}
		if e.real {
			if _, blocked := e.waitConns(t); blocked != 1 {
				t.Fatalf("after the non-matching entry, %d waits are blocked in Redis; want 1", blocked)
			}
		}
		want := e.add(t, "wf")
		d := <-done
		if d.err != nil {
			t.Fatal(d.err)
		}
		if got := ids(d.page); !slices.Equal(got, []string{want}) || d.page.TimedOut || d.page.Scanned != 2 {
			t.Fatalf("read = %v, timed out %v, scanned %d; want [%s], not timed out, 2 scanned (the entry that did not match, then the one that did)",
				got, d.page.TimedOut, d.page.Scanned, want)
		}
		if d.page.Next != "("+want {
			t.Errorf("next = %q, want (%s", d.page.Next, want)
		}
		if e.s.Waiting() != 0 {
			t.Errorf("%d reads still wait", e.s.Waiting())
		}
	})
}

func TestStartNowReadsOnlyTheEntriesAddedAfterTheReadBegan(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		ctx := context.Background()
		before := e.add(t, "wf")
		// Without a block, $ answers at once: nothing, and where to go on.
		p, err := e.s.Read(ctx, waitQuery(stream.Query{}))
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Entries) != 0 || p.TimedOut || p.Next != "("+before {
			t.Fatalf("$ without a block = %+v; want no entries and next (%s", p, before)
		}
		after := e.add(t, "wf")
		p, err = e.s.Read(ctx, waitQuery(stream.Query{Start: p.Next}))
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(p); !slices.Equal(got, []string{after}) {
			t.Fatalf("reading on from next = %v, want [%s]", got, after)
		}
		// With a block, $ waits for the next entry, whatever was there.
		done := startRead(ctx, e.s, waitQuery(stream.Query{Block: 10 * time.Second}))
		e.untilBlocked(t, 1)
		third := e.add(t, "wf")
		d := <-done
		if d.err != nil || !slices.Equal(ids(d.page), []string{third}) {
			t.Fatalf("$ with a block = %v %v; want [%s]", ids(d.page), d.err, third)
		}
		// On an empty stream too.
		q := waitQuery(stream.Query{Stream: keyspace.UserFeedback, Block: 10 * time.Second})
		done = startRead(ctx, e.s, q)
		e.untilBlocked(t, 1)
		fb, err := e.s.Append(ctx, stream.Append{Stream: keyspace.UserFeedback, Fields: fields("feedback", "good")})
		if err != nil {
			t.Fatal(err)
		}
		if d := <-done; d.err != nil || !slices.Equal(ids(d.page), []string{fb.ID}) {
			t.Fatalf("$ on an empty stream = %v %v; want [%s]", ids(d.page), d.err, fb.ID)
		}
	})
}

// A follower that starts at $ and passes next as start each time sees
// every entry written after it began, once, in order, while a writer
// appends at its own pace.
func TestFollowingAStreamWithNextMissesNoEntry(t *testing.T) {
	e := newWaitEnv(t, backends[0])
	ctx := context.Background()
	e.add(t, "old")
	first, err := e.s.Read(ctx, waitQuery(stream.Query{}))
	if err != nil {
		t.Fatal(err)
	}
	var written []string
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 60 {
			a, err := e.s.Append(ctx, stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("workflow_id", "wf")})
			if err != nil {
				t.Error(err)
				return
			}
			written = append(written, a.ID)
			if i%3 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	})
	var seen []string
	next := first.Next
	for len(seen) < 60 {
		p, err := e.s.Read(ctx, waitQuery(stream.Query{Start: next, Count: 7, Block: 5 * time.Second}))
		if err != nil {
			t.Fatal(err)
		}
		if p.TimedOut {
			t.Fatalf("timed out after %d of 60 entries", len(seen))
		}
		seen = append(seen, ids(p)...)
		next = p.Next
	}
	wg.Wait()
	if !slices.Equal(seen, written) {
		t.Fatalf("the follower saw %d entries %v;\nwritten %d %v", len(seen), seen, len(written), written)
	}
}

func TestAWaitThatRunsOutSaysItTimedOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		last := e.add(t, "other")
		p, err := e.s.Read(context.Background(), waitQuery(stream.Query{Start: "-", Block: 300 * time.Millisecond, Match: map[string]string{"workflow_id": "wf"}}))
		if err != nil {
			t.Fatal(err)
		}
		if !p.TimedOut || len(p.Entries) != 0 || p.Next != "("+last || p.Scanned != 1 {
			t.Fatalf("read = %+v; want timed out, no entries, next (%s, 1 scanned", p, last)
		}
	})
}

func TestAWaitEndsAtOnceWhenNoNewEntryCanBeInItsRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		ctx := context.Background()
		e.add(t, "other")
		// The end is an id long behind Redis's clock: no entry can come.
		p, err := e.s.Read(ctx, waitQuery(stream.Query{Start: "-", End: "1000", Block: 10 * time.Second, Match: map[string]string{"workflow_id": "wf"}}))
		if err != nil {
			t.Fatal(err)
		}
		if p.TimedOut || len(p.Entries) != 0 || p.Waited > 5*time.Second {
			t.Fatalf("read with a past end = %+v; want an answer at once, not timed out", p)
		}
		// An end in the future: an entry past it ends the wait.
		end, err := stream.Bound(time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano), true)
		if err != nil {
			t.Fatal(err)
		}
		done := startRead(ctx, e.s, waitQuery(stream.Query{End: end, Block: 10 * time.Second}))
		e.untilBlocked(t, 1)
		ms, _, _ := strings.Cut(end, "-")
		n, _ := strconv.ParseUint(ms, 10, 64)
		if err := e.c.XAdd(ctx, &redis.XAddArgs{Stream: e.key(keyspace.WorkflowEvent), ID: strconv.FormatUint(n+1, 10) + "-0", Values: []string{"workflow_id", "late"}}).Err(); err != nil {
			t.Fatal(err)
		}
		d := <-done
		if d.err != nil || len(d.page.Entries) != 0 || d.page.TimedOut {
			t.Fatalf("read past its end = %+v %v; want no entries, not timed out", d.page, d.err)
		}
	})
}

func TestACancelledWaitEndsAtOnceAndFreesItsConnection(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		// More cancelled waits, one after another, than may wait at once:
		// none is refused, so each gave its place back.
		rounds := 2*stream.MaxWaiters + 1
		if !e.real {
			rounds = 5
		}
		for i := range rounds {
			ctx, cancel := context.WithCancel(context.Background())
			done := startRead(ctx, e.s, waitQuery(stream.Query{Block: 20 * time.Second}))
			e.untilBlocked(t, 1)
			cancel()
			d := <-done
			if d.err == nil || fault.CodeOf(d.err) != fault.Unavailable || !strings.Contains(d.err.Error(), "cancel") {
				t.Fatalf("round %d: a cancelled wait answered %+v, %v; want a cancelled error", i, d.page, d.err)
			}
			if n := e.s.Waiting(); n != 0 {
				t.Fatalf("round %d: %d reads still wait after the cancel", i, n)
			}
		}
		// Redis holds none of the waits' connections.
		if e.real {
			deadline := time.Now().Add(2 * time.Second)
			all, _ := e.waitConns(t)
			for all > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				all, _ = e.waitConns(t)
			}
			if all != 0 {
				t.Fatalf("Redis still has %d connections of cancelled waits", all)
			}
		}
		// And the store still reads and waits.
		done := startRead(context.Background(), e.s, waitQuery(stream.Query{Block: 10 * time.Second}))
		e.untilBlocked(t, 1)
		want := e.add(t, "wf")
		if d := <-done; d.err != nil || !slices.Equal(ids(d.page), []string{want}) {
			t.Fatalf("a wait after the cancelled ones = %v %v", ids(d.page), d.err)
		}
	})
}

func TestWaitsBeyondMaxWaitersAreRefusedNamingBlockMS(t *testing.T) {
	e := newWaitEnv(t, backends[0])
	ctx, cancel := context.WithCancel(context.Background())
	var dones []<-chan readDone
	for range stream.MaxWaiters {
		dones = append(dones, startRead(ctx, e.s, waitQuery(stream.Query{Block: 20 * time.Second})))
	}
	e.untilBlocked(t, stream.MaxWaiters)
	_, err := e.s.Read(context.Background(), waitQuery(stream.Query{Block: 20 * time.Second}))
	fe, ok := fault.As(err)
	if !ok || fe.Code != fault.Unavailable || fe.Field != "block_ms" || !strings.Contains(fe.Message, strconv.Itoa(stream.MaxWaiters)) {
		t.Fatalf("wait %d = %v; want unavailable, naming block_ms and the bound", stream.MaxWaiters+1, err)
	}
	// A read that finds its entry waits for nothing, so it is not refused.
	id := e.add(t, "wf")
	if _, err := e.s.Read(context.Background(), waitQuery(stream.Query{Start: id, Block: time.Second})); err != nil {
		t.Fatalf("a read with block that needs no wait: %v", err)
	}
	cancel()
	for _, d := range dones {
		<-d
	}
}

func TestAWaitRunsBehindADurableClient(t *testing.T) {
	_, prefix := testredis.Shared(t)
	conn, err := rdb.Open(rdb.Options{URL: testredis.URL(), Timeout: 2 * time.Second, WaitReplicas: 1, WaitTimeout: 10 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	keys := keyspace.Keyspace{Prefix: prefix}
	s := stream.NewStore(conn.Writer, keys, func(string) int64 { return 1000 }, time.Hour)
	ctx := context.Background()
	done := startRead(ctx, s, waitQuery(stream.Query{Block: 10 * time.Second}))
	for s.Waiting() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	id, err := conn.Client.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(keyspace.WorkflowEvent), Values: []string{"workflow_id", "wf"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if d := <-done; d.err != nil || !slices.Equal(ids(d.page), []string{id}) {
		t.Fatalf("a wait on a store behind rdb.Durable = %v %v; want [%s]", ids(d.page), d.err, id)
	}
}

func TestReadsThatCannotWaitAreRefusedNamingTheField(t *testing.T) {
	e := newWaitEnv(t, backends[1])
	for _, c := range []struct {
		q     stream.Query
		field string
	}{
		{stream.Query{Start: "-", Reverse: true, Block: time.Second}, "block_ms"},
		{stream.Query{Reverse: true}, "start"},
	} {
		_, err := e.s.Read(context.Background(), waitQuery(c.q))
		if fe, ok := fault.As(err); !ok || fe.Code != fault.Invalid || fe.Field != c.field {
			t.Errorf("read %+v = %v; want invalid %s", c.q, err, c.field)
		}
	}
}

func TestBoundTakesIDsStartNowAndRFC3339Times(t *testing.T) {
	for _, c := range []struct {
		in       string
		end      bool
		want     string
		errorHas string
	}{
		{"-", false, "-", ""},
		{"(5-3", false, "(5-3", ""},
		{"$", false, "$", ""},
		{"$", true, "", "start only"},
		{"2026-01-02T15:04:05Z", false, "1767366245000-0", ""},
		{"2026-01-02T15:04:05Z", true, "1767366245000-18446744073709551615", ""},
		{"2026-01-02T15:04:05.1239Z", false, "1767366245123-0", ""},
		{"2026-01-02T17:04:05.123+02:00", true, "1767366245123-18446744073709551615", ""},
		{"1970-01-01T00:00:00Z", false, "0-0", ""},
		{"1969-12-31T23:59:59.999Z", false, "", "before 1970"},
		{"2026-13-45T00:00:00Z", false, "", "RFC 3339"},
		{"2026-01-02 15:04:05Z", false, "", "RFC 3339"},
		{"(2026-01-02T15:04:05Z", false, "", "( excludes a stream id"},
		{"yesterday", false, "", "is not a stream id"},
		{"abc", true, "", "is not a stream id"},
	} {
		got, err := stream.Bound(c.in, c.end)
		switch {
		case c.errorHas == "" && (err != nil || got != c.want):
			t.Errorf("Bound(%q, end %v) = %q, %v; want %q", c.in, c.end, got, err, c.want)
		case c.errorHas != "" && (err == nil || !strings.Contains(err.Error(), c.errorHas)):
			t.Errorf("Bound(%q, end %v) = %q, %v; want an error saying %q", c.in, c.end, got, err, c.errorHas)
		}
	}
}

// A read with a time range returns the entries of those milliseconds,
// both ends included.
func TestATimeRangeReadsTheEntriesOfItsMilliseconds(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		e := newWaitEnv(t, b)
		ctx := context.Background()
		key := e.key(keyspace.WorkflowEvent)
		for _, id := range []string{"1767366244999-5", "1767366245000-0", "1767366245000-7", "1767366246000-18446744073709551615", "1767366246001-0"} {
			if err := e.c.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: id, Values: []string{"workflow_id", "wf"}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		start, _ := stream.Bound("2026-01-02T15:04:05Z", false)
		end, _ := stream.Bound("2026-01-02T15:04:06Z", true)
		p, err := e.s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: start, End: end, Count: 10})
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"1767366245000-0", "1767366245000-7", "1767366246000-18446744073709551615"}; !slices.Equal(ids(p), want) {
			t.Fatalf("time range = %v, want %v", ids(p), want)
		}
	})
}

// The latency from a matching write to the waiting read's answer, over
// 100 waits each blocked in Redis before the write. Logged, not asserted:
// it depends on the machine.
func TestWakeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("a measurement; not in the -short tier")
	}
	e := newWaitEnv(t, backends[0])
	var lat []time.Duration
	for range 100 {
		done := startRead(context.Background(), e.s, waitQuery(stream.Query{Block: 10 * time.Second}))
		e.untilBlocked(t, 1)
		t0 := time.Now()
		e.add(t, "wf")
		d := <-done
		if d.err != nil || len(d.page.Entries) != 1 {
			t.Fatalf("wait = %+v %v", d.page, d.err)
		}
		lat = append(lat, d.at.Sub(t0))
	}
	slices.Sort(lat)
	t.Logf("write → woken read, 100 waits: p50 %v, p99 %v, max %v", lat[49], lat[98], lat[99])
}

package groups_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/groups"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// backends: the real Redis, and the embedded one the server runs by
// default, a product feature of its own.
var backends = []struct {
	name string
	open func(t *testing.T) (*redis.Client, string)
}{
	{"real redis", func(t *testing.T) (*redis.Client, string) { return testredis.Shared(t) }},
	{"embedded", func(t *testing.T) (*redis.Client, string) { return testredis.Embedded(t) }},
}

// slow keeps a test of a second or more out of the -short tier.
func slow(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a second or more; not in the -short tier")
	}
}

type fixture struct {
	t    *testing.T
	c    *redis.Client
	keys keyspace.Keyspace
	g    *groups.Groups
	key  string // the stream's key
}

const name = keyspace.WorkflowEvent

func forEachBackend(t *testing.T, f func(t *testing.T, fx *fixture)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, prefix := b.open(t)
			keys := keyspace.Keyspace{Prefix: prefix}
			fx := &fixture{t: t, c: c, keys: keys, key: keys.Stream(name)}
			fx.g = groups.New(c, keys, 3, func(string) int64 { return 1000 })
			f(t, fx)
		})
	}
}

// add appends entries with field n = 0, 1, … and returns their ids.
func (fx *fixture) add(n int, more ...string) []string {
	fx.t.Helper()
	ids := make([]string, n)
	for i := range n {
		values := append([]string{"n", fmt.Sprint(i)}, more...)
		id, err := fx.c.XAdd(context.Background(), &redis.XAddArgs{Stream: fx.key, Values: values}).Result()
		if err != nil {
			fx.t.Fatal(err)
		}
		ids[i] = id
	}
	return ids
}

func (fx *fixture) claim(group, consumer string, count int, idle time.Duration, from string) groups.Claimed {
	fx.t.Helper()
	out, err := fx.g.Claim(context.Background(), groups.Claim{Stream: name, Group: group, Consumer: consumer, Count: count, ReclaimIdle: idle, From: from})
	if err != nil {
		fx.t.Fatalf("claim: %v", err)
	}
	return out
}

func ids(es []groups.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

func TestAClaimMakesTheGroupAndHandsEachNewEntryOutOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		want := fx.add(5)
		first := fx.claim("g", "c1", 3, time.Minute, "0")
		if !first.Created || first.Key != fx.key || first.DeadLetterKey != fx.keys.DeadLetter(name) {
			t.Errorf("first claim = %+v", first)
		}
		second := fx.claim("g", "c2", 3, time.Minute, "0")
		third := fx.claim("g", "c1", 3, time.Minute, "0")
		if second.Created || len(third.Entries) != 0 {
			t.Errorf("second claim created the group again (%v), or the third got %v", second.Created, ids(third.Entries))
		}
		got := append(ids(first.Entries), ids(second.Entries)...)
		if !slices.Equal(got, want) {
			t.Errorf("handed out %v, want %v once each", got, want)
		}
		for _, e := range append(first.Entries, second.Entries...) {
			if e.Deliveries != 1 || e.From != "" || e.Values["n"] == "" {
				t.Errorf("new entry %+v", e)
			}
		}
	})
}

func TestAGroupMadeAtDollarStartsWithTheNextEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		fx.add(3)
		if out := fx.claim("g", "c", 10, time.Minute, "$"); !out.Created || len(out.Entries) != 0 {
			t.Errorf("claim at $ = %+v, want the group made and nothing handed out", out)
		}
		next := fx.add(1)
		// From is only where a new group starts.
		if out := fx.claim("g", "c", 10, time.Minute, "0"); !slices.Equal(ids(out.Entries), next) {
			t.Errorf("then %v, want %v", ids(out.Entries), next)
		}
	})
}

func TestAClaimOnAStreamNeverWrittenMakesItAndTheGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		if out := fx.claim("g", "c", 10, time.Minute, "$"); !out.Created || len(out.Entries) != 0 {
			t.Errorf("claim = %+v", out)
		}
		if n, err := fx.c.Exists(context.Background(), fx.key).Result(); err != nil || n != 1 {
			t.Errorf("the stream was not made (MKSTREAM): %d %v", n, err)
		}
	})
}

func TestAnEntryLeftIdleLongerThanTheReclaimTimeGoesToAnotherConsumer(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		want := fx.add(2)
		idle := 200 * time.Millisecond
		if got := fx.claim("g", "dead-worker", 10, idle, "0"); len(got.Entries) != 2 {
			t.Fatalf("first claim got %v", ids(got.Entries))
		}
		if got := fx.claim("g", "live", 10, idle, "0"); len(got.Entries) != 0 {
			t.Errorf("entries pending for less than the reclaim time were handed out again: %v", ids(got.Entries))
		}
		time.Sleep(idle + 50*time.Millisecond)
		extra := fx.add(1)
		got := fx.claim("g", "live", 10, idle, "0")
		if !slices.Equal(ids(got.Entries), append(want, extra...)) {
			t.Fatalf("reclaimed %v, want the two idle ones, then the new one %v", ids(got.Entries), extra)
		}
		for _, e := range got.Entries[:2] {
			if e.Deliveries != 2 || e.From != "dead-worker" || e.Values["n"] == "" {
				t.Errorf("reclaimed entry %+v", e)
			}
		}
		if e := got.Entries[2]; e.Deliveries != 1 || e.From != "" {
			t.Errorf("new entry %+v", e)
		}
		// The reclaim counts as a delivery to its new consumer: not
		// handed out again before it is idle once more.
		if again := fx.claim("g", "third", 10, idle, "0"); len(again.Entries) != 0 {
			t.Errorf("handed out again at once: %v", ids(again.Entries))
		}
	})
}

func TestAckSettlesEntriesAndNamesThoseThatWereNotPending(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		all := fx.add(3)
		fx.claim("g", "c", 2, time.Minute, "0")
		out, err := fx.g.Ack(ctx, name, "g", []string{all[0], all[2], all[1], all[0], "1-0"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out.Acked, []string{all[0], all[1]}) || !slices.Equal(out.NotPending, []string{all[2], "1-0"}) || out.Key != fx.key {
			t.Errorf("ack = %+v; want acked %v and not pending %v (never handed out) and 1-0", out, all[:2], all[2])
		}
		again, err := fx.g.Ack(ctx, name, "g", all[:2])
		if err != nil || len(again.Acked) != 0 || !slices.Equal(again.NotPending, all[:2]) {
			t.Errorf("second ack = %+v, %v; want both not pending", again, err)
		}
		if p, _ := fx.c.XPending(ctx, fx.key, "g").Result(); p.Count != 0 {
			t.Errorf("%d still pending", p.Count)
		}
		_, err = fx.g.Ack(ctx, name, "nope", all[:1])
		if e, ok := fault.As(err); !ok || e.Code != fault.NotFound || e.Field != "group" || !strings.Contains(e.Message, `"nope"`) {
			t.Errorf("ack in a missing group: %v", err)
		}
		_, err = fx.g.Ack(ctx, keyspace.UserFeedback, "g", all[:1])
		if fault.CodeOf(err) != fault.NotFound {
			t.Errorf("ack in a stream never written: %v", err)
		}
	})
}

// poison claims the entry over and over without acknowledging it, letting
// it go idle each time, until a claim moves it to the dead letters.
func (fx *fixture) poison(idle time.Duration) (handed int, dead groups.DeadLetter) {
	fx.t.Helper()
	for range 10 {
		out := fx.claim("g", fmt.Sprintf("w%d", handed+1), 10, idle, "0")
		handed += len(out.Entries)
		if len(out.DeadLetters) > 0 {
			if len(out.Entries) != 0 || len(out.DeadLetters) != 1 {
				fx.t.Fatalf("the moving claim = %+v", out)
			}
			return handed, out.DeadLetters[0]
		}
		time.Sleep(idle + 20*time.Millisecond)
	}
	fx.t.Fatalf("not moved after %d deliveries", handed)
	return
}

func TestAnEntryHandedOutMaxDeliveriesTimesMovesToTheDeadLettersAcknowledgedAndAnnounced(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		sub := fx.c.Subscribe(ctx, fx.keys.DeadLetterEvents(name))
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		// An own field named like a dead letter's is kept under another name.
		id := fx.add(1, "group", "own", "payload", `{"a":1}`)[0]
		handed, dead := fx.poison(50 * time.Millisecond)
		if handed != 3 {
			t.Errorf("handed out %d times, want max deliveries (3)", handed)
		}
		if dead.ID != id || dead.Deliveries != 3 || dead.Consumer != "w3" || dead.DeadLetterID == "" {
			t.Errorf("dead letter %+v", dead)
		}
		got, err := fx.c.XRange(ctx, fx.keys.DeadLetter(name), "-", "+").Result()
		if err != nil || len(got) != 1 || got[0].ID != dead.DeadLetterID {
			t.Fatalf("dead letters = %v, %v", got, err)
		}
		v := got[0].Values
		want := map[string]any{"original_id": id, "group": "g", "consumer": "w3", "delivery_count": "3",
			"n": "0", "original_group": "own", "payload": `{"a":1}`}
		for k, w := range want {
			if v[k] != w {
				t.Errorf("dead letter field %s = %v, want %v (all: %v)", k, v[k], w, v)
			}
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(v["dead_lettered_at"])); err != nil {
			t.Errorf("dead_lettered_at = %v", v["dead_lettered_at"])
		}
		if p, _ := fx.c.XPending(ctx, fx.key, "g").Result(); p.Count != 0 {
			t.Errorf("the dead letter is still pending (%d)", p.Count)
		}
		if out := fx.claim("g", "w9", 10, 0, "0"); len(out.Entries)+len(out.DeadLetters) != 0 {
			t.Errorf("handed out again: %+v", out)
		}
		// The entry itself stays in its stream.
		if n := fx.c.XLen(ctx, fx.key).Val(); n != 1 {
			t.Errorf("stream length %d", n)
		}
		msg, err := sub.ReceiveTimeout(ctx, 2*time.Second)
		if err != nil {
			t.Fatalf("no notice: %v", err)
		}
		var note map[string]any
		if m, ok := msg.(*redis.Message); !ok || json.Unmarshal([]byte(m.Payload), &note) != nil {
			t.Fatalf("notice %v", msg)
		}
		for k, w := range map[string]any{"stream": name, "key": fx.keys.DeadLetter(name), "id": dead.DeadLetterID,
			"original_id": id, "group": "g", "consumer": "w3", "delivery_count": 3.0} {
			if note[k] != w {
				t.Errorf("notice %s = %v, want %v (%v)", k, note[k], w, note)
			}
		}
	})
}

func TestAPendingEntryTrimmedFromItsStreamIsNeitherHandedOutNorDeadLettered(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		fx.add(1)
		fx.claim("g", "w1", 10, time.Millisecond, "0")
		fx.claim("g", "w2", 10, 0, "0")
		fx.claim("g", "w3", 10, 0, "0") // three deliveries
		if err := fx.c.XTrimMaxLen(ctx, fx.key, 0).Err(); err != nil {
			t.Fatal(err)
		}
		out := fx.claim("g", "w4", 10, 0, "0")
		if len(out.Entries) != 0 || len(out.DeadLetters) != 1 || out.DeadLetters[0].DeadLetterID != "" {
			t.Errorf("claim = %+v; want only an acknowledgement", out)
		}
		if n := fx.c.XLen(ctx, fx.keys.DeadLetter(name)).Val(); n != 0 {
			t.Errorf("%d dead letters", n)
		}
		if p, _ := fx.c.XPending(ctx, fx.key, "g").Result(); p.Count != 0 {
			t.Errorf("%d still pending", p.Count)
		}
	})
}

func TestABlockingClaimWakesWhenAnEntryComes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		fx.claim("g", "c", 10, time.Minute, "$")
		added := make(chan string, 1)
		go func() {
			time.Sleep(150 * time.Millisecond)
			added <- fx.add(1)[0]
		}()
		start := time.Now()
		out, err := fx.g.Claim(context.Background(), groups.Claim{Stream: name, Group: "g", Consumer: "c", Count: 10, ReclaimIdle: time.Minute, From: "$", Block: 5 * time.Second})
		took := time.Since(start)
		if id := <-added; err != nil || len(out.Entries) != 1 || out.Entries[0].ID != id {
			t.Fatalf("claim = %+v, %v", out, err)
		}
		if took > 4*time.Second || out.Waited < 100*time.Millisecond {
			t.Errorf("woke after %v (waited %v); the entry came after 150ms", took, out.Waited)
		}
	})
}

func TestABlockingClaimThatSeesNothingAnswersEmptyAfterItsBlock(t *testing.T) {
	slow(t)
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		start := time.Now()
		out, err := fx.g.Claim(context.Background(), groups.Claim{Stream: name, Group: "g", Consumer: "c", Count: 10, ReclaimIdle: time.Minute, From: "$", Block: 1300 * time.Millisecond})
		took := time.Since(start)
		if err != nil || len(out.Entries) != 0 || !out.Created {
			t.Fatalf("claim = %+v, %v", out, err)
		}
		// It waits out its block (less a clock tick), and not the next
		// 1 s slice after it.
		if took < 1250*time.Millisecond || took > 5*time.Second {
			t.Errorf("answered after %v, want after its 1.3s block", took)
		}
	})
}

func TestCancellingABlockingClaimEndsItAtOnceAndClaimsNothing(t *testing.T) {
	slow(t)
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := fx.g.Claim(ctx, groups.Claim{Stream: name, Group: "g", Consumer: "gone", Count: 10, ReclaimIdle: time.Minute, From: "$", Block: 10 * time.Second})
		// Far from both the fix (at once) and the fault (the 10 s block).
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("a cancelled claim answered after %v", took)
		}
		if fault.CodeOf(err) != fault.Unavailable || !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled claim: %v", err)
		}
		// The read it left behind only read: an entry that comes now is
		// there for the next consumer.
		id := fx.add(1)
		time.Sleep(1100 * time.Millisecond)
		if out := fx.claim("g", "next", 10, time.Minute, "$"); !slices.Equal(ids(out.Entries), id) {
			t.Errorf("the next consumer got %v, want %v", ids(out.Entries), id)
		}
	})
}

// Waiting claims hold at most their share of the pool: with four
// connections and two waits, forty waiting claims leave room for other
// calls, and every one of them answers.
func TestWaitingClaimsLeaveThePoolToOtherCalls(t *testing.T) {
	slow(t)
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		opts := *fx.c.Options()
		opts.PoolSize, opts.PoolTimeout = 4, 500*time.Millisecond
		small := redis.NewClient(&opts)
		defer small.Close()
		g := groups.New(small, fx.keys, 3, func(string) int64 { return 1000 }, groups.WithWaits(2))
		fx.claim("g", "c", 10, time.Minute, "$")
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				_, err := g.Claim(context.Background(), groups.Claim{Stream: name, Group: "g", Consumer: fmt.Sprint("c", i), Count: 1, ReclaimIdle: time.Minute, From: "$", Block: 1500 * time.Millisecond})
				errs <- err
			})
		}
		time.Sleep(300 * time.Millisecond)
		for range 20 {
			ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
			if err := small.Ping(ctx).Err(); err != nil {
				t.Errorf("a call beside waiting claims: %v", err)
			}
			cancel()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("a waiting claim: %v", err)
			}
		}
	})
}

func TestInfoDescribesTheStreamItsDeadLettersAndEachGroup(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		if info, err := fx.g.Info(ctx, name); err != nil || info.Length != 0 || len(info.Groups) != 0 || info.Key != fx.key {
			t.Errorf("info of a stream never written = %+v, %v", info, err)
		}
		all := fx.add(5)
		time.Sleep(120 * time.Millisecond)
		got := fx.claim("busy", "a", 2, time.Minute, "0")
		fx.claim("busy", "b", 1, time.Minute, "0")
		if _, err := fx.g.Ack(ctx, name, "busy", ids(got.Entries)[1:]); err != nil {
			t.Fatal(err)
		}
		fx.claim("idle", "x", 1, time.Minute, "$")
		if err := fx.c.XAdd(ctx, &redis.XAddArgs{Stream: fx.keys.DeadLetter(name), Values: []string{"original_id", "1-0"}}).Err(); err != nil {
			t.Fatal(err)
		}
		info, err := fx.g.Info(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Length != 5 || info.FirstID != all[0] || info.LastID != all[4] || info.NewestAge < 100*time.Millisecond || info.NewestAge > 5*time.Second {
			t.Errorf("stream = %+v", info)
		}
		if info.DeadLetterKey != fx.keys.DeadLetter(name) || info.DeadLetters != 1 || info.GroupsTotal != 2 || len(info.Groups) != 2 {
			t.Fatalf("info = %+v", info)
		}
		busy, idle := info.Groups[0], info.Groups[1]
		if busy.Name != "busy" || busy.Consumers != 2 || busy.Pending != 2 || !busy.LagKnown || busy.Lag != 2 || busy.LastDeliveredID != all[2] {
			t.Errorf("busy = %+v", busy)
		}
		if busy.OldestPendingID != all[0] || busy.OldestPendingAge < 100*time.Millisecond || busy.OldestPendingIdle > 5*time.Second {
			t.Errorf("busy's oldest pending = %+v", busy)
		}
		if !slices.Equal(busy.PendingByConsumer, []groups.ConsumerPending{{Consumer: "a", Pending: 1}, {Consumer: "b", Pending: 1}}) {
			t.Errorf("busy's pending by consumer = %+v", busy.PendingByConsumer)
		}
		if idle.Name != "idle" || idle.Pending != 0 || !idle.LagKnown || idle.Lag != 0 || idle.OldestPendingID != "" || len(idle.PendingByConsumer) != 0 {
			t.Errorf("idle = %+v", idle)
		}
	})
}

// A group made at an id of its own has a lag Redis cannot tell
// (entries-read is unknown): it is counted.
func TestInfoCountsALagRedisCannotTell(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		all := fx.add(4)
		if err := fx.c.XGroupCreate(ctx, fx.key, "mid", all[1]).Err(); err != nil {
			t.Fatal(err)
		}
		info, err := fx.g.Info(ctx, name)
		if err != nil || len(info.Groups) != 1 {
			t.Fatalf("info = %+v, %v", info, err)
		}
		if g := info.Groups[0]; !g.LagKnown || g.Lag != 2 {
			t.Errorf("lag = %d (known %v), want 2", g.Lag, g.LagKnown)
		}
	})
}

func TestAKeyOfAnotherTypeIsAnErrorAndNothingIsWritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		if err := fx.c.Set(ctx, fx.keys.DeadLetter(name), "x", 0).Err(); err != nil {
			t.Fatal(err)
		}
		fx.add(1)
		_, err := fx.g.Claim(ctx, groups.Claim{Stream: name, Group: "g", Consumer: "c", Count: 1, ReclaimIdle: time.Minute, From: "0"})
		if err == nil || !strings.Contains(err.Error(), "not a stream") {
			t.Errorf("claim = %v", err)
		}
		if g, _ := fx.c.XInfoGroups(ctx, fx.key).Result(); len(g) != 0 {
			t.Errorf("the group was made: %v", g)
		}
	})
}

func TestAnUnreachableRedisIsUnavailable(t *testing.T) {
	slow(t)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", testredis.FreePort(t)), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	g := groups.New(c, keyspace.Keyspace{Prefix: "mcp:"}, 3, func(string) int64 { return 1 })
	ctx := context.Background()
	_, err := g.Claim(ctx, groups.Claim{Stream: name, Group: "g", Consumer: "c", Count: 1, ReclaimIdle: time.Minute, From: "$"})
	if fault.CodeOf(err) != fault.Unavailable {
		t.Errorf("claim: %v", err)
	}
	if _, err := g.Ack(ctx, name, "g", []string{"1-0"}); fault.CodeOf(err) != fault.Unavailable {
		t.Errorf("ack: %v", err)
	}
	if _, err := g.Info(ctx, name); fault.CodeOf(err) != fault.Unavailable {
		t.Errorf("info: %v", err)
	}
}

// A right the server's Redis user lacks fails the claim before it writes
// anything: not even the group is made.
func TestAClaimTheUserMayNotCompleteWritesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server; not in the -short tier")
	}
	s := testredis.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer admin.Close()
	ctx := context.Background()
	rule := "on >pass resetkeys ~mcp:* resetchannels &mcp:events:locks -@all +@read +@write +@scripting +@pubsub +@connection +time -@dangerous"
	args := []any{"ACL", "SETUSER", "agent", "reset"}
	for _, w := range strings.Fields(rule) {
		args = append(args, w)
	}
	if err := admin.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	user := redis.NewClient(&redis.Options{Addr: s.Addr, Username: "agent", Password: "pass"})
	defer user.Close()
	keys := keyspace.Keyspace{Prefix: "mcp:"}
	if err := admin.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(name), Values: []string{"n", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	g := groups.New(user, keys, 3, func(string) int64 { return 1000 })
	_, err := g.Claim(ctx, groups.Claim{Stream: name, Group: "g", Consumer: "c", Count: 1, ReclaimIdle: time.Minute, From: "0"})
	if fault.CodeOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "PUBLISH on channel "+keys.DeadLetterEvents(name)) {
		t.Errorf("claim: %v", err)
	}
	if gs, _ := admin.XInfoGroups(ctx, keys.Stream(name)).Result(); len(gs) != 0 {
		t.Errorf("the group was made: %v", gs)
	}
}

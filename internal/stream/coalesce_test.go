package stream_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// scripts counts the script calls Redis ran, by script: "append" and
// "batch" (a NOSCRIPT answer is not a run).
type scripts struct {
	mu sync.Mutex
	n  map[string]int
}

func countScripts(c interface{ AddHook(redis.Hook) }) *scripts {
	s := &scripts{n: map[string]int{}}
	c.AddHook(s)
	return s
}

func (s *scripts) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *scripts) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		s.count(cmd, err)
		return err
	}
}

func (s *scripts) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, c := range cmds {
			s.count(c, c.Err())
		}
		return err
	}
}

func (s *scripts) count(cmd redis.Cmder, err error) {
	args := cmd.Args()
	if len(args) < 2 || redis.HasErrorPrefix(err, "NOSCRIPT") {
		return
	}
	sha, _ := args[1].(string)
	if cmd.Name() == "eval" {
		h := sha1.Sum([]byte(sha))
		sha = hex.EncodeToString(h[:])
	} else if cmd.Name() != "evalsha" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch sha {
	case stream.AppendSHA:
		s.n["append"]++
	case stream.AppendBatchSHA:
		s.n["batch"]++
	}
}

// take returns the counts so far and starts again.
func (s *scripts) take() (appends, batches int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	appends, batches = s.n["append"], s.n["batch"]
	s.n = map[string]int{}
	return appends, batches
}

type answer struct {
	out stream.Appended
	err error
}

// oneTurn appends as from one goroutine each while the chain is held, so
// that they are sent as one turn, and returns each one's answer.
func oneTurn(t *testing.T, s *stream.Store, as []stream.Append) []answer {
	t.Helper()
	queued, release := stream.HoldChainForTest(s, keyspace.AuditLog)
	got := make([]answer, len(as))
	var wg sync.WaitGroup
	for i, a := range as {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := s.Append(context.Background(), a)
			got[i] = answer{out, err}
		}()
		// One at a time, so the turn holds them in the order given.
		for deadline := time.Now().Add(5 * time.Second); queued() < i+1; {
			if time.Now().After(deadline) {
				t.Fatalf("append %d never queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	release()
	wg.Wait()
	return got
}

// A turn of single appends to a chained stream goes to Redis as one
// append_batch.lua call, and each caller is answered what its own
// append.lua call would have answered: new entries linked in turn order,
// a retry of an id Redis holds a duplicate of the first entry, unlinked.
// The links of a turn are made before Redis is asked, so a retry Redis
// finds to be a duplicate costs its turn one call more, relinked.
func TestATurnOfSingleAppendsIsOneScriptCallAndEachIsAnsweredAsAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		links := 0
		s := chainedStore(c, keys, &links)
		ctx := context.Background()
		first, err := s.Append(ctx, auditEntry("A1", "ok"))
		if err != nil {
			t.Fatal(err)
		}
		n := countScripts(c.(*redis.Client))
		got := oneTurn(t, s, []stream.Append{auditEntry("A2", "ok"), auditEntry("", "ok"), auditEntry("A3", "error")})
		if appends, batches := n.take(); appends != 0 || batches != 1 {
			t.Errorf("the turn ran %d append.lua and %d append_batch.lua calls, want 0 and 1", appends, batches)
		}
		again := oneTurn(t, s, []stream.Append{auditEntry("A4", "ok"), auditEntry("A1", "ok")})
		if appends, batches := n.take(); appends != 0 || batches != 2 {
			t.Errorf("the turn with a retry ran %d append.lua and %d append_batch.lua calls, want 0 and 2", appends, batches)
		}
		got = append(got, again...)
		for i, g := range got {
			if g.err != nil {
				t.Fatalf("append %d: %v", i, g.err)
			}
		}
		if d := got[4].out; !d.Duplicate || d.ID != first.ID || d.Timestamp != "T-A1" || d.Hash != "" {
			t.Errorf("the retry of A1 = %+v, want a duplicate of %s stamped T-A1, unlinked", d, first.ID)
		}
		entries, err := c.XRange(ctx, keys.Stream(keyspace.AuditLog), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 5 {
			t.Fatalf("the stream holds %d entries, want 5", len(entries))
		}
		for i, g := range got[:4] {
			e := entries[i+1]
			if g.out.Duplicate || g.out.ID != e.ID || g.out.Key != keys.Stream(keyspace.AuditLog) || g.out.Hash == "" || g.out.Hash != e.Values["hash"] {
				t.Errorf("append %d = %+v, want entry %s with its hash %v", i, g.out, e.ID, e.Values["hash"])
			}
		}
		if links != 5 {
			t.Errorf("%d entries were told linked, want 5", links)
		}
		verifyChain(t, c, keys, 5)
	})
}

// An id used before for another payload is a conflict for that entry
// alone, and a wrong-typed idempotency record an error for its entry
// alone: the turn's other entries are written.
func TestAConflictOrAWrongTypedKeyInATurnFailsThatEntryAlone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s := chainedStore(c, keys, nil)
		ctx := context.Background()
		if _, err := s.Append(ctx, auditEntry("C1", "ok")); err != nil {
			t.Fatal(err)
		}
		if err := c.HSet(ctx, keys.Idempotency(keyspace.AuditLog, "W2"), "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		got := oneTurn(t, s, []stream.Append{auditEntry("C2", "ok"), auditEntry("C1", "error"), auditEntry("W2", "ok"), auditEntry("", "ok")})
		if e, ok := fault.As(got[1].err); !ok || e.Code != fault.Conflict || e.Field != "log_id" || !strings.Contains(e.Message, `"C1" was already used`) {
			t.Errorf("the reused C1 = %+v, %v; want a conflict naming log_id", got[1].out, got[1].err)
		}
		if err := got[2].err; fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), keys.Idempotency(keyspace.AuditLog, "W2")+" holds a hash") {
			t.Errorf("W2 = %+v, %v; want an internal error saying its record holds a hash", got[2].out, err)
		}
		for _, i := range []int{0, 3} {
			if g := got[i]; g.err != nil || g.out.Duplicate || g.out.Hash == "" {
				t.Errorf("append %d = %+v, %v; want it written", i, g.out, g.err)
			}
		}
		verifyChain(t, c, keys, 3)
	})
}

// Another process moving the chain head before the turn is sent makes
// the turn relink onto the new head and go again; a duplicate that Redis
// finds is then sent unlinked.
func TestATurnRelinksOntoAHeadAnotherProcessMoved(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s, other := chainedStore(c, keys, nil), chainedStore(c, keys, nil)
		ctx := context.Background()
		if _, err := s.Append(ctx, auditEntry("H0", "ok")); err != nil {
			t.Fatal(err)
		}
		moved, err := other.Append(ctx, auditEntry("H1", "ok"))
		if err != nil {
			t.Fatal(err)
		}
		n := countScripts(c.(*redis.Client))
		got := oneTurn(t, s, []stream.Append{auditEntry("E1", "ok"), auditEntry("H1", "ok"), auditEntry("", "ok")})
		if _, batches := n.take(); batches != 2 {
			t.Errorf("the turn ran %d append_batch.lua calls, want 2 (the stale head, then relinked)", batches)
		}
		for i, g := range got {
			if g.err != nil {
				t.Fatalf("append %d: %v", i, g.err)
			}
		}
		if d := got[1].out; !d.Duplicate || d.ID != moved.ID {
			t.Errorf("the retry of H1 = %+v, want a duplicate of %s", d, moved.ID)
		}
		verifyChain(t, c, keys, 4)
	})
}

// Two appends of one turn with the same id go as a pipeline: the second
// is a duplicate of the first, or, with another payload, a conflict.
func TestOneIDTwiceInATurnIsADuplicateOrAConflictOfTheFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s := chainedStore(c, keys, nil)
		got := oneTurn(t, s, []stream.Append{auditEntry("D1", "ok"), auditEntry("D1", "ok"), auditEntry("D1", "error")})
		if got[0].err != nil || got[0].out.Duplicate {
			t.Fatalf("the first D1 = %+v, %v; want it written", got[0].out, got[0].err)
		}
		if d := got[1]; d.err != nil || !d.out.Duplicate || d.out.ID != got[0].out.ID {
			t.Errorf("the second D1 = %+v, %v; want a duplicate of %s", d.out, d.err, got[0].out.ID)
		}
		if fault.CodeOf(got[2].err) != fault.Conflict {
			t.Errorf("the third D1 = %+v, %v; want a conflict", got[2].out, got[2].err)
		}
		verifyChain(t, c, keys, 1)
	})
}

// On Redis Cluster a turn is one append_batch.lua call too: the stream,
// its chain head and its entries' idempotency records share a slot.
func TestATurnOnRedisClusterIsOneScriptCallAndTheChainVerifies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; not in the -short tier")
	}
	cl := testredis.StartCluster(t, testredis.ClusterOptions{ReplicasPerMaster: -1})
	c := cl.Client(t)
	keys := keyspace.Keyspace{Prefix: "mcp:"}
	s := chainedStore(c, keys, nil)
	if _, err := s.Append(context.Background(), auditEntry("K1", "ok")); err != nil {
		t.Fatal(err)
	}
	n := countScripts(c)
	got := oneTurn(t, s, []stream.Append{auditEntry("K2", "ok"), auditEntry("", "ok"), auditEntry("K3", "ok"), auditEntry("K1", "ok")})
	for i, g := range got {
		if g.err != nil {
			t.Fatalf("append %d: %v", i, g.err)
		}
	}
	if !got[3].out.Duplicate {
		t.Errorf("the retry of K1 = %+v, want a duplicate", got[3].out)
	}
	// The retry of K1 is found a duplicate, so the turn is relinked once.
	if appends, batches := n.take(); appends != 0 || batches != 2 {
		t.Errorf("the turn ran %d append.lua and %d append_batch.lua calls, want 0 and 2", appends, batches)
	}
	verifyChain(t, c, keys, 4)
}

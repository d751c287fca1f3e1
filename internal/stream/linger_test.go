package stream_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// Entries enqueued on a chained stream (the server's call records) wait
// for each other before they are sent, so they go to Redis as one
// append_batch.lua call; an append that is waited for, arriving meanwhile,
// takes them along in its own turn, after them, and a full turn is sent
// at once. Each enqueued entry's outcome reaches its callback. The linger
// is an hour here, so nothing but the waited-for append or a full turn can
// have sent them.
func TestEnqueuedEntriesWaitForEachOtherAndAWaitedAppendTakesThemAlong(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s := chainedStore(c, keys, nil)
		stream.SetLingerForTest(s, time.Hour)
		ctx := context.Background()
		key := keys.Stream(keyspace.AuditLog)
		n := countScripts(c.(*redis.Client))

		var mu sync.Mutex
		got := map[string]stream.Appended{}
		var failed []error
		then := func(id string) func(stream.Appended, error) {
			return func(out stream.Appended, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					failed = append(failed, fmt.Errorf("%s: %w", id, err))
				}
				got[id] = out
			}
		}
		outcomes := func() int {
			mu.Lock()
			defer mu.Unlock()
			return len(got)
		}

		for i := range 3 {
			id := fmt.Sprintf("R%d", i)
			s.Enqueue(ctx, auditEntry(id, "ok"), then(id))
		}
		if l, err := c.XLen(ctx, key).Result(); err != nil || l != 0 || outcomes() != 0 {
			t.Fatalf("while lingering the stream holds %d entries (%v) and %d outcomes came, want none", l, err, outcomes())
		}
		w, err := s.Append(ctx, auditEntry("W", "ok"))
		if err != nil {
			t.Fatal(err)
		}
		if appends, batches := n.take(); appends != 0 || batches != 1 {
			t.Errorf("the turn ran %d append.lua and %d append_batch.lua calls, want 0 and 1", appends, batches)
		}
		if outcomes() != 3 {
			t.Fatalf("%d outcomes came with the waited-for append, want 3", outcomes())
		}
		entries, err := c.XRange(ctx, key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var order []any
		for _, e := range entries {
			order = append(order, e.Values["log_id"])
		}
		if fmt.Sprint(order) != "[R0 R1 R2 W]" || entries[3].ID != w.ID {
			t.Errorf("the stream holds %v (last %s), want [R0 R1 R2 W] with W's entry %s last", order, entries[len(entries)-1].ID, w.ID)
		}
		for i, e := range entries[:3] {
			if o := got[fmt.Sprintf("R%d", i)]; o.ID != e.ID || o.Hash != e.Values["hash"] {
				t.Errorf("R%d's outcome %+v, want entry %s hashed %v", i, o, e.ID, e.Values["hash"])
			}
		}

		for i := range stream.MaxBatch {
			id := fmt.Sprintf("F%d", i)
			s.Enqueue(ctx, auditEntry(id, "ok"), then(id))
		}
		for deadline := time.Now().Add(10 * time.Second); outcomes() < 3+stream.MaxBatch; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("a full turn of %d entries was not sent: %d outcomes", stream.MaxBatch, outcomes()-3)
			}
		}
		if len(failed) > 0 {
			t.Fatalf("enqueued entries failed: %v", failed)
		}
		verifyChain(t, c, keys, 4+stream.MaxBatch)
	})
}

package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// chainedStore is a store whose audit stream is hash-chained, as the
// server's is by default; links counts the entries it linked.
func chainedStore(c redis.UniversalClient, keys keyspace.Keyspace, links *int) *stream.Store {
	var mu sync.Mutex
	return stream.NewStore(c, keys, func(string) int64 { return 100000 }, time.Hour,
		stream.WithChain([]string{keyspace.AuditLog}, func(stream.Link) {
			if links != nil {
				mu.Lock()
				*links++
				mu.Unlock()
			}
		}))
}

// auditEntry is an audit append of id (no id: "").
func auditEntry(id, status string) stream.Append {
	a := stream.Append{Stream: keyspace.AuditLog, Fields: fields("module", "m", "procedure", "p", "status", status, "log_id", id, "timestamp", "T-"+id),
		Notice: fields("log_id", id, "status", status)}
	if id != "" {
		a.IdemID, a.Fingerprint = id, "fp-"+id+"-"+status
	}
	return a
}

func verifyChain(t *testing.T, c redis.UniversalClient, keys keyspace.Keyspace, want int) {
	t.Helper()
	r, err := audit.NewVerifier(c, keys, nil).Verify(context.Background(), audit.Request{Stream: keyspace.AuditLog})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() || r.Checked != want || !r.FromGenesis {
		t.Fatalf("verify = %+v (problem %+v), want %d entries checked from the genesis", r, r.Problem, want)
	}
}

func TestABatchAppendsItsEntriesInOrderWithOneNoticeEach(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		sub := c.Subscribe(ctx, keys.Events(keyspace.WorkflowEvent))
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		var as []stream.Append
		for i := range 5 {
			id := fmt.Sprintf("E-%d", i)
			a := stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("workflow_id", "w", "phase", "p", "event_type", "e", "event_id", id),
				Notice: fields("event_id", id, "workflow_id", "w")}
			if i != 3 { // one without an id of the caller's
				a.IdemID, a.Fingerprint = id, "fp"+id
			}
			as = append(as, a)
		}
		got, err := s.AppendBatch(ctx, keyspace.WorkflowEvent, as)
		if err != nil {
			t.Fatal(err)
		}
		key := keys.Stream(keyspace.WorkflowEvent)
		msgs, err := c.XRange(ctx, key, "-", "+").Result()
		if err != nil || len(msgs) != 5 || len(got) != 5 {
			t.Fatalf("XRANGE = %v, %v; batch = %+v", msgs, err, got)
		}
		for i, m := range msgs {
			if got[i].ID != m.ID || got[i].Key != key || got[i].Duplicate || m.Values["event_id"] != fmt.Sprintf("E-%d", i) || len(m.Values) != 4 {
				t.Errorf("entry %d = %+v, Redis holds %v", i, got[i], m)
			}
		}
		for i := range 5 {
			select {
			case n := <-sub.Channel():
				want := fmt.Sprintf(`{"stream":"workflow_events","key":%q,"id":%q,"event_id":"E-%d","workflow_id":"w"}`, key, got[i].ID, i)
				if n.Payload != want {
					t.Errorf("notice %d = %s, want %s", i, n.Payload, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("notice %d never came", i)
			}
		}
		select {
		case n := <-sub.Channel():
			t.Errorf("an extra notice: %s", n.Payload)
		case <-time.After(50 * time.Millisecond):
		}
		if ttl := c.PTTL(ctx, keys.Idempotency(keyspace.WorkflowEvent, "E-0")).Val(); ttl <= 0 || ttl > time.Hour {
			t.Errorf("idempotency record of E-0 lives %v, want up to the hour", ttl)
		}
		if n := c.Exists(ctx, keys.Idempotency(keyspace.WorkflowEvent, "E-3")).Val(); n != 0 {
			t.Errorf("an entry without a caller's id left an idempotency record")
		}
	})
}

func TestABatchOfDeltasSetsTheContextAndTheLatestDeltaToAFieldWins(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 1000)
		ctx := context.Background()
		delta := func(id, field, value string) stream.Append {
			return stream.Append{Stream: keyspace.CCWJUpdate, Fields: fields("workflow_id", "wf", "phase_id", "p", "field", field, "value", value, "event_id", id),
				IdemID: id, Fingerprint: "fp" + id,
				Context: &stream.Cell{WorkflowID: "wf", PhaseID: "p", Field: field, Value: json.RawMessage(value), UpdatedAt: "T" + id}}
		}
		got, err := s.AppendBatch(ctx, keyspace.CCWJUpdate, []stream.Append{delta("D1", "a", "1"), delta("D2", "b", `{"x": 2}`), delta("D3", "a", "3")})
		if err != nil {
			t.Fatal(err)
		}
		wc, err := s.Context(ctx, "wf")
		if err != nil {
			t.Fatal(err)
		}
		if string(wc.Phases["p"]["a"]) != "3" || string(wc.Phases["p"]["b"]) != `{"x":2}` || wc.LastDeltaID != got[2].ID || wc.UpdatedAt != "TD3" {
			t.Errorf("context = %+v, want a=3, b={\"x\":2}, last delta %s", wc, got[2].ID)
		}
	})
}

func TestABatchSentAgainIsAllDuplicatesAndAMixedOneAppendsOnlyTheNewEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		links := 0
		s := chainedStore(c, keys, &links)
		ctx := context.Background()
		first := []stream.Append{auditEntry("L1", "ok"), auditEntry("L2", "ok"), auditEntry("L3", "ok")}
		got, err := s.AppendBatch(ctx, keyspace.AuditLog, first)
		if err != nil {
			t.Fatal(err)
		}
		again, err := s.AppendBatch(ctx, keyspace.AuditLog, first)
		if err != nil {
			t.Fatal(err)
		}
		for i := range first {
			if !again[i].Duplicate || again[i].ID != got[i].ID || again[i].Timestamp != "T-"+first[i].IdemID {
				t.Errorf("resent entry %d = %+v, want a duplicate of %s", i, again[i], got[i].ID)
			}
		}
		// A single append between them, then a batch of old and new ids.
		if _, err := s.Append(ctx, auditEntry("S1", "ok")); err != nil {
			t.Fatal(err)
		}
		mixed, err := s.AppendBatch(ctx, keyspace.AuditLog, []stream.Append{auditEntry("N1", "ok"), auditEntry("L2", "ok"), auditEntry("", "ok"), auditEntry("L3", "ok"), auditEntry("N2", "ok")})
		if err != nil {
			t.Fatal(err)
		}
		if mixed[0].Duplicate || !mixed[1].Duplicate || mixed[1].ID != got[1].ID || mixed[2].Duplicate || !mixed[3].Duplicate || mixed[4].Duplicate {
			t.Errorf("mixed batch = %+v", mixed)
		}
		if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n != 7 {
			t.Errorf("the stream holds %d entries, want 7", n)
		}
		if links != 7 {
			t.Errorf("%d entries linked, want 7", links)
		}
		verifyChain(t, c, keys, 7)
		head := c.Get(ctx, keys.ChainHead(keyspace.AuditLog)).Val()
		if id, hash, length, ok := audit.ParseHead(head); !ok || id != mixed[4].ID || hash != mixed[4].Hash || length != 7 {
			t.Errorf("chain head = %q, want %s %s 7", head, mixed[4].ID, mixed[4].Hash)
		}
	})
}

func TestAnIDRepeatedInABatchIsADuplicateOfItsFirstEntryOrAConflict(t *testing.T) {
	s, c, keys := newStore(t, backends[0], 1000)
	ctx := context.Background()
	got, err := s.AppendBatch(ctx, keyspace.AuditLog, []stream.Append{auditEntry("R1", "ok"), auditEntry("R2", "ok"), auditEntry("R1", "ok")})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Duplicate || !got[2].Duplicate || got[2].ID != got[0].ID || got[2].Timestamp != "T-R1" {
		t.Errorf("batch = %+v, want entries[2] a duplicate of entries[0]", got)
	}
	if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n != 2 {
		t.Errorf("the stream holds %d entries, want 2", n)
	}
	_, err = s.AppendBatch(ctx, keyspace.AuditLog, []stream.Append{auditEntry("R3", "ok"), auditEntry("R3", "error")})
	if e, ok := fault.As(err); !ok || e.Code != fault.Conflict || e.Field != "entries[1].log_id" {
		t.Errorf("a repeated id with another payload = %v, want a conflict naming entries[1].log_id", err)
	}
	if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n != 2 {
		t.Errorf("after the conflict the stream holds %d entries, want 2", n)
	}
}

func TestAConflictingIDFailsTheWholeBatchWithNothingWritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s := chainedStore(c, keys, nil)
		ctx := context.Background()
		if _, err := s.Append(ctx, auditEntry("C1", "ok")); err != nil {
			t.Fatal(err)
		}
		involved := []string{keys.Stream(keyspace.AuditLog), keys.ChainHead(keyspace.AuditLog), keys.Idempotency(keyspace.AuditLog, "C1"),
			keys.Idempotency(keyspace.AuditLog, "C2"), keys.Idempotency(keyspace.AuditLog, "C3")}
		before := make([]testredis.KeyState, len(involved))
		for k, key := range involved {
			before[k] = testredis.StateOf(t, c, key)
		}
		_, err := s.AppendBatch(ctx, keyspace.AuditLog, []stream.Append{auditEntry("C2", "ok"), auditEntry("C1", "error"), auditEntry("C3", "ok")})
		if e, ok := fault.As(err); !ok || e.Code != fault.Conflict || e.Field != "entries[1].log_id" {
			t.Fatalf("batch = %v, want a conflict naming entries[1].log_id", err)
		}
		for k, key := range involved {
			if d := before[k].Changed(testredis.StateOf(t, c, key)); d != "" {
				t.Errorf("%s changed: %s", key, d)
			}
		}
		verifyChain(t, c, keys, 1)
	})
}

func TestABatchOfNoEntryOrOfMoreThanTheBoundIsRefusedBeforeRedis(t *testing.T) {
	s, _, _ := newStore(t, backends[0], 1000)
	for _, n := range []int{0, stream.MaxBatchEntries + 1} {
		as := make([]stream.Append, n)
		for i := range as {
			as[i] = auditEntry("", "ok")
		}
		if _, err := s.AppendBatch(context.Background(), keyspace.AuditLog, as); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "entries") {
			t.Errorf("a batch of %d = %v, want an argument error about entries", n, err)
		}
	}
	big := auditEntry("", "ok")
	big.Fields = append(big.Fields, stream.Field{Name: "inputs", Value: strings.Repeat("x", 64<<10)})
	as := make([]stream.Append, 300) // about 19 MiB
	for i := range as {
		as[i] = big
	}
	if _, err := s.AppendBatch(context.Background(), keyspace.AuditLog, as); fault.CodeOf(err) != fault.Invalid || !strings.Contains(err.Error(), "16777216") {
		t.Errorf("a batch of 19 MiB = %v, want an argument error naming the 16 MiB bound", err)
	}
}

// As append.lua, append_batch.lua checks every key before the first
// write: a wrong-typed key of the last entry fails the batch, and no key
// of the first entries is written, nor anything announced.
func TestABatchThatMeetsAWrongTypedKeyFailsAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		c, prefix := b.open(t)
		keys := keyspace.Keyspace{Prefix: prefix}
		s := chainedStore(c, keys, nil)
		ctx := context.Background()
		ps := c.PSubscribe(ctx, keys.Events("*"))
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, auditEntry("W0", "ok")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ps.Channel():
		case <-time.After(5 * time.Second):
			t.Fatal("the earlier append was not announced")
		}
		spoilt := keys.Idempotency(keyspace.AuditLog, "W3")
		if err := c.HSet(ctx, spoilt, "f", "v").Err(); err != nil {
			t.Fatal(err)
		}
		delta := stream.Append{Stream: keyspace.CCWJUpdate, Fields: fields("workflow_id", "wx", "field", "f", "value", "1"), IdemID: "D9", Fingerprint: "fp",
			Context: &stream.Cell{WorkflowID: "wx", PhaseID: "p", Field: "f", Value: json.RawMessage("1"), UpdatedAt: "T"}}
		ctxKey := keys.Context("wx")
		if err := c.Set(ctx, ctxKey, "not a hash", 0).Err(); err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, stream, key string
			as                []stream.Append
		}{
			{"an idempotency record is a hash", keyspace.AuditLog, spoilt, []stream.Append{auditEntry("W1", "ok"), auditEntry("W2", "ok"), auditEntry("W3", "ok")}},
			{"a context is a string", keyspace.CCWJUpdate, ctxKey, []stream.Append{
				{Stream: keyspace.CCWJUpdate, Fields: fields("workflow_id", "wy", "field", "f", "value", "1"), IdemID: "D8", Fingerprint: "fp",
					Context: &stream.Cell{WorkflowID: "wy", PhaseID: "p", Field: "f", Value: json.RawMessage("1"), UpdatedAt: "T"}}, delta}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				involved := []string{keys.Stream(tc.stream), keys.ChainHead(keyspace.AuditLog), tc.key, keys.Context("wy"),
					keys.Idempotency(keyspace.AuditLog, "W1"), keys.Idempotency(keyspace.AuditLog, "W2"), keys.Idempotency(keyspace.CCWJUpdate, "D8")}
				before := make([]testredis.KeyState, len(involved))
				for k, key := range involved {
					before[k] = testredis.StateOf(t, c, key)
				}
				got, err := s.AppendBatch(ctx, tc.stream, tc.as)
				if fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), tc.key+" holds a") {
					t.Errorf("batch = %+v, %v; want an internal error saying what %s holds", got, err, tc.key)
				}
				for k, key := range involved {
					if d := before[k].Changed(testredis.StateOf(t, c, key)); d != "" {
						t.Errorf("%s changed: %s", key, d)
					}
				}
				select {
				case m := <-ps.Channel():
					t.Errorf("a failed batch announced %s", m.Payload)
				case <-time.After(50 * time.Millisecond):
				}
			})
		}
		// Fixed, the batch is written, and the chain holds it.
		c.Del(ctx, spoilt)
		if _, err := s.AppendBatch(ctx, keyspace.AuditLog, cases[0].as); err != nil {
			t.Fatal(err)
		}
		verifyChain(t, c, keys, 4)
	})
}

// Batches and single appends from many goroutines, through two stores (two
// processes, each with its own flusher, racing for the head), keep one
// chain that verifies, with every entry in it once.
func TestConcurrentBatchesAndSingleAppendsKeepOneChainThatVerifies(t *testing.T) {
	c, prefix := testredis.Shared(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	stores := []*stream.Store{chainedStore(c, keys, nil), chainedStore(c, keys, nil)}
	ctx := context.Background()
	const workers, rounds, size = 4, 5, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*rounds)
	for w := range workers {
		for k, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for r := range rounds {
					var as []stream.Append
					for i := range size {
						as = append(as, auditEntry(fmt.Sprintf("B%d-%d-%d-%d", k, w, r, i), "ok"))
					}
					// Each batch repeats one entry of the one before.
					if r > 0 {
						as = append(as, auditEntry(fmt.Sprintf("B%d-%d-%d-0", k, w, r-1), "ok"))
					}
					if _, err := s.AppendBatch(ctx, keyspace.AuditLog, as); err != nil {
						errs <- err
					}
					if _, err := s.Append(ctx, auditEntry(fmt.Sprintf("S%d-%d-%d", k, w, r), "ok")); err != nil {
						errs <- err
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	want := len(stores) * workers * rounds * (size + 1)
	if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n != int64(want) {
		t.Errorf("the stream holds %d entries, want %d", n, want)
	}
	verifyChain(t, c, keys, want)
}

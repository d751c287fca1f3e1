package stream_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A script does not roll back: an append that failed after its XADD left
// the entry and its idempotency record behind, so the retry answered
// duplicate for a write that never completed. So append.lua checks every
// key before writing: each key it touches made the wrong type makes the
// call an internal error saying what that key holds, with every key as it
// was and nothing announced.
func TestAnAppendThatMeetsAWrongTypedKeyFailsAndChangesNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		ps := c.PSubscribe(ctx, keys.Events("*"))
		defer ps.Close()
		if _, err := ps.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		notices := ps.Channel()

		hash := func(k string) error { return c.HSet(ctx, k, "f", "v").Err() }
		str := func(k string) error { return c.Set(ctx, k, "not a hash", 0).Err() }
		// delta is a CCWJ delta of workflow wf; idem gives it an event id.
		delta := func(wf string, idem bool) stream.Append {
			a := stream.Append{
				Stream: keyspace.CCWJUpdate, Fields: fields("workflow_id", wf, "field", "f", "value", "1"),
				Notice:  fields("workflow_id", wf),
				Context: &stream.Cell{WorkflowID: wf, PhaseID: "p", Field: "f", Value: json.RawMessage("1"), UpdatedAt: "T"},
			}
			if idem {
				a.IdemID, a.Fingerprint = "E-"+wf, "fp"
			}
			return a
		}
		ccwj := keys.Stream(keyspace.CCWJUpdate)
		cases := []struct {
			name   string
			append stream.Append
			key    string
			spoil  func(key string) error
		}{
			{"the stream is a hash", delta("w1", true), ccwj, hash},
			{"the idempotency record is a hash", delta("w2", true), keys.Idempotency(keyspace.CCWJUpdate, "E-w2"), hash},
			{"the context is a string", delta("w3", true), keys.Context("w3"), str},
			{"the context is a string, no id given", delta("w4", false), keys.Context("w4"), str},
			{"the audit stream is a string", stream.Append{Stream: keyspace.AuditLog, Fields: fields("module", "m"), IdemID: "L1", Fingerprint: "fp"},
				keys.Stream(keyspace.AuditLog), str},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				if tc.key != ccwj {
					// The stream holds an entry already, so a stray one shows.
					if _, err := s.Append(ctx, stream.Append{Stream: tc.append.Stream, Fields: fields("field", "earlier")}); err != nil {
						t.Fatal(err)
					}
					select {
					case <-notices:
					case <-time.After(5 * time.Second):
						t.Fatal("the earlier append was not announced")
					}
				}
				if err := tc.spoil(tc.key); err != nil {
					t.Fatal(err)
				}
				involved := []string{keys.Stream(tc.append.Stream)}
				if tc.append.IdemID != "" {
					involved = append(involved, keys.Idempotency(tc.append.Stream, tc.append.IdemID))
				}
				if cell := tc.append.Context; cell != nil {
					involved = append(involved, keys.Context(cell.WorkflowID))
				}
				before := make([]testredis.KeyState, len(involved))
				for k, key := range involved {
					before[k] = testredis.StateOf(t, c, key)
				}

				got, err := s.Append(ctx, tc.append)
				if fault.CodeOf(err) != fault.Internal || !strings.Contains(err.Error(), tc.key+" holds a") {
					t.Errorf("append = %+v, %v; want an internal error saying what %s holds", got, err, tc.key)
				}
				for k, key := range involved {
					if d := before[k].Changed(testredis.StateOf(t, c, key)); d != "" {
						t.Errorf("%s changed: %s", key, d)
					}
				}
				select {
				case m := <-notices:
					t.Errorf("a failed append announced %s", m.Payload)
				case <-time.After(50 * time.Millisecond):
				}
				c.Del(ctx, tc.key)
			})
		}

		// Fixed, the same append is a fresh write, and it is announced.
		got, err := s.Append(ctx, delta("w3", true))
		if err != nil || got.Duplicate {
			t.Fatalf("append after fixing the context = %+v, %v; want a fresh write", got, err)
		}
		select {
		case <-notices:
		case <-time.After(5 * time.Second):
			t.Fatal("no notice of a successful append: the checks above prove nothing")
		}
	})
}

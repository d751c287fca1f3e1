package stream_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

func tailAdd(t *testing.T, c redis.UniversalClient, key, id string, kv ...string) string {
	t.Helper()
	got, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: key, ID: id, Values: kv}).Result()
	if err != nil {
		t.Fatalf("XADD %s %s: %v", key, id, err)
	}
	return got
}

func backlog(t *testing.T, tl *stream.Tail) ([]string, stream.Cursors) {
	t.Helper()
	var got []string
	cur, err := tl.Backlog(context.Background(), func(e stream.TailEntry) error {
		got = append(got, e.Stream+"/"+e.ID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, cur
}

func TestTailBacklogMergesTheStreamsByIDAndKeepsTheLastNThatMatch(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, prefix := b.open(t)
			keys := keyspace.Keyspace{Prefix: prefix}
			a, w := keys.Stream(keyspace.AuditLog), keys.Stream(keyspace.WorkflowEvent)
			for i := 1; i <= 6; i++ {
				status := "ok"
				if i%2 == 0 {
					status = "error"
				}
				tailAdd(t, c, a, fmt.Sprintf("%d-0", i*10), "status", status)
				tailAdd(t, c, w, fmt.Sprintf("%d-0", i*10+5), "event_type", "e")
			}
			tl := &stream.Tail{Client: c, Keys: keys, Streams: []string{keyspace.AuditLog, keyspace.WorkflowEvent}, Last: 2}
			got, cur := backlog(t, tl)
			if want := []string{"audit_log_stream/50-0", "workflow_events/55-0", "audit_log_stream/60-0", "workflow_events/65-0"}; !slices.Equal(got, want) {
				t.Errorf("last 2 of each: %v, want %v", got, want)
			}
			if cur[keyspace.AuditLog] != "60-0" || cur[keyspace.WorkflowEvent] != "65-0" {
				t.Errorf("cursors %v", cur)
			}
			tl.Match = map[string][]string{"status": {"error"}}
			if got, _ := backlog(t, tl); !slices.Equal(got, []string{"audit_log_stream/40-0", "audit_log_stream/60-0"}) {
				t.Errorf("last 2 with status error: %v", got)
			}
			tl.Match, tl.From = nil, "30"
			got, _ = backlog(t, tl)
			if want := []string{"audit_log_stream/30-0", "workflow_events/35-0", "audit_log_stream/40-0", "workflow_events/45-0",
				"audit_log_stream/50-0", "workflow_events/55-0", "audit_log_stream/60-0", "workflow_events/65-0"}; !slices.Equal(got, want) {
				t.Errorf("from 30: %v, want %v", got, want)
			}
			// A stream with nothing from --from on still resumes after its
			// newest entry.
			tl.From = "1000-0"
			if got, cur = backlog(t, tl); len(got) != 0 || cur[keyspace.AuditLog] != "60-0" {
				t.Errorf("from 1000: %v, cursors %v", got, cur)
			}
		})
	}
}

// An entry appended between the backlog and the first XREAD is followed,
// not lost; so are entries of every stream, read one XREAD per stream or
// one over all; the end of the context ends Follow with nil.
func TestTailFollowResumesWhereTheBacklogEnded(t *testing.T) {
	for _, b := range backends {
		for _, perStream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/per stream %v", b.name, perStream), func(t *testing.T) {
				c, prefix := b.open(t)
				keys := keyspace.Keyspace{Prefix: prefix}
				a, w := keys.Stream(keyspace.AuditLog), keys.Stream(keyspace.WorkflowEvent)
				tailAdd(t, c, a, "*", "status", "ok")
				tl := &stream.Tail{Client: c, Keys: keys, Streams: []string{keyspace.AuditLog, keyspace.WorkflowEvent}, Last: 10,
					PerStream: perStream, Block: 100 * time.Millisecond}
				_, cur := backlog(t, tl)
				missed := tailAdd(t, c, w, "*", "event_type", "e")
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				got := make(chan string, 10)
				done := make(chan error, 1)
				go func() {
					done <- tl.Follow(ctx, cur, func(batch []stream.TailEntry) error {
						for _, e := range batch {
							got <- e.Stream + "/" + e.ID
						}
						return nil
					})
				}()
				later := tailAdd(t, c, a, "*", "status", "ok")
				want := map[string]bool{"workflow_events/" + missed: true, "audit_log_stream/" + later: true}
				for range want {
					select {
					case e := <-got:
						if !want[e] {
							t.Errorf("followed %s, want %v", e, want)
						}
					case <-time.After(5 * time.Second):
						t.Fatalf("Follow did not deliver %v within 5s", want)
					}
				}
				cancel()
				select {
				case err := <-done:
					if err != nil {
						t.Errorf("Follow after cancel: %v", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("Follow still runs 5s after its context ended")
				}
			})
		}
	}
}

func TestCompareIDsOrdersAsRedisDoes(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"9-0", "10-0", -1}, {"10-2", "10-10", -1}, {"10", "10-0", 0}, {"-", "0-1", -1}, {"+", "99999999999999-9", 1}, {"5-1", "5-0", 1},
	} {
		if got := stream.CompareIDs(c.a, c.b); got != c.want {
			t.Errorf("CompareIDs(%s, %s) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

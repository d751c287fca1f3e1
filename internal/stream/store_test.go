package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// backend is a Redis the suite runs against.
type backend struct {
	name string
	open func(t *testing.T) (redis.UniversalClient, string)
}

// backends: the real Redis (what every claim is about) and the embedded
// in-process Redis, which is a product feature of its own.
var backends = []backend{
	{"real redis", func(t *testing.T) (redis.UniversalClient, string) {
		c, prefix := testredis.Shared(t)
		return c, prefix
	}},
	{"embedded", func(t *testing.T) (redis.UniversalClient, string) {
		return testredis.Embedded(t)
	}},
}

func newStore(t *testing.T, b backend, maxLen int64) (*stream.Store, redis.UniversalClient, keyspace.Keyspace) {
	c, prefix := b.open(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	return stream.NewStore(c, keys, func(string) int64 { return maxLen }, time.Hour), c, keys
}

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func fields(kv ...string) []stream.Field {
	var out []stream.Field
	for i := 0; i < len(kv); i += 2 {
		out = append(out, stream.Field{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func TestAppendWritesTheFieldsInOrderAndAnnouncesTheEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		sub := c.Subscribe(ctx, keys.Events(keyspace.AuditLog))
		defer sub.Close()
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := s.Append(ctx, stream.Append{
			Stream: keyspace.AuditLog,
			Fields: fields("module", "m", "inputs", `{"a":1}`, "log_id", "L1"),
			Notice: fields("log_id", "L1", "module", "m"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got.Key != keys.Stream(keyspace.AuditLog) || got.Duplicate || got.ID == "" {
			t.Fatalf("append = %+v", got)
		}
		raw, err := c.Do(ctx, "XRANGE", got.Key, got.ID, got.ID).Slice()
		if err != nil || len(raw) != 1 {
			t.Fatalf("XRANGE: %v %v", raw, err)
		}
		flat := fmt.Sprint(raw[0].([]any)[1])
		if want := "[module m inputs {\"a\":1} log_id L1]"; flat != want {
			t.Errorf("entry fields = %s, want %s", flat, want)
		}
		msg, err := sub.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n map[string]string
		if err := json.Unmarshal([]byte(msg.Payload), &n); err != nil {
			t.Fatalf("notice %q: %v", msg.Payload, err)
		}
		want := map[string]string{"stream": keyspace.AuditLog, "key": got.Key, "id": got.ID, "log_id": "L1", "module": "m"}
		if fmt.Sprint(n) != fmt.Sprint(want) {
			t.Errorf("notice = %v, want %v", n, want)
		}
	})
}

func TestARetryWithTheSameIDWritesNothingAndReturnsTheFirstEntry(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		a := stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("workflow_id", "w", "timestamp", "T1"), IdemID: "E1", Fingerprint: "fp"}
		first, err := s.Append(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		a.Fields = fields("workflow_id", "w", "timestamp", "T2")
		again, err := s.Append(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !again.Duplicate || again.ID != first.ID || again.Timestamp != "T1" {
			t.Fatalf("retry = %+v, first = %+v", again, first)
		}
		if n := c.XLen(ctx, keys.Stream(keyspace.WorkflowEvent)).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}
		ttl := c.PTTL(ctx, keys.Idempotency(keyspace.WorkflowEvent, "E1")).Val()
		if ttl <= 0 || ttl > time.Hour {
			t.Errorf("idempotency record ttl = %v, want (0, 1h]", ttl)
		}
	})
}

func TestTheSameIDWithAnotherPayloadIsAConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		a := stream.Append{Stream: keyspace.UserFeedback, Fields: fields("feedback", "good"), IdemID: "E1", Fingerprint: "fp1"}
		first, err := s.Append(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		a.Fingerprint, a.Fields = "fp2", fields("feedback", "bad")
		got, err := s.Append(ctx, a)
		if fault.CodeOf(err) != fault.Conflict || got.ID != first.ID {
			t.Fatalf("reuse = %+v, %v; want a conflict naming %s", got, err, first.ID)
		}
		if n := c.XLen(ctx, keys.Stream(keyspace.UserFeedback)).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}
	})
}

func TestConcurrentRetriesOfOneIDAppendOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 1000)
		ctx := context.Background()
		var wg sync.WaitGroup
		ids := make([]string, 50)
		for i := range ids {
			wg.Go(func() {
				got, err := s.Append(ctx, stream.Append{Stream: keyspace.AuditLog, Fields: fields("module", "m"), IdemID: "same", Fingerprint: "fp"})
				if err != nil {
					t.Error(err)
				}
				ids[i] = got.ID
			})
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] {
				t.Fatalf("ids differ: %v", ids)
			}
		}
		if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n != 1 {
			t.Errorf("stream length = %d, want 1", n)
		}
	})
}

func TestRetentionTrimsTheStream(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 10)
		ctx := context.Background()
		for i := range 1000 {
			if _, err := s.Append(ctx, stream.Append{Stream: keyspace.AuditLog, Fields: fields("n", strconv.Itoa(i))}); err != nil {
				t.Fatal(err)
			}
		}
		// MAXLEN ~ trims whole macro nodes on real Redis (about 100
		// entries), exactly on the embedded one: bound, don't pin.
		if n := c.XLen(ctx, keys.Stream(keyspace.AuditLog)).Val(); n < 10 || n > 200 {
			t.Errorf("stream length after 1000 appends with MAXLEN ~ 10 = %d", n)
		}
	})
}

func TestConcurrentDeltasToDifferentFieldsAreAllKept(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 100000)
		ctx := context.Background()
		var wg sync.WaitGroup
		const n = 200
		for i := range n {
			wg.Go(func() {
				f := "f" + strconv.Itoa(i)
				v := json.RawMessage(strconv.Itoa(i))
				if _, err := s.Append(ctx, stream.Append{
					Stream: keyspace.CCWJUpdate, Fields: fields("field", f),
					Context: &stream.Cell{WorkflowID: "wf", PhaseID: "p" + strconv.Itoa(i%3), Field: f, Value: v, UpdatedAt: "T"},
				}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		wc, err := s.Context(ctx, "wf")
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for phase, fs := range wc.Phases {
			for f, v := range fs {
				got++
				i, _ := strconv.Atoi(f[1:])
				if phase != "p"+strconv.Itoa(i%3) || string(v) != strconv.Itoa(i) {
					t.Errorf("%s/%s = %s", phase, f, v)
				}
			}
		}
		if got != n || wc.LastDeltaID == "" {
			t.Errorf("context holds %d fields (want %d), last delta %q", got, n, wc.LastDeltaID)
		}
	})
}

func TestTheLatestDeltaToAFieldWinsAndIsTheLastDelta(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 1000)
		ctx := context.Background()
		var last stream.Appended
		for i := range 5 {
			var err error
			last, err = s.Append(ctx, stream.Append{
				Stream: keyspace.CCWJUpdate, Fields: fields("v", strconv.Itoa(i)),
				Context: &stream.Cell{WorkflowID: "wf", PhaseID: "plan", Field: "status", Value: json.RawMessage(` { "step" : ` + strconv.Itoa(i) + ` } `), UpdatedAt: "T" + strconv.Itoa(i)},
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		wc, err := s.Context(ctx, "wf")
		if err != nil {
			t.Fatal(err)
		}
		if got := string(wc.Phases["plan"]["status"]); got != `{"step":4}` {
			t.Errorf("value = %s, want the last one, compacted", got)
		}
		if wc.LastDeltaID != last.ID || wc.UpdatedAt != "T4" {
			t.Errorf("last delta = %s at %s, want %s at T4", wc.LastDeltaID, wc.UpdatedAt, last.ID)
		}
	})
}

func TestAContextNeverWrittenIsEmpty(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 1000)
		wc, err := s.Context(context.Background(), "nobody")
		if err != nil || len(wc.Phases) != 0 || wc.LastDeltaID != "" {
			t.Fatalf("context = %+v, %v", wc, err)
		}
	})
}

func TestReadFiltersPagesAndReverses(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 100000)
		ctx := context.Background()
		var ids []string
		for i := range 300 {
			w := "even"
			if i%2 == 1 {
				w = "odd"
			}
			got, err := s.Append(ctx, stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("workflow_id", w, "n", strconv.Itoa(i))})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, got.ID)
		}
		// Page through the odd entries, 40 at a time, forward.
		var seen []string
		start := "-"
		for {
			page, err := s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: start, End: "+", Count: 40, Match: map[string]string{"workflow_id": "odd"}, MaxScan: 10000})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range page.Entries {
				seen = append(seen, e.Values["n"])
			}
			if page.Next == "" {
				break
			}
			start = page.Next
		}
		if len(seen) != 150 || seen[0] != "1" || seen[149] != "299" {
			t.Fatalf("odd entries seen: %d, first %v", len(seen), seen[:min(3, len(seen))])
		}
		// Newest first, bounded by an exclusive end.
		page, err := s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: "-", End: "(" + ids[10], Count: 3, Reverse: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != 3 || page.Entries[0].ID != ids[9] || page.Entries[2].ID != ids[7] || page.Next != "("+ids[7] {
			t.Fatalf("reverse page = %+v", page)
		}
		// A scan bound stops a sparse filter and says where to resume.
		page, err = s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: "-", End: "+", Count: 10, Match: map[string]string{"workflow_id": "none"}, MaxScan: 100})
		if err != nil || len(page.Entries) != 0 || page.Scanned < 100 || page.Next == "" {
			t.Fatalf("bounded scan = %d entries, scanned %d, next %q, %v", len(page.Entries), page.Scanned, page.Next, err)
		}
	})
}

// A page holds at most MaxBytes of entries, however many count asks for,
// and says where to go on; paging on reads every entry once.
func TestAPageEndsAtItsByteBoundAndPagingReadsEveryEntryOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, _, _ := newStore(t, b, 100000)
		ctx := context.Background()
		big := string(make([]byte, 10<<10))
		for i := range 20 {
			if _, err := s.Append(ctx, stream.Append{Stream: keyspace.WorkflowEvent, Fields: fields("n", strconv.Itoa(i), "details", big)}); err != nil {
				t.Fatal(err)
			}
		}
		q := stream.Query{Stream: keyspace.WorkflowEvent, Start: "-", End: "+", Count: 1000, MaxBytes: 35 << 10, MaxEntryBytes: 11 << 10}
		var seen []string
		for pages := 0; ; pages++ {
			page, err := s.Read(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Entries) > 4 {
				t.Fatalf("a page of %d entries of 10 KiB under a 35 KiB bound", len(page.Entries))
			}
			for _, e := range page.Entries {
				seen = append(seen, e.Values["n"])
			}
			if page.Next == "" {
				break
			}
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			q.Start = page.Next
		}
		if len(seen) != 20 || seen[0] != "0" || seen[19] != "19" {
			t.Fatalf("entries seen paging on: %v", seen)
		}
	})
}

func TestParseIDAcceptsStreamIDsOnly(t *testing.T) {
	for _, ok := range []string{"-", "+", "0", "1700000000000", "1700000000000-0", "(1700000000000-5", "18446744073709551615-18446744073709551615"} {
		if err := stream.ParseID(ok); err != nil {
			t.Errorf("ParseID(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abc", "1-", "-1", "1-2-3", "(", "(-", "(+", "+1", "1-+2", "18446744073709551616", " 1", "1.5"} {
		if err := stream.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) accepted", bad)
		}
	}
}

func TestAnUnreachableRedisIsUnavailable(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(testredis.FreePort(t)), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	s := stream.NewStore(c, keyspace.Keyspace{Prefix: "x:"}, func(string) int64 { return 10 }, time.Hour)
	_, err := s.Append(context.Background(), stream.Append{Stream: keyspace.AuditLog, Fields: fields("a", "b")})
	if fault.CodeOf(err) != fault.Unavailable {
		t.Fatalf("append to a closed port = %v, want unavailable", err)
	}
	_, err = s.Read(context.Background(), stream.Query{Stream: keyspace.AuditLog, Start: "-", End: "+", Count: 1})
	if fault.CodeOf(err) != fault.Unavailable {
		t.Fatalf("read from a closed port = %v, want unavailable", err)
	}
}

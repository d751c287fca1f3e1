package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

type chainEnv struct {
	c      redis.UniversalClient
	keys   keyspace.Keyspace
	store  *stream.Store
	signer *audit.Signer
	cp     *audit.Checkpointer
	v      *audit.Verifier
}

func newChain(t *testing.T, c redis.UniversalClient, prefix string, maxLen int64, every int) *chainEnv {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	e := &chainEnv{c: c, keys: keyspace.Keyspace{Prefix: prefix}, signer: audit.NewSigner(priv)}
	e.cp = audit.NewCheckpointer(c, e.keys, e.signer, audit.CheckpointerConfig{Streams: []string{keyspace.AuditLog}, Every: every, Interval: time.Hour}, newSlog(t))
	t.Cleanup(e.cp.Close)
	e.store = stream.NewStore(c, e.keys, func(string) int64 { return maxLen }, time.Hour,
		stream.WithChain([]string{keyspace.AuditLog}, func(l stream.Link) { e.cp.Linked(l.Stream, l.Key, l.ID, l.Hash, l.Length) }))
	e.v = audit.NewVerifier(c, e.keys, e.signer.Public())
	return e
}

func (e *chainEnv) fill(t *testing.T, n, writers int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/writers; i++ {
				_, err := e.store.Append(context.Background(), stream.Append{Stream: keyspace.AuditLog,
					Fields: []stream.Field{{Name: "module", Value: "m"}, {Name: "procedure", Value: fmt.Sprintf("w%d-%d", w, i)}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitCheckpoints waits until the checkpointer wrote n checkpoints.
func (e *chainEnv) waitCheckpoints(t *testing.T, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.c.XLen(context.Background(), e.keys.Checkpoints(keyspace.AuditLog)).Val() < n {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d checkpoints", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (e *chainEnv) verify(t *testing.T) *audit.Report {
	t.Helper()
	r, err := e.v.Verify(context.Background(), audit.Request{Stream: keyspace.AuditLog})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (e *chainEnv) entries(t *testing.T) []redis.XMessage {
	return e.c.XRange(context.Background(), e.keys.Stream(keyspace.AuditLog), "-", "+").Val()
}

var backends = []struct {
	name string
	open func(t *testing.T) (redis.UniversalClient, string)
}{
	{"real redis", func(t *testing.T) (redis.UniversalClient, string) { return testredis.Shared(t) }},
	{"embedded", func(t *testing.T) (redis.UniversalClient, string) { return testredis.Embedded(t) }},
}

func TestConcurrentAppendsMakeOneUnbrokenSignedChain(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, prefix := b.open(t)
			e := newChain(t, c, prefix, 100000, 50)
			e.fill(t, 1000, 8)
			e.waitCheckpoints(t, 20)
			r := e.verify(t)
			if !r.OK() || r.Checked != 1000 || !r.FromGenesis || r.Checkpoint == nil || r.Checkpoints < 20 {
				t.Fatalf("report = %+v, problem %v", r, r.Problem)
			}
			head := c.Get(context.Background(), e.keys.ChainHead(keyspace.AuditLog)).Val()
			if !strings.HasPrefix(head, r.Last+" "+r.LastHash+" 1000") {
				t.Fatalf("head %q, last %s %s", head, r.Last, r.LastHash)
			}
		})
	}
}

// Each kind of tampering, on a fresh chain, is named at the entry it hit.
func TestVerifyNamesTheFirstTamperedEntry(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(t *testing.T, e *chainEnv, es []redis.XMessage) string // returns the entry id expected
		kind   string
	}{
		{"one field of one entry modified", func(t *testing.T, e *chainEnv, es []redis.XMessage) string {
			e.rewrite(t, es[40:41], func(f []audit.Pair) { f[1].Value = "forged" }, false)
			return es[40].ID
		}, audit.Modified},
		{"one entry deleted", func(t *testing.T, e *chainEnv, es []redis.XMessage) string {
			e.c.XDel(ctx, e.keys.Stream(keyspace.AuditLog), es[40].ID)
			return es[41].ID
		}, audit.Deleted},
		{"one entry inserted with XADD, correctly linked", func(t *testing.T, e *chainEnv, es []redis.XMessage) string {
			last := es[len(es)-1]
			f := []audit.Pair{{"module", "m"}, {"procedure", "forged"}, {audit.PrevHashField, last.Values["hash"].(string)}}
			key := e.keys.Stream(keyspace.AuditLog)
			h := audit.Hash(key, f)
			return e.c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []string{"module", "m", "procedure", "forged", "prev_hash", f[2].Value, "hash", h}}).Val()
		}, audit.Inserted},
		{"the chain rewritten consistently without the key", func(t *testing.T, e *chainEnv, es []redis.XMessage) string {
			e.rewrite(t, es[40:], func(f []audit.Pair) { f[1].Value += "!" }, true)
			return es[49].ID // the first checkpoint at or after entry 40 (every 10: the 50th entry)
		}, audit.Rewritten},
	}
	for _, b := range backends {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				c, prefix := b.open(t)
				e := newChain(t, c, prefix, 100000, 10)
				e.fill(t, 100, 1)
				e.waitCheckpoints(t, 10)
				if r := e.verify(t); !r.OK() {
					t.Fatalf("before tampering: %v", r.Problem)
				}
				want := tc.tamper(t, e, e.entries(t))
				r := e.verify(t)
				if r.Problem == nil || r.Problem.EntryID != want || r.Problem.Kind != tc.kind {
					t.Fatalf("problem = %+v; want %s at %s", r.Problem, tc.kind, want)
				}
				t.Logf("%s", r.Problem)
			})
		}
	}
}

// rewrite deletes es and appends them again changed by edit, with explicit
// ids as they were; consistent recomputes every hash and the head.
func (e *chainEnv) rewrite(t *testing.T, es []redis.XMessage, edit func([]audit.Pair), consistent bool) {
	t.Helper()
	ctx := context.Background()
	key := e.keys.Stream(keyspace.AuditLog)
	all := e.c.Do(ctx, "XRANGE", key, es[0].ID, "+").Val().([]any)
	pipe := e.c.TxPipeline()
	for _, x := range all {
		pipe.XDel(ctx, key, x.([]any)[0].(string))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	// XADD with an explicit id needs it above the stream's last id, even
	// once deleted: rebuild the stream from the kept entries.
	kept := e.c.Do(ctx, "XRANGE", key, "-", "+").Val().([]any)
	e.c.Del(ctx, key)
	add := func(id string, kv []string) {
		args := []any{"XADD", key, id}
		for _, s := range kv {
			args = append(args, s)
		}
		if err := e.c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("XADD %s: %v", id, err)
		}
	}
	toStrings := func(kv []any) []string {
		out := make([]string, len(kv))
		for i, x := range kv {
			out[i] = x.(string)
		}
		return out
	}
	for _, x := range kept {
		m := x.([]any)
		add(m[0].(string), toStrings(m[1].([]any)))
	}
	prev := es[0].Values["prev_hash"].(string)
	var lastID, lastHash string
	for _, x := range all {
		m := x.([]any)
		id := m[0].(string)
		kv := toStrings(m[1].([]any))
		var f []audit.Pair
		hash := ""
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == "hash" {
				hash = kv[i+1]
			} else {
				f = append(f, audit.Pair{Name: kv[i], Value: kv[i+1]})
			}
		}
		if id == es[0].ID || consistent {
			edit(f)
		}
		if consistent {
			f[len(f)-1].Value = prev
			hash = audit.Hash(key, f)
			prev = hash
		}
		vals := []string{}
		for _, p := range f {
			vals = append(vals, p.Name, p.Value)
		}
		add(id, append(vals, "hash", hash))
		lastID, lastHash = id, hash
	}
	if consistent {
		head := e.c.Get(ctx, e.keys.ChainHead(keyspace.AuditLog)).Val()
		n := head[strings.LastIndexByte(head, ' ')+1:]
		e.c.Set(ctx, e.keys.ChainHead(keyspace.AuditLog), lastID+" "+lastHash+" "+n, 0)
	}
}

func TestATrimmedChainStillVerifiesFromItsOldestEntry(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			c, prefix := b.open(t)
			e := newChain(t, c, prefix, 100, 25)
			e.fill(t, 1000, 4)
			e.waitCheckpoints(t, 40)
			if n := c.XLen(context.Background(), e.keys.Stream(keyspace.AuditLog)).Val(); n >= 1000 {
				t.Fatalf("the stream was not trimmed: %d entries", n)
			}
			r := e.verify(t)
			if !r.OK() || r.FromGenesis || r.Checked < 100 || r.Checkpoint == nil {
				t.Fatalf("report = %+v, problem %v", r, r.Problem)
			}
		})
	}
}

func TestVerifyResumesFromACursorAcrossCalls(t *testing.T) {
	c, prefix := testredis.Shared(t)
	e := newChain(t, c, prefix, 100000, 7)
	e.fill(t, 250, 2)
	req := audit.Request{Stream: keyspace.AuditLog, Limit: 60}
	total, calls := 0, 0
	for {
		r, err := e.v.Verify(context.Background(), req)
		if err != nil || !r.OK() {
			t.Fatalf("call %d: %+v %v", calls, r, err)
		}
		total += r.Checked
		calls++
		if r.Next == "" {
			break
		}
		req.After, req.PrevHash, _ = audit.ParseCursor(r.Next)
	}
	if total != 250 || calls != 5 {
		t.Fatalf("checked %d in %d calls", total, calls)
	}
}

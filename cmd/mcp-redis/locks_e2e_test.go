package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests drive acquire_lock, release_lock, extend_lock and check_rate
// through the real binary over stdio, several processes at once, against
// the shared Redis, and read Redis directly to check what they left there.

// quietEnv turns off the per-call audit records: they would add a stream
// write to every call and say nothing about locks.
var quietEnv = []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}

// spawnMany starts n servers with the same arguments: n clients of one
// Redis, as n hosts would be.
func spawnMany(t *testing.T, n int, env []string, args ...string) []*server {
	t.Helper()
	out := make([]*server, n)
	for i := range out {
		out[i] = spawn(t, env, args...)
	}
	return out
}

// callFrom calls a tool from any goroutine: it never calls t.Fatal, and
// decodes the structured result into out unless the call is a tool error.
func callFrom(ctx context.Context, s *server, tool string, in any, out any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = in
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	if res.IsError || out == nil {
		return res, nil
	}
	if err := json.Unmarshal(res.RawStructuredContent, out); err != nil {
		return res, fmt.Errorf("%s structured content %q: %w", tool, res.RawStructuredContent, err)
	}
	return res, nil
}

// must is callFrom on the test goroutine: a transport failure or a tool
// error fails the test.
func must(t *testing.T, s *server, tool string, in any, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := callFrom(ctx, s, tool, in, out)
	if err != nil {
		t.Fatalf("%v\nstderr:\n%s", err, s.stderr.String())
	}
	if res.IsError {
		t.Fatalf("%s(%.200v) is a tool error: %s", tool, in, resultText(res))
	}
}

type acquireOut struct {
	Acquired     bool   `json:"acquired"`
	Resource     string `json:"resource"`
	Key          string `json:"key"`
	Token        string `json:"token"`
	FencingToken int64  `json:"fencing_token"`
	TTLMS        int64  `json:"ttl_ms"`
	ExpiresAt    string `json:"expires_at"`
	Owner        string `json:"owner"`
	WaitedMS     int64  `json:"waited_ms"`
}

type releaseOut struct {
	Released bool   `json:"released"`
	Resource string `json:"resource"`
	Reason   string `json:"reason"`
}

type extendOut struct {
	Extended  bool   `json:"extended"`
	Resource  string `json:"resource"`
	TTLMS     int64  `json:"ttl_ms"`
	ExpiresAt string `json:"expires_at"`
	Reason    string `json:"reason"`
}

type rateOut struct {
	Allowed      bool   `json:"allowed"`
	Subject      string `json:"subject"`
	Policy       string `json:"policy"`
	Limit        int    `json:"limit"`
	WindowMS     int64  `json:"window_ms"`
	Remaining    int    `json:"remaining"`
	RetryAfterMS int64  `json:"retry_after_ms"`
	ResetAfterMS int64  `json:"reset_after_ms"`
}

// Contending clients never hold a lock together, and every grant carries
// a fencing token larger than the one before it.
//
// 4 server processes x 8 goroutines contend for one resource, each round
// acquire (waiting) -> critical section -> release. The brief's 200 rounds
// each (6400 grants) took 46s under -race and 25s without on the 2-CPU
// test machine: each stdio call costs about 1ms there, and a hand-off
// costs 4-7ms because every release wakes all 31 waiters on all four
// servers, which each run acquire.lua again. 64 rounds each (2048 grants,
// 13-21s under -race there, with other builds sharing the machine) keep
// this file well under a minute; MCP_REDIS_E2E_LOCK_ROUNDS=200 runs the
// full count.
func TestContendingClientsNeverHoldALockTogetherAndFencingTokensGrowInGrantOrder(t *testing.T) {
	needsFull(t, "starts the binary")
	const procs, perProc = 4, 8
	rounds := 64
	if n, err := strconv.Atoi(os.Getenv("MCP_REDIS_E2E_LOCK_ROUNDS")); err == nil && n > 0 {
		rounds = n
	}
	total := procs * perProc * rounds
	rdb, prefix := testredis.Shared(t)
	srvs := spawnMany(t, procs, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	const resource = "contended/resource"
	ctx := context.Background()

	var (
		holders  atomic.Int32 // clients inside the critical section
		maxHeld  atomic.Int32
		lastSeen atomic.Int64 // the fencing token of the latest grant

		mu        sync.Mutex
		fences    []int64 // in the order the grants were held
		timeouts  int     // waits that ended without the lock
		maxWaited int64
		errs      []string
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	failed := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(errs) > 0
	}

	start := time.Now()
	var wg sync.WaitGroup
	for p := range procs {
		for g := range perProc {
			s, owner := srvs[p], fmt.Sprintf("p%d-g%d", p, g)
			wg.Go(func() {
				for r := 0; r < rounds && !failed(); {
					// The server may wait 20s plus its Redis timeout: give
					// the client more than that.
					cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
					var a acquireOut
					res, err := callFrom(cctx, s, "acquire_lock", map[string]any{
						"resource": resource, "ttl_ms": 10000, "wait_ms": 20000, "owner": owner}, &a)
					cancel()
					if err != nil || res.IsError {
						fail("%s round %d: acquire_lock: %v %s", owner, r, err, errText(res))
						return
					}
					mu.Lock()
					maxWaited = max(maxWaited, a.WaitedMS)
					if !a.Acquired {
						timeouts++
					}
					mu.Unlock()
					if !a.Acquired {
						continue // waited 20s without the lock: try again
					}

					// The critical section.
					n := holders.Add(1)
					for m := maxHeld.Load(); n > m && !maxHeld.CompareAndSwap(m, n); m = maxHeld.Load() {
					}
					if n != 1 {
						fail("%s round %d: %d holders at once", owner, r, n)
					}
					if prev := lastSeen.Swap(a.FencingToken); a.FencingToken <= prev {
						fail("%s round %d: fencing token %d after %d", owner, r, a.FencingToken, prev)
					}
					mu.Lock()
					fences = append(fences, a.FencingToken)
					mu.Unlock()
					if a.Token == "" || a.Key != prefix+"locks:"+resource || a.TTLMS != 10000 {
						fail("%s round %d: grant %+v", owner, r, a)
					}
					// Stay a moment, so that an overlapping holder would be
					// seen here rather than slip between two atomics.
					time.Sleep(100 * time.Microsecond)
					holders.Add(-1)

					cctx, cancel = context.WithTimeout(ctx, 30*time.Second)
					var rel releaseOut
					res, err = callFrom(cctx, s, "release_lock", map[string]any{"resource": resource, "token": a.Token}, &rel)
					cancel()
					if err != nil || res.IsError || !rel.Released {
						fail("%s round %d: release_lock: %v %s %+v", owner, r, err, errText(res), rel)
						return
					}
					r++
				}
			})
		}
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d grants in %v (%.0f/s); longest wait %dms; %d waits ended without the lock",
		len(fences), took, float64(len(fences))/took.Seconds(), maxWaited, timeouts)
	for _, e := range errs {
		t.Error(e)
	}
	if t.Failed() {
		for i, s := range srvs {
			t.Logf("server %d stderr:\n%s", i, s.stderr.String())
		}
		t.FailNow()
	}
	if maxHeld.Load() != 1 {
		t.Errorf("at most %d holders at once, want 1", maxHeld.Load())
	}
	// The resource was fresh: its grants are numbered 1..total, in the
	// order they were held, none lost and none twice.
	if len(fences) != total {
		t.Fatalf("%d grants, want %d", len(fences), total)
	}
	for i, f := range fences {
		if f != int64(i+1) {
			t.Fatalf("grant %d carries fencing token %d, want %d (around: %v)", i, f, i+1, fences[max(0, i-3):min(len(fences), i+4)])
		}
	}
	if n, err := rdb.Get(ctx, prefix+"fence:{"+prefix+"locks:"+resource+"}").Int64(); err != nil || n != int64(total) {
		t.Errorf("fence counter = %d (%v), want %d", n, err, total)
	}
	// Every round released: the lock and its owner label are gone.
	if n := rdb.Exists(ctx, prefix+"locks:"+resource, prefix+"owner:{"+prefix+"locks:"+resource+"}").Val(); n != 0 {
		t.Errorf("%d of the lock and owner keys left after every release", n)
	}
}

func errText(res *mcp.CallToolResult) string {
	if res == nil {
		return ""
	}
	if res.IsError {
		return "tool error: " + resultText(res)
	}
	return ""
}

// When 100 clients ask at once for a free resource without waiting,
// exactly one gets it, and the others learn who holds it and for how long.
func TestSimultaneousAcquiresOfAFreeResourceGrantExactlyOne(t *testing.T) {
	needsFull(t, "starts the binary")
	const (
		procs, clients, repeats = 4, 100, 50
		ttl                     = 30000
	)
	rdb, prefix := testredis.Shared(t)
	srvs := spawnMany(t, procs, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()

	for rep := range repeats {
		resource := fmt.Sprintf("race-%d", rep)
		results := make([]acquireOut, clients)
		errs := make([]error, clients)
		ready, gate := sync.WaitGroup{}, make(chan struct{})
		var wg sync.WaitGroup
		for i := range clients {
			ready.Add(1)
			wg.Go(func() {
				s := srvs[i%procs]
				ready.Done()
				<-gate
				cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				defer cancel()
				res, err := callFrom(cctx, s, "acquire_lock", map[string]any{
					"resource": resource, "ttl_ms": ttl, "wait_ms": 0, "owner": fmt.Sprintf("client-%d", i)}, &results[i])
				if err == nil && res.IsError {
					err = fmt.Errorf("tool error: %s", resultText(res))
				}
				errs[i] = err
			})
		}
		ready.Wait()
		close(gate)
		wg.Wait()

		winner := -1
		for i, r := range results {
			if errs[i] != nil {
				t.Fatalf("repeat %d, client %d: %v", rep, i, errs[i])
			}
			if !r.Acquired {
				continue
			}
			if winner >= 0 {
				t.Fatalf("repeat %d: clients %d and %d both acquired %s: %+v / %+v", rep, winner, i, resource, results[winner], r)
			}
			winner = i
		}
		if winner < 0 {
			t.Fatalf("repeat %d: none of %d clients acquired a free resource", rep, clients)
		}
		w := results[winner]
		if w.FencingToken != 1 || w.Token == "" || w.TTLMS != ttl || w.WaitedMS > 10000 {
			t.Errorf("repeat %d: grant %+v", rep, w)
		}
		wantOwner := fmt.Sprintf("client-%d", winner)
		for i, r := range results {
			if i == winner {
				continue
			}
			// The owner label is written with the lock, so every loser sees
			// the winner's; no token and no fencing token are handed out.
			if r.Owner != wantOwner || r.Token != "" || r.FencingToken != 0 || r.TTLMS <= 0 || r.TTLMS > ttl || r.Key != prefix+"locks:"+resource {
				t.Errorf("repeat %d, loser %d: %+v (winner %s)", rep, i, r, wantOwner)
				break
			}
		}
		key := prefix + "locks:" + resource
		if v := rdb.Get(ctx, key).Val(); v != w.Token {
			t.Errorf("repeat %d: %s holds %q, the winner's token is %q", rep, key, v, w.Token)
		}
		if n := rdb.Get(ctx, prefix+"fence:{"+key+"}").Val(); n != "1" {
			t.Errorf("repeat %d: fence counter %q after one grant", rep, n)
		}
		if p := rdb.PTTL(ctx, key).Val(); p <= 0 || p > ttl*time.Millisecond {
			t.Errorf("repeat %d: PTTL %v", rep, p)
		}
	}
}

// A token that does not hold the lock — wrong, empty, 1 MiB, or another
// lock's — neither releases nor extends it, and leaves it as it was.
func TestATokenThatDoesNotHoldTheLockNeitherReleasesNorExtendsIt(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()

	var held, other acquireOut
	must(t, srv, "acquire_lock", map[string]any{"resource": "guarded", "ttl_ms": 60000, "owner": "holder"}, &held)
	must(t, srv, "acquire_lock", map[string]any{"resource": "elsewhere", "ttl_ms": 60000}, &other)
	if !held.Acquired || !other.Acquired {
		t.Fatalf("setup: %+v %+v", held, other)
	}
	key, ownerKey := prefix+"locks:guarded", prefix+"owner:{"+prefix+"locks:guarded}"
	before := rdb.PTTL(ctx, key).Val()

	tokens := map[string]string{
		"wrong":                     "0123456789abcdef0123456789abcdef",
		"empty":                     "",
		"1 MiB":                     strings.Repeat("a", 1<<20),
		"another lock's":            other.Token,
		"the holder's, one changed": flip(held.Token),
		"the holder's, and more":    held.Token + "0",
		"a prefix of the holder's":  held.Token[:len(held.Token)-1],
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			var rel releaseOut
			res := srv.call("release_lock", map[string]any{"resource": "guarded", "token": tok})
			notSucceeded(t, res, &rel, "release_lock", func() bool { return !rel.Released && rel.Reason == "not_held" && rel.Resource == "guarded" })

			var ext extendOut
			res = srv.call("extend_lock", map[string]any{"resource": "guarded", "token": tok, "ttl_ms": 600000})
			notSucceeded(t, res, &ext, "extend_lock", func() bool {
				return !ext.Extended && ext.Reason == "not_held" && ext.TTLMS == 0 && ext.ExpiresAt == ""
			})

			// The lock holds the same token, its ttl still runs down from
			// 60s (an extend would have set 600s), and the label is kept.
			if v := rdb.Get(ctx, key).Val(); v != held.Token {
				t.Errorf("lock value %q, want the holder's %q", v, held.Token)
			}
			now := rdb.PTTL(ctx, key).Val()
			if now <= 0 || now > before {
				t.Errorf("PTTL %v, was %v", now, before)
			}
			before = now
			if o := rdb.Get(ctx, ownerKey).Val(); o != "holder" {
				t.Errorf("owner label %q", o)
			}
			if p := rdb.PTTL(ctx, ownerKey).Val(); p <= 0 || p > 60*time.Second {
				t.Errorf("owner label PTTL %v", p)
			}
		})
	}
	// Nor did anything touch the other lock.
	if v := rdb.Get(ctx, prefix+"locks:elsewhere").Val(); v != other.Token {
		t.Errorf("the other lock holds %q", v)
	}
	// And the holder's own token still works, for both.
	var ext extendOut
	must(t, srv, "extend_lock", map[string]any{"resource": "guarded", "token": held.Token, "ttl_ms": 120000}, &ext)
	if !ext.Extended || ext.TTLMS != 120000 || ext.Reason != "" {
		t.Errorf("holder's extend: %+v", ext)
	}
	if p := rdb.PTTL(ctx, key).Val(); p <= 60*time.Second || p > 120*time.Second {
		t.Errorf("PTTL after the holder's extend: %v", p)
	}
	var rel releaseOut
	must(t, srv, "release_lock", map[string]any{"resource": "guarded", "token": held.Token}, &rel)
	if !rel.Released || rel.Reason != "" {
		t.Errorf("holder's release: %+v", rel)
	}
	if n := rdb.Exists(ctx, key, ownerKey).Val(); n != 0 {
		t.Errorf("%d of the lock and owner keys left after release", n)
	}
	// A second release of a released lock is not_held, not an error.
	must(t, srv, "release_lock", map[string]any{"resource": "guarded", "token": held.Token}, &rel)
	if rel.Released || rel.Reason != "not_held" {
		t.Errorf("second release: %+v", rel)
	}
}

// notSucceeded accepts a normal "not held" answer (ok reports it), or a
// tool error naming the token (the 1 MiB one is over its maxLength).
func notSucceeded(t *testing.T, res *mcp.CallToolResult, out any, tool string, ok func() bool) {
	t.Helper()
	if res.IsError {
		if !strings.Contains(resultText(res), "token") {
			t.Errorf("%s: tool error not naming token: %.300s", tool, resultText(res))
		}
		return
	}
	if err := json.Unmarshal(res.RawStructuredContent, out); err != nil {
		t.Fatalf("%s: %q: %v", tool, res.RawStructuredContent, err)
	}
	if !ok() {
		t.Errorf("%s succeeded or said something else: %s", tool, res.RawStructuredContent)
	}
}

// flip changes the last hex digit of a token.
func flip(tok string) string {
	last := tok[len(tok)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return tok[:len(tok)-1] + string(repl)
}

// A holder whose TTL ran out can neither release nor extend, even once
// another holds the resource, and the next grant's fencing token is larger.
func TestAHolderThatOutlivesItsTTLCanNeitherReleaseNorExtendAndTheNextFencingTokenIsLarger(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srvs := spawnMany(t, 2, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	stale, next := srvs[0], srvs[1]
	ctx := context.Background()
	key := prefix + "locks:job-7"

	var old acquireOut
	must(t, stale, "acquire_lock", map[string]any{"resource": "job-7", "ttl_ms": 100, "owner": "slow"}, &old)
	if !old.Acquired || old.TTLMS != 100 {
		t.Fatalf("grant %+v", old)
	}
	waitGone(t, rdb, key)

	// Expired and not yet taken again.
	var rel releaseOut
	must(t, stale, "release_lock", map[string]any{"resource": "job-7", "token": old.Token}, &rel)
	if rel.Released || rel.Reason != "not_held" {
		t.Errorf("release after expiry: %+v", rel)
	}
	var ext extendOut
	must(t, stale, "extend_lock", map[string]any{"resource": "job-7", "token": old.Token, "ttl_ms": 60000}, &ext)
	if ext.Extended || ext.Reason != "not_held" {
		t.Errorf("extend after expiry: %+v", ext)
	}
	if n := rdb.Exists(ctx, key, prefix+"owner:{"+key+"}").Val(); n != 0 {
		t.Errorf("the stale holder's calls left %d keys", n)
	}

	// Taken by another: the stale holder still cannot touch it.
	var cur acquireOut
	must(t, next, "acquire_lock", map[string]any{"resource": "job-7", "ttl_ms": 60000, "owner": "fresh"}, &cur)
	if !cur.Acquired || cur.FencingToken <= old.FencingToken || cur.Token == old.Token {
		t.Fatalf("next grant %+v after %+v", cur, old)
	}
	pttl := rdb.PTTL(ctx, key).Val()
	must(t, stale, "release_lock", map[string]any{"resource": "job-7", "token": old.Token}, &rel)
	if rel.Released || rel.Reason != "not_held" {
		t.Errorf("stale release of another's lock: %+v", rel)
	}
	must(t, stale, "extend_lock", map[string]any{"resource": "job-7", "token": old.Token, "ttl_ms": 600000}, &ext)
	if ext.Extended || ext.Reason != "not_held" {
		t.Errorf("stale extend of another's lock: %+v", ext)
	}
	if v := rdb.Get(ctx, key).Val(); v != cur.Token {
		t.Errorf("lock holds %q, want the new holder's", v)
	}
	if p := rdb.PTTL(ctx, key).Val(); p <= 0 || p > pttl {
		t.Errorf("PTTL %v, was %v", p, pttl)
	}
	if o := rdb.Get(ctx, prefix+"owner:{"+key+"}").Val(); o != "fresh" {
		t.Errorf("owner label %q", o)
	}
	// Someone else finding it held is told by whom.
	var busy acquireOut
	must(t, stale, "acquire_lock", map[string]any{"resource": "job-7"}, &busy)
	if busy.Acquired || busy.Owner != "fresh" || busy.TTLMS <= 0 || busy.TTLMS > 60000 {
		t.Errorf("acquire of a held lock: %+v", busy)
	}

	// Each later grant, after an expiry or a release, carries a larger token.
	last := cur.FencingToken
	must(t, next, "release_lock", map[string]any{"resource": "job-7", "token": cur.Token}, &rel)
	for i := range 3 {
		var g acquireOut
		must(t, srvs[i%2], "acquire_lock", map[string]any{"resource": "job-7", "ttl_ms": 100}, &g)
		if !g.Acquired || g.FencingToken <= last {
			t.Fatalf("grant %d: %+v after fencing token %d", i, g, last)
		}
		last = g.FencingToken
		waitGone(t, rdb, key)
	}
}

// waitGone waits for key to expire.
func waitGone(t *testing.T, rdb *redis.Client, key string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(context.Background(), key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not expire", key)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A ttl_ms that is not a whole number of ms in 100..600000 is a tool error
// naming ttl_ms, and no lock is taken or changed.
func TestABadTTLIsAToolErrorAndTakesNoLock(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, quietEnv, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	bad := []string{`0`, `-1`, `99`, `600001`, `9007199254740992`, `"5000"`, `5000.5`, `1e4`, `null`, `true`}

	for _, ttl := range bad {
		res := srv.call("acquire_lock", args(`{"resource":"ttl-check","ttl_ms":`+ttl+`}`))
		if msg := resultText(res); !res.IsError || !strings.Contains(msg, "ttl_ms") {
			t.Errorf("acquire_lock ttl_ms=%s: isError=%v %q, want a tool error naming ttl_ms", ttl, res.IsError, msg)
		}
	}
	keys := append(rdb.Keys(ctx, prefix+"*").Val(), rdb.Keys(ctx, "{"+prefix+"*").Val()...)
	if len(keys) != 0 {
		t.Fatalf("bad ttl_ms wrote %v", keys)
	}

	// On a held lock, extend_lock with a bad ttl changes nothing either.
	var held acquireOut
	must(t, srv, "acquire_lock", map[string]any{"resource": "ttl-check", "ttl_ms": 5000}, &held)
	key := prefix + "locks:ttl-check"
	before := rdb.PTTL(ctx, key).Val()
	for _, ttl := range bad {
		res := srv.call("extend_lock", args(`{"resource":"ttl-check","token":"`+held.Token+`","ttl_ms":`+ttl+`}`))
		if msg := resultText(res); !res.IsError || !strings.Contains(msg, "ttl_ms") {
			t.Errorf("extend_lock ttl_ms=%s: isError=%v %q, want a tool error naming ttl_ms", ttl, res.IsError, msg)
		}
	}
	res := srv.call("extend_lock", args(`{"resource":"ttl-check","token":"`+held.Token+`"}`))
	if msg := resultText(res); !res.IsError || !strings.Contains(msg, "ttl_ms") {
		t.Errorf("extend_lock without ttl_ms: isError=%v %q", res.IsError, msg)
	}
	if p := rdb.PTTL(ctx, key).Val(); p <= 0 || p > before {
		t.Errorf("PTTL %v after bad extends, was %v", p, before)
	}
	if v := rdb.Get(ctx, key).Val(); v != held.Token {
		t.Errorf("lock holds %q", v)
	}
	// The bounds themselves are accepted.
	for _, ttl := range []int{100, 600000} {
		var ext extendOut
		must(t, srv, "extend_lock", map[string]any{"resource": "ttl-check", "token": held.Token, "ttl_ms": ttl}, &ext)
		if !ext.Extended || ext.TTLMS != int64(ttl) {
			t.Errorf("extend_lock ttl_ms=%d: %+v", ttl, ext)
		}
	}
	// Absent, ttl_ms is 30s.
	var dflt acquireOut
	must(t, srv, "acquire_lock", map[string]any{"resource": "ttl-default"}, &dflt)
	if p := rdb.PTTL(ctx, prefix+"locks:ttl-default").Val(); !dflt.Acquired || dflt.TTLMS != 30000 || p <= 29*time.Second || p > 30*time.Second {
		t.Errorf("default ttl: %+v, PTTL %v", dflt, p)
	}
}

// rateConfig writes a config file with the policy "test" and returns its path.
func rateConfig(t *testing.T, limit int, window string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rate.yaml")
	body := fmt.Sprintf("rate:\n  policies:\n    test:\n      limit: %d\n      window: %s\n", limit, window)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// 240 simultaneous checks (60 per server) against 100 per window allow exactly 100; the
// subject is allowed again as the window slides, and every limiter key
// expires on its own.
func TestRateChecksAllowExactlyTheLimitUnderContentionAndAgainAfterTheWindow(t *testing.T) {
	needsFull(t, "starts the binary")
	const (
		// 60 calls per server: within the 64 a stdio server runs at once
		// (one more would be answered "server busy").
		procs, calls, limit = 4, 240, 100
		window              = 2 * time.Second
	)
	rdb, prefix := testredis.Shared(t)
	cfg := rateConfig(t, limit, "2s")
	srvs := spawnMany(t, procs, quietEnv, "--config", cfg, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()
	key := prefix + "rate:test:agent-1"

	results := make([]rateOut, calls)
	errs := make([]error, calls)
	ready, gate := sync.WaitGroup{}, make(chan struct{})
	var wg sync.WaitGroup
	for i := range calls {
		ready.Add(1)
		wg.Go(func() {
			ready.Done()
			<-gate
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			res, err := callFrom(cctx, srvs[i%procs], "check_rate", map[string]any{"subject": "agent-1", "policy": "test"}, &results[i])
			if err == nil && res.IsError {
				err = fmt.Errorf("tool error: %s", resultText(res))
			}
			errs[i] = err
		})
	}
	ready.Wait()
	start := time.Now()
	close(gate)
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d check_rate calls over %d servers in %v", calls, procs, took)
	if took >= window {
		t.Fatalf("the burst took %v, longer than the %v window: exactly %d allowed is then not the expectation", took, window, limit)
	}

	var allowed []int // the remaining counts the allowed calls saw
	for i, r := range results {
		if errs[i] != nil {
			t.Fatalf("call %d: %v", i, errs[i])
		}
		if r.Subject != "agent-1" || r.Policy != "test" || r.Limit != limit || r.WindowMS != window.Milliseconds() {
			t.Errorf("call %d: %+v", i, r)
		}
		if r.ResetAfterMS <= 0 || r.ResetAfterMS > window.Milliseconds() {
			t.Errorf("call %d: reset_after_ms %d", i, r.ResetAfterMS)
		}
		if r.Allowed {
			allowed = append(allowed, r.Remaining)
			if r.RetryAfterMS != 0 {
				t.Errorf("allowed call %d: retry_after_ms %d", i, r.RetryAfterMS)
			}
		} else if r.Remaining != 0 || r.RetryAfterMS <= 0 || r.RetryAfterMS > window.Milliseconds() {
			t.Errorf("denied call %d: %+v", i, r)
		}
	}
	if len(allowed) != limit {
		t.Fatalf("%d of %d allowed, want exactly %d", len(allowed), calls, limit)
	}
	// Decided one at a time: the allowed calls saw 99, 98, … 0 left.
	slices.Sort(allowed)
	for i, r := range allowed {
		if r != i {
			t.Fatalf("allowed calls saw remaining %v, want 0..%d once each", allowed, limit-1)
		}
	}
	if n := rdb.ZCard(ctx, key).Val(); n != limit {
		t.Errorf("%s holds %d units, want %d (denied calls must not count)", key, n, limit)
	}
	checkRateKeysExpire(t, rdb, prefix, window)

	// Denied now; allowed once retry_after_ms has passed, as the window slides.
	var r rateOut
	must(t, srvs[0], "check_rate", map[string]any{"subject": "agent-1", "policy": "test"}, &r)
	if r.Allowed || r.RetryAfterMS <= 0 {
		t.Fatalf("right after the burst: %+v", r)
	}
	time.Sleep(time.Duration(r.RetryAfterMS) * time.Millisecond)
	must(t, srvs[1], "check_rate", map[string]any{"subject": "agent-1", "policy": "test"}, &r)
	if !r.Allowed {
		t.Fatalf("after retry_after_ms: %+v", r)
	}
	// Once the whole window has passed the key is gone, and the subject
	// has the full limit again.
	waitGoneWithin(t, rdb, key, time.Duration(r.ResetAfterMS)*time.Millisecond+time.Second)
	must(t, srvs[2], "check_rate", map[string]any{"subject": "agent-1", "policy": "test"}, &r)
	if !r.Allowed || r.Remaining != limit-1 {
		t.Errorf("after the window: %+v", r)
	}

	// The default policy is 60 per minute, and a cost spends that many units.
	must(t, srvs[3], "check_rate", map[string]any{"subject": "agent-2", "cost": 60}, &r)
	if !r.Allowed || r.Policy != "default" || r.Limit != 60 || r.WindowMS != 60000 || r.Remaining != 0 {
		t.Errorf("default policy, cost 60: %+v", r)
	}
	must(t, srvs[3], "check_rate", map[string]any{"subject": "agent-2", "policy": "default"}, &r)
	if r.Allowed || r.RetryAfterMS <= 0 || r.RetryAfterMS > 60000 {
		t.Errorf("default policy, over: %+v", r)
	}
	checkRateKeysExpire(t, rdb, prefix, time.Minute)
}

// checkRateKeysExpire checks that every limiter key under prefix has a TTL
// no longer than the longest window.
func checkRateKeysExpire(t *testing.T, rdb *redis.Client, prefix string, longest time.Duration) {
	t.Helper()
	ctx := context.Background()
	keys := rdb.Keys(ctx, prefix+"rate:*").Val()
	if len(keys) == 0 {
		t.Errorf("no limiter keys under %s", prefix)
	}
	for _, k := range keys {
		if p := rdb.PTTL(ctx, k).Val(); p <= 0 || p > longest+time.Millisecond {
			t.Errorf("limiter key %s has PTTL %v", k, p)
		}
	}
}

func waitGoneWithin(t *testing.T, rdb *redis.Client, key string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for rdb.Exists(context.Background(), key).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there after %v (PTTL %v)", key, d, rdb.PTTL(context.Background(), key).Val())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An unknown policy is a tool error listing the configured ones, and a
// cost no window can hold is a tool error naming cost; neither counts.
func TestRateChecksWithAnUnknownPolicyOrAnImpossibleCostAreToolErrors(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	srv := spawn(t, quietEnv, "--config", rateConfig(t, 100, "2s"), "--redis-url", testredis.URL(), "--prefix", prefix)

	for _, c := range []struct {
		args string
		want []string
	}{
		{`{"subject":"s","policy":"nope"}`, []string{"policy", "nope", "default", "test"}},
		{`{"subject":"s","policy":"TEST"}`, []string{"policy", "default", "test"}},
		{`{"subject":"s","policy":"test","cost":101}`, []string{"cost", "101"}},
		{`{"subject":"s","cost":61}`, []string{"cost", "61"}},
		{`{"subject":"s","policy":"test","cost":10001}`, []string{"cost"}},
		{`{"subject":"s","policy":"test","cost":0}`, []string{"cost"}},
		{`{"subject":"s","policy":"test","cost":-5}`, []string{"cost"}},
		{`{"subject":"s","policy":"test","cost":1.5}`, []string{"cost"}},
		{`{"subject":"s","policy":"test","cost":"1"}`, []string{"cost"}},
		{`{"subject":"a b","policy":"test"}`, []string{"subject"}},
		{`{"subject":"s*","policy":"test"}`, []string{"subject"}},
		{`{"policy":"test"}`, []string{"subject"}},
	} {
		res := srv.call("check_rate", args(c.args))
		msg := resultText(res)
		if !res.IsError {
			t.Errorf("check_rate(%s) = %s, want a tool error", c.args, res.RawStructuredContent)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("check_rate(%s): %q does not mention %s", c.args, msg, w)
			}
		}
	}
	if keys := rdb.Keys(context.Background(), prefix+"*").Val(); len(keys) != 0 {
		t.Errorf("rejected checks wrote %v", keys)
	}
	// A cost of exactly the limit fits.
	var r rateOut
	must(t, srv, "check_rate", map[string]any{"subject": "s", "policy": "test", "cost": 100}, &r)
	if !r.Allowed || r.Remaining != 0 {
		t.Errorf("cost = limit: %+v", r)
	}
}

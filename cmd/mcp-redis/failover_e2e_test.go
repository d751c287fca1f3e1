package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The failover suites start real topologies and drive load through the
// binary while a master dies or hands over; each prints its figures
// (lost, duplicated, fencing tokens repeated, outage). They take tens of
// seconds, so they are not in the -short tier.

// try calls a tool without failing the test: for load goroutines.
func (s *server) try(tool string, a any) (*mcp.CallToolResult, error) {
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = a
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return s.c.CallTool(ctx, req)
}

func structured(res *mcp.CallToolResult) map[string]any {
	var out map[string]any
	_ = json.Unmarshal(res.RawStructuredContent, &out)
	return out
}

// failoverLoad is audit_log writers and a lock taker on one server.
type failoverLoad struct {
	srv      *server
	resource string
	stop     atomic.Bool
	wg       sync.WaitGroup

	mu     sync.Mutex
	acked  map[string]int // log_id → times answered OK
	okAt   []time.Time    // when each write was answered OK
	fences []int64        // fencing tokens in the order answered
	errors map[string]int // tool errors by their first words
}

func startLoad(srv *server, writers int, resource string) *failoverLoad {
	l := &failoverLoad{srv: srv, resource: resource, acked: map[string]int{}, errors: map[string]int{}}
	for g := range writers {
		l.wg.Add(1)
		go l.write(g)
	}
	l.wg.Add(1)
	go l.lock()
	return l
}

func (l *failoverLoad) failed(res *mcp.CallToolResult, err error) {
	text := "transport: "
	if err != nil {
		text += err.Error()
	} else {
		text = resultText(res)
	}
	if i := strings.Index(text, " ("); i > 0 {
		text = text[:i]
	}
	l.mu.Lock()
	l.errors[text]++
	l.mu.Unlock()
	time.Sleep(20 * time.Millisecond)
}

// write appends entries with ids of its own, retrying each with the same
// log_id until it is answered OK, as a careful client does.
func (l *failoverLoad) write(g int) {
	defer l.wg.Done()
	for n := 0; !l.stop.Load(); n++ {
		id := fmt.Sprintf("w%d-%d", g, n)
		for !l.stop.Load() {
			res, err := l.srv.try("audit_log", map[string]any{"module": "failover", "procedure": "load", "status": "ok", "log_id": id})
			if err == nil && !res.IsError {
				l.mu.Lock()
				l.acked[id]++
				l.okAt = append(l.okAt, time.Now())
				l.mu.Unlock()
				break
			}
			l.failed(res, err)
		}
	}
}

// lock takes and gives back one resource, keeping each fencing token.
func (l *failoverLoad) lock() {
	defer l.wg.Done()
	for !l.stop.Load() {
		res, err := l.srv.try("acquire_lock", map[string]any{"resource": l.resource, "ttl_ms": 2000})
		if err != nil || res.IsError {
			l.failed(res, err)
			continue
		}
		out := structured(res)
		if out["acquired"] != true {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		fence, _ := out["fencing_token"].(float64)
		l.mu.Lock()
		l.fences = append(l.fences, int64(fence))
		l.mu.Unlock()
		if res, err := l.srv.try("release_lock", map[string]any{"resource": l.resource, "token": out["token"]}); err != nil || res.IsError {
			l.failed(res, err)
		}
	}
}

// waitOK waits up to within for a write answered OK after since.
func (l *failoverLoad) waitOK(since time.Time, within time.Duration) {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		l.mu.Lock()
		ok := len(l.okAt) > 0 && l.okAt[len(l.okAt)-1].After(since)
		l.mu.Unlock()
		if ok {
			return
		}
	}
}

// figures is what a failover cost.
type figures struct {
	Acked, Lost, Duplicated, FenceRepeats, FenceBackwards int
	// Outage is the longest time without a write answered OK, from a
	// second before the event to the end.
	Outage time.Duration
	// Recovered is the first write answered OK after the new master was
	// in place (promoted, switched), counted from then.
	Recovered time.Duration
	Errors    map[string]int
}

func (f figures) String() string {
	recovered := "never"
	if f.Recovered >= 0 {
		recovered = fmt.Sprintf("%.1fs", f.Recovered.Seconds())
	}
	return fmt.Sprintf("acked %d, lost %d, duplicated %d, fencing tokens repeated %d (backwards %d), outage %.1fs, recovered %s after the new master",
		f.Acked, f.Lost, f.Duplicated, f.FenceRepeats, f.FenceBackwards, f.Outage.Seconds(), recovered)
}

// finish stops the load and counts, reading the stream from c.
func (l *failoverLoad) finish(t *testing.T, c redis.Cmdable, streamKey string, event, settled time.Time) figures {
	t.Helper()
	l.stop.Store(true)
	end := time.Now()
	l.wg.Wait()
	ctx := context.Background()
	msgs, err := c.XRange(ctx, streamKey, "-", "+").Result()
	if err != nil {
		t.Fatalf("read %s after the failover: %v", streamKey, err)
	}
	seen := map[string]int{}
	for _, m := range msgs {
		if id, _ := m.Values["log_id"].(string); id != "" {
			seen[id]++
		}
	}
	f := figures{Acked: len(l.acked), Errors: l.errors}
	for id := range l.acked {
		if seen[id] == 0 {
			f.Lost++
		}
	}
	for _, n := range seen {
		if n > 1 {
			f.Duplicated += n - 1
		}
	}
	counted := map[int64]int{}
	var most int64
	for _, fence := range l.fences {
		if counted[fence]++; counted[fence] == 2 {
			f.FenceRepeats++
		}
		if fence <= most {
			f.FenceBackwards++
		}
		most = max(most, fence)
	}
	from := event.Add(-time.Second)
	prev := from
	recovered := time.Duration(-1)
	for _, at := range l.okAt {
		if at.Before(from) {
			continue
		}
		f.Outage = max(f.Outage, at.Sub(prev))
		prev = at
		if recovered < 0 && !at.Before(settled) {
			recovered = at.Sub(settled)
		}
	}
	f.Outage = max(f.Outage, end.Sub(prev))
	f.Recovered = recovered
	return f
}

// Over a 6-node cluster: three servers keep the lock's mutual exclusion
// and fencing order and the rate limit's exact count between them; then
// the master holding audit_log_stream is killed, and calls on its shard
// succeed again within seconds of its replica's promotion, not at the
// client's next periodic slot-map reload (60 s).
func TestClusterThreeServersKeepLockAndRateInvariantsAndAKilledMasterCostsSeconds(t *testing.T) {
	needsFull(t, "starts a real cluster and kills a master")
	cl := testredis.StartCluster(t, testredis.ClusterOptions{NodeTimeout: 2 * time.Second})
	env := []string{"MCP_REDIS_REDIS_URL=" + cl.URL(), "MCP_REDIS_REDIS_TIMEOUT=1s", "MCP_REDIS_AUDIT_TOOL_CALLS=false",
		"MCP_REDIS_RATE_POLICIES_DEFAULT_LIMIT=50", "MCP_REDIS_RATE_POLICIES_DEFAULT_WINDOW=1m"}

	t.Run("three servers keep the lock and rate invariants", func(t *testing.T) {
		servers := []*server{spawn(t, env), spawn(t, env), spawn(t, env)}
		var (
			holders, overlaps, allowed atomic.Int64
			mu                         sync.Mutex
			fences                     []int64
			wg                         sync.WaitGroup
		)
		for i, srv := range servers {
			for g := range 3 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < 15; n++ {
						res, err := srv.try("acquire_lock", map[string]any{"resource": "shared", "ttl_ms": 5000, "wait_ms": 5000, "owner": fmt.Sprintf("s%d-g%d", i, g)})
						if err != nil || res.IsError {
							t.Errorf("acquire_lock: %v %s", err, resultText(res))
							return
						}
						out := structured(res)
						if out["acquired"] != true {
							continue
						}
						if holders.Add(1) > 1 {
							overlaps.Add(1)
						}
						mu.Lock()
						fence, _ := out["fencing_token"].(float64)
						fences = append(fences, int64(fence))
						mu.Unlock()
						time.Sleep(2 * time.Millisecond)
						holders.Add(-1)
						if res, err := srv.try("release_lock", map[string]any{"resource": "shared", "token": out["token"]}); err != nil || res.IsError {
							t.Errorf("release_lock: %v %s", err, resultText(res))
						}
					}
				}()
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; n < 30; n++ {
						res, err := srv.try("check_rate", map[string]any{"subject": "shared-subject"})
						if err != nil || res.IsError {
							t.Errorf("check_rate: %v %s", err, resultText(res))
							return
						}
						if structured(res)["allowed"] == true {
							allowed.Add(1)
						}
					}
				}()
			}
		}
		wg.Wait()
		if overlaps.Load() != 0 {
			t.Errorf("%d grants overlapped another holder across three servers", overlaps.Load())
		}
		sorted := slices.Clone(fences)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != len(fences) {
			t.Errorf("a fencing token was granted twice across three servers: %v", fences)
		}
		if allowed.Load() != 50 {
			t.Errorf("check_rate allowed %d of 270 requests across three servers; the limit is 50", allowed.Load())
		}
		t.Logf("3 servers: %d grants, fencing tokens %d..%d all distinct, rate allowed exactly %d of 270", len(fences), sorted[0], sorted[len(sorted)-1], allowed.Load())
	})

	t.Run("a killed master costs seconds", func(t *testing.T) {
		srv := spawn(t, env)
		load := startLoad(srv, 6, "failover-cluster")
		time.Sleep(1500 * time.Millisecond)
		key := "mcp:audit_log_stream"
		old := cl.MasterOf(t, key)
		killed := time.Now()
		cl.Kill(old)
		_, took := cl.WaitPromoted(t, key, old, 30*time.Second)
		settled := killed.Add(took)
		time.Sleep(4 * time.Second)
		f := load.finish(t, cl.Client(t), key, killed, settled)
		t.Logf("cluster, master SIGKILLed, promoted %.1fs later: %s; errors %v", took.Seconds(), f, f.Errors)
		if f.Recovered < 0 || f.Recovered > 3*time.Second {
			// The bound is far from both the fix (well under a second
			// here) and the fault (the 60 s periodic reload).
			t.Errorf("the shard's calls did not recover within 3 s of the promotion (%v)", f.Recovered)
		}
		if f.Duplicated != 0 {
			t.Errorf("%d entries were written twice", f.Duplicated)
		}
	})
}

// Over 1 master + 1 replica + 3 sentinels: a graceful failover without
// redis.wait_replicas may lose acknowledged writes and repeat fencing
// tokens (the figures say how many); with wait_replicas 1 it loses none
// and no token repeats or goes backwards. Then the master is killed.
func TestSentinelFailoversLoseNoAcknowledgedWriteWithWaitReplicas(t *testing.T) {
	needsFull(t, "starts a real sentinel topology and fails it over")
	sn := testredis.StartSentinel(t, testredis.SentinelOptions{Args: []string{"--repl-diskless-sync-delay", "0"}})
	run := func(t *testing.T, name, prefix string, wait int, event func() string) figures {
		env := []string{"MCP_REDIS_REDIS_URL=" + sn.URL(), "MCP_REDIS_REDIS_TIMEOUT=1s", "MCP_REDIS_AUDIT_TOOL_CALLS=false",
			"MCP_REDIS_REDIS_PREFIX=" + prefix, fmt.Sprintf("MCP_REDIS_REDIS_WAIT_REPLICAS=%d", wait), "MCP_REDIS_REDIS_WAIT_TIMEOUT=500ms"}
		srv := spawn(t, env)
		load := startLoad(srv, 6, "failover")
		time.Sleep(1500 * time.Millisecond)
		from := sn.CurrentMaster(t)
		at := time.Now()
		event()
		_, took := sn.WaitSwitched(t, from, 30*time.Second)
		// With wait_replicas, writes succeed again once the new master
		// has a replica: the old master, once the sentinels turn it.
		load.waitOK(at.Add(took), 30*time.Second)
		time.Sleep(2 * time.Second)
		f := load.finish(t, sn.Client(t), prefix+"audit_log_stream", at, at.Add(took))
		t.Logf("sentinel, %s, wait_replicas %d, switched %.1fs later: %s; errors %v", name, wait, took.Seconds(), f, f.Errors)
		return f
	}
	graceful := func() string { sn.Failover(t); return "" }

	t.Run("graceful failover, wait_replicas 0", func(t *testing.T) {
		f := run(t, "SENTINEL FAILOVER", "g0:", 0, graceful)
		if f.Duplicated != 0 {
			t.Errorf("%d entries were written twice", f.Duplicated)
		}
		sn.WaitSettled(t, 60*time.Second)
	})
	t.Run("graceful failover, wait_replicas 1", func(t *testing.T) {
		f := run(t, "SENTINEL FAILOVER", "g1:", 1, graceful)
		if f.Lost != 0 || f.Duplicated != 0 || f.FenceRepeats != 0 || f.FenceBackwards != 0 {
			t.Errorf("with wait_replicas 1: %s", f)
		}
		sn.WaitSettled(t, 60*time.Second)
	})
	t.Run("master killed, wait_replicas 0", func(t *testing.T) {
		f := run(t, "master SIGKILLed", "k0:", 0, func() string { sn.KillMaster(t); return "" })
		if f.Duplicated != 0 {
			t.Errorf("%d entries were written twice", f.Duplicated)
		}
	})
}

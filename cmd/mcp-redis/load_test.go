package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
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

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The load test: loadClients concurrent HTTP clients each make N mixed
// calls of every tool against the binary in HTTP mode with a bearer token,
// and afterwards the invariants hold: no unexpected error, never two
// holders of a lock, fencing tokens strictly increasing in grant order and
// equal to the number of grants, no more rate-allowed calls in a window
// than the limit, and every stream as long as the writes that succeeded.
//
// N is MCP_REDIS_LOAD_CALLS (default loadDefaultCalls, what CI can afford
// on two cores); the full run is MCP_REDIS_LOAD_CALLS=10000.

const (
	loadClients      = 32
	loadDefaultCalls = 300
	loadResources    = 4 // lock resources the clients contend for
	loadRateLimit    = 100
	loadRateWindow   = time.Second
	loadWorkflows    = 4
)

var loadStreams = []string{"audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"}

// loadConfig writes the load test's configuration: streams long enough to
// keep every entry, and the rate policy "load".
func loadConfig(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("streams:\n")
	for _, s := range loadStreams {
		fmt.Fprintf(&b, "  %s:\n    maxlen: 100000000\n", s)
	}
	fmt.Fprintf(&b, "rate:\n  policies:\n    load:\n      limit: %d\n      window: %s\n", loadRateLimit, loadRateWindow)
	path := filepath.Join(t.TempDir(), "load.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// loadClient sends stateless (2026-07-28) tools/call requests by hand, the
// cheapest way to call: no session, no SSE stream.
type loadClient struct {
	url, token string
	hc         *http.Client
}

type loadResult struct {
	IsError           bool            `json:"isError"`
	StructuredContent json.RawMessage `json:"structuredContent"`
	Content           []struct {
		Text string `json:"text"`
	} `json:"content"`
}

// call calls tool; err is a transport, HTTP or JSON-RPC failure.
func (c *loadClient) call(id, tool, arguments string) (*loadResult, error) {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%q,"method":"tools/call","params":{"name":%q,"arguments":%s,`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},`+
		`"io.modelcontextprotocol/clientInfo":{"name":"load","version":"1"}}}}`, id, tool, arguments, mcp.LATEST_PROTOCOL_VERSION)
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_PROTOCOL_VERSION)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, tool)
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", res.StatusCode, raw)
	}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		raw = loadSSEAnswer(raw)
	}
	var msg struct {
		Result *loadResult `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		return nil, fmt.Errorf("answer %.300q: %w", raw, err)
	}
	if msg.Error != nil {
		return nil, fmt.Errorf("JSON-RPC error %d: %s", msg.Error.Code, msg.Error.Message)
	}
	if msg.Result == nil {
		return nil, fmt.Errorf("answer without a result: %.300s", raw)
	}
	return msg.Result, nil
}

// loadSSEAnswer picks the JSON-RPC answer out of an SSE body: the last
// data line that carries an id.
func loadSSEAnswer(body []byte) []byte {
	var last []byte
	for line := range bytes.Lines(body) {
		if d, ok := bytes.CutPrefix(bytes.TrimSpace(line), []byte("data:")); ok && bytes.Contains(d, []byte(`"id"`)) {
			last = bytes.TrimSpace(d)
		}
	}
	return last
}

// loadState is what the clients share, to check the invariants.
type loadState struct {
	errs    atomic.Int64
	errMu   sync.Mutex
	errList []string

	holders [loadResources]atomic.Int32
	fenceMu [loadResources]sync.Mutex
	fence   [loadResources]int64 // the last fencing token granted
	grants  [loadResources]int64

	writes [4]atomic.Int64 // successful, non-duplicate writes per stream (loadStreams order)

	rateMu  sync.Mutex
	allowed []loadSpan // allowed check_rate calls
	denied  atomic.Int64
	notHeld atomic.Int64 // acquires answered acquired: false
}

// loadSpan is when an allowed check_rate call was sent and answered: the
// server decided somewhere in between.
type loadSpan struct{ sent, answered time.Time }

func (s *loadState) fail(format string, a ...any) {
	s.errs.Add(1)
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if len(s.errList) < 20 {
		s.errList = append(s.errList, fmt.Sprintf(format, a...))
	}
}

// loadWorker is one client's calls and their latencies by tool.
type loadWorker struct {
	id    int
	c     *loadClient
	s     *loadState
	rng   *rand.Rand
	seq   int
	calls int
	lat   map[string][]time.Duration
}

// do makes one call, timing it, and decodes a successful structured
// result into out; it reports false (recorded as an error) on a failure
// or an unexpected tool error.
func (w *loadWorker) do(tool, arguments string, out any) bool {
	w.seq++
	w.calls++
	start := time.Now()
	res, err := w.c.call(fmt.Sprintf("%d-%d", w.id, w.seq), tool, arguments)
	w.lat[tool] = append(w.lat[tool], time.Since(start))
	if err != nil {
		w.s.fail("client %d %s(%s): %v", w.id, tool, arguments, err)
		return false
	}
	if res.IsError {
		var text string
		for _, c := range res.Content {
			text += c.Text
		}
		w.s.fail("client %d %s(%s) tool error: %s", w.id, tool, arguments, text)
		return false
	}
	if err := json.Unmarshal(res.StructuredContent, out); err != nil {
		w.s.fail("client %d %s structured content %.200q: %v", w.id, tool, res.StructuredContent, err)
		return false
	}
	return true
}

type loadWrite struct {
	EntryID   string `json:"entry_id"`
	Duplicate bool   `json:"duplicate"`
}

// write appends to stream number si; one write in ten carries an id and
// is retried at once, which must answer duplicate with the same entry.
func (w *loadWorker) write(si int) {
	n := w.seq
	var id string
	if w.rng.IntN(10) == 0 {
		id = fmt.Sprintf("load-%d-%d", w.id, n)
	}
	wf := fmt.Sprintf("load-wf-%d", w.id%loadWorkflows)
	var tool, args string
	switch si {
	case 0:
		tool, args = "audit_log", fmt.Sprintf(`{"module":"load","procedure":"p%d","status":"ok","inputs":{"n":%d},"workflow_id":%q`, n%7, n, wf)
		if id != "" {
			args += fmt.Sprintf(`,"log_id":%q`, id)
		}
	case 1:
		tool, args = "publish_ccwj_delta", fmt.Sprintf(`{"workflow_id":%q,"phase_id":"plan","field":"f%d","value":%d`, wf, w.id, n)
	case 2:
		tool, args = "submit_feedback", fmt.Sprintf(`{"feedback":"fine %d","user_id":"u%d"`, n, w.id)
	case 3:
		tool, args = "emit_workflow_event", fmt.Sprintf(`{"workflow_id":%q,"phase":"run","event_type":"tick","details":"n=%d"`, wf, n)
	}
	if id != "" && si != 0 {
		args += fmt.Sprintf(`,"event_id":%q`, id)
	}
	args += "}"
	var first loadWrite
	if !w.do(tool, args, &first) {
		return
	}
	if first.Duplicate || first.EntryID == "" {
		w.s.fail("client %d %s: %+v, want a new entry", w.id, tool, first)
		return
	}
	w.s.writes[si].Add(1)
	if id == "" {
		return
	}
	var again loadWrite
	if w.do(tool, args, &again) && (!again.Duplicate || again.EntryID != first.EntryID) {
		w.s.fail("client %d %s retry: %+v, want duplicate of %s", w.id, tool, again, first.EntryID)
	}
}

// lock takes one of the contended resources (waiting a little, or not),
// checks it is the only holder and its fencing token is the largest yet,
// sometimes extends it, and gives it back.
func (w *loadWorker) lock() {
	r := w.rng.IntN(loadResources)
	res := fmt.Sprintf("load-r%d", r)
	wait := 0
	if w.rng.IntN(2) == 0 {
		wait = 50
	}
	var g struct {
		Acquired     bool   `json:"acquired"`
		Token        string `json:"token"`
		FencingToken int64  `json:"fencing_token"`
	}
	if !w.do("acquire_lock", fmt.Sprintf(`{"resource":%q,"ttl_ms":30000,"wait_ms":%d,"owner":"client-%d"}`, res, wait, w.id), &g) {
		return
	}
	if !g.Acquired {
		w.s.notHeld.Add(1)
		return
	}
	s := w.s
	if n := s.holders[r].Add(1); n != 1 {
		s.fail("resource %s has %d holders at once", res, n)
	}
	s.fenceMu[r].Lock()
	if g.FencingToken <= s.fence[r] {
		s.fail("resource %s: fencing token %d granted after %d", res, g.FencingToken, s.fence[r])
	}
	s.fence[r] = g.FencingToken
	s.grants[r]++
	s.fenceMu[r].Unlock()
	if w.rng.IntN(3) == 0 {
		var ext struct {
			Extended bool `json:"extended"`
		}
		if w.do("extend_lock", fmt.Sprintf(`{"resource":%q,"token":%q,"ttl_ms":30000}`, res, g.Token), &ext) && !ext.Extended {
			s.fail("client %d: extend of a held lock %s: not extended", w.id, res)
		}
	}
	s.holders[r].Add(-1)
	var rel struct {
		Released bool `json:"released"`
	}
	if w.do("release_lock", fmt.Sprintf(`{"resource":%q,"token":%q}`, res, g.Token), &rel) && !rel.Released {
		s.fail("client %d: release of a held lock %s: not released", w.id, res)
	}
}

func (w *loadWorker) rate() {
	var out struct {
		Allowed   bool `json:"allowed"`
		Remaining int  `json:"remaining"`
	}
	sent := time.Now()
	if !w.do("check_rate", `{"subject":"load-shared","policy":"load"}`, &out) {
		return
	}
	answered := time.Now()
	if !out.Allowed {
		w.s.denied.Add(1)
		return
	}
	if out.Remaining < 0 || out.Remaining >= loadRateLimit {
		w.s.fail("allowed check_rate with remaining %d", out.Remaining)
	}
	w.s.rateMu.Lock()
	w.s.allowed = append(w.s.allowed, loadSpan{sent, answered})
	w.s.rateMu.Unlock()
}

func (w *loadWorker) run(n int) {
	for w.calls < n {
		switch op := w.rng.IntN(8); op {
		case 0, 1, 2, 3:
			w.write(op)
		case 4:
			var page struct {
				Entries []json.RawMessage `json:"entries"`
			}
			w.do("read_stream", fmt.Sprintf(`{"stream":%q,"count":10,"reverse":true}`, loadStreams[w.rng.IntN(4)]), &page)
		case 5:
			var ctx struct {
				Context map[string]any `json:"context"`
			}
			w.do("get_context", fmt.Sprintf(`{"workflow_id":"load-wf-%d"}`, w.rng.IntN(loadWorkflows)), &ctx)
		case 6:
			w.lock()
		case 7:
			w.rate()
		}
	}
}

func loadPercentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(float64(len(d))*p+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

func TestLoadMixedCallsOverHTTPKeepEveryInvariant(t *testing.T) {
	needsFull(t, "drives 32 HTTP clients through the binary")
	calls := loadDefaultCalls
	if v := os.Getenv("MCP_REDIS_LOAD_CALLS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("MCP_REDIS_LOAD_CALLS=%q: want a positive number", v)
		}
		calls = n
	}
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, append(slices.Clone(quietEnv), tokensEnv("load", tok)),
		"--config", loadConfig(t), "--redis-url", testredis.URL(), "--prefix", prefix, "--log-level", "warn")

	tr := &http.Transport{MaxIdleConns: 2 * loadClients, MaxIdleConnsPerHost: 2 * loadClients}
	defer tr.CloseIdleConnections()
	c := &loadClient{url: p.base + "/mcp", token: tok, hc: &http.Client{Transport: tr, Timeout: time.Minute}}
	s := &loadState{}
	workers := make([]*loadWorker, loadClients)
	for i := range workers {
		workers[i] = &loadWorker{id: i, c: c, s: s, rng: rand.New(rand.NewPCG(uint64(i), 42)), lat: map[string][]time.Duration{}}
	}

	var wg sync.WaitGroup
	start := time.Now()
	for _, w := range workers {
		wg.Go(func() { w.run(calls) })
	}
	wg.Wait()
	took := time.Since(start)

	// Figures.
	lat := map[string][]time.Duration{}
	var all []time.Duration
	for _, w := range workers {
		for tool, d := range w.lat {
			lat[tool] = append(lat[tool], d...)
			all = append(all, d...)
		}
	}
	t.Logf("%d clients x %d calls: %d calls in %v, %.0f calls/s", loadClients, calls, len(all), took.Round(time.Millisecond), float64(len(all))/took.Seconds())
	tools := slices.Sorted(func(yield func(string) bool) {
		for k := range lat {
			if !yield(k) {
				return
			}
		}
	})
	for _, tool := range tools {
		d := lat[tool]
		slices.Sort(d)
		t.Logf("  %-20s %7d calls  p50 %8v  p99 %8v  max %8v", tool, len(d),
			loadPercentile(d, 0.50).Round(10*time.Microsecond), loadPercentile(d, 0.99).Round(10*time.Microsecond), d[len(d)-1].Round(10*time.Microsecond))
	}
	slices.Sort(all)
	t.Logf("  %-20s %7d calls  p50 %8v  p99 %8v  max %8v", "all", len(all),
		loadPercentile(all, 0.50).Round(10*time.Microsecond), loadPercentile(all, 0.99).Round(10*time.Microsecond), all[len(all)-1].Round(10*time.Microsecond))
	t.Logf("  locks: %v grants per resource, %d acquires found the lock held; rate: %d allowed, %d denied",
		s.grants, s.notHeld.Load(), len(s.allowed), s.denied.Load())

	if n := s.errs.Load(); n != 0 {
		t.Errorf("%d unexpected errors, the first:\n%s", n, strings.Join(s.errList, "\n"))
	}

	ctx := context.Background()
	// Locks: all given back, and the fencing counter counted every grant.
	for r := range loadResources {
		res := fmt.Sprintf("load-r%d", r)
		if n := rdb.Exists(ctx, prefix+"locks:"+res).Val(); n != 0 {
			t.Errorf("lock %s still held after every client released it", res)
		}
		fence, _ := rdb.Get(ctx, prefix+"fence:{"+prefix+"locks:"+res+"}").Int64()
		if fence != s.grants[r] || fence != s.fence[r] {
			t.Errorf("lock %s: fencing counter %d, last token seen %d, %d grants seen", res, fence, s.fence[r], s.grants[r])
		}
	}

	// Rate: no window of loadRateWindow holds more than the limit. A call
	// was decided between its sending and its answer, so limit+1 allowed
	// calls all sent and answered within less than one window are a
	// violation for certain.
	slices.SortFunc(s.allowed, func(a, b loadSpan) int { return a.sent.Compare(b.sent) })
	for i := 0; i+loadRateLimit < len(s.allowed); i++ {
		last := s.allowed[i].answered
		for _, a := range s.allowed[i : i+loadRateLimit+1] {
			if a.answered.After(last) {
				last = a.answered
			}
		}
		if span := last.Sub(s.allowed[i].sent); span < loadRateWindow {
			t.Errorf("%d check_rate calls allowed within %v, window %v, limit %d", loadRateLimit+1, span, loadRateWindow, loadRateLimit)
			break
		}
	}
	if most := loadRateLimit * (int(took/loadRateWindow) + 2); len(s.allowed) > most {
		t.Errorf("%d check_rate calls allowed in %v: more than %d", len(s.allowed), took, most)
	}
	if n := rdb.ZCard(ctx, prefix+"rate:load:load-shared").Val(); n > loadRateLimit {
		t.Errorf("the limiter holds %d units, limit %d", n, loadRateLimit)
	}

	// Streams: one entry per successful write, no more, no fewer.
	for i, name := range loadStreams {
		if got, want := rdb.XLen(ctx, prefix+name).Val(), s.writes[i].Load(); got != want {
			t.Errorf("stream %s holds %d entries, %d writes succeeded", name, got, want)
		}
	}
}

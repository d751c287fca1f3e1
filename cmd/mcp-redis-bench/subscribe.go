package main

// The --subscribe measurement: how long after a write its subscribers are
// told, through the real binary over Streamable HTTP.
//
// One server (stateful Streamable HTTP on a loopback port, a bearer token)
// serves 50 subscribers of mcp-redis://streams/workflow_events in each
// protocol era in turn: 50 sessions of 2025-11-25, each with its GET
// stream open and a resources/subscribe; then 50 subscriptions/listen
// streams of 2026-07-28 (the POST's own answer stream carries the
// notices). Meanwhile 8 other sessions call emit_workflow_event, paced at
// 1,000 calls/s for 10 s after a 0.5 s warm-up: the tool's append script
// publishes the notice the server's one Redis subscription hears, as any
// real write does (a bare XADD publishes nothing).
//
// The measure. The server coalesces a subscriber's changes into rounds at
// most one per 50 ms, so a notice answers for every write before it: for
// each write and each subscriber, the latency is the arrival of that
// subscriber's first notifications/resources/updated after Redis applied
// the write (so a re-read on that notice sees it) minus the time the
// writer sent the call. Redis applied it somewhere between the call's
// sending and its answer, and within the millisecond its entry id names
// (Redis's clock, the same as ours on one machine): the earliest and the
// latest it can have been give the two figures of each quantile, lo–hi.
// Quantiles are over every (write, subscriber) pair of the timed 10 s.
// Then a dozen writes 80 ms apart, when no round is waiting, show the path
// without the coalescing: there the first notice after a write's sending
// is the write's own, as no other is near.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	subSessions = 50
	subRate     = 1000 // writes/s
	subWarm     = 500 * time.Millisecond
	subFor      = 10 * time.Second
	subDrain    = 300 * time.Millisecond // past the last round of notices
	subIdle     = 12                     // writes one at a time, no round waiting
	subIdleGap  = 80 * time.Millisecond
	subWriters  = 8  // writer sessions
	subWorkers  = 32 // writes in flight at most
	subBound    = 30 * time.Second
	subURI      = "mcp-redis://streams/workflow_events"
	modern      = "2026-07-28"
)

var (
	emitParams    = []byte(`{"name":"emit_workflow_event","arguments":{"workflow_id":"wf-bench","phase":"load","event_type":"tick"}}`)
	updatedMethod = []byte(`"notifications/resources/updated"`)
	ackedMethod   = []byte(`"notifications/subscriptions/acknowledged"`)
)

// runSubscribe is the --subscribe measurement; it returns the exit code.
func runSubscribe(o options) int {
	if err := subscribeBench(o); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench --subscribe:", err)
		return 1
	}
	return 0
}

func subscribeBench(o options) error {
	began := time.Now()
	// The bound covers the measurement, not the build (cached most of
	// the time).
	ctx, cancel := context.WithTimeout(context.Background(), min(o.timeout, subBound))
	defer cancel()
	b, done, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	prefix := b.prefix

	srv, err := startSubServer(ctx, b.audited(o.audit).with(prefix+"sub:"))
	if err != nil {
		return err
	}
	defer srv.stop()
	base := time.Now()
	var writers []*session
	for range subWriters {
		w, err := srv.open(ctx)
		if err != nil {
			return fmt.Errorf("writer session: %w", err)
		}
		writers = append(writers, w)
	}
	defer func() {
		for _, w := range writers {
			w.end()
		}
	}()

	var results []*eraResult
	for _, era := range []struct {
		name string
		open func(context.Context, *subServer, time.Time, int) (*subscriber, error)
	}{
		{protocol + " resources/subscribe, GET stream", openLegacy},
		{modern + " subscriptions/listen", openListen},
	} {
		fmt.Fprintf(os.Stderr, "bench: %s: %d subscribers, %d writes/s for %s\n", era.name, subSessions, subRate, subFor)
		r, err := measureEra(ctx, srv, writers, base, era.open)
		if err != nil {
			return fmt.Errorf("%s: %w", era.name, err)
		}
		r.name = era.name
		results = append(results, r)
	}
	peak, err := srv.stop()
	if err != nil {
		return err
	}

	audit := "off"
	if o.audit {
		audit = "on"
	}
	fmt.Printf("\nmcp-redis write → notifications/resources/updated: %s, %d CPUs, one server (Streamable HTTP, stateful, bearer token, per-call audit %s)\n",
		b.addr, runtime.NumCPU(), audit)
	fmt.Printf("writes: emit_workflow_event calls over %d sessions, paced at %d/s, timed for %s after %s; %d subscribers of %s per era\n",
		subWriters, subRate, subFor, subWarm, subSessions, subURI)
	fmt.Printf("latency: a subscriber's first notice after Redis applied the write − the write's call sent; over every (write, subscriber) pair;\n" +
		"lo–hi: Redis applied it at the earliest / the latest it can have (between the call and its answer, within its entry id's ms)\n")
	failed := 0
	for _, r := range results {
		fmt.Printf("\n%s\n", r.name)
		fmt.Printf("  sessions %d, writes/s %.0f (%d timed, %d failed), write call p50 %.2f ms p99 %.2f ms\n",
			subSessions, r.rate, r.writes, r.failed, ms(quantile(r.calls, 0.50)), ms(quantile(r.calls, 0.99)))
		fmt.Printf("  notices/s per session %.1f (one per %.1f ms; %.1f–%.1f over the sessions), %d pairs, %d with no notice after\n",
			r.noticeRate, 1000/r.noticeRate, r.noticeMin, r.noticeMax, len(r.lo), r.missed)
		fmt.Printf("  latency p50 %s ms, p99 %s ms, max %s ms\n", span(r.lo, r.hi, 0.50), span(r.lo, r.hi, 0.99), span(r.lo, r.hi, 1))
		fmt.Printf("  one write at a time (%d, %s apart, no round waiting; the first notice after each is its own): p50 %.1f ms, max %.1f ms\n",
			r.idleWrites, subIdleGap, ms(quantile(r.idleLo, 0.50)), ms(quantile(r.idleLo, 1)))
		fmt.Printf("  server CPU over the timed writes %.0f%% of a core (%.0f µs/write); RSS at the end %.1f MiB (peak %.1f MiB)\n",
			100*r.cpu.Seconds()/subFor.Seconds(), float64(r.cpu.Microseconds())/float64(max(r.writes, 1)), mib(r.rss), mib(r.hwm))
		if r.first != nil {
			fmt.Printf("  the first failed write: %v\n", r.first)
		}
		failed += r.failed
	}
	fmt.Printf("\nserver peak RSS at exit %.1f MiB; %.1f s in all\n", mib(peak), time.Since(began).Seconds())
	if failed > 0 {
		return errors.New("some writes failed")
	}
	return nil
}

// span is the q-quantile of lo and of hi, as "lo–hi" (one figure when
// they agree to the printed digit).
func span(lo, hi []time.Duration, q float64) string {
	a, b := fmt.Sprintf("%.1f", ms(quantile(lo, q))), fmt.Sprintf("%.1f", ms(quantile(hi, q)))
	if a == b {
		return a
	}
	return a + "–" + b
}

// quantile is the nearest-rank q-quantile of sorted d (0 for none).
func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(max(int(q*float64(len(d)))-1, 0), len(d)-1)]
}

type eraResult struct {
	name                             string
	writes, failed, missed           int
	first                            error
	rate                             float64
	calls, lo, hi                    []time.Duration // sorted
	noticeRate, noticeMin, noticeMax float64
	idleWrites                       int
	idleLo                           []time.Duration
	cpu                              time.Duration
	rss, hwm                         int64
}

// measureEra opens the subscribers, runs the paced writes, then the idle
// ones, closes the subscribers and works out the latencies.
func measureEra(ctx context.Context, srv *subServer, writers []*session, base time.Time,
	open func(context.Context, *subServer, time.Time, int) (*subscriber, error)) (*eraResult, error) {
	var subs []*subscriber
	closeAll := func() {
		for _, s := range subs {
			s.close()
		}
	}
	defer closeAll()
	for i := range subSessions {
		s, err := open(ctx, srv, base, i)
		if err != nil {
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		subs = append(subs, s)
	}
	time.Sleep(100 * time.Millisecond)

	n := int((subWarm + subFor) / (time.Second / subRate))
	start := time.Since(base) + 10*time.Millisecond
	from, to := start+subWarm, start+subWarm+subFor
	var cpu time.Duration
	var wg sync.WaitGroup
	wg.Go(func() {
		sleepUntil(base, from)
		c := cpuTime(srv.cmd.Process.Pid)
		sleepUntil(base, to)
		cpu = cpuTime(srv.cmd.Process.Pid) - c
	})
	ws := paced(ctx, writers, base, start, n, time.Second/subRate, subWorkers)
	wg.Wait()
	time.Sleep(subDrain)
	idleStart := time.Since(base) + subIdleGap
	idle := paced(ctx, writers[:1], base, idleStart, subIdle, subIdleGap, 1)
	time.Sleep(subDrain)
	rss, hwm := procRSS(srv.cmd.Process.Pid)
	closeAll()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	r := &eraResult{cpu: cpu, rss: rss, hwm: hwm}
	var timed []write
	for _, w := range ws {
		if w.sent < from || w.sent >= to {
			continue
		}
		if w.err != nil {
			r.failed++
			if r.first == nil {
				r.first = w.err
			}
			continue
		}
		timed = append(timed, w)
		r.calls = append(r.calls, w.done-w.sent)
	}
	r.writes = len(timed)
	r.rate = float64(r.writes) / subFor.Seconds()
	slices.Sort(r.calls)
	arrivals := make([][]time.Duration, len(subs))
	r.noticeMin = -1
	for i, s := range subs {
		arrivals[i] = s.arrivals
		k := 0
		for _, a := range s.arrivals {
			if a >= from && a < to {
				k++
			}
		}
		rate := float64(k) / subFor.Seconds()
		r.noticeRate += rate / float64(len(subs))
		if r.noticeMin < 0 || rate < r.noticeMin {
			r.noticeMin = rate
		}
		r.noticeMax = max(r.noticeMax, rate)
	}
	r.lo, r.hi, r.missed = latencies(timed, arrivals)
	var idleOK []write
	for _, w := range idle {
		if w.err == nil {
			idleOK = append(idleOK, w)
		}
	}
	r.idleWrites = len(idleOK)
	r.idleLo, _, _ = latencies(idleOK, arrivals)
	if len(r.lo) == 0 {
		return nil, errors.New("no subscriber was told of any timed write")
	}
	return r, nil
}

// latencies gives, for every write and subscriber, the subscriber's first
// notice after Redis applied the write minus the write's sending: taking
// the earliest time Redis can have applied it (lo) and the latest (hi),
// both sorted; and how many pairs had no notice after.
func latencies(ws []write, arrivals [][]time.Duration) (lo, hi []time.Duration, missed int) {
	next := func(a []time.Duration, after time.Duration) (time.Duration, bool) {
		i := sort.Search(len(a), func(j int) bool { return a[j] > after })
		if i == len(a) {
			return 0, false
		}
		return a[i], true
	}
	for _, w := range ws {
		early, late := w.sent, w.done
		if w.applied != 0 {
			// The entry id's ms is Redis's clock when the script ran,
			// truncated to the millisecond.
			e, l := max(early, w.applied), min(late, w.applied+time.Millisecond)
			if e <= l {
				early, late = e, l
			}
		}
		for _, a := range arrivals {
			x, ok1 := next(a, early)
			y, ok2 := next(a, late)
			if !ok1 || !ok2 {
				missed++
				continue
			}
			lo, hi = append(lo, x-w.sent), append(hi, y-w.sent)
		}
	}
	slices.Sort(lo)
	slices.Sort(hi)
	return lo, hi, missed
}

// write is one emit_workflow_event call, its times since base.
type write struct {
	sent, done time.Duration
	applied    time.Duration // the entry id's ms; 0 when unknown
	id         string        // the entry id; "" when unknown
	err        error
}

// paced makes n emit_workflow_event calls, the i-th due at start+i·every
// (sent at once when overdue), from workers goroutines over the writers.
func paced(ctx context.Context, writers []*session, base time.Time, start time.Duration, n int, every time.Duration, workers int) []write {
	ws := make([]write, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for k := range workers {
		sess := writers[k%len(writers)]
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && ctx.Err() == nil; i = int(next.Add(1) - 1) {
				sleepUntil(base, start+time.Duration(i)*every)
				w := &ws[i]
				w.sent = time.Since(base)
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				a, err := sess.rpc(cctx, "tools/call", emitParams)
				cancel()
				w.done = time.Since(base)
				if err != nil {
					w.err = err
					continue
				}
				if len(a.Result.Content) > 0 {
					var out struct {
						EntryID string `json:"entry_id"`
					}
					_ = json.Unmarshal([]byte(a.Result.Content[0].Text), &out)
					w.id = out.EntryID
					msPart, _, _ := strings.Cut(out.EntryID, "-")
					if t, err := strconv.ParseInt(msPart, 10, 64); err == nil {
						w.applied = time.UnixMilli(t).Sub(base)
					}
				}
			}
		})
	}
	wg.Wait()
	return ws
}

func sleepUntil(base time.Time, at time.Duration) {
	if d := at - time.Since(base); d > 0 {
		time.Sleep(d)
	}
}

// subServer is the server under measurement and two HTTP clients of it:
// one pool for calls, one for the long-lived streams.
type subServer struct {
	cmd            *exec.Cmd
	base, token    string
	calls, streams *http.Client
	stopping       sync.Once
	peak           int64
	exit           error
}

func startSubServer(ctx context.Context, s spec) (*subServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var t [16]byte
	_, _ = rand.Read(t[:])
	token := "tok_" + hex.EncodeToString(t[:])
	cmd := s.command("--transport", "http", "--listen", addr)
	cmd.Env = append(cmd.Env, "MCP_REDIS_HTTP_AUTH_TOKENS=bench="+token)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", s.bin, err)
	}
	srv := &subServer{cmd: cmd, base: "http://" + addr, token: token,
		calls:   &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		streams: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := srv.calls.Get(srv.base + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_, _ = srv.stop()
			return nil, fmt.Errorf("the HTTP server did not answer /healthz on %s within 15s", addr)
		}
	}
}

// stop asks the server to exit, once, and returns its peak RSS.
func (s *subServer) stop() (int64, error) {
	s.stopping.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		kill := time.AfterFunc(10*time.Second, func() { _ = s.cmd.Process.Kill() })
		s.exit = s.cmd.Wait()
		kill.Stop()
		if ru, ok := s.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.peak = ru.Maxrss << 10
		}
	})
	if s.exit != nil {
		return 0, fmt.Errorf("server exit: %w", s.exit)
	}
	return s.peak, nil
}

// request is a request to /mcp with the token, and the session and the
// protocol revision when given.
func (s *subServer) request(ctx context.Context, method, session, proto string, body []byte) (*http.Request, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.base+"/mcp", rd)
	if err != nil {
		return nil, err
	}
	req.Header["Authorization"] = []string{"Bearer " + s.token}
	req.Header["Accept"] = []string{"application/json, text/event-stream"}
	if body != nil {
		req.Header["Content-Type"] = []string{"application/json"}
	}
	if session != "" {
		req.Header["Mcp-Session-Id"] = []string{session}
	}
	if proto != "" {
		req.Header["Mcp-Protocol-Version"] = []string{proto}
	}
	return req, nil
}

// session is a 2025-11-25 session: the writers' and the legacy
// subscribers'.
type session struct {
	s  *subServer
	id string
	n  atomic.Int64
}

// open initializes a session.
func (s *subServer) open(ctx context.Context) (*session, error) {
	ss := &session{s: s}
	params := `{"protocolVersion":"` + protocol + `","capabilities":{},"clientInfo":{"name":"mcp-redis-bench","version":"1"}}`
	if _, err := ss.rpc(ctx, "initialize", []byte(params)); err != nil {
		return nil, err
	}
	if ss.id == "" {
		return nil, errors.New("initialize: no Mcp-Session-Id (is the server stateless?)")
	}
	req, err := s.request(ctx, http.MethodPost, ss.id, protocol, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return nil, err
	}
	resp, err := s.calls.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return ss, nil
}

// rpc makes one request of the session and returns its answer (the last
// event of an SSE answer); an error answer or isError is an error.
func (ss *session) rpc(ctx context.Context, method string, params []byte) (*answer, error) {
	id := ss.n.Add(1)
	msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, id, method, params)
	req, err := ss.s.request(ctx, http.MethodPost, ss.id, protocol, msg)
	if err != nil {
		return nil, err
	}
	resp, err := ss.s.calls.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, bytes.TrimSpace(body))
	}
	if ss.id == "" {
		ss.id = resp.Header.Get("Mcp-Session-Id")
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		if i := bytes.LastIndex(body, []byte("data:")); i >= 0 {
			body, _, _ = bytes.Cut(body[i+len("data:"):], []byte("\n"))
		}
	}
	var a answer
	switch err := json.Unmarshal(body, &a); {
	case err != nil:
		return nil, fmt.Errorf("%s: the answer is not JSON-RPC: %w", method, err)
	case a.Error != nil:
		return nil, fmt.Errorf("%s: JSON-RPC error %d: %s", method, a.Error.Code, a.Error.Message)
	case a.Result.IsError:
		var text []string
		for _, t := range a.Result.Content {
			text = append(text, t.Text)
		}
		return nil, fmt.Errorf("%s: isError: %s", method, strings.Join(text, " "))
	}
	return &a, nil
}

// end deletes the session (the server forgets its subscriptions).
func (ss *session) end() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if req, err := ss.s.request(ctx, http.MethodDelete, ss.id, protocol, nil); err == nil {
		if resp, err := ss.s.calls.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// subscriber is one subscriber's stream of notices: the arrival of each
// notifications/resources/updated, since base, in order.
type subscriber struct {
	arrivals []time.Duration // written by the reader until done closes
	done     chan struct{}
	cancel   context.CancelFunc
	sess     *session // the 2025-11-25 era's
	closing  sync.Once
}

func (s *subscriber) close() {
	s.closing.Do(func() {
		s.cancel()
		<-s.done
		if s.sess != nil {
			s.sess.end()
		}
	})
}

// read records the notices on an SSE body until it ends; acked is closed
// at the first notifications/subscriptions/acknowledged (when not nil).
func (s *subscriber) read(body io.ReadCloser, base time.Time, acked chan<- struct{}) {
	defer close(s.done)
	defer body.Close()
	br := bufio.NewReaderSize(body, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if bytes.HasPrefix(line, []byte("data:")) {
			switch {
			case bytes.Contains(line, updatedMethod):
				s.arrivals = append(s.arrivals, time.Since(base))
			case acked != nil && bytes.Contains(line, ackedMethod):
				close(acked)
				acked = nil
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// stream opens a long-lived request whose answer is an SSE stream, and
// reads it in the background.
func (s *subServer) stream(ctx context.Context, req *http.Request, base time.Time, sub *subscriber, acked chan<- struct{}) error {
	resp, err := s.streams.Do(req)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return fmt.Errorf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), bytes.TrimSpace(b))
	}
	go sub.read(resp.Body, base, acked)
	return nil
}

// openLegacy opens a 2025-11-25 subscriber: a session, its GET stream,
// then resources/subscribe (answered once Redis confirmed the server's
// subscription).
func openLegacy(ctx context.Context, s *subServer, base time.Time, _ int) (*subscriber, error) {
	sess, err := s.open(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	sub := &subscriber{done: make(chan struct{}), cancel: cancel, sess: sess}
	req, err := s.request(sctx, http.MethodGet, sess.id, protocol, nil)
	if err == nil {
		req.Header["Accept"] = []string{"text/event-stream"}
		err = s.stream(ctx, req, base, sub, nil)
	}
	if err != nil {
		cancel()
		sess.end()
		return nil, fmt.Errorf("GET stream: %w", err)
	}
	if _, err := sess.rpc(ctx, "resources/subscribe", []byte(`{"uri":"`+subURI+`"}`)); err != nil {
		sub.close()
		return nil, err
	}
	return sub, nil
}

// openListen opens a 2026-07-28 subscriber: a subscriptions/listen
// request, no session, whose answer stream carries the notices; it is
// live at its acknowledgement.
func openListen(ctx context.Context, s *subServer, base time.Time, i int) (*subscriber, error) {
	sctx, cancel := context.WithCancel(context.Background())
	sub := &subscriber{done: make(chan struct{}), cancel: cancel}
	msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":"listen-%d","method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":[%q]},`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},`+
		`"io.modelcontextprotocol/clientInfo":{"name":"mcp-redis-bench","version":"1"}}}}`, i, subURI, modern)
	req, err := s.request(sctx, http.MethodPost, "", modern, msg)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header["Mcp-Method"] = []string{"subscriptions/listen"}
	ack := make(chan struct{})
	if err := s.stream(ctx, req, base, sub, ack); err != nil {
		cancel()
		return nil, fmt.Errorf("subscriptions/listen: %w", err)
	}
	select {
	case <-ack:
		return sub, nil
	case <-sub.done:
		cancel()
		return nil, errors.New("subscriptions/listen: the stream ended before its acknowledgement")
	case <-time.After(5 * time.Second):
		sub.close()
		return nil, errors.New("subscriptions/listen: no acknowledgement within 5s")
	}
}

// procRSS is a live process's resident set and its peak so far (VmRSS,
// VmHWM of /proc/<pid>/status), in bytes; 0 when they cannot be read.
func procRSS(pid int) (rss, hwm int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

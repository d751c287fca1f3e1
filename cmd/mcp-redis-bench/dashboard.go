package main

// The --dashboard measurement: what the web dashboard weighs, and how fast
// and how faithfully its live tail reaches open tabs, through the real
// binary over HTTP.
//
// One server (Streamable HTTP on a loopback port, a bearer token; the
// --subscribe server) serves:
//   - the page, GET /ui/, /ui/app.js and /ui/app.css, weighed as served
//     and gzipped here (compress/gzip, default level), and the MCP App
//     resource ui://mcp-redis/dashboard, read over MCP (resources/read);
//   - 50 tabs, each a GET /ui/api/live?tail=workflow_events read as the
//     page reads it (event: and data: lines, a blank line ends an event)
//     and reopened as the page reopens it when it ends (after 1 s, 2 s, …
//     ≤ 10 s, with after= the newest id it has);
//   - one stalled tab: the same GET on a socket with a 4 KiB receive
//     buffer, never read past the response header, which the server should
//     drop without the other tabs noticing. Its side of the connection is
//     watched in /proc/net/tcp: the server closing it shows there (FIN_WAIT1
//     and on) although the tab reads nothing;
//
// while 8 other sessions call emit_workflow_event, paced at 1,000 calls/s
// for 10 s after a 0.5 s warm-up (subscribe.go's writers). Beside the tabs
// 50 go-redis SUBSCRIBE clients on the stream's notice channel hear the
// same writes: the floor for any push that starts at Redis pub/sub. On 2
// cores the two load each other (both at once, the tabs' p50 and the raw
// p50 come out 1.5-2x what each gets alone), so two short phases follow:
// 2.5 s of writes with the tabs alone, then, the tabs closed, 3 s with 50
// fresh raw subscribers alone, which is also the server's CPU for the
// writes without a tab (raw subscribers talk to Redis only): the
// difference is the tabs' own cost.
//
// The measure. Each write's answer names its entry id; each tab and each
// raw subscriber notes, for every entry id it is given, when the event
// carrying it arrived. A latency is that arrival minus the write's call
// sent, over every (timed write, receiver) pair, so the write's own call
// is in it (its p50 and p99 are printed). Every tab should be given every
// entry written, once, in id order: missing, repeated and out-of-order ids
// are counted per receiver.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

const (
	dashTabs   = 50
	dashStream = keyspace.WorkflowEvent
	dashDrain  = time.Second // after the last write, for the entries on their way
	// The phases after the first, each receiver alone: the tabs for
	// dashTabsFor, then the raw subscribers for dashRawFor (the server's
	// CPU for the writes alone), each followed by dashAloneDrain.
	dashTabsFor    = 2500 * time.Millisecond
	dashRawFor     = 3 * time.Second
	dashAloneDrain = 500 * time.Millisecond
	dashBound      = 30 * time.Second
	dashSlowBuf    = 4096 // the stalled tab's SO_RCVBUF
	dashPoll       = 50 * time.Millisecond
	// dashSlowFor is how long the stalled tab is watched for its drop:
	// longer than the writes, as a server may give a blocked write many
	// seconds before it gives up on the page.
	dashSlowFor = 25 * time.Second
	dashApp     = "ui://mcp-redis/dashboard"
)

var dashAssets = []string{"/ui/", "/ui/app.js", "/ui/app.css"}

// runDashboard is the --dashboard measurement; it returns the exit code.
func runDashboard(o options) int {
	if err := dashboardBench(o); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench --dashboard:", err)
		return 1
	}
	return 0
}

func dashboardBench(o options) error {
	began := time.Now()
	// The bound covers the measurement, not the build (cached most of
	// the time).
	ctx, cancel := context.WithTimeout(context.Background(), min(o.timeout, dashBound))
	defer cancel()
	b, done, err := setUp(ctx, o)
	if err != nil {
		return err
	}
	defer done()
	rdb, prefix := b.rdb, b.prefix

	srvPrefix := prefix + "dash:"
	srv, err := startSubServer(ctx, b.audited(o.audit).with(srvPrefix))
	if err != nil {
		return err
	}
	defer srv.stop()
	pid := srv.cmd.Process.Pid
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

	r := &dashResult{load: "?"}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		r.load = strings.Fields(string(b))[0]
	}
	if r.assets, r.app, err = weighPage(ctx, srv, writers[0]); err != nil {
		return err
	}
	r.rss.start, _ = procRSS(pid)
	r.gor.idle = goroutines(ctx, srv)

	fmt.Fprintf(os.Stderr, "bench: dashboard: %d tabs + 1 stalled, %d raw subscribers, %d writes/s for %s\n", dashTabs, dashTabs, subRate, subFor)
	channel := keyspace.Keyspace{Prefix: srvPrefix}.Events(dashStream)
	raws, err := openRaw(ctx, rdb, channel, base)
	closeRaws := func() {
		for _, s := range raws {
			s.close()
		}
	}
	defer closeRaws()
	if err != nil {
		return fmt.Errorf("raw subscriber: %w", err)
	}
	tctx, stopTabs := context.WithCancel(ctx)
	defer stopTabs()
	tabs := make([]*tab, dashTabs)
	for i := range tabs {
		tabs[i] = &tab{ready: make(chan struct{}), done: make(chan struct{})}
		go tabs[i].run(tctx, srv, base)
	}
	for i, t := range tabs {
		select {
		case <-t.ready:
		case <-t.done:
			return fmt.Errorf("tab %d: %w", i, t.failure())
		case <-time.After(5 * time.Second):
			return fmt.Errorf("tab %d: no ready event within 5s (%v)", i, t.failure())
		}
	}
	slow, err := openSlow(ctx, srv, base)
	if err != nil {
		return fmt.Errorf("stalled tab: %w", err)
	}
	defer slow.conn.Close()
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		slow.follow(ctx, base, pid)
	}()
	time.Sleep(100 * time.Millisecond)
	r.rss.tabs, _ = procRSS(pid)
	r.gor.tabs = goroutines(ctx, srv)

	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		r.sample(sctx, srv)
	}()

	// 1. Every receiver at once, given the same writes.
	n := int((subWarm + subFor) / (time.Second / subRate))
	start := time.Since(base) + 10*time.Millisecond
	from, to := start+subWarm, start+subWarm+subFor
	var wg sync.WaitGroup
	wg.Go(func() {
		sleepUntil(base, from)
		c, own, rc := cpuTime(pid), cpuTime(os.Getpid()), redisCPU(ctx, rdb)
		sleepUntil(base, to)
		r.cpu, r.ownCPU, r.redisCPU = cpuTime(pid)-c, cpuTime(os.Getpid())-own, redisCPU(ctx, rdb)-rc
	})
	ws := paced(ctx, writers, base, start, n, time.Second/subRate, subWorkers)
	wg.Wait()
	time.Sleep(dashDrain)
	r.rss.end, r.rss.hwm = procRSS(pid)
	r.gor.end = goroutines(ctx, srv)
	closeRaws()

	// 2. The tabs alone.
	ws2 := r.tabsAlone.burst(ctx, writers, base, dashTabsFor, pid)
	time.Sleep(dashAloneDrain)
	stopTabs()
	for _, t := range tabs {
		<-t.done
	}
	stopSampling()
	<-sampled
	time.Sleep(300 * time.Millisecond)
	r.gor.after = goroutines(ctx, srv)
	r.rss.after, _ = procRSS(pid)

	// 3. The raw subscribers alone, and the server's CPU for the writes
	// alone (the raw subscribers talk to Redis only).
	raws2, err := openRaw(ctx, rdb, channel, base)
	defer func() {
		for _, s := range raws2 {
			s.close()
		}
	}()
	if err != nil {
		return fmt.Errorf("raw subscriber: %w", overrun(ctx, o, ws, err))
	}
	rc := redisCPU(ctx, rdb)
	ws3 := r.rawAlone.burst(ctx, writers, base, dashRawFor, pid)
	r.rawAlone.redisCPU = redisCPU(ctx, rdb) - rc
	time.Sleep(dashAloneDrain)
	for _, s := range raws2 {
		s.close()
	}
	if err := ctx.Err(); err != nil {
		return overrun(ctx, o, ws, err)
	}
	<-watched
	slow.finish()
	time.Sleep(300 * time.Millisecond)
	r.gor.final = goroutines(ctx, srv)
	r.conns = serverConns(slow.peer)
	peak, err := srv.stop()
	if err != nil {
		return err
	}

	r.slow = slow
	r.tally(ws, ws2, ws3, from, to, tabs, raws, raws2)
	r.print(o, b.addr, peak, time.Since(began))
	if r.failed+r.tabsAlone.failed+r.rawAlone.failed > 0 {
		return errors.New("some writes failed")
	}
	if r.tabs.missing+r.tabs.repeated+r.tabs.disorder+r.tabsAlone.rc.missing+r.tabsAlone.rc.repeated+r.tabsAlone.rc.disorder > 0 {
		return errors.New("some tabs were not given every entry once, in order")
	}
	return nil
}

// overrun says so when err came of the run passing its bound, as it does
// when the writes cannot keep their pace.
func overrun(ctx context.Context, o options, ws []write, err error) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("the run passed its bound of %s (the first phase's writes took %.1f s, for %s): %w",
		min(o.timeout, dashBound), (ws[len(ws)-1].done - ws[0].sent).Seconds(), subWarm+subFor, err)
}

// asset is one file of the page as served.
type asset struct {
	path, mime string
	raw, gz    int // bytes served, and gzipped here
	served     int // bytes served to Accept-Encoding: gzip
	encoding   string
}

// weighPage fetches the page's files without a token and the MCP App
// resource over session s.
func weighPage(ctx context.Context, srv *subServer, s *session) ([]asset, asset, error) {
	var as []asset
	for _, p := range dashAssets {
		body, _, err := get(ctx, srv, p, "")
		if err != nil {
			return nil, asset{}, err
		}
		zipped, h, err := get(ctx, srv, p, "gzip")
		if err != nil {
			return nil, asset{}, err
		}
		as = append(as, asset{path: p, mime: h.Get("Content-Type"), raw: len(body), gz: gzipped(body),
			served: len(zipped), encoding: h.Get("Content-Encoding")})
	}
	a, err := s.rpc(ctx, "resources/read", []byte(`{"uri":"`+dashApp+`"}`))
	if err != nil {
		return nil, asset{}, err
	}
	if len(a.Result.Contents) != 1 {
		return nil, asset{}, fmt.Errorf("resources/read %s: %d contents, not 1", dashApp, len(a.Result.Contents))
	}
	t := a.Result.Contents[0]
	return as, asset{path: dashApp, mime: t.MimeType, raw: len(t.Text), gz: gzipped([]byte(t.Text))}, nil
}

// get fetches path as served, asking for encoding when not "".
func get(ctx context.Context, srv *subServer, path, encoding string) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+path, nil)
	if err != nil {
		return nil, nil, err
	}
	if encoding != "" {
		req.Header["Accept-Encoding"] = []string{encoding}
	}
	resp, err := srv.calls.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("GET %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET %s: HTTP %d: %.200s", path, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, resp.Header, nil
}

func gzipped(b []byte) int {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	_, _ = z.Write(b)
	_ = z.Close()
	return buf.Len()
}

// goroutines is go_goroutines from the server's /metrics; -1 when it does
// not say.
func goroutines(ctx context.Context, srv *subServer) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/metrics", nil)
	if err != nil {
		return -1
	}
	req.Header["Authorization"] = []string{"Bearer " + srv.token}
	resp, err := srv.calls.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// streamID is a stream entry id, ms-seq.
type streamID struct{ ms, seq uint64 }

func parseID(s string) (streamID, bool) {
	a, b, ok := strings.Cut(s, "-")
	ms, err1 := strconv.ParseUint(a, 10, 64)
	seq, err2 := strconv.ParseUint(b, 10, 64)
	return streamID{ms, seq}, ok && err1 == nil && err2 == nil
}

func (a streamID) less(b streamID) bool { return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq }

func (a streamID) String() string {
	return strconv.FormatUint(a.ms, 10) + "-" + strconv.FormatUint(a.seq, 10)
}

// arrival is an entry id given to a receiver, and when, since base.
type arrival struct {
	id streamID
	at time.Duration
}

// tab is one open dashboard tab: its live stream, reopened as the page
// reopens it, and what arrived on it. Its goroutine writes the fields
// until done closes.
type tab struct {
	got       []arrival
	newest    streamID
	ready     chan struct{} // closed at the first ready event
	readies   int
	readyAt   time.Duration
	opens     int
	ends      []time.Duration // when a stream ended, but for the bench's closing it
	resyncs   int
	resync    string // the first resync's data
	overviews int
	batches   int // entries events
	undecoded int // entries events or ids that did not parse
	err       error
	errMu     sync.Mutex
	done      chan struct{}
}

func (t *tab) failure() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

func (t *tab) fail(err error) {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	if t.err == nil {
		t.err = err
	}
}

func (t *tab) run(ctx context.Context, srv *subServer, base time.Time) {
	defer close(t.done)
	backoff := time.Second
	for {
		q := "tail=" + dashStream
		if (t.newest != streamID{}) {
			q += "&after=" + t.newest.String()
		}
		readies := t.readies
		err := t.stream(ctx, srv, base, q)
		if ctx.Err() != nil {
			return
		}
		if t.readies == 0 {
			// It never got going: the bench stops at that.
			if err == nil {
				err = errors.New("the stream ended before its ready event")
			}
			t.fail(err)
			return
		}
		t.ends = append(t.ends, time.Since(base))
		if err != nil {
			t.fail(err)
		}
		if t.readies > readies {
			backoff = time.Second
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// stream opens one live stream and reads it to its end.
func (t *tab) stream(ctx context.Context, srv *subServer, base time.Time, query string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.base+"/ui/api/live?"+query, nil)
	if err != nil {
		return err
	}
	req.Header["Authorization"] = []string{"Bearer " + srv.token}
	req.Header["Accept"] = []string{"text/event-stream"}
	resp, err := srv.streams.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET /ui/api/live?%s: HTTP %d %s: %s", query, resp.StatusCode, resp.Header.Get("Content-Type"), bytes.TrimSpace(b))
	}
	t.opens++
	return t.read(resp.Body, base)
}

// read dispatches the events of an SSE body until it ends; nil when the
// server ended it.
func (t *tab) read(body io.Reader, base time.Time) error {
	br := bufio.NewReaderSize(body, 64<<10)
	var (
		event      string
		data, long []byte
		at         time.Duration
	)
	for {
		line, err := readLine(br, &long)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		switch {
		case len(line) == 0:
			if event != "" || len(data) > 0 {
				t.dispatch(event, data, at, base)
			}
			event, data = "", data[:0]
		case line[0] == ':':
		default:
			field, value, _ := bytes.Cut(line, []byte(":"))
			value = bytes.TrimPrefix(value, []byte(" "))
			switch string(field) {
			case "event":
				event = string(value)
			case "data":
				if len(data) == 0 {
					at = time.Since(base)
				} else {
					data = append(data, '\n')
				}
				data = append(data, value...)
			}
		}
	}
}

// readLine is the next line without its end of line; a line longer than
// br's buffer is gathered in long.
func readLine(br *bufio.Reader, long *[]byte) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		*long = append((*long)[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = br.ReadSlice('\n')
			*long = append(*long, line...)
		}
		line = *long
	}
	if err != nil {
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

func (t *tab) dispatch(event string, data []byte, at time.Duration, base time.Time) {
	switch event {
	case "ready":
		if t.readies++; t.readies == 1 {
			t.readyAt = time.Since(base)
			close(t.ready)
		}
	case "entries":
		var ev struct {
			Entries []struct {
				ID string `json:"id"`
			} `json:"entries"`
		}
		if json.Unmarshal(data, &ev) != nil {
			t.undecoded++
			return
		}
		t.batches++
		for _, e := range ev.Entries {
			id, ok := parseID(e.ID)
			if !ok {
				t.undecoded++
				continue
			}
			t.got = append(t.got, arrival{id, at})
			if t.newest.less(id) {
				t.newest = id
			}
		}
	case "overview":
		t.overviews++
	case "resync":
		if t.resyncs++; t.resync == "" {
			t.resync = string(data)
		}
	}
}

// rawSub is a plain go-redis SUBSCRIBE to the stream's notice channel.
type rawSub struct {
	ps        *redis.PubSub
	got       []arrival // written by read until done closes
	undecoded int
	done      chan struct{}
	closing   sync.Once
}

// openRaw subscribes dashTabs connections to channel, each confirmed.
func openRaw(ctx context.Context, rdb *redis.Client, channel string, base time.Time) ([]*rawSub, error) {
	var subs []*rawSub
	for range dashTabs {
		ps := rdb.Subscribe(ctx, channel)
		if _, err := ps.Receive(ctx); err != nil {
			_ = ps.Close()
			return subs, err
		}
		s := &rawSub{ps: ps, done: make(chan struct{})}
		go s.read(base)
		subs = append(subs, s)
	}
	return subs, nil
}

func (s *rawSub) read(base time.Time) {
	defer close(s.done)
	for {
		m, err := s.ps.ReceiveMessage(context.Background())
		if err != nil {
			return
		}
		at := time.Since(base)
		var n struct {
			ID string `json:"id"`
		}
		if json.Unmarshal([]byte(m.Payload), &n) != nil {
			s.undecoded++
			continue
		}
		if id, ok := parseID(n.ID); ok {
			s.got = append(s.got, arrival{id, at})
		} else {
			s.undecoded++
		}
	}
}

func (s *rawSub) close() {
	s.closing.Do(func() {
		_ = s.ps.Close()
		<-s.done
	})
}

// slowTab is a live stream opened on a socket with a small receive buffer
// and never read past its response header.
type slowTab struct {
	conn       net.Conn
	port, peer int // its local port, the server's
	opened     time.Duration

	// Watched in /proc/net/tcp while the run lasts.
	closed     time.Duration // when the server's socket left ESTABLISHED; 0 while it did not
	state      string        // the server's socket's state then, or its last
	sendQ      int           // the most bytes the server's kernel held for it
	filled     time.Duration // when sendQ last grew: the server's writes to it block after
	watchedFor time.Duration
	recvQ      int   // the most bytes waiting unread on the tab's side
	rssAtEnd   int64 // the server's VmRSS when it was dropped

	// Read once the run is over.
	read   int64
	ending string // how the stream ended when read
	last   string // its last event's name and data
}

func openSlow(ctx context.Context, srv *subServer, base time.Time) (*slowTab, error) {
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, dashSlowBuf)
		}); err != nil {
			return err
		}
		return serr
	}}
	addr := strings.TrimPrefix(srv.base, "http://")
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &slowTab{conn: conn, port: conn.LocalAddr().(*net.TCPAddr).Port, peer: conn.RemoteAddr().(*net.TCPAddr).Port}
	req := "GET /ui/api/live?tail=" + dashStream + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + srv.token +
		"\r\nAccept: text/event-stream\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		conn.Close()
		return nil, err
	}
	// The header, a byte at a time so that nothing after it is read.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var head []byte
	b := make([]byte, 1)
	for !bytes.HasSuffix(head, []byte("\r\n\r\n")) && len(head) < 8192 {
		if _, err := conn.Read(b); err != nil {
			conn.Close()
			return nil, fmt.Errorf("its response header: %w (%q)", err, head)
		}
		head = append(head, b[0])
	}
	_ = conn.SetReadDeadline(time.Time{})
	if !bytes.HasPrefix(head, []byte("HTTP/1.1 200")) || !bytes.Contains(bytes.ToLower(head), []byte("text/event-stream")) {
		conn.Close()
		return nil, fmt.Errorf("not an event stream: %q", head)
	}
	s.opened = time.Since(base)
	return s, nil
}

// TCP states in /proc/net/tcp.
var tcpStates = map[string]string{"01": "ESTABLISHED", "02": "SYN_SENT", "03": "SYN_RECV", "04": "FIN_WAIT1", "05": "FIN_WAIT2",
	"06": "TIME_WAIT", "07": "CLOSE", "08": "CLOSE_WAIT", "09": "LAST_ACK", "0A": "LISTEN", "0B": "CLOSING"}

// follow watches the stalled tab's connection every dashPoll until the
// server closes it or dashSlowFor has passed, leaving the run 3 s before
// its deadline.
func (s *slowTab) follow(ctx context.Context, base time.Time, pid int) {
	tick := time.NewTicker(dashPoll)
	defer tick.Stop()
	until := base.Add(s.opened + dashSlowFor)
	if d, ok := ctx.Deadline(); ok && d.Add(-3*time.Second).Before(until) {
		until = d.Add(-3 * time.Second)
	}
	s.watchedFor = until.Sub(base) - s.opened
	for s.closed == 0 && time.Now().Before(until) {
		rss, _ := procRSS(pid)
		s.watch(base, rss)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// watch looks the stalled tab's connection up in /proc/net/tcp.
func (s *slowTab) watch(base time.Time, rss int64) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		s.state = "unknown (" + err.Error() + ")"
		return
	}
	server, found := "", false
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		local, remote := hexPort(f[1]), hexPort(f[2])
		tx, rx, _ := strings.Cut(f[4], ":")
		switch {
		case local == s.peer && remote == s.port:
			server, found = tcpStates[f[3]], true
			// The FIN takes a sequence number: one byte more is the close.
			if q, err := strconv.ParseInt(tx, 16, 64); err == nil && int(q) > s.sendQ+1 {
				s.sendQ, s.filled = int(q), time.Since(base)
			}
		case local == s.port && remote == s.peer:
			if q, err := strconv.ParseInt(rx, 16, 64); err == nil {
				s.recvQ = max(s.recvQ, int(q))
			}
		}
	}
	if !found {
		server = "gone (reset)"
	}
	s.state = server
	if server != "ESTABLISHED" {
		s.closed, s.rssAtEnd = time.Since(base), rss
	}
}

// serverConns counts the ESTABLISHED connections to local port port in
// /proc/net/tcp.
func serverConns(port int) int {
	b, _ := os.ReadFile("/proc/net/tcp")
	n := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[3] == "01" && hexPort(f[1]) == port {
			n++
		}
	}
	return n
}

func hexPort(addr string) int {
	_, p, _ := strings.Cut(addr, ":")
	n, _ := strconv.ParseInt(p, 16, 32)
	return int(n)
}

// finish reads what the stalled tab was sent, for a second at most, and
// closes it.
func (s *slowTab) finish() {
	defer s.conn.Close()
	_ = s.conn.SetReadDeadline(time.Now().Add(time.Second))
	var tail []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := s.conn.Read(buf)
		s.read += int64(n)
		if tail = append(tail, buf[:n]...); len(tail) > 16<<10 {
			tail = slices.Clone(tail[len(tail)-8<<10:])
		}
		if bytes.HasSuffix(tail, lastChunk) {
			s.ending = "the last chunk: the server ended the response (the connection kept alive)"
			break
		}
		if err != nil {
			s.ending = ending(err, tail)
			break
		}
	}
	if i := bytes.LastIndex(tail, []byte("event: ")); i >= 0 {
		ev, _, _ := bytes.Cut(tail[i+len("event: "):], []byte("\n\n"))
		if s.last = strings.Join(strings.Fields(string(ev)), " "); len(s.last) > 160 {
			s.last = s.last[:160] + "…"
		}
	}
}

// lastChunk ends a chunked response.
var lastChunk = []byte("\r\n0\r\n\r\n")

// ending says how a read of the stalled tab ended.
func ending(err error, tail []byte) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "EOF mid-response: the server closed the connection"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by the server"
	case errors.As(err, &ne) && ne.Timeout():
		return "still open: nothing ended it within 1s of reading"
	}
	return err.Error()
}

// dashResult is what the run measured.
type dashResult struct {
	assets []asset
	app    asset
	load   string // /proc/loadavg's 1-minute figure before the run

	writes, failed int
	first          error
	calls          []time.Duration // the timed writes' calls, sorted

	tabs, raw receivers
	// The tabs' latencies while the stalled tab was held, and after; and
	// by second of the timed writes.
	heldLat, afterLat []time.Duration
	bySecond          [][]time.Duration
	tabList           []*tab

	cpu, ownCPU, redisCPU time.Duration // over the timed writes
	tabsAlone, rawAlone   phase
	unknownTabs           int // ids given that no answered write named
	unknownRaw            int

	rss   struct{ start, tabs, peak, end, hwm, after int64 }
	gor   struct{ idle, tabs, peak, end, after, final int }
	conns int // the server's open connections at the end

	slow *slowTab
}

// sample follows the server's RSS every dashPoll, and its goroutines
// every second, until ctx ends.
func (r *dashResult) sample(ctx context.Context, srv *subServer) {
	pid := srv.cmd.Process.Pid
	tick := time.NewTicker(dashPoll)
	defer tick.Stop()
	for k := 0; ; k++ {
		rss, _ := procRSS(pid)
		r.rss.peak = max(r.rss.peak, rss)
		if k%int(time.Second/dashPoll) == 0 {
			r.gor.peak = max(r.gor.peak, goroutines(ctx, srv))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// phase is a burst of writes with one kind of receiver alone.
type phase struct {
	span, cpu, redisCPU time.Duration // the server's CPU, Redis's
	writes, failed      int
	first               error
	calls               []time.Duration // sorted
	rc                  receivers
}

// burst makes d's worth of paced writes.
func (p *phase) burst(ctx context.Context, writers []*session, base time.Time, d time.Duration, pid int) []write {
	n := int(d / (time.Second / subRate))
	start := time.Since(base) + 10*time.Millisecond
	c := cpuTime(pid)
	ws := paced(ctx, writers, base, start, n, time.Second/subRate, subWorkers)
	p.cpu, p.span = cpuTime(pid)-c, time.Since(base)-start
	for _, w := range ws {
		if w.err != nil {
			if p.failed++; p.first == nil {
				p.first = w.err
			}
			continue
		}
		p.writes++
		p.calls = append(p.calls, w.done-w.sent)
	}
	slices.Sort(p.calls)
	return ws
}

// usPerWrite is the server's CPU per write of the phase, in µs.
func (p *phase) usPerWrite() float64 {
	return float64(p.cpu.Microseconds()) / float64(max(p.writes, 1))
}

// redisCPU is Redis's own CPU time so far (INFO cpu: used_cpu_sys +
// used_cpu_user), for all its clients; 0 when it cannot be read.
func redisCPU(ctx context.Context, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for line := range strings.SplitSeq(info, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "used_cpu_sys" || k == "used_cpu_user" {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

// receivers sums up 50 tabs or 50 raw subscribers.
type receivers struct {
	n                           int
	expected, minGot, maxGot    int
	missing, repeated, disorder int
	undecoded                   int
	lat                         []time.Duration // sorted
	worstP99                    time.Duration
	complete                    int // receivers given every entry once, in order
	notes                       []string
	delivered                   int // entries of timed writes given
}

// count checks one receiver's arrivals of the ids index names against
// the writes (ws[index[id]] wrote id); the latencies are of the writes
// sent in [from, to).
func (rc *receivers) count(name string, got []arrival, undecoded int, index map[streamID]int, ws []write, from, to time.Duration,
	lat func(a arrival, w write)) {
	seen := make(map[streamID]bool, len(got))
	var last streamID
	var missing, repeated, disorder, received int
	var own []time.Duration
	for _, a := range got {
		i, ok := index[a.id]
		if !ok {
			continue
		}
		if seen[a.id] {
			repeated++
			continue
		}
		seen[a.id] = true
		if !last.less(a.id) {
			disorder++
		} else {
			last = a.id
		}
		received++
		if w := ws[i]; w.sent >= from && w.sent < to {
			own = append(own, a.at-w.sent)
			rc.delivered++
		}
		if lat != nil {
			lat(a, ws[i])
		}
	}
	missing = len(index) - received
	slices.Sort(own)
	rc.lat = append(rc.lat, own...)
	rc.worstP99 = max(rc.worstP99, quantile(own, 0.99))
	if rc.n == 0 || received < rc.minGot {
		rc.minGot = received
	}
	rc.n++
	rc.maxGot = max(rc.maxGot, received)
	rc.expected = len(index)
	rc.missing += missing
	rc.repeated += repeated
	rc.disorder += disorder
	rc.undecoded += undecoded
	if missing+repeated+disorder == 0 {
		rc.complete++
	} else if len(rc.notes) < 5 {
		rc.notes = append(rc.notes, fmt.Sprintf("%s: given %d of %d, %d missing, %d repeated, %d out of order", name, received, len(index), missing, repeated, disorder))
	}
}

// indexOf maps the entry id of each answered write to its index in ws.
func indexOf(ws []write) map[streamID]int {
	index := map[streamID]int{}
	for i, w := range ws {
		if id, ok := parseID(w.id); ok && w.err == nil {
			index[id] = i
		}
	}
	return index
}

// strangers counts the arrivals of ids no index names.
func strangers(got []arrival, indexes ...map[streamID]int) int {
	n := 0
	for _, a := range got {
		known := false
		for _, index := range indexes {
			if _, ok := index[a.id]; ok {
				known = true
			}
		}
		if !known {
			n++
		}
	}
	return n
}

// tally matches every receiver's arrivals to the writes: ws of the first
// phase (timed in [from, to)), ws2 of the tabs alone, ws3 of the raw
// subscribers alone.
func (r *dashResult) tally(ws, ws2, ws3 []write, from, to time.Duration, tabs []*tab, raws, raws2 []*rawSub) {
	for _, w := range ws {
		if w.err != nil {
			if w.sent >= from && w.sent < to {
				r.failed++
			}
			if r.first == nil {
				r.first = w.err
			}
			continue
		}
		if w.sent >= from && w.sent < to {
			r.writes++
			r.calls = append(r.calls, w.done-w.sent)
		}
	}
	slices.Sort(r.calls)
	idx1, idx2, idx3 := indexOf(ws), indexOf(ws2), indexOf(ws3)
	const always = time.Duration(1<<63 - 1)
	r.tabList = tabs
	held := r.slow.closed
	r.bySecond = make([][]time.Duration, int(subFor/time.Second))
	for i, t := range tabs {
		r.tabs.count(fmt.Sprintf("tab %d", i), t.got, t.undecoded, idx1, ws, from, to, func(a arrival, w write) {
			if w.sent < from || w.sent >= to {
				return
			}
			if held == 0 || w.sent < held {
				r.heldLat = append(r.heldLat, a.at-w.sent)
			} else {
				r.afterLat = append(r.afterLat, a.at-w.sent)
			}
			if k := int((w.sent - from) / time.Second); k < len(r.bySecond) {
				r.bySecond[k] = append(r.bySecond[k], a.at-w.sent)
			}
		})
		r.tabsAlone.rc.count(fmt.Sprintf("tab %d, alone", i), t.got, 0, idx2, ws2, 0, always, nil)
		r.unknownTabs += strangers(t.got, idx1, idx2)
	}
	for _, l := range r.bySecond {
		slices.Sort(l)
	}
	for i, s := range raws {
		r.raw.count(fmt.Sprintf("raw subscriber %d", i), s.got, s.undecoded, idx1, ws, from, to, nil)
		r.unknownRaw += strangers(s.got, idx1)
	}
	for i, s := range raws2 {
		r.rawAlone.rc.count(fmt.Sprintf("raw subscriber %d, alone", i), s.got, s.undecoded, idx3, ws3, 0, always, nil)
		r.unknownRaw += strangers(s.got, idx3)
	}
	for _, l := range [][]time.Duration{r.tabs.lat, r.raw.lat, r.tabsAlone.rc.lat, r.rawAlone.rc.lat, r.heldLat, r.afterLat} {
		slices.Sort(l)
	}
}

func kib(n int) float64 { return float64(n) / 1024 }

func (r *dashResult) print(o options, addr string, peak int64, took time.Duration) {
	audit := "off"
	if o.audit {
		audit = "on"
	}
	fmt.Printf("\nmcp-redis dashboard: %s, %d CPUs (load average %s before the run), one server (Streamable HTTP, bearer token, per-call audit %s)\n",
		addr, runtime.NumCPU(), r.load, audit)

	total, totalGz, served := 0, 0, 0
	var parts []string
	for _, a := range r.assets {
		total, totalGz, served = total+a.raw, totalGz+a.gz, served+a.served
		parts = append(parts, fmt.Sprintf("%s %.1f KiB (gzip %.1f)", a.path, kib(a.raw), kib(a.gz)))
	}
	weight := "within"
	switch {
	case total > 200<<10:
		weight = "OVER THE LIMIT 200 KiB, and over"
	case total > 60<<10:
		weight = "over"
	}
	fmt.Printf("\npage: %s = %.1f KiB, gzip %.1f KiB (%s the target ≤ 60 KiB)\n", strings.Join(parts, ", "), kib(total), kib(totalGz), weight)
	enc := "no: identity, as above"
	for _, a := range r.assets {
		if a.encoding != "" {
			enc = fmt.Sprintf("yes (%s), %.1f KiB on the wire", a.encoding, kib(served))
		}
	}
	fmt.Printf("  served compressed to Accept-Encoding: gzip: %s\n", enc)
	fmt.Printf("MCP App %s (%s): %.1f KiB, gzip %.1f KiB (%.2f× the three files)\n",
		r.app.path, r.app.mime, kib(r.app.raw), kib(r.app.gz), float64(r.app.raw)/float64(max(total, 1)))

	ta, ra := &r.tabsAlone, &r.rawAlone
	fmt.Printf("\nwrites: emit_workflow_event over %d sessions, paced at %d/s; receivers: %d tabs on GET /ui/api/live?tail=%s, %d go-redis SUBSCRIBE on its notice channel\n",
		subWriters, subRate, dashTabs, dashStream, dashTabs)
	fmt.Printf("  both at once: %d timed in %s after %s (%.0f/s; %d failed), write call p50 %.2f ms p99 %.2f ms\n",
		r.writes, subFor, subWarm, float64(r.writes)/subFor.Seconds(), r.failed, ms(quantile(r.calls, 0.50)), ms(quantile(r.calls, 0.99)))
	for _, x := range []struct {
		name string
		p    *phase
	}{{"then the tabs alone", ta}, {"then the raw subscribers alone", ra}} {
		fmt.Printf("  %s: %d in %.1f s (%.0f/s; %d failed), write call p50 %.2f ms p99 %.2f ms\n", x.name, x.p.writes, x.p.span.Seconds(),
			float64(x.p.writes)/max(x.p.span.Seconds(), 1e-9), x.p.failed, ms(quantile(x.p.calls, 0.50)), ms(quantile(x.p.calls, 0.99)))
	}
	fmt.Printf("latency: arrival of the event carrying the write's entry id − the write's call sent; over every (write, receiver) pair (both at once: the timed writes)\n\n")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "receivers\tn\tentries expected\tgiven min–max\tcomplete\tmissing\trepeated\tout of order\tp50 ms\tp90 ms\tp99 ms\tmax ms\tworst p99 ms\t")
	row := func(name string, rc *receivers) {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d–%d\t%d/%d\t%d\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t\n", name, rc.n, rc.expected, rc.minGot, rc.maxGot,
			rc.complete, rc.n, rc.missing, rc.repeated, rc.disorder,
			ms(quantile(rc.lat, 0.50)), ms(quantile(rc.lat, 0.90)), ms(quantile(rc.lat, 0.99)), ms(quantile(rc.lat, 1)), ms(rc.worstP99))
	}
	ratios := func(name string, a, b *receivers) {
		ratio := func(q float64) string {
			x, y := quantile(a.lat, q), quantile(b.lat, q)
			if y == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f×", float64(x)/float64(y))
		}
		fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t%s\t%s\t%s\t%s\t\t\n", name, ratio(0.50), ratio(0.90), ratio(0.99), ratio(1))
	}
	row("dashboard tabs, both at once", &r.tabs)
	row("raw SUBSCRIBE, both at once", &r.raw)
	ratios("tabs ÷ raw", &r.tabs, &r.raw)
	row("dashboard tabs alone", &ta.rc)
	row("raw SUBSCRIBE alone", &ra.rc)
	ratios("tabs ÷ raw, each alone", &ta.rc, &ra.rc)
	tw.Flush()
	verdict := "meets"
	if quantile(r.tabs.lat, 0.99) > 250*time.Millisecond {
		verdict = "MISSES"
	}
	fmt.Printf("  tabs' p99 (both at once) %s the target ≤ 250 ms\n", verdict)
	for _, n := range slices.Concat(r.tabs.notes, r.raw.notes, ta.rc.notes, ra.rc.notes) {
		fmt.Printf("  %s\n", n)
	}
	if r.unknownTabs+r.unknownRaw > 0 {
		fmt.Printf("  ids given that no answered write named (a failed call's, or another writer's): tabs %d, raw %d\n", r.unknownTabs, r.unknownRaw)
	}
	if u := r.tabs.undecoded + r.raw.undecoded + ra.rc.undecoded; u > 0 {
		fmt.Printf("  events or ids that did not parse: tabs %d, raw %d\n", r.tabs.undecoded, r.raw.undecoded+ra.rc.undecoded)
	}

	var ready []time.Duration
	opens, ends, resyncs, overviews, batches, entries := 0, 0, 0, 0, 0, 0
	resync := ""
	var firstErr error
	for _, t := range r.tabList {
		ready = append(ready, t.readyAt)
		opens, ends, resyncs, overviews = opens+t.opens, ends+len(t.ends), resyncs+t.resyncs, overviews+t.overviews
		batches, entries = batches+t.batches, entries+len(t.got)
		if resync == "" {
			resync = t.resync
		}
		if firstErr == nil {
			firstErr = t.failure()
		}
	}
	slices.Sort(ready)
	perTab := func(n int) float64 { return float64(n) / float64(max(len(r.tabList), 1)) }
	fmt.Printf("\ntabs: %d streams opened, %d ended by the server while open (reopened with after=), %d resync events; per tab in %.1f s: %.0f entries events (%.1f entries each), %.1f overview events\n",
		opens, ends, resyncs, (subWarm + subFor + dashDrain + ta.span + dashAloneDrain).Seconds(),
		perTab(batches), float64(entries)/float64(max(batches, 1)), perTab(overviews))
	if resync != "" {
		fmt.Printf("  the first resync: %s\n", resync)
	}
	if firstErr != nil {
		fmt.Printf("  the first stream error: %v\n", firstErr)
	}

	perWrite := float64(r.cpu.Microseconds()) / float64(max(r.writes, 1))
	fmt.Printf("\nserver CPU, both at once: %.0f%% of a core, %.0f µs/write, %.1f µs per entry delivered to a tab (%d delivered)\n",
		100*r.cpu.Seconds()/subFor.Seconds(), perWrite, float64(r.cpu.Microseconds())/float64(max(r.tabs.delivered, 1)), r.tabs.delivered)
	tabsCost := (ta.usPerWrite() - ra.usPerWrite()) / dashTabs
	fmt.Printf("  the tabs alone %.0f%% of a core, %.0f µs/write; no tab (the raw subscribers talk to Redis only) %.0f%%, %.0f µs/write: so a tab costs %.1f µs per entry (%.0f%% of a core for %d tabs at %d writes/s)\n",
		100*ta.cpu.Seconds()/max(ta.span.Seconds(), 1e-9), ta.usPerWrite(), 100*ra.cpu.Seconds()/max(ra.span.Seconds(), 1e-9), ra.usPerWrite(),
		tabsCost, tabsCost*dashTabs*subRate/1e4, dashTabs, subRate)
	fmt.Printf("  Redis (INFO cpu, all its clients): both at once %.0f%% of a core, the raw subscribers alone %.0f%%; the bench's own CPU, both at once: %.0f%%\n",
		100*r.redisCPU.Seconds()/subFor.Seconds(), 100*ra.redisCPU.Seconds()/max(ra.span.Seconds(), 1e-9), 100*r.ownCPU.Seconds()/subFor.Seconds())
	fmt.Printf("server RSS: start %.1f MiB, %d tabs open %.1f MiB, peak sampled %.1f MiB (VmHWM %.1f), end %.1f MiB, tabs closed %.1f MiB; at exit peak %.1f MiB\n",
		mib(r.rss.start), dashTabs, mib(r.rss.tabs), mib(r.rss.peak), mib(r.rss.hwm), mib(r.rss.end), mib(r.rss.after), mib(peak))
	if r.gor.idle >= 0 {
		fmt.Printf("goroutines (go_goroutines): idle %d, tabs open %d, peak sampled %d, end %d, tabs closed %d, stalled tab gone too %d (%d connections open then: the writers' keep-alives)\n",
			r.gor.idle, r.gor.tabs, r.gor.peak, r.gor.end, r.gor.after, r.gor.final, r.conns)
	} else {
		fmt.Printf("goroutines: /metrics has no go_goroutines\n")
	}

	s := r.slow
	fmt.Printf("\nstalled tab (SO_RCVBUF %d, not read after its header; opened at %.2f s): ", dashSlowBuf, s.opened.Seconds())
	if s.closed != 0 {
		fmt.Printf("dropped by the server after %.2f s (its socket %s; server RSS then %.1f MiB)\n",
			(s.closed - s.opened).Seconds(), s.state, mib(s.rssAtEnd))
	} else {
		fmt.Printf("NOT dropped: the server's socket still %s after %.1f s\n", s.state, s.watchedFor.Seconds())
	}
	fmt.Printf("  most bytes queued: %.1f KiB in the server's send queue (full %.2f s after the tab opened), %.1f KiB unread at the tab\n",
		kib(s.sendQ), (s.filled - s.opened).Seconds(), kib(s.recvQ))
	fmt.Printf("  read at the end: %.1f KiB, then %s; its last event: %s\n", kib(int(s.read)), s.ending, s.last)
	var p99s []string
	for _, l := range r.bySecond {
		p99s = append(p99s, fmt.Sprintf("%.0f", ms(quantile(l, 0.99))))
	}
	fmt.Printf("  the other tabs' p99 ms by second of the timed writes: %s\n", strings.Join(p99s, " "))
	if s.closed != 0 && len(r.afterLat) > 0 {
		fmt.Printf("  the other tabs' latency while it was held: p50 %.1f ms p99 %.1f ms (%d pairs); after the drop: p50 %.1f ms p99 %.1f ms (%d pairs)\n",
			ms(quantile(r.heldLat, 0.5)), ms(quantile(r.heldLat, 0.99)), len(r.heldLat),
			ms(quantile(r.afterLat, 0.5)), ms(quantile(r.afterLat, 0.99)), len(r.afterLat))
	}
	for _, e := range []error{r.first, ta.first, ra.first} {
		if e != nil {
			fmt.Printf("\nthe first failed write: %v\n", e)
			break
		}
	}
	fmt.Printf("\n%.1f s in all\n", took.Seconds())
}

// Package transport serves an MCP server to clients. It knows no tool by
// name.
package transport

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// Stdio serves MCP as newline-delimited JSON-RPC on a reader and a writer,
// the way a host that spawns the server talks to it.
//
// It replaces mcp-go's stdio loop, which parses every request many times
// over and is the largest cost of a call: here a line is read once, checked
// once (parseEnvelope), handed to MCPServer.HandleMessage (or, for a plain
// tools/call with Calls set, straight to the tool: fastcall.go), and the
// answer written through one buffered writer. Requests run concurrently (up to
// MaxInFlight), so a slow call never holds up the others. Reading never
// waits for a call: notifications (notifications/cancelled among them),
// answers to the server's own requests and pings are served at once, in
// order, on the reading goroutine, and a request over the bound is
// answered at once with a busy error.
type Stdio struct {
	Server *server.MCPServer
	// MaxMessageBytes bounds one line; a longer one is answered with a
	// JSON-RPC error as soon as it crosses the bound, and the rest of it
	// is discarded unread into memory.
	MaxMessageBytes int
	// MaxInFlight bounds the requests served at once; one more is
	// answered with errBusy (-32000) until one of them ends.
	MaxInFlight int
	// Calls, when set, serves plain tools/call requests without
	// MCPServer.HandleMessage (see fastcall.go). Set it only for a server
	// that registers no session tools, tool filters, tool middleware
	// (other than in the handlers Calls returns), schema validation,
	// request logger or tracer: those would be skipped.
	Calls ToolCalls
	// Offered, when set, narrows the tools a not-found answer lists to
	// those the caller is offered.
	Offered Offered
	Log     *slog.Logger
}

// Serve runs until in ends (EOF: the host went away) or ctx is cancelled.
// Requests still running are then cancelled and waited for; a read still
// blocked on in is left behind (the process is about to exit).
//
// One goroutine reads; each request it admits runs on a worker goroutine
// of its own until it ends, at most MaxInFlight at once (workers are kept
// for the next requests; see loop.jobs).
func (t *Stdio) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	sess := &session{notes: make(chan mcp.JSONRPCNotification, 100)}
	if err := t.Server.RegisterSession(ctx, sess); err != nil {
		return fmt.Errorf("register stdio session: %w", err)
	}
	defer t.Server.UnregisterSession(context.Background(), sess.SessionID())
	// stdio has no MCP session id: "stdio" is mcp-go's key for the one
	// client, not an id a record should carry.
	ctx, cancel := context.WithCancel(mcpkit.WithoutSessionID(t.Server.WithContext(ctx, sess)))
	defer cancel()

	l := &loop{t: t, ctx: ctx, w: &writer{w: bufio.NewWriterSize(out, 64<<10)},
		lines: newLineReader(in, t.MaxMessageBytes), slots: make(chan struct{}, max(t.MaxInFlight, 1)),
		done: make(chan error, 1), calls: map[string]*call{}, jobs: make(chan job)}
	if t.Calls != nil {
		l.initHooks, l.fast = fastHooks(t.Server)
	}
	l.running.Go(func() { t.forwardNotifications(ctx, sess, l.w) })
	go l.read()

	var err error
	select {
	case err = <-l.done:
	case <-ctx.Done():
	}
	l.mu.Lock()
	l.stopping = true
	l.mu.Unlock()
	cancel()
	l.running.Wait()
	l.workers.Wait()
	if errors.Is(err, io.EOF) || ctx.Err() != nil {
		err = nil
	}
	if ferr := l.w.flushErr(); ferr != nil && err == nil {
		err = ferr
	}
	return err
}

// loop is the state of one Serve.
type loop struct {
	t     *Stdio
	ctx   context.Context
	w     *writer
	lines *lineReader
	slots chan struct{}
	done  chan error // the read error that ends the input

	mu       sync.Mutex
	stopping bool
	running  sync.WaitGroup // requests being served, and the notifier
	// calls are the requests being served, by callKey of their id, so a
	// cancellation reaches one that mcp-go has not registered yet (it
	// does so only some way into HandleMessage, on another goroutine).
	calls map[string]*call

	// jobs hands a request to an idle worker. Workers outlive their
	// calls, so a call runs on a stack already grown by the ones before
	// (a fresh goroutine per call spent an eighth of its CPU growing its
	// stack); there are at most maxWorkers, started as calls need them.
	jobs     chan job
	workers  sync.WaitGroup
	nWorkers int // read's own count: only read starts workers

	// fast: plain tools/call requests are served by callFast, which
	// runs initHooks as mcp-go would.
	fast      bool
	initHooks []server.OnRequestInitializationFunc
}

// job is one admitted request for a worker.
type job struct {
	c    *call
	line []byte
	id   json.RawMessage
	call bool // a tools/call
}

// call is one request being served.
type call struct {
	ctx    context.Context
	cancel context.CancelFunc
	key    string // callKey of its id
}

// read reads every line, answers what needs no call at once, and starts
// each request it admits on a goroutine of its own.
func (l *loop) read() {
	for {
		line, err := l.lines.next()
		if errors.Is(err, errTooLong) {
			l.t.Log.Warn("stdio message over the limit skipped", "limit_bytes", l.t.MaxMessageBytes)
			l.w.write(errorResponse(nil, mcp.INVALID_REQUEST, fmt.Sprintf("message exceeds %d bytes (stdio.max_message_bytes)", l.t.MaxMessageBytes)))
			continue
		}
		if err != nil {
			l.done <- err
			return
		}
		if l.ctx.Err() != nil {
			return
		}
		if len(line) == 0 {
			continue // blank lines are tolerated
		}
		head, resp := parseEnvelope(line)
		if resp != nil {
			l.w.write(resp)
			continue
		}
		if head.Method == string(mcp.MethodNotificationCancelled) {
			l.cancel(line)
		}
		line = encodeIDs(line, head.ID, head.Method)
		if !head.Request() || head.Method == string(mcp.MethodPing) {
			// Quick, and never queued behind calls: a cancellation must
			// reach its call while the call runs.
			l.w.write(l.t.handle(l.ctx, line, head.ID))
			continue
		}
		select {
		case l.slots <- struct{}{}:
		default:
			l.w.write(errorResponse(echoID(head.ID), errBusy, fmt.Sprintf(
				"server busy: %d requests are already in flight on this stdio connection (the limit); retry once one of them is answered", cap(l.slots))))
			continue
		}
		c := l.begin(head.ID)
		if c == nil {
			return
		}
		l.dispatch(job{c: c, line: line, id: head.ID, call: l.fast && head.Method == string(mcp.MethodToolsCall)})
	}
}

// dispatch hands j to an idle worker, or to a new one. A request holds
// a slot from admission until its answer is ready, and a worker holds one
// job at a time, so the workers busy at once are at most the slots plus
// those still writing an answer; past twice the slots, dispatch waits for
// a worker to come back (one is writing, and is about to) rather than
// start another.
func (l *loop) dispatch(j job) {
	select {
	case l.jobs <- j:
		return
	default:
	}
	if l.nWorkers >= 2*cap(l.slots) {
		select {
		case l.jobs <- j:
		case <-l.ctx.Done():
			// The workers are ending: the call, cancelled, ends at once.
			l.serve(j)
		}
		return
	}
	l.nWorkers++
	l.workers.Go(func() { l.work(j) })
}

// work serves j, then each job handed to it, until Serve stops.
func (l *loop) work(j job) {
	for {
		l.serve(j)
		select {
		case j = <-l.jobs:
		case <-l.ctx.Done():
			return
		}
	}
}

// begin registers a request about to be served, or returns nil when Serve
// is stopping.
func (l *loop) begin(id json.RawMessage) *call {
	ctx, cancel := context.WithCancel(l.ctx)
	c := &call{ctx: ctx, cancel: cancel, key: callKey(id)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		cancel()
		return nil
	}
	l.running.Add(1)
	l.calls[c.key] = c
	return c
}

// serve answers the request begin registered, and frees its slot.
func (l *loop) serve(j job) {
	defer l.running.Done()
	c := j.c
	var resp mcp.JSONRPCMessage
	if j.call {
		resp = l.t.handleCall(c.ctx, j.line, j.id, l.initHooks)
	} else {
		resp = l.t.handle(c.ctx, j.line, j.id)
	}
	c.cancel()
	l.mu.Lock()
	if l.calls[c.key] == c {
		delete(l.calls, c.key)
	}
	l.mu.Unlock()
	// Free the slot before the answer goes out: a client that has its
	// answer may send the next request at once.
	<-l.slots
	l.w.write(resp)
}

// cancel cancels the call a notifications/cancelled (msg, as sent) names.
// mcp-go is handed the notification too, and cancels the call as well
// when it has registered it.
func (l *loop) cancel(msg []byte) {
	id, ok := cancelledID(msg)
	if !ok {
		return
	}
	l.mu.Lock()
	c := l.calls[callKey(id)]
	l.mu.Unlock()
	if c != nil {
		c.cancel()
	}
}

// cancelledID is the params.requestId of a notifications/cancelled
// (msg), as sent.
func cancelledID(msg []byte) ([]byte, bool) {
	params, _, ok := memberSpan(msg, jsonwalk.SkipSpace(msg, 0), "params", true)
	if !ok || msg[params] != '{' {
		return nil, false
	}
	start, end, ok := memberSpan(msg, params, "requestId", false)
	if !ok {
		return nil, false
	}
	return msg[start:end], true
}

// callKey identifies a request by its id as sent, the way mcp-go tells
// them apart: a string by its value, a number by its text (encodeIDs
// gives mcp-go the text of every number it would not echo exactly).
func callKey(id []byte) string {
	if len(id) > 0 && id[0] == '"' {
		if bytes.IndexByte(id, '\\') < 0 {
			return string(id[:len(id)-1])
		}
		var s string
		_ = json.Unmarshal(id, &s)
		return `"` + s
	}
	return string(id)
}

// errBusy is the JSON-RPC error code of a request over the in-flight
// bound: the implementation-defined server error range.
const errBusy = -32000

// handle answers one message, recovering a panic into an internal error.
func (t *Stdio) handle(ctx context.Context, line []byte, id json.RawMessage) (resp mcp.JSONRPCMessage) {
	defer func() {
		if r := recover(); r != nil {
			t.Log.Error("panic serving a message", "panic", r)
			resp = errorResponse(echoID(id), mcp.INTERNAL_ERROR, "internal error")
		}
	}()
	return amendAnswer(ctx, t.Server, t.Offered, t.Server.HandleMessage(ctx, line))
}

// handleCall answers a tools/call, on the fast path when it takes it,
// recovering a panic into an internal error.
func (t *Stdio) handleCall(ctx context.Context, line []byte, id json.RawMessage, hooks []server.OnRequestInitializationFunc) (resp mcp.JSONRPCMessage) {
	defer func() {
		if r := recover(); r != nil {
			t.Log.Error("panic serving a message", "panic", r)
			resp = errorResponse(echoID(id), mcp.INTERNAL_ERROR, "internal error")
		}
	}()
	if resp, ok := callFast(ctx, t.Calls, line, hooks); ok {
		return resp
	}
	return amendAnswer(ctx, t.Server, t.Offered, t.Server.HandleMessage(ctx, line))
}

func (t *Stdio) forwardNotifications(ctx context.Context, s *session, w *writer) {
	for {
		select {
		case n := <-s.notes:
			w.write(n)
		case <-ctx.Done():
			return
		}
	}
}

func errorResponse(id any, code int, msg string) mcp.JSONRPCMessage {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Error: mcp.NewJSONRPCErrorDetails(code, msg, nil)}
}

// writer writes one message a line, whole, and flushes at once: the host
// waits for each answer. Answers ready together go out together: a writer
// that sees another waiting for the lock leaves the flush to it, so the
// last in line flushes what all of them wrote, and a lone answer is never
// held back.
type writer struct {
	waiting atomic.Int32 // writers between wanting the lock and leaving it
	mu      sync.Mutex
	w       *bufio.Writer
	err     error
}

func (w *writer) write(msg mcp.JSONRPCMessage) {
	if msg == nil {
		return
	}
	buf := outBufs.Get().(*bytes.Buffer)
	defer putOutBuf(buf)
	b := encodeAnswer(buf, msg)
	w.waiting.Add(1)
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.w.Write(b); err != nil && w.err == nil {
		w.err = err
	}
	if w.waiting.Add(-1) == 0 && w.err == nil {
		w.err = w.w.Flush()
	}
}

// encodeAnswer writes msg as json.Marshal would, and a newline, into buf
// (empty), with the request ids encodeIDs replaced put back.
func encodeAnswer(buf *bytes.Buffer, msg mcp.JSONRPCMessage) []byte {
	// Both write what json.Marshal would, and the newline, into a buffer
	// that is reused; Encode writes nothing on failure.
	if b, ok := appendToolAnswer(buf.AvailableBuffer(), msg); ok {
		buf.Write(b)
		buf.WriteByte('\n')
	} else if json.NewEncoder(buf).Encode(msg) != nil {
		buf.Reset()
		_ = json.NewEncoder(buf).Encode(errorResponse(nil, mcp.INTERNAL_ERROR, "internal error: unencodable response"))
	}
	return restoreIDs(buf.Bytes())
}

// outBufs are the buffers answers are encoded into.
var outBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putOutBuf returns buf to outBufs, unless an answer made it large: one
// big answer must not pin its memory for the rest of the process.
func putOutBuf(buf *bytes.Buffer) {
	if buf.Cap() > 64<<10 {
		return
	}
	buf.Reset()
	outBufs.Put(buf)
}

func (w *writer) flushErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

var errTooLong = errors.New("line too long")

// lineReader reads newline-delimited messages of at most max bytes,
// trimming CR and surrounding space. A longer line is reported as soon as
// it crosses max, whether or not its newline has come, and the rest of it
// is then discarded as it arrives, never kept.
type lineReader struct {
	r   *bufio.Reader
	max int
	// skipping: the line under way was reported too long; its rest is
	// discarded before the next line is read.
	skipping bool
}

func newLineReader(in io.Reader, max int) *lineReader {
	if max <= 0 {
		max = 4 << 20
	}
	return &lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
}

// next returns the next line. It looks at each read's bytes as they come
// (rather than waiting for a newline or a full buffer, as ReadSlice does),
// so a line is measured against max while it is still arriving.
func (l *lineReader) next() ([]byte, error) {
	if l.skipping {
		if err := l.skip(); err != nil {
			return nil, err
		}
	}
	var buf []byte
	for {
		avail, err := l.arrived()
		if i := bytes.IndexByte(avail, '\n'); i >= 0 {
			n := len(buf) + i
			if i > 0 && avail[i-1] == '\r' || i == 0 && len(buf) > 0 && buf[len(buf)-1] == '\r' {
				n-- // the line's own CR
			}
			if n > l.max {
				_, _ = l.r.Discard(i + 1)
				return nil, errTooLong
			}
			buf = append(buf, avail[:i]...)
			_, _ = l.r.Discard(i + 1)
			return bytes.TrimSpace(buf), nil
		}
		if len(buf)+len(avail) > l.max+1 { // +1: a CR may end the line
			_, _ = l.r.Discard(len(avail))
			l.skipping = true
			return nil, errTooLong
		}
		buf = append(buf, avail...)
		_, _ = l.r.Discard(len(avail))
		if err != nil {
			if len(bytes.TrimSpace(buf)) == 0 {
				return nil, err
			}
			// A last line without a newline is still a message.
			return bytes.TrimSpace(buf), nil
		}
	}
}

// skip discards input up to and including the next newline.
func (l *lineReader) skip() error {
	for {
		avail, err := l.arrived()
		if i := bytes.IndexByte(avail, '\n'); i >= 0 {
			_, _ = l.r.Discard(i + 1)
			l.skipping = false
			return nil
		}
		_, _ = l.r.Discard(len(avail))
		if err != nil {
			return err
		}
	}
}

// arrived waits until some input is buffered and returns all of it
// (without consuming it), or the read error with whatever is left.
func (l *lineReader) arrived() ([]byte, error) {
	_, err := l.r.Peek(1)
	avail, _ := l.r.Peek(l.r.Buffered())
	return avail, err
}

// session is the one client of a stdio server.
type session struct {
	clientInfo
	notes       chan mcp.JSONRPCNotification
	initialized atomic.Bool
	level       atomic.Value // mcp.LoggingLevel
}

func (s *session) SessionID() string                                   { return "stdio" }
func (s *session) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.notes }
func (s *session) Initialize()                                         { s.initialized.Store(true) }
func (s *session) Initialized() bool                                   { return s.initialized.Load() }

// SetLogLevel and GetLogLevel let a client choose which log notifications
// it receives (logging/setLevel).
func (s *session) SetLogLevel(l mcp.LoggingLevel) { s.level.Store(l) }

func (s *session) GetLogLevel() mcp.LoggingLevel {
	if l, ok := s.level.Load().(mcp.LoggingLevel); ok {
		return l
	}
	return mcp.LoggingLevelError
}

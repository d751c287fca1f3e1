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
)

// Stdio serves MCP as newline-delimited JSON-RPC on a reader and a writer,
// the way a host that spawns the server talks to it.
//
// It replaces mcp-go's stdio loop, which parses every request many times
// over and is the largest cost of a call: here a line is read once, handed
// to MCPServer.HandleMessage, and the answer written through one buffered
// writer. Requests run concurrently (up to MaxInFlight), so a slow call
// never holds up the others; notifications (no id) are handled in order on
// the reading goroutine.
type Stdio struct {
	Server *server.MCPServer
	// MaxMessageBytes bounds one line; a longer one is answered with a
	// JSON-RPC error and skipped without being held in memory.
	MaxMessageBytes int
	// MaxInFlight bounds the requests served at once; reading pauses
	// while that many are running.
	MaxInFlight int
	Log         *slog.Logger
}

// Serve runs until in ends (EOF: the host went away) or ctx is cancelled.
// Requests still running are then cancelled and waited for; a read still
// blocked on in is left behind (the process is about to exit).
//
// The goroutine that reads a request serves it, after starting a fresh
// goroutine to read the next line: the request runs on a goroutine that is
// already awake, which saves a hand-off on every call.
func (t *Stdio) Serve(ctx context.Context, in io.Reader, out io.Writer) error {
	sess := &session{notes: make(chan mcp.JSONRPCNotification, 100)}
	if err := t.Server.RegisterSession(ctx, sess); err != nil {
		return fmt.Errorf("register stdio session: %w", err)
	}
	defer t.Server.UnregisterSession(context.Background(), sess.SessionID())
	ctx, cancel := context.WithCancel(t.Server.WithContext(ctx, sess))
	defer cancel()

	l := &loop{t: t, ctx: ctx, w: &writer{w: bufio.NewWriterSize(out, 64<<10)},
		lines: newLineReader(in, t.MaxMessageBytes), slots: make(chan struct{}, max(t.MaxInFlight, 1)),
		done: make(chan error, 1)}
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
}

// read reads lines until one is a request, then serves it; exactly one
// goroutine reads at a time.
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
		if len(line) == 0 {
			continue // blank lines are tolerated
		}
		if resp := checkEnvelope(line); resp != nil {
			l.w.write(resp)
			continue
		}
		if !isRequest(line) {
			l.w.write(l.t.handle(l.ctx, line))
			continue
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.ctx.Done():
			return
		}
		l.mu.Lock()
		if l.stopping {
			l.mu.Unlock()
			return
		}
		l.running.Add(1)
		l.mu.Unlock()
		go l.read()
		l.w.write(l.t.handle(l.ctx, line))
		<-l.slots
		l.running.Done()
		return
	}
}

// handle answers one message, recovering a panic into an internal error.
func (t *Stdio) handle(ctx context.Context, line []byte) (resp mcp.JSONRPCMessage) {
	defer func() {
		if r := recover(); r != nil {
			t.Log.Error("panic serving a message", "panic", r)
			resp = errorResponse(requestID(line), mcp.INTERNAL_ERROR, "internal error")
		}
	}()
	return t.Server.HandleMessage(ctx, line)
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

// isRequest tells requests, which run concurrently, from notifications,
// which run in order on the reading goroutine. A request must carry an
// "id" member, so a line without the text "id" is not one; a notification
// whose params happen to hold that text only runs concurrently, which is
// harmless. Parsing every line here would cost as much as a tool's own
// argument validation.
func isRequest(line []byte) bool {
	return bytes.Contains(line, []byte(`"id"`))
}

func requestID(line []byte) any {
	var m struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(line, &m) != nil {
		return nil
	}
	return m.ID
}

func errorResponse(id any, code int, msg string) mcp.JSONRPCMessage {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Error: mcp.NewJSONRPCErrorDetails(code, msg, nil)}
}

// writer writes one message a line, whole, and flushes at once: the host
// waits for each answer.
type writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	err error
}

func (w *writer) write(msg mcp.JSONRPCMessage) {
	if msg == nil {
		return
	}
	b, err := json.Marshal(msg)
	if err != nil {
		b, _ = json.Marshal(errorResponse(nil, mcp.INTERNAL_ERROR, "internal error: unencodable response"))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return
	}
	w.w.Write(b)
	w.w.WriteByte('\n')
	w.err = w.w.Flush()
}

func (w *writer) flushErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

var errTooLong = errors.New("line too long")

// lineReader reads newline-delimited messages of at most max bytes,
// trimming CR and surrounding space. A longer line is drained, not kept.
type lineReader struct {
	r   *bufio.Reader
	max int
}

func newLineReader(in io.Reader, max int) *lineReader {
	if max <= 0 {
		max = 4 << 20
	}
	return &lineReader{r: bufio.NewReaderSize(in, 64<<10), max: max}
}

func (l *lineReader) next() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(buf)+len(chunk) > l.max+2 { // +2: the line's own CR LF
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = l.r.ReadSlice('\n')
			}
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, err
			}
			return nil, errTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err != nil && len(bytes.TrimSpace(buf)) == 0:
			return nil, err
		}
		// A last line without a newline is still a message.
		return bytes.TrimSpace(buf), nil
	}
}

// session is the one client of a stdio server.
type session struct {
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

package transport

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// sseServer serves the legacy HTTP+SSE transport (protocol 2024-11-05):
// GET /sse opens a session's event stream, POST /message?sessionId=…
// carries its messages, and the answers travel on the stream.
//
// mcp-go's SSE server is not used: it answers every POST 202 and runs it
// on a goroutine detached from the stream, so closing the stream cancels
// no call (a lock wait went on and its grant was given to nobody); its
// answers queue without a bound for a client that stops reading (22 →
// 662 MiB observed); and any caller may post to any session. Here a
// session belongs to the token that opened it, its calls run under the
// stream's context, at most sseMaxInFlight run at once, and a client
// that cannot keep up with its answers loses its session instead of
// holding them in memory.
type sseServer struct {
	mcp      *server.MCPServer
	offered  Offered
	sessions *sessions
	// writeTimeout bounds writing one event to a stream.
	writeTimeout time.Duration
	keepAlive    time.Duration
	log          *slog.Logger

	mu   sync.Mutex
	live map[string]*sseSession
	// running counts the calls whose answers are still to be queued.
	running atomic.Int64
}

const (
	// sseMaxInFlight bounds the calls one SSE session runs at once; one
	// more POST is answered 429.
	sseMaxInFlight = 8
	// sseMaxQueued and sseMaxQueuedBytes bound the answers and
	// notifications waiting for a session's stream; a session whose
	// stream falls that far behind is ended.
	sseMaxQueued      = 64
	sseMaxQueuedBytes = 8 << 20
)

func newSSEServer(s *server.MCPServer, table *sessions, writeTimeout time.Duration, log *slog.Logger) *sseServer {
	return &sseServer{mcp: s, sessions: table, writeTimeout: writeTimeout, keepAlive: 15 * time.Second, log: log,
		live: map[string]*sseSession{}}
}

// sseSession is one SSE client; it implements server.ClientSession.
type sseSession struct {
	clientInfo
	id, owner string
	ctx       context.Context // ends with the stream, or when the session is ended
	end       context.CancelCauseFunc
	notes     chan mcp.JSONRPCNotification
	queue     chan []byte
	queued    atomic.Int64 // bytes in queue
	slots     chan struct{}

	initialized atomic.Bool
	level       atomic.Value // mcp.LoggingLevel
}

func (s *sseSession) SessionID() string                                   { return s.id }
func (s *sseSession) NotificationChannel() chan<- mcp.JSONRPCNotification { return s.notes }
func (s *sseSession) Initialize()                                         { s.initialized.Store(true) }
func (s *sseSession) Initialized() bool                                   { return s.initialized.Load() }
func (s *sseSession) SetLogLevel(l mcp.LoggingLevel)                      { s.level.Store(l) }

func (s *sseSession) GetLogLevel() mcp.LoggingLevel {
	if l, ok := s.level.Load().(mcp.LoggingLevel); ok {
		return l
	}
	return mcp.LoggingLevelError
}

// errSlowClient ends a session whose client does not read its stream.
var errSlowClient = errors.New("the client does not read its event stream fast enough")

// enqueue puts one encoded message on the session's stream, or ends the
// session when the stream is too far behind.
func (s *sseSession) enqueue(msg []byte, log *slog.Logger) {
	ev := make([]byte, 0, len(msg)+24)
	ev = append(ev, "event: message\ndata: "...)
	ev = append(ev, msg...)
	ev = append(ev, "\n\n"...)
	n := int64(len(ev))
	if s.ctx.Err() != nil {
		return
	}
	// One event always fits an empty queue, however large.
	if q := s.queued.Add(n); q > sseMaxQueuedBytes && q != n {
		s.queued.Add(-n)
		s.fail(errSlowClient, log)
		return
	}
	select {
	case s.queue <- ev:
	default:
		s.queued.Add(-n)
		s.fail(errSlowClient, log)
	}
}

func (s *sseSession) fail(err error, log *slog.Logger) {
	if s.ctx.Err() == nil {
		log.Warn("sse: session ended", "session", s.id, "reason", err.Error())
	}
	s.end(err)
}

// handleStream serves GET /sse: it opens a session and writes its events
// until the client goes away or the session is ended.
func (x *sseServer) handleStream(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed: GET opens the event stream", http.StatusMethodNotAllowed)
		return
	}
	if !x.sessions.admit() {
		sessionsFull(w, x.sessions.max)
		return
	}
	id := uuid.NewString()
	owner := mcpkit.CallerFrom(r.Context())
	x.sessions.add(id, owner)
	x.sessions.done()
	defer x.sessions.remove(id)

	ctx, end := context.WithCancelCause(r.Context())
	defer end(context.Canceled)
	sess := &sseSession{id: id, owner: owner, ctx: ctx, end: end,
		notes: make(chan mcp.JSONRPCNotification, 100), queue: make(chan []byte, sseMaxQueued),
		slots: make(chan struct{}, sseMaxInFlight)}
	if err := x.mcp.RegisterSession(ctx, sess); err != nil {
		http.Error(w, "could not open the session", http.StatusInternalServerError)
		return
	}
	defer x.mcp.UnregisterSession(context.WithoutCancel(ctx), id)
	x.mu.Lock()
	x.live[id] = sess
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.live, id)
		x.mu.Unlock()
	}()

	go func() {
		for {
			select {
			case n := <-sess.notes:
				if b, err := json.Marshal(n); err == nil {
					sess.enqueue(b, x.log)
				}
			case <-ctx.Done():
				return
			}
		}
	}()

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(x.writeTimeout))
		if _, err := w.Write(b); err != nil {
			sess.fail(err, x.log)
			return false
		}
		if err := rc.Flush(); err != nil {
			sess.fail(err, x.log)
			return false
		}
		return true
	}
	if !write([]byte("event: endpoint\ndata: /message?sessionId=" + id + "\n\n")) {
		return
	}
	tick := time.NewTicker(x.keepAlive)
	defer tick.Stop()
	for {
		select {
		case ev := <-sess.queue:
			ok := write(restoreIDs(ev))
			sess.queued.Add(-int64(len(ev)))
			if !ok {
				return
			}
		case <-tick.C:
			// A comment: EventSource clients ignore it; proxies see traffic.
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// handleMessage serves POST /message?sessionId=…: 202 once the message is
// taken, its answer on the stream. The envelope middleware has buffered
// and checked the body and hands its parse on in the context.
func (x *sseServer) handleMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id := r.URL.Query().Get("sessionId")
	if id == "" {
		http.Error(w, "bad request: sessionId is required", http.StatusBadRequest)
		return
	}
	x.mu.Lock()
	sess := x.live[id]
	x.mu.Unlock()
	if sess == nil || sess.ctx.Err() != nil || sess.owner != mcpkit.CallerFrom(r.Context()) {
		unknownSession(w)
		return
	}
	m := parsedFrom(r.Context())
	ctx := x.mcp.WithContext(mcpkit.WithCaller(sess.ctx, sess.owner), sess)
	if !m.Request {
		// Notifications (notifications/cancelled among them) and answers
		// to the server's requests are handled at once, in order.
		if resp := x.mcp.HandleMessage(ctx, m.Body); resp != nil {
			x.answer(sess, resp)
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	select {
	case sess.slots <- struct{}{}:
	default:
		w.Header().Set("Retry-After", "1")
		http.Error(w, "too many requests: "+strconv.Itoa(sseMaxInFlight)+" calls of this session are in flight; wait for an answer", http.StatusTooManyRequests)
		return
	}
	w.WriteHeader(http.StatusAccepted)
	x.running.Add(1)
	go func() {
		defer func() { <-sess.slots }()
		defer x.running.Add(-1)
		x.answer(sess, x.handle(ctx, m))
	}()
}

// handle answers one request, recovering a panic into an internal error.
func (x *sseServer) handle(ctx context.Context, m parsed) (resp mcp.JSONRPCMessage) {
	defer func() {
		if p := recover(); p != nil {
			x.log.Error("panic serving a message", "panic", p)
			resp = errorResponse(rawID(m.ID), mcp.INTERNAL_ERROR, "internal error")
		}
	}()
	return amendAnswer(ctx, x.mcp, x.offered, x.mcp.HandleMessage(ctx, m.Body))
}

func (x *sseServer) answer(sess *sseSession, resp mcp.JSONRPCMessage) {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(errorResponse(nil, mcp.INTERNAL_ERROR, "internal error: unencodable response"))
	}
	sess.enqueue(b, x.log)
}

// drain waits until every call has queued its answer, or until ctx ends.
// A Streamable HTTP call answers on its own POST, which the HTTP server's
// Shutdown waits for; an SSE call answers on its session's stream.
func (x *sseServer) drain(ctx context.Context) {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for x.running.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// closeAll ends every session once its queued answers are written, or
// when ctx ends.
func (x *sseServer) closeAll(ctx context.Context) {
	x.mu.Lock()
	all := make([]*sseSession, 0, len(x.live))
	for _, s := range x.live {
		all = append(all, s)
	}
	x.mu.Unlock()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for _, s := range all {
		for s.queued.Load() > 0 && s.ctx.Err() == nil && ctx.Err() == nil {
			<-tick.C
		}
		s.end(errShutdown)
	}
}

var errShutdown = errors.New("the server is shutting down")

func rawID(id json.RawMessage) any {
	if len(id) == 0 {
		return nil
	}
	return json.RawMessage(id)
}

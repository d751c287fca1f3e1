package transport

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// sessions is the table of live MCP sessions over HTTP, Streamable HTTP
// and SSE alike: who owns each (the name of the bearer token that opened
// it), and a bound on how many there are.
//
// It is also the Streamable HTTP server's SessionIdManager. mcp-go's own
// stateful manager keeps every id it ever issued in a map that only
// grows, has no bound, and cannot tell one caller's session from
// another's.
type sessions struct {
	max int

	mu      sync.Mutex
	pending int               // opens admitted whose id is not yet known
	owners  map[string]string // session id → owner (token name)
}

func newSessions(max int) *sessions {
	return &sessions{max: max, owners: map[string]string{}}
}

// admit reserves room for one more session; false when the table is full.
// Every admit is followed by done, once the open has finished either way.
func (s *sessions) admit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.owners)+s.pending >= s.max {
		return false
	}
	s.pending++
	return true
}

func (s *sessions) done() {
	s.mu.Lock()
	s.pending--
	s.mu.Unlock()
}

// add records a new session and its owner.
func (s *sessions) add(id, owner string) {
	s.mu.Lock()
	s.owners[id] = owner
	s.mu.Unlock()
}

// owned reports whether id is a live session of owner's.
func (s *sessions) owned(id, owner string) bool {
	s.mu.Lock()
	o, ok := s.owners[id]
	s.mu.Unlock()
	return ok && o == owner
}

func (s *sessions) remove(id string) {
	s.mu.Lock()
	delete(s.owners, id)
	s.mu.Unlock()
}

// idPrefix marks the Streamable HTTP session ids, as mcp-go's do.
const idPrefix = "mcp-session-"

// Generate issues a Streamable HTTP session id; the guard records its
// owner when the initialize answer carries it.
func (s *sessions) Generate() string { return idPrefix + uuid.NewString() }

// Validate accepts the live sessions; the guard has already refused the
// others, and a session of another owner's.
func (s *sessions) Validate(id string) (isTerminated bool, err error) {
	s.mu.Lock()
	_, ok := s.owners[id]
	s.mu.Unlock()
	if !ok {
		return false, errUnknownSession
	}
	return false, nil
}

// Terminate ends a session: on DELETE, and when mcp-go's sweeper finds it
// idle for http.session_idle_timeout.
func (s *sessions) Terminate(id string) (isNotAllowed bool, err error) {
	s.remove(id)
	return false, nil
}

var errUnknownSession = &sessionError{}

type sessionError struct{}

func (*sessionError) Error() string { return "unknown session" }

var _ server.SessionIdManager = (*sessions)(nil)

// clientInfo keeps what a client said of itself in initialize, so what it
// writes can name it (server.SessionWithClientInfo: mcp-go sets it).
type clientInfo struct {
	info, caps atomic.Value // mcp.Implementation, mcp.ClientCapabilities
}

func (c *clientInfo) SetClientInfo(i mcp.Implementation) { c.info.Store(i) }

func (c *clientInfo) GetClientInfo() mcp.Implementation {
	i, _ := c.info.Load().(mcp.Implementation)
	return i
}

func (c *clientInfo) SetClientCapabilities(cc mcp.ClientCapabilities) { c.caps.Store(cc) }

func (c *clientInfo) GetClientCapabilities() mcp.ClientCapabilities {
	cc, _ := c.caps.Load().(mcp.ClientCapabilities)
	return cc
}

var (
	_ server.SessionWithClientInfo = (*session)(nil)
	_ server.SessionWithClientInfo = (*sseSession)(nil)
)

// guardStreamable enforces the session rules of Streamable HTTP in front of
// mcp-go, which answers some of them wrongly: a GET without a session id
// opened a stream there, and any token could use any session.
//
//   - initialize (legacy era) needs room in the table, else 503 with
//     Retry-After; the session it opens belongs to the caller's token.
//   - any other legacy request needs Mcp-Session-Id (400 without one), naming
//     a live session of the same caller (404 otherwise, changing nothing).
//   - GET opens a stream only for such a session.
//
// Requests of the 2026-07-28 era carry no sessions and pass. The body has
// been buffered and checked by the envelope middleware, which hands its
// parse on in the context.
func (h *HTTP) guardStreamable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		caller := mcpkit.CallerFrom(r.Context())
		id := r.Header.Get("Mcp-Session-Id")
		switch r.Method {
		case http.MethodPost:
			m := parsedFrom(r.Context())
			if modern(r, m) {
				next.ServeHTTP(w, r)
				return
			}
			if m.Method == string(mcp.MethodInitialize) {
				if !h.sessions.admit() {
					sessionsFull(w, h.sessions.max)
					return
				}
				defer h.sessions.done()
				next.ServeHTTP(&ownerRecorder{ResponseWriter: w, s: h.sessions, owner: caller}, r)
				return
			}
			if id == "" {
				http.Error(w, "bad request: Mcp-Session-Id is required (send initialize first to open a session)", http.StatusBadRequest)
				return
			}
		case http.MethodGet:
			if modern(r, parsed{}) {
				next.ServeHTTP(w, r) // mcp-go refuses it: the era has no GET stream
				return
			}
			if id == "" {
				http.Error(w, "bad request: Mcp-Session-Id is required to open a stream", http.StatusBadRequest)
				return
			}
		case http.MethodDelete:
			if id == "" {
				http.Error(w, "bad request: Mcp-Session-Id is required", http.StatusBadRequest)
				return
			}
		default:
			w.Header().Set("Allow", "GET, POST, DELETE")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !h.sessions.owned(id, caller) {
			unknownSession(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// modern reports whether a POST is of the 2026-07-28 era, which has no
// sessions: mcp-go requires the Mcp-Protocol-Version header to match the
// message's _meta and refuses a mismatch itself.
func modern(r *http.Request, m parsed) bool {
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" {
		return mcp.IsModernProtocol(v)
	}
	if r.Method != http.MethodPost {
		return false
	}
	if _, _, _, plain := plainCall(m.Body); plain {
		return false // no _meta, so of no protocol era but the legacy one
	}
	var w struct {
		Params struct {
			Meta *mcp.Meta `json:"_meta"`
		} `json:"params"`
	}
	return json.Unmarshal(m.Body, &w) == nil && mcp.IsModernProtocol(w.Params.Meta.ProtocolVersion())
}

func sessionsFull(w http.ResponseWriter, max int) {
	w.Header().Set("Retry-After", "5")
	http.Error(w, "server busy: "+strconv.Itoa(max)+" sessions are open (http.max_sessions); retry later", http.StatusServiceUnavailable)
}

func unknownSession(w http.ResponseWriter) {
	http.Error(w, "not found: unknown or ended session; send initialize to open a new one", http.StatusNotFound)
}

// ownerRecorder records the session an initialize answer opens, under its
// caller, before the answer (and so the id) reaches the client.
type ownerRecorder struct {
	http.ResponseWriter
	s     *sessions
	owner string
	seen  bool
}

func (o *ownerRecorder) WriteHeader(code int) {
	o.record()
	o.ResponseWriter.WriteHeader(code)
}

func (o *ownerRecorder) Write(b []byte) (int, error) {
	o.record()
	return o.ResponseWriter.Write(b)
}

func (o *ownerRecorder) record() {
	if o.seen {
		return
	}
	o.seen = true
	if id := o.Header().Get("Mcp-Session-Id"); strings.HasPrefix(id, idPrefix) {
		o.s.add(id, o.owner)
	}
}

func (o *ownerRecorder) Flush() {
	o.record()
	if f, ok := o.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (o *ownerRecorder) Unwrap() http.ResponseWriter { return o.ResponseWriter }

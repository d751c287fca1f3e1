package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The Streamable HTTP fast path: a POST to /mcp of a plain tools/call
// (fastcall.go) is served by calling the tool's handler directly, rather
// than through mcp-go's StreamableHTTPServer, which decodes the body twice
// before MCPServer.HandleMessage decodes it four times more, starts a
// goroutine per request to forward notifications, and encodes the answer
// by reflection.
//
// What mcp-go does for such a POST, and what is done here instead:
//   - Content-Type must be application/json, and an Mcp-Protocol-Version
//     header, when sent, a version mcp-go knows of the legacy era:
//     otherwise mcp-go answers (its 400s);
//   - stateful: the session id must be one the session table issued and
//     still holds, and the session one the MCPServer registered (found
//     in SessionTable): otherwise mcp-go answers;
//   - mcp-go's idle-session sweeper is kept informed: a session's request
//     goes to mcp-go when its last one there is older than an eighth of
//     the idle timeout, so a session in use is never swept, and one left
//     idle is swept at most that much early;
//   - a session that asked for notifications (resources/subscribe,
//     logging/setLevel) is served by mcp-go from then on: mcp-go's POST
//     carries the notifications queued while its call runs, this path
//     has no such stream;
//   - stateless: the call gets an ephemeral session of the request's
//     Mcp-Session-Id (as mcp-go's), which no notification reaches;
//   - notifications/cancelled cancels the call it names, keyed by
//     session and id as mcp-go keys its own (it is handed to mcp-go too);
//   - the answer is 200 application/json, encoded once, as mcp-go writes
//     it.
//
// The differential test in cmd/mcp-redis sends the bad-input corpus and
// the fast path's edge shapes to a server of each kind, stateful and
// stateless, and requires the same status, type and body.

// SessionTable records the sessions an MCPServer registers, by id, for
// the fast path: mcp-go has no public lookup of a session by its id.
type SessionTable struct {
	m sync.Map // id → *fastSession
}

// fastSession is what the fast path keeps of a registered session.
type fastSession struct {
	sess server.ClientSession
	// slow is when the session's last request went to mcp-go (unix ns).
	slow atomic.Int64
	// notified: the session asked for notifications.
	notified atomic.Bool
}

// Watch adds the hooks that keep the table: call it on the hooks the
// MCPServer is built with.
func (t *SessionTable) Watch(h *server.Hooks) {
	h.AddOnRegisterSession(func(_ context.Context, s server.ClientSession) {
		f := &fastSession{sess: s}
		f.slow.Store(time.Now().UnixNano())
		t.m.Store(s.SessionID(), f)
	})
	h.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		if v, ok := t.m.Load(s.SessionID()); ok && v.(*fastSession).sess == s {
			t.m.CompareAndDelete(s.SessionID(), v)
		}
	})
}

func (t *SessionTable) get(id string) *fastSession {
	if t == nil || id == "" {
		return nil
	}
	v, ok := t.m.Load(id)
	if !ok {
		return nil
	}
	return v.(*fastSession)
}

// ephemeral is the session of a stateless request, as mcp-go gives one:
// the request's Mcp-Session-Id (often none), never registered.
type ephemeral struct {
	id    string
	notes chan mcp.JSONRPCNotification
}

func (e *ephemeral) SessionID() string                                   { return e.id }
func (e *ephemeral) NotificationChannel() chan<- mcp.JSONRPCNotification { return e.notes }
func (e *ephemeral) Initialize()                                         {}
func (e *ephemeral) Initialized() bool                                   { return true }

// fastHTTP is one tenant's fast path in front of next (mcp-go's handler).
type fastHTTP struct {
	srv       *server.MCPServer
	calls     ToolCalls
	hooks     []server.OnRequestInitializationFunc
	sessions  *SessionTable
	stateless bool
	// touchEvery is how old a session's last mcp-go request may be
	// before the next goes there again (0: no idle sweeping).
	touchEvery time.Duration
	// inflight cancels the fast path's calls: inflightKey → *inflightCall.
	inflight sync.Map
	next     http.Handler
}

// fastPath returns next behind the fast path, or next when calls is nil or
// the server registers a hook the fast path cannot run as mcp-go would.
func (h *HTTP) fastPath(t Tenant, next http.Handler) http.Handler {
	if t.Calls == nil || (!h.Stateless && t.Sessions == nil) {
		return next
	}
	hooks, ok := fastHooks(t.Server)
	if !ok {
		return next
	}
	f := &fastHTTP{srv: t.Server, calls: t.Calls, hooks: hooks, sessions: t.Sessions, stateless: h.Stateless, next: next}
	if !h.Stateless && h.SessionIdleTimeout > 0 {
		f.touchEvery = h.SessionIdleTimeout / 8
	}
	return f
}

func (f *fastHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m := parsedFrom(r.Context())
	if r.Method != http.MethodPost || m.Method == "" {
		f.next.ServeHTTP(w, r)
		return
	}
	sid := r.Header.Get("Mcp-Session-Id")
	switch m.Method {
	case string(mcp.MethodToolsCall):
		if f.serve(w, r, m, sid) {
			return
		}
	case string(mcp.MethodNotificationCancelled):
		f.cancel(sid, m.Body)
	case string(mcp.MethodResourcesSubscribe), string(mcp.MethodSetLogLevel):
		if s := f.sessions.get(sid); s != nil {
			s.notified.Store(true)
		}
	}
	if s := f.sessions.get(sid); s != nil {
		s.slow.Store(time.Now().UnixNano())
	}
	f.next.ServeHTTP(w, r)
}

// serve answers a tools/call on the fast path, and reports whether it did.
func (f *fastHTTP) serve(w http.ResponseWriter, r *http.Request, m parsed, sid string) bool {
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/json" {
		return false
	}
	if v := r.Header.Get(mcp.HeaderProtocolVersion); v != "" && (!mcp.IsValidProtocolVersion(v) || mcp.IsModernProtocol(v)) {
		return false
	}
	var sess server.ClientSession
	if f.stateless {
		sess = &ephemeral{id: sid, notes: make(chan mcp.JSONRPCNotification, 1)}
	} else {
		s := f.sessions.get(sid)
		if s == nil || s.notified.Load() {
			return false
		}
		if f.touchEvery > 0 && time.Since(time.Unix(0, s.slow.Load())) > f.touchEvery {
			return false // to mcp-go, which marks the session in use
		}
		sess = s.sess
	}
	raw, name, args, ok := plainCall(m.Body)
	if !ok {
		return false
	}
	id, ok := idValue(raw)
	if !ok {
		return false
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	key, c := inflightKey(sid, id), &inflightCall{cancel: cancel}
	f.inflight.Store(key, c)
	defer f.inflight.CompareAndDelete(key, c)

	ctx = f.srv.WithContext(ctx, sess)
	resp, ok := callTool(ctx, f.calls, m.Body, id, name, args, f.hooks)
	if !ok {
		return false
	}
	if r.Context().Err() != nil {
		return true // the client is gone, as mcp-go leaves it
	}
	buf := outBufs.Get().(*bytes.Buffer)
	defer putOutBuf(buf)
	b := encodeAnswer(buf, resp)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return true
}

// cancel cancels the fast path's call that a notifications/cancelled
// (msg) of session sid names.
func (f *fastHTTP) cancel(sid string, msg []byte) {
	raw, ok := cancelledID(msg)
	var id any
	if !ok || json.Unmarshal(raw, &id) != nil {
		return
	}
	if c, ok := f.inflight.LoadAndDelete(inflightKey(sid, id)); ok {
		c.(*inflightCall).cancel()
	}
}

// inflightCall is a fast path call a notifications/cancelled can reach.
type inflightCall struct{ cancel context.CancelFunc }

// inflightKey keys a call by its session and id as mcp-go does (a
// number id decoded as a float64, printed with %v).
func inflightKey(sid string, id any) string {
	return fmt.Sprintf("%s:%v", sid, id)
}

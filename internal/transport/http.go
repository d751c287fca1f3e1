package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/httpsec"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// HTTP serves MCP on one listener: Streamable HTTP at /mcp (both protocol
// eras mcp-go serves), the legacy HTTP+SSE transport at /sse with its
// message endpoint /message, and /healthz, /readyz and /metrics.
type HTTP struct {
	Server *server.MCPServer
	// Stateless serves Streamable HTTP without sessions.
	Stateless bool
	// Tokens are the bearer tokens by name; empty means no authentication
	// (allowed on loopback only, which the configuration enforces).
	Tokens map[string]string
	// TokenScopes gives named tokens scopes (httpsec.Identity); a token
	// not named has every scope.
	TokenScopes map[string][]string
	// Offered, when set, narrows the tools a not-found answer lists to
	// those the caller is offered.
	Offered Offered
	// Calls, when set, serves plain tools/call POSTs to /mcp without
	// mcp-go's Streamable HTTP server (httpfast.go), with the same
	// conditions as Stdio.Calls; a stateful server needs Sessions too,
	// the table of the sessions Server registers.
	Calls    ToolCalls
	Sessions *SessionTable
	// OAuth, when set, accepts the access tokens of an authorization
	// server beside Tokens, and serves the Protected Resource Metadata.
	OAuth *httpsec.OAuthConfig
	// ScopeOf is the server's scope a tool needs ("" for none); a
	// tools/call by an access token that does not grant it is a 403
	// insufficient_scope naming it. nil checks no tool here.
	ScopeOf func(tool string) string
	// AllowedOrigins are the Origin values browsers may send.
	AllowedOrigins []string
	// Loopback turns on the Host check against DNS rebinding.
	Loopback     bool
	MaxBodyBytes int64
	// MaxConnections bounds the open connections; MaxSessions the live
	// sessions (Streamable HTTP and SSE); a Streamable HTTP session unused
	// for SessionIdleTimeout is freed.
	MaxConnections, MaxSessions                                                int
	SessionIdleTimeout                                                         time.Duration
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	// Ready reports whether the server can serve (Redis answers PING).
	Ready func(ctx context.Context) error
	// Metrics serves /metrics.
	Metrics http.Handler
	// UIPages, when set, serves the dashboard's page at /ui (no token:
	// it holds no data), and UIAPI its data at /ui/api/ (behind the
	// bearer check).
	UIPages, UIAPI http.Handler
	// TokenNamespaces puts named tokens in tenant namespaces, and Tenants
	// serves each namespace: a request is served by its credential's
	// tenant (its own MCP server, tools, resources and dashboard data),
	// one without a namespace by Server.
	TokenNamespaces map[string]string
	Tenants         map[string]Tenant
	// Denied, when set, is told of each tools/call refused here for a
	// scope its access token lacks (need), to record it.
	Denied func(ctx context.Context, tool, need string)
	Log    *slog.Logger

	sessions *sessions
}

// Serve accepts on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, closes the MCP streams, lets calls in flight finish
// for up to ShutdownTimeout, and returns nil.
func (h *HTTP) Serve(ctx context.Context, ln net.Listener) error {
	h.sessions = newSessions(h.MaxSessions)
	opts := []server.StreamableHTTPOption{server.WithStateLess(h.Stateless)}
	if !h.Stateless {
		// The table issues and tracks the sessions, so an unknown (even
		// well formed) Mcp-Session-Id is refused; idle ones are freed.
		opts = append(opts, server.WithSessionIdManager(h.sessions), server.WithSessionIdleTTL(h.SessionIdleTimeout))
	}
	// One MCP server per tenant, each behind its own Streamable HTTP and
	// SSE servers; the session table is shared, so a session id is
	// unique across them and belongs to the token that opened it.
	tenants := map[string]*tenantHandlers{"": h.tenant(Tenant{Server: h.Server, Offered: h.Offered, UIAPI: h.UIAPI, Calls: h.Calls, Sessions: h.Sessions}, opts)}
	for ns, t := range h.Tenants {
		tenants[ns] = h.tenant(t, opts)
	}
	pick := func(r *http.Request) *tenantHandlers {
		id, _ := httpsec.IdentityFrom(r.Context())
		if t, ok := tenants[id.Namespace]; ok {
			return t
		}
		// The configuration gives every namespace a tenant; a credential
		// whose namespace has none is served nothing rather than the
		// server's own data.
		return nil
	}
	route := func(part func(*tenantHandlers) http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t := pick(r)
			if t == nil {
				http.Error(w, "forbidden: the credential's namespace is not served here", http.StatusForbidden)
				return
			}
			part(t).ServeHTTP(w, r)
		})
	}

	tokens := httpsec.NewTokens(h.Tokens).WithScopes(h.TokenScopes).WithNamespaces(h.TokenNamespaces)
	var oauth *httpsec.OAuth
	if h.OAuth != nil {
		var err error
		if oauth, err = httpsec.NewOAuth(ctx, *h.OAuth, h.Log); err != nil {
			return err
		}
	}
	auth := func(next http.Handler) http.Handler {
		if len(h.Tokens) > 0 || oauth != nil {
			next = httpsec.Authenticate(tokens, oauth, h.Log, callerIsToken(next))
		}
		return next
	}
	// body bounds, buffers and checks a POST's body, and refuses a call
	// its access token may not make; streams lift the read deadline once
	// the caller is known.
	body := func(next http.Handler) http.Handler {
		return httpsec.Limits(h.MaxBodyBytes, h.WriteTimeout, envelope(h.toolScope(oauth, next)))
	}
	mcpHandler := route(func(t *tenantHandlers) http.Handler { return t.mcp })
	mux := http.NewServeMux()
	if oauth != nil {
		for _, p := range oauth.MetadataPaths() {
			mux.HandleFunc(p, oauth.ServeMetadata)
		}
	}
	mux.Handle("POST /mcp", auth(body(mcpHandler)))
	mux.Handle("/mcp", auth(h.streamGET(mcpHandler)))
	sseStream := route(func(t *tenantHandlers) http.Handler { return http.HandlerFunc(t.sse.handleStream) })
	sseMessage := route(func(t *tenantHandlers) http.Handler { return http.HandlerFunc(t.sse.handleMessage) })
	mux.Handle("/sse", auth(httpsec.Stream(sseStream)))
	mux.Handle("POST /message", auth(body(sseMessage)))
	mux.Handle("/message", auth(sseMessage))
	mux.Handle("/metrics", auth(h.Metrics))
	if h.UIPages != nil {
		mux.Handle("/ui", h.UIPages)
		mux.Handle("/ui/", h.UIPages)
		mux.Handle("/ui/api/", auth(route(func(t *tenantHandlers) http.Handler {
			if t.uiapi == nil {
				return http.NotFoundHandler()
			}
			return t.uiapi
		})))
	}
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		err := h.Ready(r.Context())
		if err == nil {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "redis": "ok"})
			return
		}
		// The cause (an address, NOAUTH, WRONGPASS) is for the operator:
		// the log has it, and so does a caller with a valid token.
		h.Log.Warn("readyz: redis is not ready", "err", err)
		out := map[string]string{"status": "unavailable"}
		if httpsec.Authenticated(r, tokens, oauth) {
			out["redis"] = err.Error()
		}
		writeJSON(w, http.StatusServiceUnavailable, out)
	})

	var handler http.Handler = mux
	handler = httpsec.Origins(h.AllowedOrigins, h.Loopback, handler)
	if h.Loopback {
		handler = httpsec.LoopbackHost(handler)
	}
	srv := &http.Server{
		Handler: handler,
		// ReadTimeout bounds every request from its first byte, body
		// included, whatever its path or method and before any token is
		// checked; streams lift it once authenticated (httpsec.Stream).
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		ReadTimeout:       h.ReadTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	limited := httpsec.LimitListener(ln, h.MaxConnections, h.Log)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(limited) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve http: %w", err)
	case <-ctx.Done():
	}
	h.Log.Info("shutting down: draining calls in flight", "timeout", h.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), h.ShutdownTimeout)
	defer cancel()
	// Stop accepting, and wait for requests, in the background: streams
	// (SSE, GET /mcp) never end on their own, so this returns only once
	// they are closed below.
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(sctx) }()
	// An SSE call's answer travels on its stream, not on the POST that
	// asked: let every call finish and its answer go out before the
	// streams close.
	for _, t := range tenants {
		t.sse.drain(sctx)
		t.sse.closeAll(sctx)
		_ = t.streamable.Shutdown(sctx)
	}
	if err := <-shut; err != nil {
		h.Log.Warn("calls still running at the shutdown timeout were cut off", "err", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Tenant is what serves one namespace's credentials.
type Tenant struct {
	Server  *server.MCPServer
	Offered Offered
	// UIAPI is the namespace's dashboard data (/ui/api/), or nil.
	UIAPI http.Handler
	// Calls and Sessions, when set, serve plain tools/call POSTs without
	// mcp-go's Streamable HTTP server (httpfast.go), as HTTP's do.
	Calls    ToolCalls
	Sessions *SessionTable
}

// tenantHandlers are a tenant's Streamable HTTP and SSE servers.
type tenantHandlers struct {
	streamable *server.StreamableHTTPServer
	sse        *sseServer
	mcp        http.Handler // /mcp: streamable with the ids restored
	uiapi      http.Handler
}

// tenant builds t's handlers over the shared session table.
func (h *HTTP) tenant(t Tenant, opts []server.StreamableHTTPOption) *tenantHandlers {
	streamable := server.NewStreamableHTTPServer(t.Server, append(slices.Clip(opts),
		// The Host check covers every endpoint alike.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPLogger(h.Log),
	)...)
	sse := newSSEServer(t.Server, h.sessions, h.WriteTimeout, h.Log)
	sse.offered = t.Offered
	var mcpHandler http.Handler = h.fastPath(t, restoring(t.Server, t.Offered, listenStreams(streamable)))
	if !h.Stateless {
		mcpHandler = h.guardStreamable(mcpHandler)
	}
	return &tenantHandlers{streamable: streamable, sse: sse, mcp: mcpHandler, uiapi: t.UIAPI}
}

// streamGET serves the methods of /mcp other than POST: GET opens a
// stream (405 when stateless: no session could ever reach it), DELETE
// ends a session.
func (h *HTTP) streamGET(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && h.Stateless {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed: a stateless server has no stream to open; POST requests", http.StatusMethodNotAllowed)
			return
		}
		if r.Method == http.MethodGet {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// listenStreams lifts the write deadline (http.write_timeout, set for every
// POST) of a subscriptions/listen request: its answer is a stream that
// lives until the client cancels it or goes away, as a GET stream does.
func listenStreams(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := parsedFrom(r.Context()); m.Request && m.Method == string(mcp.MethodSubscriptionsListen) {
			_ = http.NewResponseController(w).SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

// parsed is what the envelope check learnt of a POSTed message; it rides
// in the request's context to the handlers after it.
type parsed struct {
	Body    []byte
	ID      json.RawMessage
	Method  string
	Request bool // a request (it has an id and a method), not a notification or an answer
	// Tool is a tools/call's params.name ("" for any other message, or
	// when it is not a string).
	Tool string
}

type parsedKey struct{}

func parsedFrom(ctx context.Context) parsed {
	m, _ := ctx.Value(parsedKey{}).(parsed)
	return m
}

// envelope answers a POST whose body is a malformed JSON-RPC message (see
// checkEnvelope) with 400 and the JSON-RPC error, and hands the parse on;
// Limits has buffered the body already.
func envelope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Body == nil {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "could not read the request body", http.StatusBadRequest)
			return
		}
		m, resp := inspect(body)
		if resp != nil {
			b, _ := json.Marshal(resp)
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write(restoreIDs(b))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(m.Body))
		r.ContentLength = int64(len(m.Body))
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), parsedKey{}, m)))
	})
}

// restoring puts back, in mcp-go's answers, the request ids encodeIDs
// replaced, and has an answer to a tools/call naming no tool list the
// tools, and a prompts/get refused for its arguments say -32602
// (amendEncoded).
func restoring(s *server.MCPServer, offered Offered, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &idRestorer{ResponseWriter: w}
		if m := parsedFrom(r.Context()).Method; m == string(mcp.MethodToolsCall) || m == string(mcp.MethodPromptsGet) {
			rw.tools, rw.offered, rw.ctx = s, offered, r.Context()
		}
		next.ServeHTTP(rw, r)
	})
}

// idRestorer applies restoreIDs to each write: mcp-go writes a JSON answer,
// or one SSE event, whole in one Write.
type idRestorer struct {
	http.ResponseWriter
	// tools, for a tools/call or a prompts/get, is the server whose
	// tools a not-found answer lists: those offered to the caller of ctx.
	tools   *server.MCPServer
	offered Offered
	ctx     context.Context
}

func (w *idRestorer) WriteHeader(code int) {
	// A restored id is shorter than its placeholder.
	w.Header().Del("Content-Length")
	w.ResponseWriter.WriteHeader(code)
}

func (w *idRestorer) Write(b []byte) (int, error) {
	out := b
	if w.tools != nil {
		out = amendEncoded(w.ctx, w.tools, w.offered, out)
	}
	if _, err := w.ResponseWriter.Write(restoreIDs(out)); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (w *idRestorer) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *idRestorer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// inspect runs the envelope check on a POSTed message, learns what the
// handlers after it need, and readies its ids for mcp-go (encodeIDs).
func inspect(body []byte) (parsed, mcp.JSONRPCMessage) {
	head, resp := parseEnvelope(body)
	if resp != nil {
		return parsed{}, resp
	}
	return parsed{Body: encodeIDs(body, head.ID, head.Method), ID: head.ID, Method: head.Method, Request: head.Request(), Tool: head.Tool}, nil
}

// toolScope answers 403 insufficient_scope to a tools/call whose tool
// needs a scope (ScopeOf) the request's access token does not grant;
// admin grants every one. Static tokens pass: their scopes are checked
// with the call, as a tool error.
func (h *HTTP) toolScope(o *httpsec.OAuth, next http.Handler) http.Handler {
	if o == nil || h.ScopeOf == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := parsedFrom(r.Context())
		if _, isOAuth := httpsec.OAuthScopesFrom(r.Context()); isOAuth && m.Method == string(mcp.MethodToolsCall) && m.Tool != "" {
			id, _ := httpsec.IdentityFrom(r.Context())
			if need := h.ScopeOf(m.Tool); need != "" && !id.All && !slices.Contains(id.Scopes, need) && !slices.Contains(id.Scopes, mcpkit.ScopeAdmin) {
				if h.Denied != nil {
					h.Denied(r.Context(), m.Tool, need)
				}
				o.InsufficientScope(w, r, "the tool "+m.Tool, need)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// callerIsToken makes the authenticated token's name the caller that the
// tools stamp and the sessions belong to.
func callerIsToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(mcpkit.WithCaller(r.Context(), httpsec.TokenName(r.Context()))))
	})
}

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
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/httpsec"
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
	// AllowedOrigins are the Origin values browsers may send.
	AllowedOrigins []string
	// Loopback turns on the Host check against DNS rebinding.
	Loopback                                                                   bool
	MaxBodyBytes                                                               int64
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout, ShutdownTimeout time.Duration
	// Ready reports whether the server can serve (Redis answers PING).
	Ready func(ctx context.Context) error
	// Metrics serves /metrics.
	Metrics http.Handler
	// Running reports the tool calls in flight; shutdown waits for none
	// before it closes the streams that carry SSE answers.
	Running func() int64
	Log     *slog.Logger
}

// Serve accepts on ln until ctx is cancelled, then shuts down gracefully:
// it stops accepting, closes the MCP streams, lets calls in flight finish
// for up to ShutdownTimeout, and returns nil.
func (h *HTTP) Serve(ctx context.Context, ln net.Listener) error {
	opts := []server.StreamableHTTPOption{server.WithStateLess(h.Stateless)}
	if !h.Stateless {
		// Track the sessions the server issued, so an unknown (even well
		// formed) Mcp-Session-Id is refused; idle ones are freed.
		opts = append(opts, server.WithStateful(true), server.WithSessionIdleTTL(sessionIdleTTL))
	}
	streamable := server.NewStreamableHTTPServer(h.Server, append(opts,
		// The Host check below covers every endpoint alike.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPLogger(h.Log),
	)...)
	sse := server.NewSSEServer(h.Server,
		server.WithSSEDisableLocalhostProtection(true),
		server.WithKeepAlive(true),
	)

	mux := http.NewServeMux()
	mcpChain := func(next http.Handler) http.Handler {
		if len(h.Tokens) > 0 {
			next = httpsec.Bearer(h.Tokens, h.Log, next)
		}
		return next
	}
	bounded := func(next http.Handler) http.Handler {
		return httpsec.Limits(h.MaxBodyBytes, h.ReadTimeout, h.WriteTimeout, next)
	}
	mux.Handle("/mcp", mcpChain(bounded(envelope(streamable))))
	mux.Handle("/sse", mcpChain(sse.SSEHandler()))
	mux.Handle("/message", mcpChain(bounded(envelope(sse.MessageHandler()))))
	mux.Handle("/metrics", mcpChain(h.Metrics))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := h.Ready(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "redis": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "redis": "ok"})
	})

	var handler http.Handler = mux
	handler = httpsec.Origins(h.AllowedOrigins, h.Loopback, handler)
	if h.Loopback {
		handler = httpsec.LoopbackHost(handler)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: h.ReadHeaderTimeout,
		IdleTimeout:       h.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(h.Log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
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
	h.drain(sctx)
	sse.CloseSessions()
	_ = streamable.Shutdown(sctx)
	if err := <-shut; err != nil {
		h.Log.Warn("calls still running at the shutdown timeout were cut off", "err", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// sessionIdleTTL frees a Streamable HTTP session its client left without
// a DELETE.
const sessionIdleTTL = 30 * time.Minute

// envelope answers a POST whose body is a malformed JSON-RPC message (see
// checkEnvelope) with 400 and the JSON-RPC error; Limits has buffered the
// body already.
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
		if resp := checkEnvelope(body); resp != nil {
			writeJSON(w, http.StatusBadRequest, resp)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// drain waits until no tool call runs, then a moment more for the last
// answers to be written to their streams, or until ctx ends.
func (h *HTTP) drain(ctx context.Context) {
	if h.Running == nil {
		return
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for h.Running() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(100 * time.Millisecond):
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

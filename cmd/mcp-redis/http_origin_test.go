package main_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client/transport"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// Browser guards: a page from an unlisted Origin, or a Host that is not
// this server's (DNS rebinding), is refused before any tool runs.

// A browser page from an unlisted origin is refused (403) even with a
// token; a listed origin, a page on loopback (the bind is loopback), and a
// request without Origin pass.
func TestAttackForeignOrigin(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_ALLOWED_ORIGINS=https://app.example.com,http://localhost:3000"},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	for _, o := range []string{"https://evil.example", "null", "https://app.example.com.evil.example", "http://app.example.com",
		"https://app.example.com:8443", "http://rebound.example:" + p.port, "HTTPS://APP.EXAMPLE.COM/", "file://localhost"} {
		h := bearer(tok)
		h["Origin"] = o
		res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("Origin %s: %d %.200s, want 403", o, res.StatusCode, body)
		}
		if res, _ := p.get(t, "/sse", h); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET /sse from Origin %s: %d, want 403", o, res.StatusCode)
		}
		delete(h, "Authorization")
		if res, _ := p.get(t, "/healthz", h); res.StatusCode != http.StatusForbidden {
			t.Errorf("GET /healthz from Origin %s: %d, want 403", o, res.StatusCode)
		}
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)

	h := bearer(tok)
	h["Origin"] = "https://app.example.com"
	controlCallRuns(t, p, rdb, prefix, h)
	h["Origin"] = "http://localhost:3000"
	if res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs); res.StatusCode != http.StatusOK {
		t.Errorf("the second listed origin: %d %s", res.StatusCode, body)
	}
	// On a loopback bind, a page on this machine passes unlisted.
	h["Origin"] = "http://127.0.0.1:" + p.port
	if res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs); res.StatusCode != http.StatusOK {
		t.Errorf("a loopback origin on a loopback bind: %d %s", res.StatusCode, body)
	}
	// A listed origin still needs the token.
	delete(h, "Authorization")
	res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
	wantUnauthorized(t, "a listed origin without a token", res, body, `realm="mcp-redis"`)
}

// On a loopback bind, a request whose Host is not a loopback name (a page
// that rebound its DNS name to 127.0.0.1) is refused with 403 on every
// endpoint, token or not; loopback names pass.
func TestAttackForeignHostDNSRebinding(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, host := range []string{"evil.example", "evil.example:" + p.port, "127.0.0.1.nip.io:" + p.port, "localhost.evil.example",
		"0.0.0.0:" + p.port, "10.0.0.1", "[2001:db8::1]:" + p.port, "127.0.0.1@evil.example", "localhost.:" + p.port} {
		res, body := p.modernCall(t, "/mcp", host, bearer(tok), "emit_workflow_event", eventArgs)
		if res.StatusCode != http.StatusForbidden || !strings.Contains(body, "DNS rebinding") {
			t.Errorf("Host %s: %d %.200s, want 403", host, res.StatusCode, body)
		}
		for _, path := range []string{"/healthz", "/sse", "/metrics"} {
			req, _ := http.NewRequest(http.MethodGet, p.base+path, nil)
			req.Host = host
			req.Header.Set("Authorization", "Bearer "+tok)
			if res, _ := p.do(t, req); res.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s with Host %s: %d, want 403", path, host, res.StatusCode)
			}
		}
	}
	// mcp-go's client sending a foreign Host cannot initialise.
	cannotInitialise(t, p.base, "a client sending Host rebound.example",
		transport.WithHTTPHeaders(bearer(tok)), transport.WithStreamableHTTPHost("rebound.example"))
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)

	for _, host := range []string{"localhost:" + p.port, "LocalHost:" + p.port, "localhost", "127.0.0.1:" + p.port, "127.0.0.2:" + p.port, "[::1]:" + p.port, "[::1]"} {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/healthz", nil)
		req.Host = host
		if res, body := p.do(t, req); res.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz with Host %s: %d %s", host, res.StatusCode, body)
		}
	}
	res, body := p.modernCall(t, "/mcp", "localhost:"+p.port, bearer(tok), "emit_workflow_event", eventArgs)
	if res.StatusCode != http.StatusOK {
		t.Errorf("Host localhost: %d %s", res.StatusCode, body)
	}
}

package main_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The bearer token guards every endpoint but health and readiness: a
// missing, wrong or query-string token runs no tool, a bind beyond
// loopback needs one, and none reaches the log. The helpers at the top
// serve the other attack files too (http_origin, http_limits).

// modernCall sends, by hand, the Streamable HTTP request a 2026-07-28
// client sends to call tool with arguments: with the right token it runs
// the tool. header adds or overrides headers; host, when set, replaces the
// Host header.
func (p *httpProc) modernCall(t *testing.T, path, host string, header map[string]string, tool, arguments string) (*http.Response, string) {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":%q,"arguments":%s,`+
		`"_meta":{"io.modelcontextprotocol/protocolVersion":%q,"io.modelcontextprotocol/clientCapabilities":{},`+
		`"io.modelcontextprotocol/clientInfo":{"name":"attacker","version":"1"}}}}`, tool, arguments, mcp.LATEST_PROTOCOL_VERSION)
	req, err := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set(mcp.HeaderProtocolVersion, mcp.LATEST_PROTOCOL_VERSION)
	req.Header.Set(mcp.HeaderMethod, "tools/call")
	req.Header.Set(mcp.HeaderName, tool)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	if host != "" {
		req.Host = host
	}
	return p.do(t, req)
}

const eventArgs = `{"workflow_id":"attack","phase":"p","event_type":"e"}`

// nothingWritten fails when any key exists under prefix.
func nothingWritten(t *testing.T, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	for _, pattern := range []string{prefix + "*", "{" + prefix + "*"} {
		if keys := rdb.Keys(ctx, pattern).Val(); len(keys) != 0 {
			t.Errorf("written although refused: %v", keys)
		}
	}
}

// noToolRan fails when /metrics counts any tool call.
func noToolRan(t *testing.T, p *httpProc, tok string) {
	t.Helper()
	for k := range metricsText(t, p, tok) {
		if strings.HasPrefix(k, "mcp_redis_tool_calls_total") {
			t.Errorf("a tool ran: %s", k)
		}
	}
}

// controlCallRuns checks that modernCall is a request that runs the tool
// when it carries the right credentials: the refusals before it were the
// guards', not a malformed request's.
func controlCallRuns(t *testing.T, p *httpProc, rdb *redis.Client, prefix string, header map[string]string) {
	t.Helper()
	res, body := p.modernCall(t, "/mcp", "", header, "emit_workflow_event", eventArgs)
	if res.StatusCode != http.StatusOK || !strings.Contains(body, `"entry_id"`) {
		t.Fatalf("the control call with the token: %d %s", res.StatusCode, body)
	}
	if n := rdb.XLen(context.Background(), prefix+"workflow_events").Val(); n != 1 {
		t.Fatalf("the control call wrote %d entries", n)
	}
}

func wantUnauthorized(t *testing.T, what string, res *http.Response, body string, challenge string) {
	t.Helper()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("%s: %d %.200s, want 401", what, res.StatusCode, body)
		return
	}
	if wa := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, challenge) {
		t.Errorf("%s: WWW-Authenticate %q, want a Bearer challenge with %s", what, wa, challenge)
	}
}

// Without a token, no endpoint but health and readiness answers, and no
// tool runs.
func TestAttackMissingToken(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)

	for _, h := range []map[string]string{
		nil,
		{"Authorization": "Bearer "},
		{"Authorization": "Bearer"},
		{"Authorization": tok},
		{"Authorization": "Basic " + tok},
		{"Authorization": "Token " + tok},
		{"X-Api-Key": tok},
		{"Cookie": "token=" + tok},
	} {
		res, body := p.modernCall(t, "/mcp", "", h, "emit_workflow_event", eventArgs)
		wantUnauthorized(t, fmt.Sprintf("POST /mcp with %v", h), res, body, `realm="mcp-redis"`)
	}
	for _, path := range []string{"/sse", "/metrics", "/mcp"} {
		res, body := p.get(t, path, nil)
		wantUnauthorized(t, "GET "+path, res, body, `realm="mcp-redis"`)
	}
	req, _ := http.NewRequest(http.MethodPost, p.base+"/message?sessionId=x", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	res, body := p.do(t, req)
	wantUnauthorized(t, "POST /message", res, body, `realm="mcp-redis"`)
	req, _ = http.NewRequest(http.MethodDelete, p.base+"/mcp", nil)
	res, body = p.do(t, req)
	wantUnauthorized(t, "DELETE /mcp", res, body, `realm="mcp-redis"`)

	// mcp-go's clients without a token cannot even start.
	cannotInitialise(t, p.base, "a Streamable HTTP client without a token")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sse, _ := client.NewSSEMCPClient(p.base + "/sse")
	if err := sse.Start(ctx); err == nil {
		t.Error("an SSE client without a token started")
	}
	_ = sse.Close()

	for _, path := range []string{"/healthz", "/readyz"} {
		if res, body := p.get(t, path, nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET %s without a token: %d %s", path, res.StatusCode, body)
		}
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// A wrong token is refused as invalid, however close to a right one, and
// no tool runs; the log says so without the token.
func TestAttackWrongToken(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok, other := newToken(), newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok, "ops", other)}, "--redis-url", testredis.URL(), "--prefix", prefix)

	flipped := tok[:len(tok)-1] + "a"
	if flipped == tok {
		flipped = tok[:len(tok)-1] + "b"
	}
	wrong := []string{
		flipped,                   // same length, last byte differs
		"X" + tok[1:],             // first byte differs
		tok + "0",                 // one byte longer
		tok[:len(tok)-1],          // one byte shorter
		strings.ToUpper(tok),      // case matters
		tok + "," + other,         // two tokens in one
		"ci",                      // the name, not the token
		strings.Repeat("a", 4096), // long
	}
	p.secrets = append(p.secrets, wrong[:5]...)
	for _, w := range wrong {
		res, body := p.modernCall(t, "/mcp", "", bearer(w), "emit_workflow_event", eventArgs)
		wantUnauthorized(t, fmt.Sprintf("POST /mcp with %.40q", w), res, body, `error="invalid_token"`)
	}
	res, body := p.get(t, "/sse", bearer(flipped))
	wantUnauthorized(t, "GET /sse", res, body, `error="invalid_token"`)
	res, body = p.get(t, "/metrics", bearer(flipped))
	wantUnauthorized(t, "GET /metrics", res, body, `error="invalid_token"`)

	// The mcp-go client with a wrong token cannot initialise.
	cannotInitialise(t, p.base, "a client with a wrong token", transport.WithHTTPHeaders(bearer(flipped)))

	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	if !strings.Contains(p.stderr.String(), "rejected a wrong bearer token") {
		t.Errorf("the log does not mention the rejected tokens:\n%s", p.stderr.String())
	}
	// Both tokens work, each under its own name.
	controlCallRuns(t, p, rdb, prefix, bearer(other))
	if recs := callRecords(t, rdb, prefix); len(recs) != 1 || recs[0].Values["caller"] != "ops" {
		t.Errorf("records of the control call: %v", recs)
	}
}

// A token in the query string is ignored: the request is unauthenticated.
func TestAttackTokenInQueryString(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	for _, q := range []string{"access_token=", "token=", "bearer=", "auth=", "Authorization=Bearer%20", "authorization=Bearer+"} {
		res, body := p.modernCall(t, "/mcp?"+q+tok, "", nil, "emit_workflow_event", eventArgs)
		wantUnauthorized(t, "POST /mcp?"+q+"…", res, body, `realm="mcp-redis"`)
		res, body = p.get(t, "/sse?"+q+tok, nil)
		wantUnauthorized(t, "GET /sse?"+q+"…", res, body, `realm="mcp-redis"`)
		res, body = p.get(t, "/metrics?"+q+tok, nil)
		wantUnauthorized(t, "GET /metrics?"+q+"…", res, body, `realm="mcp-redis"`)
	}
	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// Listening beyond loopback without a token refuses to start, naming
// http.auth_tokens; with a token it starts, and requires it.
func TestAttackNonLoopbackBindWithoutToken(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	for _, listen := range []string{"0.0.0.0:%d", ":%d", "[::]:%d"} {
		port := testredis.FreePort(t)
		addr := fmt.Sprintf(listen, port)
		// Still running after 10s fails the test.
		out, err := runBinary(t, 10*time.Second, []string{"MCP_REDIS_HTTP_AUTH_TOKENS="},
			"serve", "--transport", "http", "--listen", addr, "--redis-url", testredis.URL(), "--prefix", prefix)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("--listen %s without a token: %v, want a non-zero exit\n%s", addr, err, out)
		}
		if !strings.Contains(out, "http.auth_tokens") {
			t.Errorf("--listen %s without a token: the error does not name http.auth_tokens:\n%s", addr, out)
		}
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			_ = conn.Close()
			t.Errorf("something listens on %d", port)
		}
	}

	tok := newToken()
	port := strconv.Itoa(testredis.FreePort(t))
	p := startHTTPOn(t, "0.0.0.0:"+port, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	res, body := p.modernCall(t, "/mcp", "", nil, "check_rate", `{"subject":"x"}`)
	wantUnauthorized(t, "POST /mcp without a token on 0.0.0.0", res, body, `realm="mcp-redis"`)
	c := dialStreamable(t, p.base, tok)
	okOver(t, c, "check_rate", `{"subject":"x"}`, &rateOut{})
	// Beyond loopback, a page on a loopback name is as foreign as any
	// other: "localhost" is the browser's machine, not this one.
	res, body = p.modernCall(t, "/mcp", "", map[string]string{"Authorization": "Bearer " + tok, "Origin": "http://localhost:3000"}, "check_rate", `{"subject":"x"}`)
	if res.StatusCode != http.StatusForbidden {
		t.Errorf("Origin http://localhost:3000 on a 0.0.0.0 bind: %d %s", res.StatusCode, body)
	}
}

// No bearer token reaches the server's log, at debug level, whatever the
// clients do: calls in every era, wrong and near-miss tokens, tokens in
// the query string, refused origins and hosts.
func TestTheBearerTokenNeverAppearsInTheHTTPServerLog(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix, "--log-level", "debug")
	for _, c := range []*client.Client{dialStreamable(t, p.base, tok), dialStreamable(t, p.base, tok, legacyEra), dialSSE(t, p.base, tok)} {
		callOver(t, c, "check_rate", `{"subject":"x"}`)
		callOver(t, c, "read_stream", `{"stream":"bad"}`)
		_ = c.Close()
	}
	near := tok[:len(tok)-1] + "Z"
	p.modernCall(t, "/mcp", "", bearer(near), "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp?access_token="+tok, "", nil, "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp", "evil.example", bearer(tok), "check_rate", `{"subject":"x"}`)
	p.modernCall(t, "/mcp", "", map[string]string{"Authorization": "Bearer " + tok, "Origin": "https://evil.example"}, "check_rate", `{"subject":"x"}`)
	p.get(t, "/metrics", bearer(tok))
	p.get(t, "/sse?token="+tok, nil)

	if err := p.stop(); err != nil {
		t.Fatalf("after SIGTERM: %v", err)
	}
	log := p.stderr.String()
	// mcp-go's per-request and per-tool lines come only at debug level.
	if !strings.Contains(log, "msg=mcp.tool") || !strings.Contains(log, "msg=mcp.request") {
		t.Errorf("no debug lines: the check would prove little:\n%s", log)
	}
	// The whole token, and any 12 bytes of it.
	for _, s := range []string{tok, near} {
		for i := 0; i+12 <= len(s); i++ {
			if strings.Contains(log, s[i:i+12]) {
				t.Fatalf("the log holds %q, part of a token:\n%s", s[i:i+12], log)
			}
		}
	}
	t.Logf("%d log lines, no token in any", strings.Count(log, "\n"))
}

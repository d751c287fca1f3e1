package transport_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/transport"
)

// httpServer serves a server of one tool, via (viaMCPGo), over HTTP with
// the fast path on, and returns its /mcp address.
func httpServer(t *testing.T, stateless bool, idle time.Duration) string {
	t.Helper()
	hooks := &server.Hooks{}
	sessions := &transport.SessionTable{}
	sessions.Watch(hooks)
	s := server.NewMCPServer("t", "1", server.WithToolCapabilities(false), server.WithResourceCapabilities(true, false), server.WithLogging(), server.WithHooks(hooks))
	s.AddTool(mcp.NewTool("via"), viaMCPGo)
	h := &transport.HTTP{
		Server: s, Stateless: stateless, Sessions: sessions,
		Calls: func(name string) server.ToolHandlerFunc {
			if st := s.GetTool(name); st != nil {
				return st.Handler
			}
			return nil
		},
		Loopback: true, MaxBodyBytes: 1 << 20, MaxConnections: 16, MaxSessions: 16, SessionIdleTimeout: idle,
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, ShutdownTimeout: time.Second,
		Ready:   func(context.Context) error { return nil },
		Metrics: http.NotFoundHandler(),
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String() + "/mcp"
}

// post sends msg to url and returns the session id answered (on
// initialize) and the result's first text, or the status and body.
func post(t *testing.T, url, session, msg string, header ...string) (string, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if session != "" {
		req.Header.Set("Mcp-Session-Id", session)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	var a struct {
		Result struct {
			Content []struct {
				Text string `json:"text"`
			} `json:"content"`
		} `json:"result"`
	}
	if res.StatusCode != http.StatusOK && res.StatusCode != http.StatusAccepted {
		return res.Header.Get("Mcp-Session-Id"), res.Status + " " + string(body)
	}
	if data, ok := strings.CutPrefix(strings.TrimSpace(string(body)), "event: message\ndata: "); ok {
		body = []byte(data)
	}
	if json.Unmarshal(body, &a) == nil && len(a.Result.Content) > 0 {
		return res.Header.Get("Mcp-Session-Id"), a.Result.Content[0].Text
	}
	return res.Header.Get("Mcp-Session-Id"), string(body)
}

const (
	httpInit = `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	httpCall = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"via","arguments":{}}}`
)

func TestHTTPFastPathServesPlainCallsAndLeavesTheRestToMCPGo(t *testing.T) {
	for _, stateless := range []bool{false, true} {
		url := httpServer(t, stateless, time.Hour)
		sid, _ := post(t, url, "", httpInit)
		if (sid == "") != stateless {
			t.Fatalf("stateless %v: session %q", stateless, sid)
		}
		for _, c := range []struct {
			name, msg string
			header    []string
			want      string
		}{
			{"a plain call", httpCall, nil, "fast"},
			{"a call with _meta", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"via","arguments":{},"_meta":{"progressToken":1}}}`, nil, "mcp-go"},
			{"an id mcp-go would not echo", `{"jsonrpc":"2.0","id":1.5,"method":"tools/call","params":{"name":"via","arguments":{}}}`, nil, "mcp-go"},
			{"Content-Type with a charset", httpCall, []string{"Content-Type", "application/json; charset=utf-8"}, "fast"},
			{"no protocol version header", httpCall, []string{"Mcp-Protocol-Version", ""}, "fast"},
			{"an older protocol version", httpCall, []string{"Mcp-Protocol-Version", "2025-03-26"}, "fast"},
			{"an unknown protocol version", httpCall, []string{"Mcp-Protocol-Version", "1999-01-01"}, "400 Bad Request Unsupported protocol version: 1999-01-01\n"},
		} {
			if _, got := post(t, url, sid, c.msg, c.header...); got != c.want {
				t.Errorf("stateless %v, %s: answered %q, want %q", stateless, c.name, got, c.want)
			}
		}
	}
}

func TestHTTPFastPathLeavesASessionThatAskedForNotificationsToMCPGo(t *testing.T) {
	url := httpServer(t, false, time.Hour)
	sid, _ := post(t, url, "", httpInit)
	if _, got := post(t, url, sid, httpCall); got != "fast" {
		t.Fatalf("before logging/setLevel: %q", got)
	}
	post(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"logging/setLevel","params":{"level":"debug"}}`)
	if _, got := post(t, url, sid, httpCall); got != "mcp-go" {
		t.Errorf("after logging/setLevel: %q, want mcp-go (its POST carries the session's notifications)", got)
	}
	// Another session is not affected.
	other, _ := post(t, url, "", httpInit)
	if _, got := post(t, url, other, httpCall); got != "fast" {
		t.Errorf("another session: %q", got)
	}
}

// mcp-go frees a session no request has reached for its idle timeout; a
// session the fast path serves sends a request to mcp-go every eighth of
// that timeout, so it is never taken for idle.
func TestHTTPFastPathKeepsMCPGoToldOfASessionInUse(t *testing.T) {
	const idle = 1600 * time.Millisecond
	url := httpServer(t, false, idle)
	sid, _ := post(t, url, "", httpInit)
	if _, got := post(t, url, sid, httpCall); got != "fast" {
		t.Fatalf("first call: %q", got)
	}
	time.Sleep(idle/8 + 50*time.Millisecond)
	if _, got := post(t, url, sid, httpCall); got != "mcp-go" {
		t.Errorf("a call an eighth of the idle timeout after the last one mcp-go saw: %q, want mcp-go", got)
	}
	if _, got := post(t, url, sid, httpCall); got != "fast" {
		t.Errorf("the next call: %q, want fast", got)
	}
	// Used past the idle timeout through the fast path, the session lives.
	end := time.Now().Add(idle + idle/2)
	for time.Now().Before(end) {
		if _, got := post(t, url, sid, httpCall); got != "fast" && got != "mcp-go" {
			t.Fatalf("a call of a session in use: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

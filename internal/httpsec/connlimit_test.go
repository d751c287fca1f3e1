package httpsec_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/httpsec"
)

// At the bound, one more connection is answered 503 with Retry-After and
// closed; once a connection closes, a new one is served.
func TestLimitListenerRefusesOneConnectionBeyondTheBound(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := httpsec.LimitListener(ln, 2, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(l) }()
	defer srv.Close()

	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	held := []net.Conn{dial(), dial()}
	deadline := time.Now().Add(5 * time.Second)
	for l.Open() < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	extra := dial()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("the connection beyond the bound got no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "http.max_connections") {
		t.Errorf("beyond the bound: %d %v %q", res.StatusCode, res.Header, b)
	}
	if l.Refused() != 1 {
		t.Errorf("refused = %d; want 1", l.Refused())
	}

	_ = held[0].Close()
	for l.Open() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := dial()
	defer c.Close()
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err := http.ReadResponse(bufio.NewReader(c), nil); err != nil || res.StatusCode != http.StatusOK {
		t.Errorf("after a slot freed: %v %v", res, err)
	}
	_ = held[1].Close()
}

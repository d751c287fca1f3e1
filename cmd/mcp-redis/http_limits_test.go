package main_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// Request limits: an oversized body and a slowloris header are cut off
// without holding the server.

// rawRequest writes head on a new connection and, from a goroutine,
// whatever body writes; it returns the response read within 10s.
func rawRequest(t *testing.T, addr, head string, body func(w io.Writer)) (*http.Response, string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	writing := make(chan struct{})
	go func() {
		defer close(writing)
		body(conn) // write errors end it: the server may close first
	}()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no response: %v", err)
	}
	took := time.Since(start)
	b, _ := io.ReadAll(res.Body)
	_ = res.Body.Close()
	_ = conn.Close()
	<-writing
	return res, string(b), took
}

// A POST announcing a 100 MiB body is refused with 413 at once, before the
// server reads it; a chunked body that grows past the limit is refused too,
// on /mcp and on the SSE message endpoint alike; the server serves on.
func TestAttack100MiBPost(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	rdb, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	addr := "127.0.0.1:" + p.port
	var sent sync.Map
	for _, path := range []string{"/mcp", "/message?sessionId=x"} {
		head := "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: " +
			strconv.Itoa(100<<20) + "\r\n\r\n"
		// Only 64 KiB of the 100 MiB follow: a server that read the body
		// would wait for the rest until its read timeout (30s).
		res, body, took := rawRequest(t, addr, head, func(w io.Writer) {
			n, _ := w.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"x":"` + strings.Repeat("A", 64<<10)))
			sent.Store(path, n)
		})
		if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "http.max_body_bytes") {
			t.Errorf("POST %s with Content-Length 100 MiB: %d %s", path, res.StatusCode, body)
		}
		if took > 2*time.Second {
			t.Errorf("POST %s with Content-Length 100 MiB: answered after %v", path, took)
		}
		t.Logf("%s, Content-Length 100 MiB: %d in %v", path, res.StatusCode, took)

		// Chunked, 4 MiB in 64 KiB chunks against the 1 MiB limit.
		head = "POST " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tok +
			"\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
		chunk := fmt.Sprintf("%x\r\n%s\r\n", 64<<10, strings.Repeat("B", 64<<10))
		res, body, took = rawRequest(t, addr, head, func(w io.Writer) {
			for range 64 {
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			_, _ = io.WriteString(w, "0\r\n\r\n")
		})
		if res.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("POST %s with a 4 MiB chunked body: %d %s", path, res.StatusCode, body)
		}
		t.Logf("%s, 4 MiB chunked: %d in %v", path, res.StatusCode, took)
	}

	// Unauthenticated, it is a 401, just as quickly.
	head := "POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: " + strconv.Itoa(100<<20) + "\r\n\r\n"
	res, _, took := rawRequest(t, addr, head, func(w io.Writer) { _, _ = w.Write(make([]byte, 1024)) })
	if res.StatusCode != http.StatusUnauthorized || took > 2*time.Second {
		t.Errorf("unauthenticated 100 MiB POST: %d after %v", res.StatusCode, took)
	}

	nothingWritten(t, rdb, prefix)
	noToolRan(t, p, tok)
	controlCallRuns(t, p, rdb, prefix, bearer(tok))
}

// A client that trickles its request line and headers one byte a second
// (slowloris) is cut off at http.read_header_timeout, and another client
// is served meanwhile.
func TestAttackHeadersTrickledOneByteASecond(t *testing.T) {
	needsFull(t, "starts the binary over HTTP")
	_, prefix := testredis.Shared(t)
	tok := newToken()
	p := startHTTP(t, []string{tokensEnv("ci", tok), "MCP_REDIS_HTTP_READ_HEADER_TIMEOUT=2s"}, "--redis-url", testredis.URL(), "--prefix", prefix)
	conn, err := net.Dial("tcp", "127.0.0.1:"+p.port)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	closed := make(chan time.Duration, 1)
	var reply strings.Builder
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := conn.Read(buf)
			reply.Write(buf[:n])
			if err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	stop := make(chan struct{})
	trickled := make(chan int, 1)
	go func() {
		req := "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:" + p.port + "\r\nAuthorization: Bearer " + tok + "\r\nContent-Length: 2\r\n\r\n{}"
		n := 0
		defer func() { trickled <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := range len(req) {
			if _, err := conn.Write([]byte{req[i]}); err != nil {
				return
			}
			n++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	// Meanwhile another client is served at once.
	time.Sleep(500 * time.Millisecond)
	c := dialStreamable(t, p.base, tok)
	okOver(t, c, "check_rate", `{"subject":"other"}`, &rateOut{})
	if res, _ := p.get(t, "/healthz", nil); res.StatusCode != http.StatusOK {
		t.Errorf("/healthz during the trickle: %d", res.StatusCode)
	}
	served := time.Since(start)

	var after time.Duration
	select {
	case after = <-closed:
	case <-time.After(8 * time.Second):
		t.Fatal("the trickling connection is still open after 8s")
	}
	close(stop)
	n := <-trickled
	t.Logf("other client served by %v; trickling connection closed after %v, %d bytes in; reply %q", served, after, n, reply.String())
	if after < 1500*time.Millisecond || after > 4*time.Second {
		t.Errorf("the trickling connection was closed after %v, want about 2s", after)
	}
	if served > 2*time.Second {
		t.Errorf("the other client waited until %v", served)
	}
	if strings.Contains(reply.String(), "200 OK") {
		t.Errorf("the trickled request was served: %q", reply.String())
	}
}

package httpsec_test

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/httpsec"
)

// The tests are named TestHTTP… so that `go test -run HTTP` selects them.

// reached is a handler that records whether it ran, the caller in its
// context, and the body it read.
type reached struct {
	mu     sync.Mutex
	n      int
	caller string
	body   []byte
	err    error
}

func (h *reached) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	h.mu.Lock()
	h.n++
	h.caller = httpsec.TokenName(r.Context())
	h.body, h.err = b, err
	h.mu.Unlock()
	_, _ = io.WriteString(w, "reached")
}

func (h *reached) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

const (
	aliceTok = "alice-token-0123456789abcdef"
	bobTok   = "bob-token-fedcba9876543210-longer"
)

func newBearer(t *testing.T, tokens map[string]string) (http.Handler, *reached, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	next := &reached{}
	return httpsec.Bearer(httpsec.NewTokens(tokens), slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})), next), next, &log
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func withAuth(v string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	if v != "" {
		r.Header.Set("Authorization", v)
	}
	return r
}

// Each right token reaches the handler with its own name, never the
// token, as the caller in the request's context; the scheme's case does
// not matter.
func TestHTTPBearerPutsTheTokensNameInTheContext(t *testing.T) {
	h, next, log := newBearer(t, map[string]string{"alice": aliceTok, "bob": bobTok})
	for _, c := range []struct{ auth, name string }{
		{"Bearer " + aliceTok, "alice"},
		{"Bearer " + bobTok, "bob"},
		{"bearer " + aliceTok, "alice"},
		{"BEARER " + bobTok, "bob"},
		{"Bearer   " + aliceTok + "  ", "alice"},
	} {
		before := next.count()
		w := serve(h, withAuth(c.auth))
		if w.Code != http.StatusOK || next.count() != before+1 {
			t.Errorf("%q: %d %s", c.auth, w.Code, w.Body)
			continue
		}
		if next.caller != c.name {
			t.Errorf("%q: caller %q, want %q", c.auth, next.caller, c.name)
		}
	}
	if strings.Contains(log.String(), aliceTok) || strings.Contains(log.String(), bobTok) {
		t.Errorf("a token in the log:\n%s", log)
	}
}

// No usable Authorization header: 401 with a Bearer challenge, and the
// handler never runs.
func TestHTTPBearerRefusesAMissingOrMalformedAuthorization(t *testing.T) {
	h, next, _ := newBearer(t, map[string]string{"alice": aliceTok})
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer    ", aliceTok, "Basic " + aliceTok, "Token " + aliceTok, "Bearer:" + aliceTok} {
		w := serve(h, withAuth(auth))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%q: %d, want 401", auth, w.Code)
		}
		if wa := w.Header().Get("WWW-Authenticate"); wa != `Bearer realm="mcp-redis"` {
			t.Errorf("%q: WWW-Authenticate %q", auth, wa)
		}
	}
	if next.count() != 0 {
		t.Errorf("the handler ran %d times", next.count())
	}
}

// A wrong token is refused as invalid wherever it differs from a right
// one and whatever its length: the digests compared have one length.
func TestHTTPBearerRefusesWrongTokensOfAnyLengthWhereverTheyDiffer(t *testing.T) {
	h, next, log := newBearer(t, map[string]string{"alice": aliceTok, "bob": bobTok})
	flip := func(s string, i int) string {
		b := []byte(s)
		b[i] ^= 1
		return string(b)
	}
	wrong := []string{
		flip(aliceTok, 0), flip(aliceTok, len(aliceTok)/2), flip(aliceTok, len(aliceTok)-1),
		aliceTok[:len(aliceTok)-1], aliceTok + "x", aliceTok + bobTok, aliceTok + " " + bobTok,
		strings.ToUpper(aliceTok), "alice", "x", strings.Repeat("a", 1<<16),
		aliceTok + "\x00",
	}
	for _, tok := range wrong {
		w := serve(h, withAuth("Bearer "+tok))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%.40q: %d, want 401", tok, w.Code)
		}
		if wa := w.Header().Get("WWW-Authenticate"); wa != `Bearer realm="mcp-redis", error="invalid_token"` {
			t.Errorf("%.40q: WWW-Authenticate %q", tok, wa)
		}
		if strings.Contains(w.Body.String(), tok) {
			t.Errorf("the answer echoes the token: %s", w.Body)
		}
	}
	if next.count() != 0 {
		t.Errorf("the handler ran %d times", next.count())
	}
	if n := strings.Count(log.String(), "rejected a wrong bearer token"); n != len(wrong) {
		t.Errorf("%d log lines for %d wrong tokens:\n%s", n, len(wrong), log)
	}
	for _, tok := range append(wrong[:7], aliceTok, bobTok) {
		if strings.Contains(log.String(), tok) {
			t.Errorf("the log holds a token %.40q:\n%s", tok, log)
		}
	}
}

// Only the Authorization header counts: a token in the query string, a
// cookie or another header is ignored.
func TestHTTPBearerIgnoresATokenInTheQueryStringOrElsewhere(t *testing.T) {
	h, next, _ := newBearer(t, map[string]string{"alice": aliceTok})
	for _, target := range []string{"/mcp?access_token=" + aliceTok, "/mcp?token=" + aliceTok, "/mcp?authorization=Bearer+" + aliceTok} {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader("{}"))
		if w := serve(h, r); w.Code != http.StatusUnauthorized {
			t.Errorf("%s: %d, want 401", target, w.Code)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
	r.Header.Set("X-Api-Key", aliceTok)
	r.AddCookie(&http.Cookie{Name: "token", Value: aliceTok})
	r.Header.Set("Proxy-Authorization", "Bearer "+aliceTok)
	if w := serve(h, r); w.Code != http.StatusUnauthorized {
		t.Errorf("token in other headers: %d, want 401", w.Code)
	}
	if next.count() != 0 {
		t.Errorf("the handler ran %d times", next.count())
	}
}

// When two names share one token, every Bearer built from the same
// configuration names the caller the same: the audit must not depend on
// map order.
func TestHTTPBearerNamesATokenSharedByTwoNamesTheSameEveryTime(t *testing.T) {
	seen := map[string]int{}
	for range 64 {
		h, next, _ := newBearer(t, map[string]string{"zed": aliceTok, "amy": aliceTok, "bob": bobTok})
		if w := serve(h, withAuth("Bearer "+aliceTok)); w.Code != http.StatusOK {
			t.Fatalf("%d", w.Code)
		}
		seen[next.caller]++
	}
	if len(seen) != 1 {
		t.Errorf("the shared token was named %v across 64 builds", seen)
	}
}

// On a loopback bind, loopback names pass in every spelling; anything
// else, a missing Host included, is a 403 before the handler runs.
func TestHTTPLoopbackHostAcceptsLoopbackNamesOnly(t *testing.T) {
	next := &reached{}
	h := httpsec.LoopbackHost(next)
	pass := []string{"localhost", "localhost:8080", "LOCALHOST:1", "LocalHost", "127.0.0.1", "127.0.0.1:8080", "127.9.8.7:80",
		"[::1]:8080", "[::1]", "::1", "[0:0:0:0:0:0:0:1]:443", "[::ffff:127.0.0.1]:80"}
	refuse := []string{"", "evil.example", "evil.example:8080", "localhost.evil.example", "localhost.", "127.0.0.1.evil.example",
		"0.0.0.0:8080", "[::]:8080", "10.0.0.1", "[2001:db8::1]:80", "[::ffff:10.0.0.1]", "127.1", "2130706433", "0x7f000001",
		"evil.example@127.0.0.1", "127.0.0.1@evil.example", "127.0.0.1 evil.example"}
	for _, host := range pass {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Host = host
		if w := serve(h, r); w.Code != http.StatusOK {
			t.Errorf("Host %q: %d, want 200", host, w.Code)
		}
	}
	if next.count() != len(pass) {
		t.Fatalf("the handler ran %d times, want %d", next.count(), len(pass))
	}
	for _, host := range refuse {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.Host = host
		w := serve(h, r)
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "DNS rebinding") {
			t.Errorf("Host %q: %d %s, want 403", host, w.Code, w.Body)
		}
	}
	if next.count() != len(pass) {
		t.Errorf("the handler ran for a refused Host")
	}
	// A 10 KiB Host is clipped in the answer.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Host = strings.Repeat("h", 10<<10)
	if w := serve(h, r); w.Code != http.StatusForbidden || w.Body.Len() > 512 {
		t.Errorf("long Host: %d, %d bytes of answer", w.Code, w.Body.Len())
	}
}

// Origin must be exactly one of the listed; requests without Origin pass.
// Beyond loopback, a loopback Origin is foreign like any other.
func TestHTTPOriginsPassListedOriginsAndRequestsWithoutOne(t *testing.T) {
	next := &reached{}
	h := httpsec.Origins([]string{"https://app.example.com", "http://localhost:3000"}, false, next)
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"", http.StatusOK},
		{"https://app.example.com", http.StatusOK},
		{"http://localhost:3000", http.StatusOK},
		{"https://evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"http://app.example.com", http.StatusForbidden},
		{"https://app.example.com:443", http.StatusForbidden},
		{"https://app.example.com/", http.StatusForbidden},
		{"https://app.example.com.evil.example", http.StatusForbidden},
		{"https://sub.app.example.com", http.StatusForbidden},
		{"http://localhost:3001", http.StatusForbidden},
		{"http://127.0.0.1:8080", http.StatusForbidden},
		{"https://app.example.com, https://evil.example", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		before := next.count()
		w := serve(h, r)
		if w.Code != c.want {
			t.Errorf("Origin %q: %d, want %d", c.origin, w.Code, c.want)
		}
		if ran := next.count() > before; ran != (c.want == http.StatusOK) {
			t.Errorf("Origin %q: handler ran = %v", c.origin, ran)
		}
	}
	// With nothing listed, every browser request is refused.
	h = httpsec.Origins(nil, false, next)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Origin", "http://localhost:3000")
	if w := serve(h, r); w.Code != http.StatusForbidden {
		t.Errorf("empty list: %d", w.Code)
	}
}

// On a loopback bind, a page on a loopback name (http or https) passes
// unlisted; a rebound foreign name, or another scheme, does not.
func TestHTTPOriginsOnLoopbackPassLoopbackPagesOnly(t *testing.T) {
	next := &reached{}
	h := httpsec.Origins(nil, true, next)
	for _, c := range []struct {
		origin string
		want   int
	}{
		{"http://localhost:3000", http.StatusOK},
		{"https://localhost", http.StatusOK},
		{"http://127.0.0.1:8080", http.StatusOK},
		{"http://[::1]:8080", http.StatusOK},
		{"http://evil.example:8080", http.StatusForbidden},
		{"http://localhost.evil.example", http.StatusForbidden},
		{"http://127.0.0.1.evil.example", http.StatusForbidden},
		{"file://localhost", http.StatusForbidden},
		{"chrome-extension://localhost", http.StatusForbidden},
		{"null", http.StatusForbidden},
		{"localhost:3000", http.StatusForbidden},
		{"http://0.0.0.0:8080", http.StatusForbidden},
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader("{}"))
		r.Header.Set("Origin", c.origin)
		if w := serve(h, r); w.Code != c.want {
			t.Errorf("Origin %q: %d, want %d", c.origin, w.Code, c.want)
		}
	}
}

// spy is a request body that records what was read from it.
type spy struct {
	r    io.Reader
	read int
}

func (s *spy) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	s.read += n
	return n, err
}

const limit = 1024

func limited(next http.Handler) http.Handler {
	return httpsec.Limits(limit, time.Second, next)
}

// A Content-Length over the limit is refused with 413 before a byte of
// the body is read, and the connection is to close.
func TestHTTPLimitsRefusesAnOversizedContentLengthWithoutReadingTheBody(t *testing.T) {
	for _, n := range []int64{limit + 1, 100 << 20} {
		next := &reached{}
		body := &spy{r: strings.NewReader(strings.Repeat("x", limit+1))}
		r := httptest.NewRequest(http.MethodPost, "/mcp", body)
		r.ContentLength = n
		w := serve(limited(next), r)
		if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "http.max_body_bytes") {
			t.Errorf("Content-Length %d: %d %s", n, w.Code, w.Body)
		}
		if w.Header().Get("Connection") != "close" {
			t.Errorf("Content-Length %d: Connection %q, want close", n, w.Header().Get("Connection"))
		}
		if body.read != 0 || next.count() != 0 {
			t.Errorf("Content-Length %d: %d bytes read, handler ran %d times", n, body.read, next.count())
		}
	}
}

// A body of unknown length (chunked) is read up to the limit and refused
// with 413 once it passes it; the handler never runs.
func TestHTTPLimitsRefusesAChunkedBodyOverTheLimit(t *testing.T) {
	for _, n := range []int{limit + 1, 2 * limit, 10 << 20} {
		next := &reached{}
		body := &spy{r: strings.NewReader(strings.Repeat("x", n))}
		r := httptest.NewRequest(http.MethodPost, "/mcp", body)
		r.ContentLength = -1
		r.TransferEncoding = []string{"chunked"}
		w := serve(limited(next), r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("chunked %d bytes: %d %s", n, w.Code, w.Body)
		}
		if next.count() != 0 {
			t.Errorf("chunked %d bytes: the handler ran", n)
		}
		if body.read > limit+4096 {
			t.Errorf("chunked %d bytes: read %d, far past the limit", n, body.read)
		}
	}
}

// Bodies at exactly the limit, and under it, pass whole, by
// Content-Length and chunked; so do body-less requests.
func TestHTTPLimitsPassesBodiesAtExactlyTheLimit(t *testing.T) {
	for _, n := range []int{limit, limit - 1, 1, 0} {
		for _, chunked := range []bool{false, true} {
			next := &reached{}
			want := strings.Repeat("y", n)
			r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(want))
			if chunked {
				r.ContentLength = -1
				r.TransferEncoding = []string{"chunked"}
			}
			w := serve(limited(next), r)
			if w.Code != http.StatusOK || next.count() != 1 || string(next.body) != want || next.err != nil {
				t.Errorf("%d bytes (chunked %v): %d, handler ran %d, read %d bytes (%v)", n, chunked, w.Code, next.count(), len(next.body), next.err)
			}
		}
	}
	next := &reached{}
	if w := serve(limited(next), httptest.NewRequest(http.MethodGet, "/sse", nil)); w.Code != http.StatusOK || next.count() != 1 {
		t.Errorf("GET without a body: %d", w.Code)
	}
}

// rawPOST sends head and then body on a new connection to srv, and returns
// the status line of the answer, or the read error, and when it came.
func rawPOST(t *testing.T, srv *httptest.Server, head, body string) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head+body); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "error: " + err.Error(), time.Since(start)
	}
	return strings.TrimSpace(line), time.Since(start)
}

// A body that stalls is cut off at the read timeout with 408, and a body
// that is not valid chunked encoding is a 400; neither reaches the handler.
func TestHTTPLimitsCutsOffAStalledBodyAndRefusesAMalformedOne(t *testing.T) {
	next := &reached{}
	// The server's ReadTimeout bounds the body, as the transport sets it.
	srv := httptest.NewUnstartedServer(httpsec.Limits(limit, time.Second, next))
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Start()
	defer srv.Close()

	line, took := rawPOST(t, srv, "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n", "only 15 bytes..")
	if !strings.Contains(line, " 408 ") {
		t.Errorf("stalled body: %q, want 408", line)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Errorf("stalled body: answered after %v, want about 300ms", took)
	}

	line, _ = rawPOST(t, srv, "POST /mcp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", "zz\r\nnot hex\r\n0\r\n\r\n")
	if !strings.Contains(line, " 400 ") {
		t.Errorf("malformed chunked body: %q, want 400", line)
	}
	if next.count() != 0 {
		t.Errorf("the handler ran %d times", next.count())
	}
}

// The answer to a POST must be written within the write timeout; a GET
// (a stream) has no such deadline.
func TestHTTPLimitsBoundsTheAnswerToAPOSTButNotAStream(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(600 * time.Millisecond)
		_, _ = io.WriteString(w, strings.Repeat("late ", 1<<14))
	})
	srv := httptest.NewServer(httpsec.Limits(limit, 200*time.Millisecond, slow))
	defer srv.Close()

	res, err := http.Post(srv.URL, "application/json", strings.NewReader("{}"))
	if err == nil {
		b, rerr := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if rerr == nil && len(b) == 5<<14 {
			t.Errorf("a POST answered after its write timeout: %d %d bytes", res.StatusCode, len(b))
		}
	}

	res, err = http.Get(srv.URL)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil || len(b) != 5<<14 {
		t.Errorf("GET past the write timeout: %d bytes, %v", len(b), err)
	}
}

// The middlewares compose as the transport stacks them: the Host and
// Origin checks come first, then the token, then the limits.
func TestHTTPGuardsComposeInTheTransportsOrder(t *testing.T) {
	next := &reached{}
	var log bytes.Buffer
	h := httpsec.LoopbackHost(httpsec.Origins([]string{"https://ok.example"}, true,
		httpsec.Bearer(httpsec.NewTokens(map[string]string{"alice": aliceTok}), slog.New(slog.NewTextHandler(&log, nil)),
			httpsec.Limits(limit, time.Second, next))))
	for _, c := range []struct {
		host, origin, auth string
		size               int
		want               int
	}{
		{"evil.example", "", "Bearer " + aliceTok, 10, http.StatusForbidden},
		{"localhost", "https://evil.example", "Bearer " + aliceTok, 10, http.StatusForbidden},
		{"localhost", "", "", limit + 1, http.StatusUnauthorized},
		{"localhost", "https://ok.example", "Bearer " + aliceTok, limit + 1, http.StatusRequestEntityTooLarge},
		{"[::1]:9", "https://ok.example", "Bearer " + aliceTok, limit, http.StatusOK},
	} {
		r := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(strings.Repeat("z", c.size)))
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if w := serve(h, r); w.Code != c.want {
			t.Errorf("%+v: %d, want %d", c, w.Code, c.want)
		}
	}
	if next.count() != 1 || next.caller != "alice" {
		t.Errorf("handler ran %d times, caller %q", next.count(), next.caller)
	}
}

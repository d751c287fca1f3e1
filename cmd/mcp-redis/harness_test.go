package main_test

// The one way these tests run the binary. startBinary starts `mcp-redis
// args…` in an empty directory of its own (so no stray config.yaml is
// read) with env added to the test's environment, captures what it logs,
// and stops it when the test ends; runBinary runs a command to its end.
// The helpers the tests reach a server with stand on them:
//
//	spawn                  mcp-go's client over stdio (server.call, server.ok)
//	startRawStdio          raw bytes to stdin, each stdout line on a channel
//	startHTTP, startHTTPOn --transport http: a base URL, do and get
//	dialStreamable, dialSSE, dialSSELegacy   mcp-go's HTTP clients on that URL
//
// Every test that starts the binary, or a redis-server of its own, begins
// with needsFull: the -short tier starts no process, so under -short no
// binary is built either.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// needsFull skips the test in the -short tier, saying why it is not there.
func needsFull(t *testing.T, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why + "; not in the -short tier")
	}
}

// bin is the mcp-redis binary, built once by TestMain; "" under -short.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	// The servers these tests start make their audit signing key under the
	// user's config directory: a temporary one, not the developer's.
	cfgDir, err := os.MkdirTemp("", "mcp-redis-e2e-config")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", cfgDir)
	var buildDir string
	switch {
	case testing.Short():
		// No test of the -short tier starts the binary.
	case os.Getenv("MCP_REDIS_E2E_BIN") != "":
		// MCP_REDIS_E2E_BIN runs these tests against another build, e.g.
		// an older one, to see a new test fail there.
		bin = os.Getenv("MCP_REDIS_E2E_BIN")
	default:
		if buildDir, err = os.MkdirTemp("", "mcp-redis-e2e"); err != nil {
			panic(err)
		}
		bin = filepath.Join(buildDir, "mcp-redis")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build mcp-redis:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	_ = os.RemoveAll(cfgDir)
	os.Exit(code)
}

// binCommand is `mcp-redis args…` in an empty directory, with env added to
// the test's environment.
func binCommand(ctx context.Context, t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	if bin == "" {
		t.Fatal("the -short tier builds no binary: begin this test with needsFull")
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runBound is how long runBinary lets a command run when the test names
// no bound of its own.
const runBound = 2 * time.Minute

// runBinary runs `mcp-redis args…` to its end with env added and nothing
// on its stdin, and returns what it wrote to stdout and stderr and its
// exit status: nil, or an *exec.ExitError. A binary that does not run, or
// still runs after within (it is killed then), fails the test.
func runBinary(t *testing.T, within time.Duration, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	out, err := binCommand(ctx, t, env, args...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mcp-redis %s: still running after %v:\n%s", strings.Join(args, " "), within, out)
	}
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatal(err)
	}
	return string(out), err
}

// binProc is one mcp-redis process started by startBinary.
type binProc struct {
	cmd    *exec.Cmd
	stdio  bool
	stdin  io.WriteCloser    // with stdio: the server's stdin
	stdout *os.File          // with stdio: the server's stdout (else it joins stderr)
	stderr *testredis.Buffer // everything it logged
	done   chan struct{}     // closed when the process has exited
	err    error             // its exit status, once done is closed

	once    sync.Once
	stopErr error
}

// errStillRunning is stop's error when the process outlived its time to
// exit and was killed.
var errStillRunning = errors.New("still running after it was told to stop (killed)")

// startBinary starts `mcp-redis args…` with env added. With stdio the test
// speaks to it over stdin and stdout, and it is stopped by closing its
// stdin; without, its stdout joins its stderr and it is stopped with
// SIGTERM. Either way stop runs when the test ends.
func startBinary(t *testing.T, stdio bool, env []string, args ...string) *binProc {
	t.Helper()
	p := &binProc{stdio: stdio, stderr: &testredis.Buffer{}, done: make(chan struct{})}
	p.cmd = binCommand(context.Background(), t, env, args...)
	p.cmd.Stderr = p.stderr
	if stdio {
		var err error
		if p.stdin, err = p.cmd.StdinPipe(); err != nil {
			t.Fatal(err)
		}
		// A pipe of the test's own, not StdoutPipe: Wait closes that one
		// as soon as the process exits, losing lines not yet read.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close() // the child holds its own copy once started
		p.cmd.Stdout, p.stdout = w, r
	} else {
		p.cmd.Stdout = p.stderr
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.stop()
		if p.stdout != nil {
			_ = p.stdout.Close()
		}
	})
	return p
}

// stop tells the process to end — its stdin closed, or SIGTERM — and
// waits for the exit: nil when it exited 0. A stdio server has 10s, an
// HTTP one 20s (it drains calls in flight first), then it is killed. Only
// the first call acts; later calls return the same outcome.
func (p *binProc) stop() error {
	p.once.Do(func() {
		select {
		case <-p.done:
			p.stopErr = fmt.Errorf("the server had already exited: %v", p.err)
			return
		default:
		}
		wait := 20 * time.Second
		if p.stdio {
			wait = 10 * time.Second
			_ = p.stdin.Close()
		} else {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
			p.stopErr = p.err
		case <-time.After(wait):
			_ = p.cmd.Process.Kill()
			<-p.done
			p.stopErr = fmt.Errorf("%w: %v", errStillRunning, wait)
		}
	})
	return p.stopErr
}

// pid is the process's id.
func (p *binProc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited: not reaped, and
// signal 0 reaches it.
func (p *binProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return syscall.Kill(p.pid(), 0) == nil
	}
}

// ---------------------------------------------------------------------------
// stdio

// server is the binary over stdio with mcp-go's client.
type server struct {
	t      *testing.T
	c      *client.Client
	stderr *testredis.Buffer
	proc   *binProc
}

// stdioClient is mcp-go's client over p's stdin and stdout, not started.
func stdioClient(p *binProc, opts ...client.ClientOption) *client.Client {
	return client.NewClient(transport.NewIO(p.stdout, p.stdin, nil), opts...)
}

// spawn starts `mcp-redis serve args…` over stdio with env added, and
// initialises an MCP session with mcp-go's client.
func spawn(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	return spawnWith(t, nil, env, args...)
}

// spawnWith is spawn with mcp-go client options (e.g. legacyEra).
func spawnWith(t *testing.T, opts []client.ClientOption, env []string, args ...string) *server {
	t.Helper()
	p := startBinary(t, true, env, append([]string{"serve"}, args...)...)
	c := stdioClient(p, opts...)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, p.stderr.String())
	}
	return &server{t: t, c: c, stderr: p.stderr, proc: p}
}

func (s *server) call(tool string, args any) *mcp.CallToolResult {
	s.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		s.t.Fatalf("%s: %v\nstderr:\n%s", tool, err, s.stderr.String())
	}
	return res
}

func (s *server) ok(tool string, args any) map[string]any {
	s.t.Helper()
	res := s.call(tool, args)
	if res.IsError {
		s.t.Fatalf("%s(%v) failed: %s", tool, args, resultText(res))
	}
	var out map[string]any
	raw := res.RawStructuredContent
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("%s structured content %q: %v", tool, raw, err)
	}
	return out
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func args(s string) json.RawMessage { return json.RawMessage(s) }

// rawStdio is the binary over stdio driven by hand: bytes written to its
// stdin, each line it writes to stdout on lines, in order.
type rawStdio struct {
	*binProc
	lines chan []byte
}

// startRawStdio starts `mcp-redis args…` over stdio with env added; lines
// holds up to buffered lines not yet read. When the test ends it closes
// the server's stdin, and the server must exit.
func startRawStdio(t *testing.T, buffered int, env []string, args ...string) *rawStdio {
	t.Helper()
	p := &rawStdio{binProc: startBinary(t, true, env, args...), lines: make(chan []byte, buffered)}
	go func() {
		sc := bufio.NewScanner(p.stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			p.lines <- slices.Clone(sc.Bytes())
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		if errors.Is(p.stop(), errStillRunning) {
			t.Errorf("the server did not exit when stdin closed")
		}
	})
	return p
}

// ---------------------------------------------------------------------------
// HTTP

// httpProc is the binary serving HTTP.
type httpProc struct {
	*binProc
	base string // http://127.0.0.1:port
	port string
	// secrets are the bearer tokens it was given: never in its log.
	secrets []string
}

// startHTTP starts `mcp-redis serve --transport http` on a free loopback
// port with env added, and waits until /healthz answers. When the test
// ends it is stopped with SIGTERM and must exit 0, and no bearer token it
// was given may be in its log.
func startHTTP(t *testing.T, env []string, args ...string) *httpProc {
	t.Helper()
	return startHTTPOn(t, "127.0.0.1:"+strconv.Itoa(testredis.FreePort(t)), env, args...)
}

// startHTTPOn is startHTTP listening on listen; /healthz is reached on
// 127.0.0.1 and the same port.
func startHTTPOn(t *testing.T, listen string, env []string, args ...string) *httpProc {
	t.Helper()
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatal(err)
	}
	p := &httpProc{base: "http://127.0.0.1:" + port, port: port}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "MCP_REDIS_HTTP_AUTH_TOKENS="); ok {
			for pair := range strings.SplitSeq(v, ",") {
				if _, tok, ok := strings.Cut(pair, "="); ok && tok != "" {
					p.secrets = append(p.secrets, tok)
				}
			}
		}
	}
	p.binProc = startBinary(t, false, env, append([]string{"serve", "--transport", "http", "--listen", listen}, args...)...)
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("after SIGTERM: %v\nstderr:\n%s", err, p.stderr.String())
		}
		log := p.stderr.String()
		for _, s := range p.secrets {
			if strings.Contains(log, s) {
				t.Errorf("a bearer token appears in the server's log:\n%s", log)
			}
		}
	})

	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.done:
			t.Fatalf("the server exited before serving: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if res, err := hc.Get(p.base + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz did not answer 200 within 15s\nstderr:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// plain is the client of the raw HTTP requests.
var plain = &http.Client{Timeout: 15 * time.Second}

// do sends one request and returns the answer with its body read.
func (p *httpProc) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	res, err := plain.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: body: %v", req.Method, req.URL, err)
	}
	return res, string(b)
}

func (p *httpProc) get(t *testing.T, path string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return p.do(t, req)
}

// newToken returns a fresh bearer token (36 bytes).
func newToken() string { return "tok_" + testredis.Random(16) }

// tokensEnv configures bearer tokens given as name, token, name, token….
func tokensEnv(pairs ...string) string {
	var b []string
	for i := 0; i+1 < len(pairs); i += 2 {
		b = append(b, pairs[i]+"="+pairs[i+1])
	}
	return "MCP_REDIS_HTTP_AUTH_TOKENS=" + strings.Join(b, ",")
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// dialStreamable connects mcp-go's Streamable HTTP client to /mcp with the
// bearer token and initialises it; opts pin the protocol version.
func dialStreamable(t *testing.T, base, tok string, opts ...client.ClientOption) *client.Client {
	t.Helper()
	return dialStreamableWith(t, base, tok, nil, opts...)
}

// dialStreamableWith is dialStreamable with more transport options.
func dialStreamableWith(t *testing.T, base, tok string, topts []transport.StreamableHTTPCOption, opts ...client.ClientOption) *client.Client {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(base+"/mcp", append([]transport.StreamableHTTPCOption{
		transport.WithHTTPHeaders(bearer(tok)), transport.WithHTTPTimeout(30 * time.Second)}, topts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, client.NewClient(tr, opts...))
}

// cannotInitialise fails t when mcp-go's Streamable HTTP client, with
// topts, initialises against base; who names the client in the failure.
func cannotInitialise(t *testing.T, base, who string, topts ...transport.StreamableHTTPCOption) {
	t.Helper()
	tr, err := transport.NewStreamableHTTP(base+"/mcp", topts...)
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, legacyEra)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err == nil {
		if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err == nil {
			t.Errorf("%s initialised", who)
		}
	}
}

// dialSSE connects mcp-go's SSE client to /sse with the bearer token.
func dialSSE(t *testing.T, base, tok string) *client.Client {
	t.Helper()
	c, err := client.NewSSEMCPClient(base+"/sse", client.WithHeaders(bearer(tok)))
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, c)
}

// dialSSELegacy is dialSSE pinned to the legacy era, as SSE-era hosts are.
func dialSSELegacy(t *testing.T, base, tok string) *client.Client {
	t.Helper()
	tr, err := transport.NewSSE(base+"/sse", transport.WithHeaders(bearer(tok)))
	if err != nil {
		t.Fatal(err)
	}
	return initialise(t, client.NewClient(tr, legacyEra))
}

func initialise(t *testing.T, c *client.Client) *client.Client {
	t.Helper()
	// The SSE stream lives as long as Start's context: not this call's.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatalf("initialize: %v", err)
	}
	return c
}

var legacyEra = client.WithProtocolVersion(mcp.ProtocolVersion20251125)

// callOver calls a tool; a transport or protocol failure fails the test.
func callOver(t *testing.T, c *client.Client, tool, arguments string) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = json.RawMessage(arguments)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return res
}

// okOver calls a tool that must succeed and decodes its structured result
// into out.
func okOver(t *testing.T, c *client.Client, tool, arguments string, out any) {
	t.Helper()
	res := callOver(t, c, tool, arguments)
	if res.IsError {
		t.Fatalf("%s(%s) is a tool error: %s", tool, arguments, resultText(res))
	}
	if err := json.Unmarshal(res.RawStructuredContent, out); err != nil {
		t.Fatalf("%s structured content %q: %v", tool, res.RawStructuredContent, err)
	}
}

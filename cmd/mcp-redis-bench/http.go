package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// httpServer is an mcp-redis child serving Streamable HTTP on a loopback
// port, spawned by the bench so its pid is known for /proc.
type httpServer struct {
	cmd    *exec.Cmd
	addr   string // 127.0.0.1:port
	stderr *tailBuffer
	exited chan struct{} // closed when the child has exited
	err    error         // Wait's error, once exited is closed
}

// startHTTPServer spawns `mcp-redis serve --transport http` on a free
// loopback port and waits until /healthz answers. A port taken between
// choosing it and the child binding it is retried on another.
func startHTTPServer(ctx context.Context, spec serverSpec, stateless bool) (*httpServer, error) {
	var lastErr error
	for range 3 {
		s, err := spawnHTTP(ctx, spec, stateless)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, lastErr
}

func spawnHTTP(ctx context.Context, spec serverSpec, stateless bool) (*httpServer, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	args := append(spec.args(), "--transport", "http", "--listen", addr)
	cmd := exec.Command(spec.bin, args...)
	env := spec.env()
	env = append(env, "MCP_REDIS_HTTP_STATELESS="+strconv.FormatBool(stateless))
	s := &httpServer{cmd: cmd, addr: addr, stderr: &tailBuffer{max: 16 << 10}, exited: make(chan struct{})}
	cmd.Env, cmd.Dir, cmd.Stdout, cmd.Stderr = env, spec.dir, s.stderr, s.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", spec.bin, err)
	}
	go func() { s.err = cmd.Wait(); close(s.exited) }()

	// Wait for /healthz, or for the child to give up (a port already taken).
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DialContext: loopbackDial}}
	defer hc.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.exited:
			return nil, s.withStderr(fmt.Errorf("server exited before serving: %v", s.err))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		default:
		}
		if resp, err := hc.Get("http://" + addr + "/healthz"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, s.withStderr(errors.New("server did not answer /healthz within 15s"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeLoopbackAddr returns 127.0.0.1:port with a port free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// loopbackDial dials only loopback addresses: the bench talks to its own
// children and nothing else.
func loopbackDial(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := requireLoopback(addr); err != nil {
		return nil, err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// stop asks the server to shut down (SIGTERM: it drains and exits), and
// kills it if it has not exited within 10 s.
func (s *httpServer) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		logf("http server %d did not exit on SIGTERM; killing it", s.cmd.Process.Pid)
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *httpServer) pid() int { return s.cmd.Process.Pid }

func (s *httpServer) withStderr(err error) error {
	if tail := lastLines(s.stderr.String(), 10); tail != "" {
		return fmt.Errorf("%w\nserver stderr (last lines):\n%s", err, tail)
	}
	return err
}

// memSnap is what the server holds at one moment: VmRSS and VmHWM from
// /proc/<pid>/status, and from its /metrics the goroutines and the Go heap
// in use (-1 when /metrics did not say).
type memSnap struct {
	VmRSS, VmHWM int64
	Goroutines   float64
	HeapInuse    float64
}

func (s *httpServer) memory(ctx context.Context) (memSnap, error) {
	kb, err := procStatusKB(s.pid(), "VmRSS", "VmHWM")
	if err != nil {
		return memSnap{}, err
	}
	m := memSnap{VmRSS: kb[0] << 10, VmHWM: kb[1] << 10, Goroutines: -1, HeapInuse: -1}
	vals := s.scrapeMetrics(ctx, "go_goroutines", "go_memstats_heap_inuse_bytes")
	m.Goroutines, m.HeapInuse = vals[0], vals[1]
	return m, nil
}

// scrapeMetrics reads the named unlabelled gauges from the server's
// /metrics; a name not found, or a failed request, gives -1.
func (s *httpServer) scrapeMetrics(ctx context.Context, names ...string) []float64 {
	out := make([]float64, len(names))
	for i := range out {
		out[i] = -1
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+"/metrics", nil)
	if err != nil {
		return out
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: loopbackDial}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		for i, n := range names {
			if name == n {
				if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
					out[i] = f
				}
			}
		}
	}
	return out
}

// procStatusKB reads the given kB fields of /proc/<pid>/status, in order.
func procStatusKB(pid int, fields ...string) ([]int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	out := make([]int64, len(fields))
	found := 0
	for line := range strings.SplitSeq(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		for i, f := range fields {
			if name != f {
				continue
			}
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("memory: %s %q: %w", f, rest, err)
			}
			out[i] = kb
			found++
		}
	}
	if found != len(fields) {
		return nil, fmt.Errorf("memory: /proc/%d/status lacks one of %v", pid, fields)
	}
	return out, nil
}

// redisPID returns the pid of the Redis server when it runs on this
// machine in this pid namespace (INFO's process_id names a redis process
// here), else 0: its CPU time then goes unreported.
func redisPID(ctx context.Context, rdb redisClient) int {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(info, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:")
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(v)
		if err != nil {
			return 0
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !strings.Contains(string(comm), "redis") {
			return 0
		}
		return pid
	}
	return 0
}

// newHTTPClient is the keep-alive HTTP client of one load generator: up to
// conns connections to the one loopback server stay open between calls.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:         loopbackDial,
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}}
}

// rpcClient is a minimal MCP client over Streamable HTTP: initialize once
// (keeping the Mcp-Session-Id the server mints), notifications/initialized,
// then each request a POST of one JSON-RPC message on a keep-alive
// connection, its answer read as JSON or as an SSE stream. It is safe for
// concurrent use: calls share the session and the connection pool.
type rpcClient struct {
	url      string
	hc       *http.Client
	protocol string
	session  string // empty when the server is stateless
	id       atomic.Int64
}

const jsonRPCAccept = "application/json, text/event-stream"

// newRPCClient connects to the server at addr and initializes a session
// asking for protocol, which must be a revision with the initialize
// handshake (2025-11-25 or earlier).
func newRPCClient(ctx context.Context, addr, protocol string, conns int) (*rpcClient, error) {
	c := &rpcClient{url: "http://" + addr + "/mcp", hc: newHTTPClient(conns)}
	params := fmt.Sprintf(`{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"mcp-redis-bench","version":"1"}}`, protocol)
	hdr, init, err := request[struct {
		ProtocolVersion string `json:"protocolVersion"`
	}](ctx, c, "initialize", []byte(params))
	if err != nil {
		return nil, fmt.Errorf("initialize: %w", err)
	}
	if init.ProtocolVersion == "" {
		return nil, errors.New("initialize: no protocolVersion in the result")
	}
	c.protocol = init.ProtocolVersion
	c.session = hdr.Get("Mcp-Session-Id")

	// The initialized notification: 202 Accepted and no body.
	resp, err := c.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return nil, fmt.Errorf("notifications/initialized: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return c, nil
}

// post sends one JSON-RPC message with the session's headers.
func (c *rpcClient) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	// Canonical keys, set directly: no canonicalisation per call.
	req.Header["Content-Type"] = []string{"application/json"}
	req.Header["Accept"] = []string{jsonRPCAccept}
	if c.session != "" {
		req.Header["Mcp-Session-Id"] = []string{c.session}
	}
	if c.protocol != "" {
		req.Header["Mcp-Protocol-Version"] = []string{c.protocol}
	}
	return c.hc.Do(req)
}

// request makes one JSON-RPC request through c and returns the response
// headers and its result, decoded as a T; a JSON-RPC error, an HTTP status
// other than 200, an answer to another id or one without a result is an
// error. The answer is parsed once, straight into the T.
func request[T any](ctx context.Context, c *rpcClient, method string, params []byte) (http.Header, *T, error) {
	id := c.id.Add(1)
	msg := make([]byte, 0, 64+len(method)+len(params))
	msg = append(msg, `{"jsonrpc":"2.0","id":`...)
	msg = strconv.AppendInt(msg, id, 10)
	msg = append(msg, `,"method":"`...)
	msg = append(msg, method...)
	msg = append(msg, '"')
	if params != nil {
		msg = append(msg, `,"params":`...)
		msg = append(msg, params...)
	}
	msg = append(msg, '}')

	resp, err := c.post(ctx, msg)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, clipText(body))
	}
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
	case "text/event-stream":
		// An answer upgraded to SSE: notifications, then the response.
		if body, err = sseResponse(body, id); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("unexpected Content-Type %q", ct)
	}
	var env struct {
		ID     json.RawMessage `json:"id"`
		Result *T              `json:"result"`
		Error  *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, nil, fmt.Errorf("response is not JSON-RPC: %w", err)
	}
	if string(env.ID) != strconv.FormatInt(id, 10) {
		return nil, nil, fmt.Errorf("response id %s, want %d", env.ID, id)
	}
	if env.Error != nil {
		return nil, nil, fmt.Errorf("JSON-RPC error %d: %s", env.Error.Code, env.Error.Message)
	}
	if env.Result == nil {
		return nil, nil, errors.New("response has neither result nor error")
	}
	return resp.Header, env.Result, nil
}

// sseResponse picks the JSON-RPC response with the given id out of an SSE
// body: the data lines of each event, joined.
func sseResponse(body []byte, id int64) ([]byte, error) {
	want := strconv.FormatInt(id, 10)
	var data []byte
	flush := func() []byte {
		defer func() { data = data[:0] }()
		var probe struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if len(data) == 0 || json.Unmarshal(data, &probe) != nil || probe.Method != "" || string(probe.ID) != want {
			return nil
		}
		return bytes.Clone(data)
	}
	for line := range bytes.SplitSeq(body, []byte("\n")) {
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if msg := flush(); msg != nil {
				return msg, nil
			}
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, bytes.TrimPrefix(v, []byte(" "))...)
		}
	}
	if msg := flush(); msg != nil {
		return msg, nil
	}
	return nil, fmt.Errorf("SSE stream ended without the response to id %d", id)
}

func clipText(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// callAudit makes one audit_log call and checks its result: not isError,
// the log_id sent, and a new entry (not a duplicate of an earlier call).
func (c *rpcClient) callAudit(ctx context.Context, e entry) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	args, err := json.Marshal(e)
	if err != nil {
		return err
	}
	params := make([]byte, 0, 40+len(args))
	params = append(params, `{"name":"audit_log","arguments":`...)
	params = append(params, args...)
	params = append(params, '}')
	_, res, err := request[struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent *struct {
			LogID     string `json:"log_id"`
			EntryID   string `json:"entry_id"`
			Duplicate bool   `json:"duplicate"`
		} `json:"structuredContent"`
	}](ctx, c, "tools/call", params)
	if err != nil {
		return err
	}
	if res.IsError {
		var texts []string
		for _, c := range res.Content {
			texts = append(texts, c.Text)
		}
		return fmt.Errorf("isError: %s", strings.Join(texts, " "))
	}
	sc := res.StructuredContent
	switch {
	case sc == nil:
		return errors.New("audit_log: no structured content")
	case sc.LogID != e.LogID:
		return fmt.Errorf("audit_log: log_id %q, want %q", sc.LogID, e.LogID)
	case sc.Duplicate:
		return fmt.Errorf("audit_log: log_id %q came back a duplicate", e.LogID)
	case sc.EntryID == "":
		return errors.New("audit_log: no entry_id")
	}
	return nil
}

// ping makes one MCP ping: HTTP, the session check and the JSON-RPC
// dispatch, with no tool and no Redis.
func (c *rpcClient) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, _, err := request[struct{}](ctx, c, "ping", nil)
	return err
}

// close ends the session with DELETE, as a client leaving does.
func (c *rpcClient) close() {
	defer c.hc.CloseIdleConnections()
	if c.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	req.Header["Mcp-Session-Id"] = []string{c.session}
	req.Header["Mcp-Protocol-Version"] = []string{c.protocol}
	if resp, err := c.hc.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// sdkClient is mcp-go's own Streamable HTTP client on the same kind of
// keep-alive pool, for comparison with rpcClient.
type sdkClient struct {
	c  *client.Client
	hc *http.Client
}

func newSDKClient(ctx context.Context, addr, protocol string, conns int) (*sdkClient, error) {
	hc := newHTTPClient(conns)
	t, err := transport.NewStreamableHTTP("http://"+addr+"/mcp", transport.WithHTTPBasicClient(hc))
	if err != nil {
		return nil, err
	}
	c := client.NewClient(t, client.WithProtocolVersion(protocol))
	if err := c.Start(ctx); err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = protocol
	req.Params.ClientInfo = mcp.Implementation{Name: "mcp-redis-bench", Version: "1"}
	if _, err := c.Initialize(ictx, req); err != nil {
		c.Close()
		return nil, fmt.Errorf("initialize: %w", err)
	}
	return &sdkClient{c: c, hc: hc}, nil
}

func (s *sdkClient) callAudit(ctx context.Context, e entry) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "audit_log"
	req.Params.Arguments = e
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("isError: %s", resultText(res))
	}
	return nil
}

func (s *sdkClient) close() {
	_ = s.c.Close()
	s.hc.CloseIdleConnections()
}

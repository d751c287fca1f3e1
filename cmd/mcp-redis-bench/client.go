package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// protocol is the revision the clients ask for: the last one with an
// initialize handshake and sessions.
const protocol = "2025-11-25"

// spec says how to start one server.
type spec struct {
	bin, dir, redisURL, prefix string
	audit                      bool
	env                        []string // more MCP_REDIS_*=… settings
	profile                    string   // serve --cpu-profile, when set
}

func (s spec) with(prefix string) spec {
	s.prefix = prefix
	return s
}

// audited is the base spec with the per-call audit on or off.
func (b bench) audited(on bool) spec {
	s := b.base
	s.audit = on
	return s
}

// command runs the server on its defaults but for the Redis, the prefix,
// warnings only on stderr, and the audit switch, stated either way; the
// bench's own MCP_REDIS_* and REDIS_URL stay out of it.
func (s spec) command(args ...string) *exec.Cmd {
	if s.profile != "" {
		args = append(args, "--cpu-profile", s.profile)
	}
	cmd := exec.Command(s.bin, append([]string{"serve", "--redis-url", s.redisURL, "--prefix", s.prefix, "--log-level", "warn"}, args...)...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_REDIS_") && !strings.HasPrefix(kv, "REDIS_URL=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "MCP_REDIS_AUDIT_TOOL_CALLS="+strconv.FormatBool(s.audit))
	cmd.Env = append(cmd.Env, s.env...)
	cmd.Dir, cmd.Stderr = s.dir, os.Stderr
	return cmd
}

// client is a minimal MCP client of one server it started: each message
// written by hand and each answer parsed once, so the client takes as
// little as it can of the CPU it shares with the server. mcp-go's own
// client, measured beside it on 2 cores, spent 1.3-2x its CPU per
// audit_log call and got 0.81-0.94x its calls/s over stdio, and 0.66x at
// concurrency 8 over Streamable HTTP: it would measure itself more than
// the server. Calls may overlap.
type client struct {
	cmd *exec.Cmd
	// send writes msg and returns the answer to id; for id 0, a
	// notification, it returns none.
	send func(ctx context.Context, id int64, msg []byte) (*answer, error)
	// stop asks the server to exit.
	stop func()
	id   atomic.Int64
	addr string // host:port of an HTTP server

	closing sync.Once
	exit    error
}

// answer is the part of a JSON-RPC answer the bench reads.
type answer struct {
	ID     int64  `json:"id"`
	Method string `json:"method"` // set on the server's own requests and notifications
	Result struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Contents []struct { // resources/read's
			MimeType string `json:"mimeType"`
			Text     string `json:"text"`
		} `json:"contents"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// startStdio spawns cmd, an MCP server on stdio, and initializes it:
// requests are lines on its stdin, and one goroutine hands each line of
// its stdout to the call waiting for that id.
func startStdio(ctx context.Context, cmd *exec.Cmd) (*client, error) {
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", cmd.Path, err)
	}
	var mu sync.Mutex // orders the writes, guards waiting
	waiting := map[int64]chan *answer{}
	gone := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var a answer
			if json.Unmarshal(sc.Bytes(), &a) != nil || a.Method != "" {
				continue
			}
			mu.Lock()
			ch := waiting[a.ID]
			delete(waiting, a.ID)
			mu.Unlock()
			if ch != nil {
				ch <- &a
			}
		}
		close(gone)
	}()
	c := &client{cmd: cmd, stop: func() {
		_ = in.Close() // the server exits on EOF
		select {
		case <-gone:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}}
	c.send = func(ctx context.Context, id int64, msg []byte) (*answer, error) {
		ch := make(chan *answer, 1)
		mu.Lock()
		if id != 0 {
			waiting[id] = ch
		}
		_, err := in.Write(append(msg, '\n'))
		mu.Unlock()
		if err != nil || id == 0 {
			return nil, err
		}
		select {
		case a := <-ch:
			return a, nil
		case <-gone:
			return nil, errors.New("the server closed its stdout")
		case <-ctx.Done():
			mu.Lock()
			delete(waiting, id)
			mu.Unlock()
			return nil, ctx.Err()
		}
	}
	return c.initialize(ctx)
}

// startHTTP spawns the server on Streamable HTTP at a free loopback port
// and opens a session: each request is a POST on a keep-alive connection
// with the session's headers, answered as JSON (or an SSE stream whose
// last event is the answer).
func startHTTP(ctx context.Context, s spec) (*client, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := s.command("--transport", "http", "--listen", addr)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", s.bin, err)
	}
	c := &client{cmd: cmd, addr: addr, stop: func() { _ = cmd.Process.Signal(syscall.SIGTERM) }}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	var session string // set by initialize, before any call overlaps
	c.send = func(ctx context.Context, id int64, msg []byte) (*answer, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/mcp", bytes.NewReader(msg))
		if err != nil {
			return nil, err
		}
		req.Header["Content-Type"] = []string{"application/json"}
		req.Header["Accept"] = []string{"application/json, text/event-stream"}
		if session != "" {
			req.Header["Mcp-Session-Id"] = []string{session}
			req.Header["Mcp-Protocol-Version"] = []string{protocol}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return nil, err
		case id == 0 && resp.StatusCode == http.StatusAccepted:
			return nil, nil
		case resp.StatusCode != http.StatusOK:
			return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		if session == "" {
			session = resp.Header.Get("Mcp-Session-Id")
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			if i := bytes.LastIndex(body, []byte("data:")); i >= 0 {
				body, _, _ = bytes.Cut(body[i+len("data:"):], []byte("\n"))
			}
		}
		var a answer
		if err := json.Unmarshal(body, &a); err != nil {
			return nil, fmt.Errorf("answer is not JSON-RPC: %w", err)
		}
		return &a, nil
	}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := hc.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			_, _ = c.close()
			return nil, fmt.Errorf("the HTTP server did not answer /healthz on %s within 15s", addr)
		}
	}
	return c.initialize(ctx)
}

// initialize opens the session, or stops the server when that fails.
func (c *client) initialize(ctx context.Context) (*client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	params := `{"protocolVersion":"` + protocol + `","capabilities":{},"clientInfo":{"name":"mcp-redis-bench","version":"1"}}`
	err := c.request(ctx, "initialize", []byte(params))
	if err == nil {
		_, err = c.send(ctx, 0, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	}
	if err != nil {
		_, _ = c.close()
		return nil, err
	}
	return c, nil
}

// request makes one JSON-RPC request; an error answer or a tool result
// flagged isError is an error.
func (c *client) request(ctx context.Context, method string, params []byte) error {
	id := c.id.Add(1)
	msg := fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":%q`, id, method)
	if params != nil {
		msg = append(append(msg, `,"params":`...), params...)
	}
	a, err := c.send(ctx, id, append(msg, '}'))
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", method, err)
	case a.ID != id:
		return fmt.Errorf("%s: the answer is to id %d, not %d", method, a.ID, id)
	case a.Error != nil:
		return fmt.Errorf("%s: JSON-RPC error %d: %s", method, a.Error.Code, a.Error.Message)
	case a.Result.IsError:
		var text []string
		for _, t := range a.Result.Content {
			text = append(text, t.Text)
		}
		return fmt.Errorf("%s: isError: %s", method, strings.Join(text, " "))
	}
	return nil
}

func (c *client) auditLog(ctx context.Context, logID string) error {
	return c.request(ctx, "tools/call", toolParams("audit_log", logID))
}

func (c *client) ping(ctx context.Context, _ string) error { return c.request(ctx, "ping", nil) }

// emitEvent emits a workflow event whose event_id is logID.
func (c *client) emitEvent(ctx context.Context, logID string) error {
	return c.request(ctx, "tools/call", fmt.Appendf(nil, `{"name":"emit_workflow_event","arguments":`+
		`{"workflow_id":"wf-checkout-incidents","phase":"triage","event_type":"phase_started","details":"bench","event_id":%q}}`, logID))
}

// mallocs is the HTTP server's go_memstats_mallocs_total (heap objects
// allocated so far), read from its /metrics.
func (c *client) mallocs(ctx context.Context) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_memstats_mallocs_total "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.New("/metrics has no go_memstats_mallocs_total")
}

func (c *client) pid() int { return c.cmd.Process.Pid }

// close stops the server, once, and returns its peak RSS.
func (c *client) close() (int64, error) {
	c.closing.Do(func() {
		c.stop()
		kill := time.AfterFunc(10*time.Second, func() { _ = c.cmd.Process.Kill() })
		c.exit = c.cmd.Wait()
		kill.Stop()
	})
	if c.exit != nil {
		return 0, fmt.Errorf("server exit: %w", c.exit)
	}
	ru, _ := c.cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return ru.Maxrss << 10, nil // kB on Linux
}

// cpuTime is the user+system CPU time of a live process so far, from
// /proc/<pid>/stat; 0 for pid 0 or when it cannot be read.
func cpuTime(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// Fields count from after the command name, which may hold spaces:
	// utime and stime are fields 14 and 15, the 12th and 13th after it.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	user, _ := strconv.ParseInt(f[11], 10, 64)
	system, _ := strconv.ParseInt(f[12], 10, 64)
	const userHZ = 100 // USER_HZ on every Linux Go supports
	return time.Duration(user+system) * time.Second / userHZ
}

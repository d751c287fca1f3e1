package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// serverSpec says how to spawn one mcp-redis server.
type serverSpec struct {
	bin      string
	dir      string // working directory: one without a config.yaml
	redisURL string
	prefix   string
	audit    bool   // MCP_REDIS_AUDIT_TOOL_CALLS
	protocol string // protocol version the client asks for
}

// env is the child's environment: the bench's own, minus any MCP_REDIS_*
// or REDIS_URL setting that would change what is measured, plus the audit
// switch, stated either way so the default cannot drift unnoticed.
func (s serverSpec) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "MCP_REDIS_") || strings.HasPrefix(kv, "REDIS_URL=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "MCP_REDIS_AUDIT_TOOL_CALLS="+strconv.FormatBool(s.audit))
}

func (s serverSpec) args() []string {
	return []string{"serve", "--redis-url", s.redisURL, "--prefix", s.prefix}
}

// server is a running mcp-redis child and the mcp-go client speaking to it.
type server struct {
	client *client.Client
	cmd    *exec.Cmd
	stderr *tailBuffer
}

// spawn starts the binary through mcp-go's stdio transport. The transport
// keeps its *exec.Cmd private, so the command is built here, through
// WithCommandFunc, to learn the child's pid for /proc/<pid>/status. The
// environment is passed whole (NewStdioMCPClient would append env to
// os.Environ()); stderr goes to a small buffer quoted when something fails.
func spawn(ctx context.Context, s serverSpec) (*server, error) {
	srv := &server{stderr: &tailBuffer{max: 8 << 10}}
	build := func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
		cmd := exec.CommandContext(ctx, command, args...)
		cmd.Env, cmd.Dir, cmd.Stderr = env, s.dir, srv.stderr
		srv.cmd = cmd
		return cmd, nil
	}
	t := transport.NewStdioWithOptions(s.bin, s.env(), s.args(), transport.WithCommandFunc(build))
	srv.client = client.NewClient(t, client.WithProtocolVersion(s.protocol))
	if err := srv.client.Start(ctx); err != nil {
		return nil, fmt.Errorf("spawn %s: %w", s.bin, err)
	}
	return srv, nil
}

// initialize performs the handshake; with a legacy protocol pinned this is
// exactly one initialize request and its reply (then the initialized
// notification, a pipe write).
func (s *server) initialize(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "mcp-redis-bench", Version: "1"}
	if _, err := s.client.Initialize(ctx, req); err != nil {
		return s.withStderr(fmt.Errorf("initialize: %w", err))
	}
	return nil
}

// close ends the session: stdin is closed, and the server exits on EOF.
func (s *server) close() {
	if err := s.client.Close(); err != nil {
		logf("server exit: %v", s.withStderr(err))
	}
}

func (s *server) withStderr(err error) error {
	if tail := lastLines(s.stderr.String(), 10); tail != "" {
		return fmt.Errorf("%w\nserver stderr (last lines):\n%s", err, tail)
	}
	return err
}

// callAudit makes one audit_log call; a result flagged isError is an error
// too, carrying the text the model would see.
func (s *server) callAudit(ctx context.Context, e entry) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "audit_log"
	req.Params.Arguments = e
	res, err := s.client.CallTool(ctx, req)
	if err != nil {
		return err
	}
	if res.IsError {
		return fmt.Errorf("isError: %s", resultText(res))
	}
	return nil
}

func resultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}

// toolResult is a series (b) and what the server process spent on it.
type toolResult struct {
	*series
	PeakRSSBytes int64
	// CPUPerCall is the server's user+system CPU time over the timed calls,
	// per call: unlike calls/s it hardly moves when other processes compete
	// for the CPUs, so it shows the server's own cost on a busy machine.
	CPUPerCall time.Duration
	// StderrTail is the end of the server's log, kept when calls failed.
	StderrTail string
}

// startTool spawns and initializes a server for series (b).
func startTool(ctx context.Context, spec serverSpec) (*server, error) {
	srv, err := spawn(ctx, spec)
	if err != nil {
		return nil, err
	}
	if err := srv.initialize(ctx); err != nil {
		srv.close()
		return nil, err
	}
	return srv, nil
}

// auditCalls returns the call of series (b): one audit_log call with a
// typical entry.
func (s *server) auditCalls(scope string) func(ctx context.Context, i int) error {
	gen := newEntries(scope)
	return func(ctx context.Context, i int) error { return s.callAudit(ctx, gen.next(i)) }
}

// cpuTime is the server's CPU time so far.
// pingCalls makes MCP ping requests: the round trip through the client,
// the pipes and the server's JSON-RPC loop, with no tool and no Redis — the
// floor under any tool call.
func (s *server) pingCalls() func(ctx context.Context, i int) error {
	return func(ctx context.Context, _ int) error { return s.client.Ping(ctx) }
}

func (s *server) cpuTime() (time.Duration, error) { return cpuTime(s.cmd.Process.Pid) }

// peakRSS is the server's VmHWM so far.
func (s *server) peakRSS() (int64, error) { return peakRSS(s.cmd.Process.Pid) }

// coldStart times runs spawns, each from exec to the reply to initialize.
// The protocol is pinned to the last revision with an initialize handshake:
// the client's default, 2026-07-28, would probe server/discover first.
func coldStart(ctx context.Context, spec serverSpec, runs int) (spread, error) {
	spec.protocol = mcp.ProtocolVersion20251125
	samples := make([]time.Duration, 0, runs)
	for range runs {
		start := time.Now()
		srv, err := spawn(ctx, spec)
		if err != nil {
			return spread{}, err
		}
		err = srv.initialize(ctx)
		elapsed := time.Since(start)
		srv.close()
		if err != nil {
			return spread{}, err
		}
		samples = append(samples, elapsed)
	}
	return spreadOf(samples), nil
}

// peakRSS reads VmHWM, the resident set's high-water mark, of a live pid.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("peak RSS: VmHWM %q: %w", rest, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	return 0, errors.New("peak RSS: no VmHWM line in /proc/<pid>/status")
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, 100 on
// every Linux architecture Go supports (reading it needs sysconf, i.e. cgo).
const userHZ = 100

// cpuTime reads the user+system CPU time of all threads of a live pid.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu time: %w", err)
	}
	// The command name, field 2, may hold spaces; fields are counted after
	// its closing parenthesis, where field 3 (state) starts.
	_, rest, ok := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if !ok || len(f) < 13 {
		return 0, errors.New("cpu time: unexpected /proc/<pid>/stat")
	}
	var ticks int64
	for _, field := range f[11:13] { // utime and stime, fields 14 and 15
		t, err := strconv.ParseInt(field, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cpu time: %w", err)
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// serverBinary returns the binary to bench and a working directory without
// a config.yaml, so the server runs on its defaults plus the flags. With no
// --bin it builds ./cmd/mcp-redis into a temp dir, removed by the returned
// func.
func serverBinary(ctx context.Context, bin string) (path, dir string, remove func(), err error) {
	tmp, err := os.MkdirTemp("", "mcp-redis-bench-")
	if err != nil {
		return "", "", nil, err
	}
	remove = func() { os.RemoveAll(tmp) }
	if bin != "" {
		if path, err = filepath.Abs(bin); err != nil {
			remove()
			return "", "", nil, err
		}
		return path, tmp, remove, nil
	}
	path = filepath.Join(tmp, "mcp-redis")
	logf("building github.com/mcp-redis/mcp-redis/cmd/mcp-redis into %s", tmp)
	build := exec.CommandContext(ctx, "go", "build", "-o", path, "github.com/mcp-redis/mcp-redis/cmd/mcp-redis")
	if out, err := build.CombinedOutput(); err != nil {
		remove()
		return "", "", nil, fmt.Errorf("go build (run the bench from inside the module, or pass --bin): %w\n%s", err, out)
	}
	return path, tmp, remove, nil
}

// tailBuffer keeps the last max bytes written to it; the child's stderr is
// copied in by exec's goroutine while the bench may read it.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

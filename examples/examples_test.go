package examples_test

// These tests run the examples as a user would: the real server, built
// from cmd/mcp-redis and driven over stdio with mcp-go's client, writes
// workflow events and CCWJ deltas into the shared Redis under a prefix of
// the test's own; then each worker (Go, Node, Python) consumes them in a
// consumer group of its own. Node with examples/node-worker's packages and
// Debian's python3-redis are required: a missing one fails the test, as CI
// installs them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// python is the interpreter Debian's python3-redis installs for; a python3
// earlier on PATH (pyenv, a venv) may not have it.
const python = "/usr/bin/python3"

// worker is one of the three examples, as a command line.
type worker struct {
	name string
	argv []string
}

func TestExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server and the workers; not in the -short tier")
	}
	rdb, prefix := testredis.Shared(t)
	tmp := t.TempDir()
	bin := goBuild(t, tmp, "mcp-redis", "./cmd/mcp-redis")
	goWorker := goBuild(t, tmp, "go-worker", "./examples/go-worker")
	srv := startServer(t, tmp, bin, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)

	// Workflow events: the first is handed out and then trimmed before a
	// worker runs, the second handed out and marked done, the rest new.
	wf := "wf-" + testredis.Random(4)
	events := []map[string]any{
		{"workflow_id": wf, "phase": "plan", "event_type": "phase_started", "details": "gone before it was done"},
		{"workflow_id": wf, "phase": "plan", "event_type": "phase_completed", "details": "plan has 2 steps"},
		{"workflow_id": wf, "phase": "build", "event_type": "phase_started"},
		{"workflow_id": wf, "phase": "build", "event_type": "escalated", "details": "needs a <human> & a \"review\""},
		{"workflow_id": wf, "phase": "review", "event_type": "phase_completed", "details": "ok"},
	}
	var eventIDs, eventEntries []string
	for i, ev := range events {
		ev["event_id"] = fmt.Sprintf("ev-%d-%s", i, testredis.Random(4))
		out := srv.ok("emit_workflow_event", ev)
		eventIDs = append(eventIDs, ev["event_id"].(string))
		eventEntries = append(eventEntries, out["entry_id"].(string))
	}
	deltas := []map[string]any{
		{"workflow_id": wf, "phase_id": "plan", "field": "steps", "value": map[string]any{"steps": []any{"fetch", "summarise"}}},
		{"workflow_id": wf, "phase_id": "plan", "field": "state", "value": "done"},
		{"workflow_id": wf, "phase_id": "build", "field": "tries", "value": 42.0},
	}
	var deltaEntries []string
	for i, d := range deltas {
		d["event_id"] = fmt.Sprintf("cc-%d-%s", i, testredis.Random(4))
		deltaEntries = append(deltaEntries, srv.ok("publish_ccwj_delta", d)["entry_id"].(string))
	}

	workers := []struct {
		worker
		needs func(t *testing.T)
	}{
		{worker{"go", []string{goWorker}}, func(*testing.T) {}},
		{worker{"node", []string{"node", filepath.Join("node-worker", "worker.mjs")}}, needsNode},
		{worker{"python", []string{python, filepath.Join("python-worker", "worker.py")}}, needsPython},
	}

	ctx := context.Background()
	events0 := prefix + "workflow_events"
	for _, w := range workers {
		group, consumer := "g-"+w.name, "c-"+w.name
		if err := rdb.XGroupCreate(ctx, events0, group, "0").Err(); err != nil {
			t.Fatal(err)
		}
		got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: consumer, Streams: []string{events0, ">"}, Count: 2, Block: -1,
		}).Result()
		if err != nil || len(got[0].Messages) != 2 {
			t.Fatalf("hand out two entries to %s: %v %v", consumer, got, err)
		}
		if err := rdb.Set(ctx, doneMark(prefix, "workflow_events", group, eventIDs[1]), "earlier", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.XDel(ctx, events0, eventEntries[0]).Err(); err != nil {
		t.Fatal(err)
	}

	for _, w := range workers {
		t.Run(w.name+" worker", func(t *testing.T) {
			w.needs(t)

			t.Run("takes its pending entries first, then new ones, and acknowledges each", func(t *testing.T) {
				group := "g-" + w.name
				lines, stderr := w.run(t, "--prefix", prefix, "--group", group, "--consumer", "c-"+w.name,
					"--json", "--max", "5", "--idle", "10s")
				if strings.Contains(stderr, "created group") {
					t.Errorf("the group existed (BUSYGROUP), yet the worker says it created it:\n%s", stderr)
				}
				got := decodeLines(t, lines)
				if len(got) != 5 {
					t.Fatalf("handled %d entries, want 5:\n%s\nstderr:\n%s", len(got), strings.Join(lines, "\n"), stderr)
				}
				wantStatus := []string{"gone", "already_done", "done", "done", "done"}
				for i, e := range got {
					if e.ID != eventEntries[i] || e.Status != wantStatus[i] || e.Stream != "workflow_events" {
						t.Errorf("entry %d: %s %s on %s, want %s %s on workflow_events", i, e.ID, e.Status, e.Stream, eventEntries[i], wantStatus[i])
					}
					if i == 0 {
						if len(e.Fields) != 0 {
							t.Errorf("the trimmed entry has fields: %v", e.Fields)
						}
						continue
					}
					for k, v := range events[i] {
						if e.Fields[k] != v {
							t.Errorf("entry %d: %s = %#v, want %#v", i, k, e.Fields[k], v)
						}
					}
					if _, ok := events[i]["details"]; !ok && e.Fields["details"] != nil {
						t.Errorf("entry %d: details %#v, but none was written", i, e.Fields["details"])
					}
					for _, k := range []string{"timestamp", "recorded_at", "caller"} {
						if s, _ := e.Fields[k].(string); s == "" {
							t.Errorf("entry %d: no %s: %v", i, k, e.Fields)
						}
					}
					if e.Fields["origin"] != "client" {
						t.Errorf("entry %d: origin %#v, want client", i, e.Fields["origin"])
					}
				}
				noPending(t, rdb, events0, group)
				for _, id := range eventIDs[2:] {
					mark := doneMark(prefix, "workflow_events", group, id)
					if ttl := rdb.PTTL(ctx, mark).Val(); ttl < 23*time.Hour {
						t.Errorf("%s: ttl %v, want the work marked done for 24h", mark, ttl)
					}
				}
			})

			t.Run("creates its group and decodes JSON fields", func(t *testing.T) {
				group := "cj-" + w.name
				lines, stderr := w.run(t, "--prefix", prefix, "--stream", "ccwj_update_stream", "--group", group,
					"--from", "0", "--json", "--idle", "700ms")
				if !strings.Contains(stderr, "created group "+group) {
					t.Errorf("the worker does not say it created its group:\n%s", stderr)
				}
				got := decodeLines(t, lines)
				if len(got) != len(deltas) {
					t.Fatalf("handled %d entries, want %d:\n%s\nstderr:\n%s", len(got), len(deltas), strings.Join(lines, "\n"), stderr)
				}
				for i, e := range got {
					if e.ID != deltaEntries[i] || e.Status != "done" {
						t.Errorf("entry %d: %s %s, want %s done", i, e.ID, e.Status, deltaEntries[i])
					}
					for k, v := range deltas[i] {
						if !reflect.DeepEqual(e.Fields[k], v) {
							t.Errorf("entry %d: %s = %#v, want %#v", i, k, e.Fields[k], v)
						}
					}
				}
				noPending(t, rdb, prefix+"ccwj_update_stream", group)
			})

			t.Run("prints one line per entry with its key fields", func(t *testing.T) {
				lines, _ := w.run(t, "--prefix", prefix, "--stream", "ccwj_update_stream", "--group", "ct-"+w.name,
					"--from", "0", "--idle", "700ms")
				want := []string{
					deltaEntries[0] + " done event_id=" + deltas[0]["event_id"].(string) + " workflow_id=" + wf + ` phase_id=plan field=steps value={"steps":["fetch","summarise"]}`,
					deltaEntries[1] + " done event_id=" + deltas[1]["event_id"].(string) + " workflow_id=" + wf + ` phase_id=plan field=state value="done"`,
					deltaEntries[2] + " done event_id=" + deltas[2]["event_id"].(string) + " workflow_id=" + wf + ` phase_id=build field=tries value=42`,
				}
				if !reflect.DeepEqual(lines, want) {
					t.Errorf("printed\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
				}
			})

			t.Run("stops cleanly on SIGTERM", func(t *testing.T) {
				w.stopsOnSIGTERM(t, "--prefix", prefix, "--group", "sig-"+w.name)
			})
		})
	}

	t.Run("the Claude Desktop config starts the server", func(t *testing.T) {
		raw, err := os.ReadFile("claude_desktop_config.json")
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			MCPServers map[string]struct {
				Command string   `json:"command"`
				Args    []string `json:"args"`
			} `json:"mcpServers"`
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("claude_desktop_config.json: %v", err)
		}
		s, ok := cfg.MCPServers["redis"]
		if !ok || len(cfg.MCPServers) != 1 {
			t.Fatalf("want one server, redis: %+v", cfg.MCPServers)
		}
		if s.Command != "/path/to/bin/mcp-redis" {
			t.Errorf("command %q: want the README's placeholder /path/to/bin/mcp-redis", s.Command)
		}
		wantArgs := []string{"serve", "--redis-url", "redis://127.0.0.1:6379/0"}
		if !reflect.DeepEqual(s.Args, wantArgs) {
			t.Errorf("args %q, want %q", s.Args, wantArgs)
		}
		args := make([]string, 0, len(s.Args)+2)
		for _, a := range s.Args {
			if a == "redis://127.0.0.1:6379/0" {
				a = testredis.URL()
			}
			args = append(args, a)
		}
		args = append(args, "--prefix", prefix)
		c := startServer(t, tmp, bin, args...)
		if c.info.ServerInfo.Name != "mcp-redis" {
			t.Errorf("initialize: server %q, want mcp-redis", c.info.ServerInfo.Name)
		}
		if c.info.Capabilities.Tools == nil {
			t.Errorf("initialize: no tools capability: %+v", c.info.Capabilities)
		}
	})
}

// goBuild builds pkg (a path from the module root) into dir/name.
func goBuild(t *testing.T, dir, name, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = ".."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// server is the binary over stdio with mcp-go's client, initialised.
type server struct {
	t      *testing.T
	c      *client.Client
	info   *mcp.InitializeResult
	stderr *testredis.Buffer
}

// startServer starts `bin args…` in an empty directory (no config.yaml is
// read there) with its audit signing key under a temporary config
// directory, initialises an MCP session, and closes it when the test ends.
func startServer(t *testing.T, tmp, bin string, args ...string) *server {
	t.Helper()
	s := &server{t: t, stderr: &testredis.Buffer{}}
	dir, cfgDir := t.TempDir(), filepath.Join(tmp, "config")
	c, err := client.NewStdioMCPClientWithOptions(bin, []string{"XDG_CONFIG_HOME=" + cfgDir}, args,
		transport.WithCommandFunc(func(ctx context.Context, command string, env, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), env...)
			cmd.Stderr = s.stderr
			return cmd, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s.c = c
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: "examples-test", Version: "1"}
	if s.info, err = c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, s.stderr.String())
	}
	return s
}

// ok calls tool and returns its structured result; a tool error fails the
// test.
func (s *server) ok(tool string, args map[string]any) map[string]any {
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
	var out map[string]any
	if res.IsError || json.Unmarshal(res.RawStructuredContent, &out) != nil {
		s.t.Fatalf("%s(%v): %+v", tool, args, res.Content)
	}
	return out
}

// entry is a line a worker prints with --json.
type entry struct {
	Stream string         `json:"stream"`
	ID     string         `json:"id"`
	Status string         `json:"status"`
	Fields map[string]any `json:"fields"`
}

func decodeLines(t *testing.T, lines []string) []entry {
	t.Helper()
	var out []entry
	for _, l := range lines {
		var e entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		out = append(out, e)
	}
	return out
}

// run runs the worker with args to its end, which must be exit status 0,
// and returns the lines it printed and what it logged.
func (w worker) run(t *testing.T, args ...string) ([]string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := w.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s worker %s: %v\nstdout:\n%s\nstderr:\n%s", w.name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	var lines []string
	for l := range strings.Lines(stdout.String()) {
		lines = append(lines, strings.TrimSuffix(l, "\n"))
	}
	return lines, stderr.String()
}

func (w worker) command(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, w.argv[0], append(w.argv[1:], append([]string{"--redis-url", testredis.URL()}, args...)...)...)
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// stopsOnSIGTERM starts the worker with no limit, waits until it reads,
// sends SIGTERM and wants exit status 0 within a few seconds.
func (w worker) stopsOnSIGTERM(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := w.command(ctx, args...)
	stderr := &testredis.Buffer{}
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "created group") {
		select {
		case err := <-done:
			t.Fatalf("exited before it was told to: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("never created its group:\n%s", stderr.String())
		}
	}
	time.Sleep(300 * time.Millisecond) // into its blocking read
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		t.Errorf("still running 5s after SIGTERM:\n%s", stderr.String())
	}
}

// doneMark is the key under which a worker marks an entry's work done.
func doneMark(prefix, stream, group, id string) string {
	return prefix + "done:{" + prefix + stream + "}:" + group + ":" + id
}

func noPending(t *testing.T, rdb *redis.Client, key, group string) {
	t.Helper()
	p, err := rdb.XPending(context.Background(), key, group).Result()
	if err != nil {
		t.Fatal(err)
	}
	if p.Count != 0 {
		t.Errorf("%s: %d entries still pending in %s: %+v", key, p.Count, group, p)
	}
}

func needsNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("the Node worker needs Node.js 20+ on PATH (apt-get install nodejs npm): %v", err)
	}
	if _, err := os.Stat(filepath.Join("node-worker", "node_modules", "redis", "package.json")); err != nil {
		t.Fatalf("examples/node-worker/node_modules is missing (%v): run `make node-deps` (npm ci --prefix examples/node-worker) from the repository root", err)
	}
}

func needsPython(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(python, "-c", "import redis").CombinedOutput(); err != nil {
		t.Fatalf("the Python worker needs redis-py for %s (apt-get install python3-redis): %v\n%s", python, err, out)
	}
}

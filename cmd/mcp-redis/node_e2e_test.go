package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests drive the binary over HTTP with a client nobody here wrote:
// the official MCP TypeScript SDK (e2e/node/client.mjs, dependencies pinned
// in e2e/node/package-lock.json), once over Streamable HTTP and once over
// the legacy HTTP+SSE transport, and read every write back from Redis.

// nodeE2EDir is e2e/node, where client.mjs and its node_modules live.
func nodeE2EDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "e2e", "node"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("these tests run the official MCP SDK under Node.js, which is not on PATH: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@modelcontextprotocol", "sdk", "package.json")); err != nil {
		t.Fatalf("%s/node_modules is missing (%v): run `npm ci --prefix e2e/node` from the repository root first", dir, err)
	}
	return dir
}

// nodeReport is the JSON line client.mjs prints.
type nodeReport struct {
	OK        bool   `json:"ok"`
	Transport string `json:"transport"`
	ID        string `json:"id"`
	Server    struct {
		Name string `json:"name"`
	} `json:"server"`
	Tools []string `json:"tools"`
	Calls []struct {
		Tool              string          `json:"tool"`
		IsError           *bool           `json:"isError"`
		StructuredContent json.RawMessage `json:"structuredContent"`
		Error             string          `json:"error"`
	} `json:"calls"`
	Failures []string `json:"failures"`
}

// result decodes the structured content of the call to tool.
func (r *nodeReport) result(t *testing.T, tool string) map[string]any {
	t.Helper()
	for _, c := range r.Calls {
		if c.Tool == tool {
			var out map[string]any
			if err := json.Unmarshal(c.StructuredContent, &out); err != nil || out == nil {
				t.Fatalf("%s structuredContent %s: %v", tool, c.StructuredContent, err)
			}
			return out
		}
	}
	t.Fatalf("client.mjs did not call %s", tool)
	return nil
}

// runNodeClient runs client.mjs and returns its report; any failure it
// reports, or a non-zero exit, fails the test with its output.
func runNodeClient(t *testing.T, dir string, srv *httpProc, token, transport, path, prefix, id string) *nodeReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "client.mjs"),
		"--url", srv.base+path, "--transport", transport, "--prefix", prefix, "--id", id)
	cmd.Dir = dir
	// The token goes by the environment, not the command line.
	cmd.Env = append(os.Environ(), "MCP_REDIS_TOKEN="+token)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep nodeReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("client.mjs (%v) printed no JSON report: %v\nstdout:\n%s\nstderr:\n%s\nserver stderr:\n%s",
			runErr, err, stdout.String(), stderr.String(), srv.stderr.String())
	}
	if runErr != nil || !rep.OK || len(rep.Failures) > 0 {
		t.Fatalf("client.mjs over %s failed (%v):\n%s\nstderr:\n%s\nserver stderr:\n%s",
			transport, runErr, strings.Join(rep.Failures, "\n"), stderr.String(), srv.stderr.String())
	}
	return &rep
}

// The official SDK client connects over Streamable HTTP and over HTTP+SSE
// with a bearer token, lists the tools and calls each; every write is
// in Redis as the result says, and the server's call records name the
// token and the MCP session.
func TestNodeSDKClientCallsEveryToolOverStreamableHTTPAndSSE(t *testing.T) {
	needsFull(t, "runs the Node SDK client against the binary")
	dir := nodeE2EDir(t)
	rdb, prefix := testredis.Shared(t)
	token := testredis.Random(24)
	srv := startHTTP(t, []string{"MCP_REDIS_HTTP_AUTH_TOKENS=node-e2e=" + token},
		"--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()

	wantTools := allTools

	for _, tr := range []struct{ name, path string }{{"streamable", "/mcp"}, {"sse", "/sse"}} {
		t.Run(tr.name, func(t *testing.T) {
			id := "node-" + tr.name + "-" + testredis.Random(4)
			// The server's call records of this run come after this id.
			since := "-"
			if last, err := rdb.XRevRangeN(ctx, prefix+"audit_log_stream", "+", "-", 1).Result(); err == nil && len(last) == 1 {
				since = "(" + last[0].ID
			}

			rep := runNodeClient(t, dir, srv, token, tr.name, tr.path, prefix, id)
			if rep.Server.Name != "mcp-redis" {
				t.Errorf("server name %q", rep.Server.Name)
			}
			if !slices.Equal(rep.Tools, wantTools) {
				t.Errorf("tools = %v, want %v", rep.Tools, wantTools)
			}
			var called []string
			for _, c := range rep.Calls {
				called = append(called, c.Tool)
				if c.IsError == nil || *c.IsError {
					t.Errorf("%s: isError %v: %s", c.Tool, c.IsError, c.Error)
				}
			}
			slices.Sort(called)
			if !slices.Equal(called, wantTools) {
				t.Errorf("called %v, want every tool once", called)
			}

			wf, session, user := id+"-wf", id+"-session", id+"-user"
			writes := []struct {
				tool, stream, idField, idValue string
				want                           map[string]string
			}{
				{"audit_log", "audit_log_stream", "log_id", id + "-log", map[string]string{
					"module": "node-e2e", "procedure": "client.mjs", "status": "ok",
					"inputs": `{"transport":"` + tr.name + `","n":[1,2.5,true]}`, "outputs": `{"ok":true}`,
					"session_id": session, "workflow_id": wf, "user_id": user,
					"rationale": "the official SDK calls every tool", "log_id": id + "-log"}},
				{"publish_ccwj_delta", "ccwj_update_stream", "event_id", id + "-delta", map[string]string{
					"workflow_id": wf, "phase_id": "plan", "field": "steps",
					"value": `[{"step":"fetch"},"store",3]`, "event_id": id + "-delta"}},
				{"submit_feedback", "user_feedback", "event_id", id + "-feedback", map[string]string{
					"feedback": "good plan", "session_id": session, "user_id": user,
					"module": "node-e2e", "procedure": "client.mjs", "event_id": id + "-feedback"}},
				{"emit_workflow_event", "workflow_events", "event_id", id + "-event", map[string]string{
					"workflow_id": wf, "phase": "plan", "event_type": "phase_completed",
					"details": "done over " + tr.name, "event_id": id + "-event"}},
			}
			entries := map[string]string{}
			for _, w := range writes {
				out := rep.result(t, w.tool)
				key := prefix + w.stream
				entryID, _ := out["entry_id"].(string)
				if out["stream"] != key || out[w.idField] != w.idValue || out["duplicate"] != false || entryID == "" {
					t.Errorf("%s result = %v", w.tool, out)
					continue
				}
				entries[w.tool] = entryID
				msgs, err := rdb.XRange(ctx, key, entryID, entryID).Result()
				if err != nil || len(msgs) != 1 {
					t.Errorf("%s: XRANGE %s %s: %v %v", w.tool, key, entryID, msgs, err)
					continue
				}
				// The server's stamp (the token's name as the caller, the
				// SDK client as it introduced itself), then the fields the
				// client sent exactly.
				if msgs[0].Values["client"] != "mcp-redis-node-e2e/1.0.0" {
					t.Errorf("%s: client %v", w.tool, msgs[0].Values["client"])
				}
				got := pvStripStamp(t, w.tool, msgs[0].Values, "node-e2e")
				want := clone(w.want)
				want["timestamp"], _ = out["timestamp"].(string)
				if len(got) != len(want) {
					t.Errorf("%s: entry has %d fields, want %d: %v", w.tool, len(got), len(want), got)
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s: field %s = %q, want %q", w.tool, k, got[k], v)
					}
				}
				// A write with a caller's id leaves its idempotency key.
				idem := prefix + "idem:{" + key + "}:" + w.idValue
				if n, err := rdb.Exists(ctx, idem).Result(); err != nil || n != 1 {
					t.Errorf("%s: idempotency key %s: exists %d %v", w.tool, idem, n, err)
				}
			}

			// The workflow context holds the delta, as get_context said.
			ctxKey := prefix + "ctx:{" + prefix + "ccwj_update_stream}:" + wf
			hash, err := rdb.HGetAll(ctx, ctxKey).Result()
			if err != nil || hash[`["plan","steps"]`] != `[{"step":"fetch"},"store",3]` || hash["last_delta_id"] != entries["publish_ccwj_delta"] {
				t.Errorf("HGETALL %s = %v, %v", ctxKey, hash, err)
			}
			if got := rep.result(t, "get_context"); got["last_delta_id"] != entries["publish_ccwj_delta"] {
				t.Errorf("get_context = %v", got)
			}
			read := rep.result(t, "read_stream")
			if es, _ := read["entries"].([]any); len(es) != 1 || es[0].(map[string]any)["id"] != entries["emit_workflow_event"] {
				t.Errorf("read_stream = %v, want the one event %s", read, entries["emit_workflow_event"])
			}

			// The lock was taken, extended and released: its key is gone and
			// the fencing counter holds the token it was granted with.
			resource := "node-e2e/" + id
			lockKey := prefix + "locks:" + resource
			lock := rep.result(t, "acquire_lock")
			if lock["acquired"] != true || lock["key"] != lockKey {
				t.Errorf("acquire_lock = %v", lock)
			}
			if n, err := rdb.Exists(ctx, lockKey).Result(); err != nil || n != 0 {
				t.Errorf("%s still exists after release_lock (%d, %v)", lockKey, n, err)
			}
			fence, err := rdb.Get(ctx, prefix+"fence:{"+lockKey+"}").Int64()
			if ft, _ := lock["fencing_token"].(float64); err != nil || fence != int64(ft) || fence < 1 {
				t.Errorf("fence counter = %d (%v), acquire_lock said %v", fence, err, lock["fencing_token"])
			}
			if ext := rep.result(t, "extend_lock"); ext["extended"] != true {
				t.Errorf("extend_lock = %v", ext)
			}
			if rel := rep.result(t, "release_lock"); rel["released"] != true {
				t.Errorf("release_lock = %v", rel)
			}

			// The rate check counted one unit, under a key that expires.
			rateKey := prefix + "rate:default:node-e2e-" + id
			if n, err := rdb.ZCard(ctx, rateKey).Result(); err != nil || n != 1 {
				t.Errorf("ZCARD %s = %d, %v; want 1", rateKey, n, err)
			}
			if ttl, err := rdb.PTTL(ctx, rateKey).Result(); err != nil || ttl <= 0 {
				t.Errorf("PTTL %s = %v, %v; want an expiry", rateKey, ttl, err)
			}

			// Each call but audit_log's own is recorded, naming the token
			// (never the token itself) and the one MCP session of the run.
			settled(t, rdb, prefix)
			recs, err := rdb.XRange(ctx, prefix+"audit_log_stream", since, "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			var recorded []string
			sessions := map[string]bool{}
			for _, m := range recs {
				if m.Values["module"] != "mcp-redis" {
					continue
				}
				tool, _ := m.Values["procedure"].(string)
				recorded = append(recorded, tool)
				if m.Values["status"] != "ok" || m.Values["caller"] != "node-e2e" {
					t.Errorf("call record of %s: %v", tool, m.Values)
				}
				sid, _ := m.Values["mcp_session_id"].(string)
				sessions[sid] = true
				for _, v := range m.Values {
					if s, _ := v.(string); strings.Contains(s, token) {
						t.Errorf("call record of %s carries the token: %v", tool, m.Values)
					}
				}
			}
			slices.Sort(recorded)
			wantRecorded := slices.DeleteFunc(slices.Clone(wantTools), func(s string) bool { return s == "audit_log" })
			if !slices.Equal(recorded, wantRecorded) {
				t.Errorf("call records for %v, want %v", recorded, wantRecorded)
			}
			if len(sessions) != 1 || sessions[""] {
				t.Errorf("call records name MCP sessions %v, want one", sessions)
			}
		})
	}

	// A client without the token is turned away before any tool runs.
	t.Run("no-token", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "client.mjs"),
			"--url", srv.base+"/mcp", "--transport", "streamable", "--prefix", prefix)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "MCP_REDIS_TOKEN=")
		out, err := cmd.Output()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("client.mjs without a token: %v, want exit 1\n%s", err, out)
		}
		if !strings.Contains(string(out), "unauthorized") || strings.Contains(string(out), `"isError"`) {
			t.Errorf("report without a token: %s", out)
		}
	})
	if t.Failed() {
		t.Logf("server stderr:\n%s", srv.stderr.String())
	}
}

package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// These tests open the dashboard in a real browser: Debian's headless
// Chromium (/usr/bin/chromium, never one a package downloads) driven by
// playwright-core from e2e/node. dashboard.mjs drives /ui/ while the
// official MCP SDK client writes through /mcp; app-host.mjs plays an MCP
// Apps host (the SDK v2 client and ext-apps' AppBridge) around the
// ui://mcp-redis/dashboard resource, over Streamable HTTP and over stdio.
// Each script prints one JSON line, as client.mjs does.
//
// MCP_REDIS_SCREENSHOTS=docs writes the light and dark screenshots to
// docs/ (for the README); otherwise they go to a temporary directory.

// browserReport is the JSON line dashboard.mjs and app-host.mjs print.
type browserReport struct {
	OK    bool `json:"ok"`
	Cases []struct {
		Name   string          `json:"name"`
		OK     bool            `json:"ok"`
		MS     int             `json:"ms"`
		Detail json.RawMessage `json:"detail"`
	} `json:"cases"`
	Failures    []string `json:"failures"`
	Screenshots []string `json:"screenshots"`
}

// browserDir is e2e/node with the browser tests' packages installed and
// Chromium on the machine.
func browserDir(t *testing.T) string {
	t.Helper()
	dir := nodeE2EDir(t)
	for _, pkg := range []string{"playwright-core", "@modelcontextprotocol/ext-apps", "@modelcontextprotocol/client"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("%s is not installed (%v): run `npm ci --prefix e2e/node` from the repository root first", pkg, err)
		}
	}
	chromium := os.Getenv("MCP_REDIS_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("the browser tests run Debian's Chromium, which is missing (%v): apt-get install chromium", err)
	}
	return dir
}

// runBrowser runs `node script args…` in dir with env added and returns
// its report; a failed case, or a non-zero exit, fails the test with the
// script's output and the server's log.
func runBrowser(t *testing.T, dir string, srvLog func() string, env []string, script string, args ...string) *browserReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(dir, script)}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep browserReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("%s (%v) printed no JSON report: %v\nstdout:\n%s\nstderr:\n%s\nserver log:\n%s",
			script, runErr, err, stdout.String(), stderr.String(), srvLog())
	}
	for _, c := range rep.Cases {
		t.Logf("%-4s %5d ms  %s %s", map[bool]string{true: "ok", false: "FAIL"}[c.OK], c.MS, c.Name, c.Detail)
	}
	if runErr != nil || !rep.OK || len(rep.Failures) > 0 {
		t.Fatalf("%s failed (%v):\n%s\nstderr:\n%s\nserver log:\n%s",
			script, runErr, strings.Join(rep.Failures, "\n"), stderr.String(), srvLog())
	}
	return &rep
}

// The dashboard page and the MCP App, each in headless Chromium against
// the binary on the real Redis: the page loads clean and stays on
// loopback, shows a write live within 2 s, pauses and filters its tail,
// follows a workflow, counts a lock down and drops it when released, asks
// for a token when the server has some, and is refused to a foreign
// Origin; the App renders inside a sandboxed frame through a real host
// bridge, over HTTP and over stdio.
func TestDashboardInBrowser(t *testing.T) {
	needsFull(t, "drives the dashboard in headless Chromium")
	dir := browserDir(t)
	_, prefix := testredis.Shared(t)
	srv := startHTTP(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)

	t.Run("page", func(t *testing.T) {
		shots := t.TempDir()
		if os.Getenv("MCP_REDIS_SCREENSHOTS") == "docs" {
			shots = filepath.Join("..", "..", "docs")
		}
		rep := runBrowser(t, dir, srv.stderr.String, nil, "dashboard.mjs",
			"--url", srv.base, "--mode", "page", "--screenshots", shots)
		for _, name := range []string{"dashboard-light.png", "dashboard-dark.png"} {
			if fi, err := os.Stat(filepath.Join(shots, name)); err != nil {
				t.Errorf("screenshot %s: %v", name, err)
			} else if fi.Size() < 10<<10 {
				t.Errorf("screenshot %s has only %d bytes", name, fi.Size())
			}
		}
		t.Logf("screenshots: %v", rep.Screenshots)
	})

	t.Run("token", func(t *testing.T) {
		tok := newToken()
		authed := startHTTP(t, []string{tokensEnv("dashboard", tok)}, "--redis-url", testredis.URL(), "--prefix", prefix)
		// The page itself needs no token (it holds no data); its API does.
		if res, _ := authed.get(t, "/ui/", nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET /ui/ without a token = %d, want 200", res.StatusCode)
		}
		call := "/ui/api/call?name=show_dashboard&arguments=" + url.QueryEscape("{}")
		for _, h := range []map[string]string{nil, bearer(newToken())} {
			res, _ := authed.get(t, call, h)
			if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("api/call with %v = %d (WWW-Authenticate %q), want 401 asking for a bearer token",
					h, res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
		}
		if res, body := authed.get(t, call, bearer(tok)); res.StatusCode != http.StatusOK {
			t.Errorf("api/call with the token = %d: %s", res.StatusCode, body)
		}
		runBrowser(t, dir, authed.stderr.String, []string{"MCP_REDIS_TOKEN=" + tok}, "dashboard.mjs",
			"--url", authed.base, "--mode", "token")
	})

	t.Run("foreign-origin", func(t *testing.T) {
		for _, path := range []string{
			"/ui/api/call?name=show_dashboard&arguments=" + url.QueryEscape("{}"),
			"/ui/api/live",
		} {
			res, body := srv.get(t, path, map[string]string{"Origin": "http://evil.example"})
			if res.StatusCode != http.StatusForbidden {
				t.Errorf("GET %s with Origin http://evil.example = %d, want 403: %.200s", path, res.StatusCode, body)
			}
		}
		// The page's own origin is let through.
		res, body := srv.get(t, "/ui/api/call?name=show_dashboard&arguments="+url.QueryEscape("{}"), map[string]string{"Origin": srv.base})
		if res.StatusCode != http.StatusOK {
			t.Errorf("api/call from the page's own origin = %d: %.200s", res.StatusCode, body)
		}
	})

	t.Run("app-streamable-http", func(t *testing.T) {
		runBrowser(t, dir, srv.stderr.String, nil, "app-host.mjs", "--url", srv.base+"/mcp")
	})

	t.Run("app-stdio", func(t *testing.T) {
		// app-host.mjs starts `mcp-redis serve` itself, with the SDK's
		// stdio transport; its log goes to the script's stderr.
		runBrowser(t, dir, func() string { return "(stdio: in the script's stderr)" },
			[]string{"MCP_REDIS_REDIS_URL=" + testredis.URL(), "MCP_REDIS_REDIS_PREFIX=" + prefix},
			"app-host.mjs", "--stdio", bin)
	})
}

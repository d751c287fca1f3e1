package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// The two servers the table reads mcp-redis against: a Go MCP server
// doing nothing (the transport floor) and the reference TypeScript server.

// echoFlag runs the bench binary as the echo server; it is not in -help.
const echoFlag = "--echo-server"

// serveEcho serves one tool, echo, which answers its log_id argument, with
// mcp-go's stdio server: what the same library costs per call with no
// tool work behind it.
func serveEcho() int {
	s := server.NewMCPServer("mcp-redis-bench-echo", "1", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("Answer log_id."), mcp.WithString("log_id")),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(req.GetString("log_id", "")), nil
		})
	if err := server.ServeStdio(s); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis-bench --echo-server:", err)
		return 1
	}
	return 0
}

// startEcho spawns this binary as the echo server.
func startEcho(ctx context.Context) (*client, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, echoFlag)
	cmd.Stderr = os.Stderr
	return startStdio(ctx, cmd)
}

// echo calls echo with audit_log's arguments, so both parse as much.
func (c *client) echo(ctx context.Context, logID string) error {
	return c.request(ctx, "tools/call", toolParams("echo", logID))
}

// Reference is the reference server as npm names it, at the version the
// issue measured; installReference is how to put it where --reference
// looks.
const (
	reference        = "@modelcontextprotocol/server-redis@2025.4.25"
	installReference = "npm install --prefix DIR " + reference + ", then --reference DIR"
)

// referenceAuto and referenceNone are the --reference values that are not
// a directory: the bench's own folder, installed there on first use, and
// no reference row.
const (
	referenceAuto = "auto"
	referenceNone = "none"
)

// referenceDir resolves --reference to the directory the reference server
// is installed in, installing it into the bench's own folder (the user's
// cache directory, mcp-redis-bench/) for auto; "" with the reason when the
// row is not measured.
func referenceDir(ctx context.Context, flag string) (dir, why string, err error) {
	switch flag {
	case referenceNone, "":
		return "", "--reference none", nil
	case referenceAuto:
	default:
		return flag, "", nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", "", fmt.Errorf("--reference auto: %w", err)
	}
	dir = filepath.Join(cache, "mcp-redis-bench", strings.ReplaceAll(strings.TrimPrefix(reference, "@"), "/", "+"))
	if _, err := os.Stat(referenceScript(dir)); err == nil {
		return dir, "", nil
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		return "", "npm is not on PATH (" + installReference + ")", nil
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", "node is not on PATH", nil
	}
	fmt.Fprintf(os.Stderr, "bench: installing %s into %s\n", reference, dir)
	cmd := exec.CommandContext(ctx, npm, "install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel", "error", reference)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", "", fmt.Errorf("--reference auto: npm install %s: %w", reference, err)
	}
	return dir, "", nil
}

// referenceScript is the reference server's entry point under dir.
func referenceScript(dir string) string {
	return filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-redis", "dist", "index.js")
}

// startReference spawns the reference server installed under dir: node
// runs its bin, dist/index.js, which takes the Redis URL as its only
// argument and serves stdio. It keeps running at the end of its stdin,
// and exits on SIGINT.
func startReference(ctx context.Context, dir, redisURL string) (*client, error) {
	js := referenceScript(dir)
	if _, err := os.Stat(js); err != nil {
		return nil, fmt.Errorf("--reference: %w (%s)", err, installReference)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("--reference: node is not on PATH")
	}
	// Its stderr carries only connection chatter.
	c, err := startStdio(ctx, exec.Command(node, js, redisURL))
	if err != nil {
		return nil, fmt.Errorf("reference server: %w", err)
	}
	stop := c.stop
	c.stop = func() { _ = c.cmd.Process.Signal(os.Interrupt); stop() }
	return c, nil
}

// set makes the reference server store an audit entry under key logID in
// the bench's prefix, expiring in case the cleanup never runs.
func (c *client) set(prefix string) func(ctx context.Context, logID string) error {
	return func(ctx context.Context, logID string) error {
		return c.request(ctx, "tools/call", fmt.Appendf(nil, `{"name":"set","arguments":{"key":%q,"value":%q,"expireSeconds":3600}}`,
			prefix+logID, entryJSON(logID)))
	}
}

// printProfiles prints the top functions (by cumulative CPU) of each
// server's profile under dir, as go tool pprof reads them. A server's
// profile covers every row it served: stdio.pprof audit_log,
// emit_workflow_event and ping; the others their one row each.
func printProfiles(bin, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.pprof"))
	for _, f := range files {
		fmt.Printf("\nCPU profile %s (go tool pprof %s %s):\n", f, bin, f)
		out, err := exec.Command("go", "tool", "pprof", "-top", "-cum", "-nodecount", "30", bin, f).CombinedOutput()
		if err != nil {
			fmt.Printf("  go tool pprof: %v\n", err)
		}
		os.Stdout.Write(out)
	}
}

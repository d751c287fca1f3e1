package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

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

// startReference spawns the reference server installed under dir: node
// runs its bin, dist/index.js, which takes the Redis URL as its only
// argument and serves stdio. It keeps running at the end of its stdin,
// and exits on SIGINT.
func startReference(ctx context.Context, dir, redisURL string) (*client, error) {
	js := filepath.Join(dir, "node_modules", "@modelcontextprotocol", "server-redis", "dist", "index.js")
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

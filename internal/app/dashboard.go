package app

import (
	"context"
	"log/slog"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/dashboard"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/metrics"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/tools"
)

// AppMIMEType is the MCP Apps extension's type of an App's HTML.
const AppMIMEType = "text/html;profile=mcp-app"

// newCollector builds the dashboard's overview (show_dashboard, /ui): it
// reads through the plain client (no WAIT: it writes nothing).
func newCollector(cfg config.Config, conn *rdb.Conn, keys keyspace.Keyspace, deps *tools.Deps, locker *lock.Locker, m *metrics.Metrics, listen func(), log *slog.Logger) *dashboard.Collector {
	return dashboard.NewCollector(dashboard.Options{
		Client: conn.Client, Keys: keys, Groups: deps.Groups, Locks: locker, Policies: deps.Policies,
		Stats: func() dashboard.Stats {
			calls, errs := m.Totals()
			return dashboard.Stats{Calls: calls, Errors: errs, InFlight: m.Running()}
		},
		Version: Version, Timeout: cfg.Redis.Timeout, Log: log, Listen: listen,
	})
}

// newDashboard builds the live updates and the HTTP handlers of /ui; the
// page calls the read-only tools in all (dashboard.Tools) directly, so
// its reads are neither audited nor counted as the agents' calls.
func newDashboard(cfg config.Config, keys keyspace.Keyspace, st dashboard.Reader, c *dashboard.Collector, all []mcpkit.Tool, listen func(), log *slog.Logger) (*dashboard.Live, *dashboard.Handler) {
	live := dashboard.NewLive(dashboard.LiveOptions{Streams: st, Collector: c, Keys: keys, Listen: listen,
		MaxEntryBytes: cfg.Limits.MaxEntryBytes, Timeout: cfg.Redis.Timeout, Log: log})
	byName := map[string]mcpkit.Tool{}
	for _, t := range all {
		for _, n := range dashboard.Tools {
			if t.Name() == n {
				byName[n] = t
			}
		}
	}
	return live, &dashboard.Handler{Tools: byName, Live: live, Timeout: cfg.Redis.Timeout, Version: Version, Log: log}
}

// addDashboardApp serves the dashboard as an MCP App (the extension
// io.modelcontextprotocol/ui, 2026-01-26): the resource show_dashboard
// links to, the page in one document. Inside the host's frame it reaches
// the server only through the host (tools/call), never over the network,
// so it declares no CSP domains.
func addDashboardApp(s *server.MCPServer) error {
	html, err := dashboard.AppHTML()
	if err != nil {
		return err
	}
	meta := map[string]any{"ui": map[string]any{"prefersBorder": true}}
	res := mcp.NewResource(tools.DashboardURI, "dashboard",
		mcp.WithResourceTitle("mcp-redis dashboard"),
		mcp.WithResourceDescription("The live dashboard as an MCP App: streams, consumer groups, locks, rates and health, a live tail and a workflow view. "+
			"Opened by show_dashboard in hosts that render MCP Apps."),
		mcp.WithMIMEType(AppMIMEType))
	res.Meta = mcp.NewMetaFromMap(map[string]any{"ui": map[string]any{"prefersBorder": true}})
	s.AddResource(res, func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: tools.DashboardURI, MIMEType: AppMIMEType, Text: html, Meta: meta}}, nil
	})
	return nil
}

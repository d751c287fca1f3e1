package transport_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkStdioAuditLog is one tools/call audit_log round trip over
// Stdio, bytes in to bytes out, through the server the app builds (per-call
// audit off) against the shared Redis.
func BenchmarkStdioAuditLog(b *testing.B) {
	b.Setenv("XDG_CONFIG_HOME", b.TempDir())
	_, prefix := testredis.Shared(b)
	cfg := config.Defaults()
	cfg.Redis.URL = testredis.URL()
	cfg.Redis.Prefix = prefix
	cfg.Audit.ToolCalls = false
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	stdioRoundTrips(b, a.ServeStdio, func(i int) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`+"\n", i+1, i)
	})
}

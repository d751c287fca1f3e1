package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// BenchmarkHandleAuditLog measures one audit_log call through the MCP
// server in-process (no transport) against the shared Redis.
func BenchmarkHandleAuditLog(b *testing.B) {
	_, prefix := testredis.Shared(b)
	cfg := config.Defaults()
	cfg.Redis.URL = testredis.URL()
	cfg.Redis.Prefix = prefix
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`
	a.MCP.HandleMessage(ctx, json.RawMessage(init))
	b.ResetTimer()
	for i := range b.N {
		msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-%d"}}}`, i+1, i)
		if resp := a.MCP.HandleMessage(ctx, json.RawMessage(msg)); resp == nil {
			b.Fatal("no response")
		}
	}
}

// BenchmarkCallRecords measures emit_workflow_event through the MCP server
// in-process, one call at a time, with the per-call audit off, on and
// written in the background (the default), and on and awaited
// (audit.tool_calls_wait): what a call record costs the caller.
func BenchmarkCallRecords(b *testing.B) {
	for _, c := range []struct {
		name      string
		on, await bool
	}{{"off", false, false}, {"background", true, false}, {"awaited", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			_, prefix := testredis.Shared(b)
			cfg := config.Defaults()
			cfg.Redis.URL = testredis.URL()
			cfg.Redis.Prefix = prefix
			cfg.Audit.ToolCalls, cfg.Audit.ToolCallsWait = c.on, c.await
			a, err := app.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				b.Fatal(err)
			}
			defer a.Close()
			ctx := context.Background()
			init := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}`
			a.MCP.HandleMessage(ctx, json.RawMessage(init))
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				msg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"emit_workflow_event","arguments":{"workflow_id":"wf-1","phase":"build","event_type":"started","details":"step"}}}`, i+1)
				if resp := a.MCP.HandleMessage(ctx, json.RawMessage(msg)); resp == nil {
					b.Fatal("no response")
				}
			}
			b.StopTimer()
			a.Settle()
		})
	}
}

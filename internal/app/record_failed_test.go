package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// A call record Redis refuses (here the audit stream's key holds a
// string) is logged as "tool call not audited" and counted in
// mcp_redis_call_records_failed_total, one per record, whether records are
// written in the background or awaited; the calls themselves are answered
// as ever.
func TestACallRecordRedisRefusesIsLoggedAndCounted(t *testing.T) {
	for _, wait := range []bool{false, true} {
		t.Run(fmt.Sprintf("wait=%v", wait), func(t *testing.T) {
			var logs testredis.Buffer
			a, rdb, prefix := newAppLogging(t, func(c *config.Config) { c.Audit.ToolCallsWait = wait }, &logs)
			ctx := context.Background()
			keys := keyspace.Keyspace{Prefix: prefix}
			if err := rdb.Set(ctx, keys.Stream(keyspace.AuditLog), "not a stream", 0).Err(); err != nil {
				t.Fatal(err)
			}
			a.MCP.HandleMessage(ctx, json.RawMessage(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`))
			const calls = 3
			for i := range calls {
				resp, _ := json.Marshal(a.MCP.HandleMessage(ctx, json.RawMessage(fmt.Sprintf(
					`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"emit_workflow_event","arguments":{"workflow_id":"wf","phase":"p","event_type":"e"}}}`, i+1))))
				if !bytes.Contains(resp, []byte(`"entry_id"`)) || bytes.Contains(resp, []byte(`"isError":true`)) {
					t.Fatalf("call %d answered %s, want its entry", i+1, resp)
				}
			}
			a.Settle()
			if n := strings.Count(logs.String(), "tool call not audited"); n != calls {
				t.Errorf("%d records logged as not audited, want %d; the log:\n%s", n, calls, logs.String())
			}
			rec := httptest.NewRecorder()
			a.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
			if m := regexp.MustCompile(`(?m)^mcp_redis_call_records_failed_total (\S+)$`).FindStringSubmatch(rec.Body.String()); m == nil || m[1] != fmt.Sprint(calls) {
				t.Errorf("mcp_redis_call_records_failed_total = %v, want %d", m, calls)
			}
			if n, err := rdb.XLen(ctx, keys.Stream(keyspace.WorkflowEvent)).Result(); err != nil || n != calls {
				t.Errorf("the workflow stream holds %d entries (%v), want %d", n, err, calls)
			}
		})
	}
}

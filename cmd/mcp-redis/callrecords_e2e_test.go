package main_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The call records written in the background are all there once the
// server has stopped, over stdio (stdin closed) and HTTP (SIGTERM), even
// when it is stopped right after the last answer.
func TestCallRecordsInFlightAreWrittenBeforeTheServerStops(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	const n = 200
	emitN := func(c interface {
		CallTool(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
	}) {
		for i := range n {
			req := mcp.CallToolRequest{}
			req.Params.Name = "emit_workflow_event"
			req.Params.Arguments = map[string]any{"workflow_id": "wf-stop", "phase": "p", "event_type": "e", "event_id": fmt.Sprintf("stop-%d", i)}
			if res, err := c.CallTool(context.Background(), req); err != nil || res.IsError {
				t.Fatalf("emit %d: %v %s", i, err, resultText(res))
			}
		}
	}
	count := func(p string) int {
		msgs, err := rdb.XRange(context.Background(), p+"audit_log_stream", "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, m := range msgs {
			if m.Values["module"] == "mcp-redis" {
				k++
			}
		}
		return k
	}

	stdioPrefix := prefix + "stdio:"
	s := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", stdioPrefix)
	emitN(s.c)
	if err := s.proc.stop(); err != nil {
		t.Fatalf("stdio server: %v", err)
	}
	if k := count(stdioPrefix); k != n {
		t.Errorf("stdio: %d call records after the server stopped, want %d", k, n)
	}

	httpPrefix := prefix + "http:"
	p := startHTTP(t, nil, "--redis-url", testredis.URL(), "--prefix", httpPrefix)
	emitN(dialStreamable(t, p.base, ""))
	if err := p.stop(); err != nil {
		t.Fatalf("http server: %v", err)
	}
	if k := count(httpPrefix); k != n {
		t.Errorf("http: %d call records after the server stopped, want %d", k, n)
	}
}

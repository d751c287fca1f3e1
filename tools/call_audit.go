package tools

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// Module is the module name of the server's own audit records.
const Module = "mcp-redis"

// maxErrorBytes bounds the error text kept in an audit record.
const maxErrorBytes = 1024

// CallAuditor returns an observer that records every tool call in the audit
// stream: module mcp-redis, procedure = the tool, status ok or error, its
// duration, input size and error. A successful audit_log call is not
// recorded again: its own entry is the record. The record is written
// before the call's answer is sent; when Redis cannot take it, the failure
// is logged. A call that failed because Redis was unavailable is logged,
// not recorded: the record would wait for the same Redis and double the
// time the caller waits for its answer.
func CallAuditor(d *Deps, timeout time.Duration, log *slog.Logger) mcpkit.Observer {
	return func(ctx context.Context, c mcpkit.Call) {
		if c.Tool == "audit_log" && c.Err == nil {
			return
		}
		if fault.CodeOf(c.Err) == fault.Unavailable {
			log.Warn("tool call not audited: redis unavailable", "tool", c.Tool, "err", c.Err)
			return
		}
		ms := float64(c.Duration.Microseconds()) / 1000
		n := len(c.Args)
		rec := &AuditRecord{
			AuditLogInput: AuditLogInput{Module: Module, Procedure: mcpkit.Name(c.Tool), Status: "ok"},
			DurationMS:    &ms, InputBytes: &n, MCPSessionID: c.SessionID, Caller: c.Caller,
		}
		if c.Err != nil {
			rec.Status = "error"
			rec.ErrorCode = mcpkit.Name(fault.CodeOf(c.Err))
			rec.Error = clipUTF8(c.Message, maxErrorBytes)
		} else {
			// Copy the ids of a valid call, so read_stream filters find it.
			var ids struct {
				WorkflowID mcpkit.Name `json:"workflow_id"`
				SessionID  mcpkit.Name `json:"session_id"`
				UserID     mcpkit.Name `json:"user_id"`
			}
			_ = json.Unmarshal(c.Args, &ids)
			rec.WorkflowID, rec.SessionID, rec.UserID = ids.WorkflowID, ids.SessionID, ids.UserID
		}
		// The record is written even when the call's own context was
		// cancelled or ran out.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		if _, err := d.write(ctx, entry{
			stream: keyspace.AuditLog, record: rec, id: (*string)(&rec.LogID), ts: (*string)(&rec.Timestamp),
			announce: []string{"log_id", "module", "procedure", "status", "workflow_id", "session_id"},
		}); err != nil {
			log.Warn("tool call not audited", "tool", c.Tool, "err", err)
		}
	}
}

func clipUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

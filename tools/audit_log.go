package tools

import (
	"context"
	"slices"
	"strings"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// AuditLogInput is one audit entry, as a caller writes it.
type AuditLogInput struct {
	Module     mcpkit.Name      `json:"module" jsonschema_description:"Module (agent, service or component) that did the work."`
	Procedure  mcpkit.Name      `json:"procedure" jsonschema_description:"Procedure or step within the module."`
	Status     mcpkit.Name      `json:"status" jsonschema_description:"Outcome, e.g. started, ok, error."`
	Inputs     mcpkit.Object    `json:"inputs,omitempty" jsonschema_description:"Inputs of the procedure, as a JSON object (at most 16 levels deep)."`
	Outputs    mcpkit.Object    `json:"outputs,omitempty" jsonschema_description:"Outputs of the procedure, as a JSON object (at most 16 levels deep)."`
	SessionID  mcpkit.Name      `json:"session_id,omitempty" jsonschema_description:"Session the work belongs to."`
	WorkflowID mcpkit.Name      `json:"workflow_id,omitempty" jsonschema_description:"Workflow the work belongs to."`
	UserID     mcpkit.Name      `json:"user_id,omitempty" jsonschema_description:"User on whose behalf the work was done."`
	Rationale  mcpkit.Text      `json:"rationale,omitempty" jsonschema_description:"Why the procedure was run, or decided as it was. Free text."`
	ErrorCode  mcpkit.Name      `json:"error_code,omitempty" jsonschema_description:"Error code, when the status is an error."`
	LogID      mcpkit.Name      `json:"log_id,omitempty" jsonschema_description:"Id of this entry. Give one to make retries safe: a repeat within the idempotency window (24h by default) writes nothing and returns the first entry. Minted (UUIDv7) when absent."`
	Timestamp  mcpkit.Timestamp `json:"timestamp,omitempty" jsonschema_description:"When it happened, RFC 3339. The current time (UTC, milliseconds) when absent."`
}

// Check refuses the module the server's own call records use: an entry
// that says it is the server's would be one the trail cannot tell from it
// but by its origin.
func (in *AuditLogInput) Check() error {
	if strings.EqualFold(strings.TrimSpace(string(in.Module)), Module) {
		return fault.Invalidf("module", "%q is reserved for the server's own records of tool calls; name the module that did the work", Module)
	}
	return nil
}

// AuditRecord is an entry of the audit stream: a caller's entry, or the
// server's own record of a tool call, which adds the call's fields; both
// carry the server's stamp.
type AuditRecord struct {
	AuditLogInput
	DurationMS *float64 `json:"duration_ms,omitempty"`
	InputBytes *int     `json:"input_bytes,omitempty"`
	Error      string   `json:"error,omitempty"`
	Stamp
}

// callRecordFields are the fields only the server's call records carry.
var callRecordFields = []string{"duration_ms", "input_bytes", "error"}

// AuditLogResult says where an audit entry was written.
type AuditLogResult struct {
	Stream    string `json:"stream" jsonschema_description:"Redis key of the stream written."`
	EntryID   string `json:"entry_id" jsonschema_description:"Stream entry id (the first entry's, for a duplicate)."`
	LogID     string `json:"log_id" jsonschema_description:"The entry's log_id, given or minted."`
	Timestamp string `json:"timestamp" jsonschema_description:"The entry's timestamp."`
	Duplicate bool   `json:"duplicate" jsonschema_description:"True when log_id was already written within the idempotency window: nothing new was written."`
}

// auditLogStamped are the names audit_log refuses as the server's: the
// stamp, and the fields of its own call records.
var auditLogStamped = append(slices.Clone(StampedFields), callRecordFields...)

// record is the entry that in writes, before the server fills and stamps it.
func (in *AuditLogInput) record() stream.Record {
	rec := &AuditRecord{AuditLogInput: *in}
	return stream.Record{Stream: keyspace.AuditLog, Value: rec, ID: (*string)(&rec.LogID), Timestamp: (*string)(&rec.Timestamp), Stamp: &rec.Stamp}
}

func auditLog(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[AuditLogInput, AuditLogResult]{
		Name:  "audit_log",
		Title: "Append an audit entry",
		Description: "Append one entry to the audit trail (the audit_log_stream Redis stream) and announce it on pub/sub. " +
			"Record what a module did: procedure, status, inputs, outputs, rationale. " +
			"Pass log_id to make a retry safe: the same log_id within the idempotency window (" + window(d) + " on this server, idempotency.ttl) returns the first entry with duplicate: true.",
		Hints:   mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Stamped: auditLogStamped,
		// Only a failed call is recorded (a successful one's entry is its
		// record), so there are no results to keep.
		Record: func(in *AuditLogInput, out *AuditLogResult) (map[string]any, map[string]any) {
			return fields("module", string(in.Module), "procedure", string(in.Procedure), "status", string(in.Status),
				"log_id", string(in.LogID), "timestamp", string(in.Timestamp)), nil
		},
		Handle: func(ctx context.Context, in *AuditLogInput) (*AuditLogResult, error) {
			w, err := d.write(ctx, in.record())
			if err != nil {
				return nil, err
			}
			return &AuditLogResult{Stream: w.Key, EntryID: w.EntryID, LogID: w.ID, Timestamp: w.Timestamp, Duplicate: w.Duplicate}, nil
		},
	})
}

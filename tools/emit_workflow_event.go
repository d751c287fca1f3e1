package tools

import (
	"context"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// WorkflowEventInput is one event in a workflow's life.
type WorkflowEventInput struct {
	WorkflowID mcpkit.Name      `json:"workflow_id" jsonschema_description:"Workflow the event belongs to."`
	Phase      mcpkit.Name      `json:"phase" jsonschema_description:"Phase the workflow is in."`
	EventType  mcpkit.Name      `json:"event_type" jsonschema_description:"What happened, e.g. phase_started, phase_completed, escalated."`
	Details    mcpkit.Text      `json:"details,omitempty" jsonschema_description:"Details, as free text."`
	Timestamp  mcpkit.Timestamp `json:"timestamp,omitempty" jsonschema_description:"When it happened, RFC 3339. The current time (UTC, milliseconds) when absent."`
	EventID    mcpkit.Name      `json:"event_id,omitempty" jsonschema_description:"Id of this event; minted (UUIDv7) when absent."`
}

// WorkflowEventRecord is an entry of the workflow events stream: the event
// and the server's stamp.
type WorkflowEventRecord struct {
	WorkflowEventInput
	Stamp
}

// record is the entry that in writes, before the server fills and stamps it.
func (in *WorkflowEventInput) record() stream.Record {
	rec := &WorkflowEventRecord{WorkflowEventInput: *in}
	return stream.Record{Stream: keyspace.WorkflowEvent, Value: rec, ID: (*string)(&rec.EventID), Timestamp: (*string)(&rec.Timestamp), Stamp: &rec.Stamp}
}

func emitWorkflowEvent(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[WorkflowEventInput, EventResult]{
		Name:  "emit_workflow_event",
		Title: "Emit a workflow event",
		Description: "Append a workflow event (phase change, escalation, completion) to the workflow_events Redis stream and announce it on pub/sub." +
			idempotencyNote(d),
		Hints:   mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Stamped: StampedFields,
		Record: func(in *WorkflowEventInput, out *EventResult) (map[string]any, map[string]any) {
			return fields("workflow_id", string(in.WorkflowID), "phase", string(in.Phase), "event_type", string(in.EventType),
				"event_id", string(in.EventID), "timestamp", string(in.Timestamp)), eventOutputs(out)
		},
		Handle: func(ctx context.Context, in *WorkflowEventInput) (*EventResult, error) {
			w, err := d.write(ctx, in.record())
			if err != nil {
				return nil, err
			}
			return eventResult(w), nil
		},
	})
}

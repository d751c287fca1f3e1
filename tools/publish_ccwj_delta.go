package tools

import (
	"context"
	"encoding/json"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// CCWJDeltaInput is one change to a workflow's context window.
type CCWJDeltaInput struct {
	WorkflowID mcpkit.Name      `json:"workflow_id" jsonschema_description:"Workflow whose context changes."`
	PhaseID    mcpkit.Name      `json:"phase_id" jsonschema_description:"Phase of the workflow the field belongs to."`
	Field      mcpkit.Name      `json:"field" jsonschema_description:"Field of the phase that takes the new value."`
	Value      mcpkit.Value     `json:"value" jsonschema_description:"The field's new value: any JSON value (at most 16 levels deep)."`
	Timestamp  mcpkit.Timestamp `json:"timestamp,omitempty" jsonschema_description:"When the change happened, RFC 3339. The current time (UTC, milliseconds) when absent."`
	EventID    mcpkit.Name      `json:"event_id,omitempty" jsonschema_description:"Id of this delta; minted (UUIDv7) when absent."`
}

// CCWJDeltaRecord is an entry of the CCWJ stream: the delta and the
// server's stamp.
type CCWJDeltaRecord struct {
	CCWJDeltaInput
	Stamp
}

// record is the entry that in writes, before the server fills and stamps
// it, with the context cell it sets.
func (in *CCWJDeltaInput) record() stream.Record {
	rec := &CCWJDeltaRecord{CCWJDeltaInput: *in}
	return stream.Record{
		Stream: keyspace.CCWJUpdate, Value: rec, ID: (*string)(&rec.EventID), Timestamp: (*string)(&rec.Timestamp), Stamp: &rec.Stamp,
		Cell: func() *stream.Cell {
			return &stream.Cell{WorkflowID: string(rec.WorkflowID), PhaseID: string(rec.PhaseID), Field: string(rec.Field),
				Value: json.RawMessage(rec.Value), UpdatedAt: string(rec.Timestamp)}
		},
	}
}

func publishCCWJDelta(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[CCWJDeltaInput, EventResult]{
		Name:  "publish_ccwj_delta",
		Title: "Publish a context-window delta",
		Description: "Set one field of one phase of a workflow's current context window (CCWJ): append the delta to the ccwj_update_stream Redis stream, " +
			"make it the field's current value (read it back with get_context), and announce it on pub/sub. " +
			"Deltas to different fields never overwrite each other; the latest delta to a field wins." + idempotencyNote(d),
		Hints:   mcpkit.Hints{ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false},
		Stamped: StampedFields,
		Record: func(in *CCWJDeltaInput, out *EventResult) (map[string]any, map[string]any) {
			return fields("workflow_id", string(in.WorkflowID), "phase_id", string(in.PhaseID), "field", string(in.Field),
				"event_id", string(in.EventID), "timestamp", string(in.Timestamp)), eventOutputs(out)
		},
		Handle: func(ctx context.Context, in *CCWJDeltaInput) (*EventResult, error) {
			w, err := d.write(ctx, in.record())
			if err != nil {
				return nil, err
			}
			return eventResult(w), nil
		},
	})
}

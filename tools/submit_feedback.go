package tools

import (
	"context"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// FeedbackInput is one piece of user or agent feedback.
type FeedbackInput struct {
	Feedback   mcpkit.Text      `json:"feedback" jsonschema_description:"The feedback, as free text."`
	WorkflowID mcpkit.Name      `json:"workflow_id,omitempty" jsonschema_description:"Workflow the feedback is about, so read_stream (workflow_id) and the workflow's entries find it."`
	PhaseID    mcpkit.Name      `json:"phase_id,omitempty" jsonschema_description:"Phase of that workflow it is about (as publish_ccwj_delta names phases)."`
	SessionID  mcpkit.Name      `json:"session_id,omitempty" jsonschema_description:"Session the feedback is about."`
	UserID     mcpkit.Name      `json:"user_id,omitempty" jsonschema_description:"User who gave it."`
	Module     mcpkit.Name      `json:"module,omitempty" jsonschema_description:"Module whose output it is about."`
	Procedure  mcpkit.Name      `json:"procedure,omitempty" jsonschema_description:"Procedure whose output it is about."`
	Timestamp  mcpkit.Timestamp `json:"timestamp,omitempty" jsonschema_description:"When it was given, RFC 3339. The current time (UTC, milliseconds) when absent."`
	EventID    mcpkit.Name      `json:"event_id,omitempty" jsonschema_description:"Id of this feedback; minted (UUIDv7) when absent."`
}

// FeedbackRecord is an entry of the feedback stream: the feedback and the
// server's stamp.
type FeedbackRecord struct {
	FeedbackInput
	Stamp
}

// record is the entry that in writes, before the server fills and stamps it.
func (in *FeedbackInput) record() stream.Record {
	rec := &FeedbackRecord{FeedbackInput: *in}
	return stream.Record{Stream: keyspace.UserFeedback, Value: rec, ID: (*string)(&rec.EventID), Timestamp: (*string)(&rec.Timestamp), Stamp: &rec.Stamp}
}

func submitFeedback(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[FeedbackInput, EventResult]{
		Name:  "submit_feedback",
		Title: "Submit feedback",
		Description: "Append user or agent feedback on an output to the user_feedback Redis stream and announce it on pub/sub." +
			idempotencyNote(d),
		Hints:   mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Stamped: StampedFields,
		// The feedback's text is payload: kept only with record_arguments all.
		Record: func(in *FeedbackInput, out *EventResult) (map[string]any, map[string]any) {
			return fields("workflow_id", string(in.WorkflowID), "phase_id", string(in.PhaseID), "session_id", string(in.SessionID), "user_id", string(in.UserID), "module", string(in.Module),
				"procedure", string(in.Procedure), "event_id", string(in.EventID), "timestamp", string(in.Timestamp)), eventOutputs(out)
		},
		Handle: func(ctx context.Context, in *FeedbackInput) (*EventResult, error) {
			w, err := d.write(ctx, in.record())
			if err != nil {
				return nil, err
			}
			return eventResult(w), nil
		},
	})
}

package tools

import (
	"context"
	"encoding/json"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// GetContextInput names the workflow whose context to read.
type GetContextInput struct {
	WorkflowID mcpkit.Name `json:"workflow_id" jsonschema_description:"Workflow whose current context to return."`
	PhaseID    mcpkit.Name `json:"phase_id,omitempty" jsonschema_description:"Only this phase's fields."`
}

// GetContextResult is a workflow's current context window.
type GetContextResult struct {
	WorkflowID  string                             `json:"workflow_id" jsonschema_description:"The workflow."`
	Context     map[string]map[string]mcpkit.Value `json:"context" jsonschema_description:"phase_id → field → the latest value set by publish_ccwj_delta. Empty when no delta was applied."`
	LastDeltaID string                             `json:"last_delta_id,omitempty" jsonschema_description:"Entry id (in ccwj_update_stream) of the last delta applied to the workflow."`
	UpdatedAt   string                             `json:"updated_at,omitempty" jsonschema_description:"Timestamp of that delta."`
}

func getContext(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[GetContextInput, GetContextResult]{
		Name:  "get_context",
		Title: "Get a workflow's context",
		Description: "Return the current context window of a workflow, as built by publish_ccwj_delta: " +
			"for each phase, each field's latest value, and the id of the last delta applied.",
		Hints:       mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Unavailable: "Nothing was written; read again later.",
		Record: func(in *GetContextInput, out *GetContextResult) (map[string]any, map[string]any) {
			inputs := fields("workflow_id", string(in.WorkflowID), "phase_id", string(in.PhaseID))
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("phases", len(out.Context), "last_delta_id", out.LastDeltaID, "updated_at", out.UpdatedAt)
		},
		Handle: func(ctx context.Context, in *GetContextInput) (*GetContextResult, error) {
			wc, err := d.Streams.Context(ctx, string(in.WorkflowID))
			if err != nil {
				return nil, err
			}
			out := &GetContextResult{WorkflowID: string(in.WorkflowID), Context: map[string]map[string]mcpkit.Value{},
				LastDeltaID: wc.LastDeltaID, UpdatedAt: wc.UpdatedAt}
			for phase, fields := range wc.Phases {
				if in.PhaseID != "" && phase != string(in.PhaseID) {
					continue
				}
				m := make(map[string]mcpkit.Value, len(fields))
				for f, v := range fields {
					m[f] = mcpkit.Value(json.RawMessage(v))
				}
				out.Context[phase] = m
			}
			return out, nil
		},
	})
}

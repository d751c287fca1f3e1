package tools_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/tools"
)

// hints is what each tool must declare; a tool missing here fails the test,
// so no tool ships with defaulted annotations.
var hints = map[string]mcpkit.Hints{
	// Appends only; a retry without log_id appends again.
	"audit_log": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Replaces the field's current value in the workflow context.
	"publish_ccwj_delta":  {ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false},
	"submit_feedback":     {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	"emit_workflow_event": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Appends only, but with ccwj_update_stream replaces context values as
	// publish_ccwj_delta does; a resend without ids appends again.
	"append_batch": {ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false},
	"read_stream":  {ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
	"get_context":  {ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
	"verify_audit": {ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
	// Takes a free lock; a second call with the same arguments does not get it.
	"acquire_lock": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Deletes the lock; releasing again changes nothing more.
	"release_lock": {ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false},
	// Moves the expiry to now + ttl_ms each time.
	"extend_lock": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Spends quota.
	"check_rate": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Hands entries to a consumer (and may move some to the dead letters,
	// which keeps them); a second call hands out others.
	"claim_events": {ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
	// Settles entries for good; acknowledging again changes nothing more.
	"ack_events":  {ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false},
	"stream_info": {ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
	// Reads the overview; calling again only reads again.
	"show_dashboard": {ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
}

func TestEveryToolStatesAllFourAnnotationHintsTruly(t *testing.T) {
	all := tools.All(&tools.Deps{LockMaxTTL: time.Minute})
	if len(all) != len(hints) {
		t.Errorf("%d tools, %d expected hint sets", len(all), len(hints))
	}
	for _, tool := range all {
		a := tool.Def.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s leaves a hint unstated: %+v", tool.Name(), a)
			continue
		}
		want, ok := hints[tool.Name()]
		if !ok {
			t.Errorf("%s has no expected hints in this test", tool.Name())
			continue
		}
		got := mcpkit.Hints{ReadOnly: *a.ReadOnlyHint, Destructive: *a.DestructiveHint, Idempotent: *a.IdempotentHint, OpenWorld: *a.OpenWorldHint}
		if got != want {
			t.Errorf("%s hints = %+v, want %+v", tool.Name(), got, want)
		}
		if a.Title == "" || tool.Def.Description == "" {
			t.Errorf("%s has no title or description", tool.Name())
		}
	}
}

func TestEverySchemaIsAFlatClosedObject(t *testing.T) {
	for _, tool := range tools.All(&tools.Deps{}) {
		for which, raw := range map[string]json.RawMessage{"input": tool.Def.RawInputSchema, "output": tool.Def.RawOutputSchema} {
			var s map[string]any
			if err := json.Unmarshal(raw, &s); err != nil {
				t.Fatalf("%s %s schema: %v", tool.Name(), which, err)
			}
			if s["type"] != "object" || s["additionalProperties"] != false {
				t.Errorf("%s %s schema is not a closed object: type=%v additionalProperties=%v", tool.Name(), which, s["type"], s["additionalProperties"])
			}
			for _, k := range []string{"$ref", "$defs", "$id", "$schema"} {
				if _, ok := s[k]; ok {
					t.Errorf("%s %s schema has %s", tool.Name(), which, k)
				}
			}
			if which == "input" {
				if _, ok := s["properties"].(map[string]any); !ok {
					t.Errorf("%s input schema has no properties", tool.Name())
				}
			}
		}
	}
}

func TestRequiredArgumentsAreTheContract(t *testing.T) {
	want := map[string]string{
		"audit_log":           `["module","procedure","status"]`,
		"publish_ccwj_delta":  `["workflow_id","phase_id","field","value"]`,
		"submit_feedback":     `["feedback"]`,
		"emit_workflow_event": `["workflow_id","phase","event_type"]`,
		"append_batch":        `["stream","entries"]`,
		"read_stream":         `["stream"]`,
		"get_context":         `["workflow_id"]`,
		"acquire_lock":        `["resource"]`,
		"release_lock":        `["resource","token"]`,
		"extend_lock":         `["resource","token","ttl_ms"]`,
		"check_rate":          `["subject"]`,
		"claim_events":        `["stream","group","consumer"]`,
		"ack_events":          `["stream","group","ids"]`,
		"stream_info":         `["stream"]`,
	}
	for _, tool := range tools.All(&tools.Deps{}) {
		var s struct {
			Required json.RawMessage `json:"required"`
		}
		_ = json.Unmarshal(tool.Def.RawInputSchema, &s)
		if string(s.Required) != want[tool.Name()] {
			t.Errorf("%s requires %s, want %s", tool.Name(), s.Required, want[tool.Name()])
		}
	}
}

// The write tools' descriptions state the idempotency window in force,
// not the default.
func TestWriteDescriptionsStateTheIdempotencyWindowInForce(t *testing.T) {
	for _, tool := range tools.All(&tools.Deps{LockMaxTTL: time.Minute, IdempotencyTTL: 90 * time.Minute}) {
		switch tool.Name() {
		case "audit_log", "publish_ccwj_delta", "submit_feedback", "emit_workflow_event":
			if !strings.Contains(tool.Def.Description, "(90m on this server, idempotency.ttl)") {
				t.Errorf("%s: %q does not state the 90m window", tool.Name(), tool.Def.Description)
			}
		}
	}
}

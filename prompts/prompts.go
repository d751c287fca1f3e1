// Package prompts holds the server's MCP prompts: the common flows over
// its tools, written out for a model to follow (prompts/list,
// prompts/get).
package prompts

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

// Deps are the values in force that the prompts state.
type Deps struct {
	// LockMaxTTL bounds acquire_lock's ttl_ms (locks.max_ttl).
	LockMaxTTL time.Duration
	// IdempotencyTTL is how long a log_id/event_id is remembered
	// (idempotency.ttl).
	IdempotencyTTL time.Duration
	// MaxBlock bounds block_ms (streams.max_block); 0: calls do not wait.
	MaxBlock time.Duration
}

// Prompt is one prompt: its definition and what it says.
type Prompt struct {
	Def mcp.Prompt
	// Uses are the tools the prompt has a model call: a server that does
	// not offer one of them (read-only, tools.enabled) does not offer the
	// prompt.
	Uses []string
	text func(args map[string]string) string
}

// Handler answers prompts/get for p: the arguments checked (every
// required one present, none unknown, each a valid name), then the text.
func (p Prompt) Handler() server.PromptHandlerFunc {
	return func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		args := req.Params.Arguments
		if err := p.check(args); err != nil {
			return nil, err
		}
		return mcp.NewGetPromptResult(p.Def.Description, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(p.text(args))),
		}), nil
	}
}

var (
	validName = regexp.MustCompile(mcpkit.PatternName)
	validKey  = regexp.MustCompile(mcpkit.PatternKey)
)

func (p Prompt) check(args map[string]string) error {
	var problems []string
	known := make([]string, 0, len(p.Def.Arguments))
	for _, a := range p.Def.Arguments {
		known = append(known, a.Name)
		v, ok := args[a.Name]
		switch {
		case !ok || v == "":
			if a.Required {
				problems = append(problems, fmt.Sprintf("%s is required (%s)", a.Name, a.Description))
			}
		case a.Name == "resource" && (len(v) > mcpkit.MaxKeyBytes || !validKey.MatchString(v)):
			problems = append(problems, fmt.Sprintf("resource: 1 to %d bytes of letters, digits and . _ : / @ -", mcpkit.MaxKeyBytes))
		case len(v) > mcpkit.MaxNameBytes:
			problems = append(problems, fmt.Sprintf("%s: at most %d bytes", a.Name, mcpkit.MaxNameBytes))
		case !validName.MatchString(v):
			problems = append(problems, fmt.Sprintf("%s: must not be blank or hold control characters", a.Name))
		}
	}
	if wf := args["workflow_id"]; p.Def.Name == "run_workflow_phase" && args["resource"] == "" && wf != "" &&
		(len("workflow:"+wf) > mcpkit.MaxKeyBytes || !validKey.MatchString("workflow:"+wf)) {
		problems = append(problems, "resource is required when workflow:<workflow_id> is not a lock resource (letters, digits and . _ : / @ -)")
	}
	var unknown []string
	for name := range args {
		if !slices.Contains(known, name) {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		msg := fmt.Sprintf("unknown argument %q", name)
		if near, ok := suggest.Closest(name, known); ok {
			msg += fmt.Sprintf(" (did you mean %s?)", near)
		}
		problems = append(problems, msg+"; this prompt takes "+strings.Join(known, ", "))
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s%s: %s", mcpkit.InvalidPromptArguments, p.Def.Name, strings.Join(problems, "; "))
}

// All returns every prompt (prompts/list shows them by name).
func All(d Deps) []Prompt {
	return []Prompt{runPhase(d), reviewWorkflow(), workAQueue(d)}
}

func runPhase(d Deps) Prompt {
	return Prompt{
		Def: mcp.NewPrompt("run_workflow_phase",
			mcp.WithPromptTitle("Run a phase of a workflow"),
			mcp.WithPromptDescription("Do one phase of a workflow under a lock: take the lock, read the context, publish each change as a CCWJ delta, announce the phase's events, and release."),
			mcp.WithArgument("workflow_id", mcp.RequiredArgument(), mcp.ArgumentDescription("the workflow the phase belongs to")),
			mcp.WithArgument("phase", mcp.RequiredArgument(), mcp.ArgumentDescription("the phase to run, e.g. plan")),
			mcp.WithArgument("resource", mcp.ArgumentDescription("what to lock; workflow:<workflow_id> when absent")),
		),
		Uses: []string{"acquire_lock", "emit_workflow_event", "get_context", "publish_ccwj_delta", "extend_lock", "audit_log", "release_lock"},
		text: func(a map[string]string) string {
			wf, phase, res := a["workflow_id"], a["phase"], a["resource"]
			if res == "" {
				res = "workflow:" + wf
			}
			return fmt.Sprintf(`Run the phase %[2]q of the workflow %[1]q with the mcp-redis tools, in this order:

1. acquire_lock {"resource": %[3]q, "ttl_ms": <enough for the phase, at most %[4]d>, "wait_ms": <how long you may wait>, "owner": <your name>}. If acquired is false, someone else holds it (owner, ttl_ms say who and for how long): stop here and say so. Keep the token and the fencing_token it returns.
2. emit_workflow_event {"workflow_id": %[1]q, "phase": %[2]q, "event_type": "phase_started", "event_id": <a fresh UUID>}.
3. get_context {"workflow_id": %[1]q}: what earlier phases left, by phase and field.
4. Do the phase's work. For each result, publish_ccwj_delta {"workflow_id": %[1]q, "phase_id": %[2]q, "field": <name>, "value": <any JSON>, "event_id": <a fresh UUID>}. If the work takes long, extend_lock {"resource": %[3]q, "token": <token>, "ttl_ms": …} before the ttl runs out; if it answers extended false, the lock was lost: stop writing.
5. audit_log {"module": <your name>, "procedure": %[2]q, "status": "ok" or "error", "workflow_id": %[1]q, "rationale": <why, in a sentence>}.
6. emit_workflow_event {"workflow_id": %[1]q, "phase": %[2]q, "event_type": "phase_completed" (or "phase_failed" with "details"), "event_id": <a fresh UUID>}.
7. release_lock {"resource": %[3]q, "token": <token>}, also when the work failed.

When a write answers that Redis is unavailable, retry it with the same log_id or event_id: the server keeps each id once for %[5]s, so a retry never writes twice.`,
				wf, phase, res, d.LockMaxTTL.Milliseconds(), d.IdempotencyTTL)
		},
	}
}

func reviewWorkflow() Prompt {
	return Prompt{
		Def: mcp.NewPrompt("review_workflow_history",
			mcp.WithPromptTitle("Review a workflow's history"),
			mcp.WithPromptDescription("Read back everything recorded about a workflow (events, context deltas, audit entries, feedback), check the audit trail's hash chain, and summarise."),
			mcp.WithArgument("workflow_id", mcp.RequiredArgument(), mcp.ArgumentDescription("the workflow to review")),
		),
		Uses: []string{"get_context", "read_stream", "verify_audit"},
		text: func(a map[string]string) string {
			return fmt.Sprintf(`Review the history of the workflow %[1]q with the mcp-redis tools (all of them read only):

1. get_context {"workflow_id": %[1]q}: the current context, by phase and field.
2. read_stream {"stream": "workflow_events", "workflow_id": %[1]q, "count": 200}: its events in order; pass the answer's next as start to read on.
3. read_stream {"stream": "ccwj_update_stream", "workflow_id": %[1]q, "count": 200}: each change to the context, with who made it (caller).
4. read_stream {"stream": "audit_log_stream", "workflow_id": %[1]q, "count": 200}: what was done and why (status, rationale, error_code).
5. read_stream {"stream": "user_feedback", "workflow_id": %[1]q, "count": 200}: what people said about it.
6. verify_audit {"stream": "audit_log_stream"}: whether the audit trail is intact.

Then summarise: the phases in order with their outcome, who did what, the errors and how they were handled, the feedback, and anything that looks wrong (a phase started and never completed, a failed verification).`, a["workflow_id"])
		},
	}
}

func workAQueue(d Deps) Prompt {
	wait := ""
	if b := min(10*time.Second, d.MaxBlock); b > 0 {
		wait = fmt.Sprintf(`, "block_ms": %d`, b.Milliseconds())
	}
	return Prompt{
		Def: mcp.NewPrompt("work_a_queue",
			mcp.WithPromptTitle("Work through a stream as a consumer group member"),
			mcp.WithPromptDescription("Take entries of a stream as one worker of a consumer group, do each one's work, and acknowledge it, so every entry is handled by one worker."),
			mcp.WithArgument("stream", mcp.RequiredArgument(), mcp.ArgumentDescription("audit_log_stream, ccwj_update_stream, user_feedback or workflow_events")),
			mcp.WithArgument("group", mcp.RequiredArgument(), mcp.ArgumentDescription("the consumer group the workers share")),
			mcp.WithArgument("consumer", mcp.RequiredArgument(), mcp.ArgumentDescription("this worker's name in the group, the same on every call")),
		),
		Uses: []string{"claim_events", "ack_events"},
		text: func(a map[string]string) string {
			return fmt.Sprintf(`Work through the stream %[1]q as the consumer %[3]q of the group %[2]q, with the mcp-redis tools:

1. claim_events {"stream": %[1]q, "group": %[2]q, "consumer": %[3]q, "count": 10%[4]s}.
2. For each entry: do its work, idempotently (keyed by fields.event_id or fields.log_id: an entry with delivery_count above 1 was handed out before, and its work may be done in part).
3. ack_events {"stream": %[1]q, "group": %[2]q, "ids": [<the ids whose work is done>]}.
4. Go back to 1 until it hands out nothing, then say what was done.

An entry that is not acknowledged is handed out again later, to this worker or another; one that keeps failing is moved to the stream's dead letters (stream_info shows them).`, a["stream"], a["group"], a["consumer"], wait)
		},
	}
}

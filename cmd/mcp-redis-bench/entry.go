package main

import (
	"encoding/json"
	"fmt"
	"time"
)

// typicalInputs is what an agent step typically logs as its inputs: a
// query, a few scalars and a small nested filter, as compact JSON.
const typicalInputs = `{"query":"summarise the open incidents of service checkout","top_k":5,` +
	`"filters":{"severity":["high","critical"],"since":"24h"},"include_resolved":false}`

// entry is one typical audit entry, written the same way by both series:
// as XADD fields in (a) and as audit_log arguments in (b).
type entry struct {
	Module     string          `json:"module"`
	Procedure  string          `json:"procedure"`
	Status     string          `json:"status"`
	Inputs     json.RawMessage `json:"inputs"`
	SessionID  string          `json:"session_id"`
	WorkflowID string          `json:"workflow_id"`
	LogID      string          `json:"log_id"`
	Timestamp  string          `json:"timestamp"`
}

// entries mints entries with a distinct log_id per call number (warm-up
// calls are negative), so the server's idempotency check never answers from
// an earlier entry.
type entries struct {
	scope string
}

// newEntries scopes the log_ids by the series' key prefix, which is unique.
func newEntries(scope string) entries { return entries{scope: scope} }

func (g entries) next(i int) entry {
	return entry{
		Module:     "planner-agent",
		Procedure:  "select_tool",
		Status:     "ok",
		Inputs:     json.RawMessage(typicalInputs),
		SessionID:  "sess-7f3a9c",
		WorkflowID: "wf-checkout-incidents",
		LogID:      fmt.Sprintf("%slog-%d", g.scope, i),
		Timestamp:  time.Now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
	}
}

// fields is the entry as the server stores it: one stream field per
// argument, inputs as compact JSON text.
func (e entry) fields() []string {
	return []string{
		"module", e.Module,
		"procedure", e.Procedure,
		"status", e.Status,
		"inputs", string(e.Inputs),
		"session_id", e.SessionID,
		"workflow_id", e.WorkflowID,
		"log_id", e.LogID,
		"timestamp", e.Timestamp,
	}
}

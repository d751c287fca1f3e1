package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/clip"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// Module is the module name of the server's own audit records; audit_log
// refuses it.
const Module = "mcp-redis"

// maxErrorBytes bounds the error text kept in an audit record;
// maxArgumentBytes each argument kept with audit.record_arguments all.
const (
	maxErrorBytes    = 1024
	maxArgumentBytes = 1024
)

// maxRecordsInFlight bounds the call records being written at once when
// they are not awaited: past it, the next call's answer waits for a slot
// (it is never dropped).
const maxRecordsInFlight = 256

// Auditor records every tool call in the audit stream: module mcp-redis,
// procedure = the tool, status ok or error (and error_code, the class),
// its duration, input size and error, in inputs the arguments that
// identify the action (all of them but secrets with
// audit.record_arguments all) and in outputs what happened, stamped with
// the call's provenance and origin server. A lock's token is never kept.
//
// A successful audit_log call is not recorded again: its own entry, stamped
// with the same provenance, is the record, and a second entry saying the
// same would only double the trail. A call that failed because Redis was
// unavailable is logged, not recorded: the record would wait for the same
// Redis and double the time the caller waits for its answer.
//
// The record is built before the call's answer is sent. With Wait it is
// also written first (one more round trip per call); without, it is
// written in the background, at most maxRecordsInFlight at a time: on a
// chained stream it waits up to the chain's linger (1 ms) for the records
// of the calls ending after it, and they go to Redis as one turn
// (stream.Store.Enqueue). The call's answer does not wait for its record.
// A record Redis cannot take is logged and counted (Failed), never dropped
// unannounced; Close waits for those in flight. What a crash (SIGKILL,
// power) can lose is the records in flight then: those of the calls
// answered in the last millisecond and the round trip after it, at most
// maxRecordsInFlight.
type Auditor struct {
	d       *Deps
	timeout time.Duration
	log     *slog.Logger
	wait    bool
	failed  func()
	slots   chan struct{}
	running sync.WaitGroup
}

// NewAuditor returns the Auditor of d's streams; wait writes each record
// before the call is answered; failed, when set, is told of each record
// that could not be written.
func NewAuditor(d *Deps, timeout time.Duration, log *slog.Logger, wait bool, failed func()) *Auditor {
	if failed == nil {
		failed = func() {}
	}
	return &Auditor{d: d, timeout: timeout, log: log, wait: wait, failed: failed, slots: make(chan struct{}, maxRecordsInFlight)}
}

// Close waits for the records still being written.
func (a *Auditor) Close() { a.running.Wait() }

// Observe records c; it is an mcpkit.Observer.
func (a *Auditor) Observe(ctx context.Context, c mcpkit.Call) {
	d, log := a.d, a.log
	if c.Tool == "audit_log" && c.Err == nil {
		return
	}
	if fault.CodeOf(c.Err) == fault.Unavailable {
		log.Warn("tool call not audited: redis unavailable", "tool", c.Tool, "err", c.Err)
		return
	}
	ms := float64(c.Duration.Microseconds()) / 1000
	n := len(c.Args)
	p := c.Provenance
	rec := &AuditRecord{
		AuditLogInput: AuditLogInput{Module: Module, Procedure: mcpkit.Name(c.Tool), Status: "ok"},
		DurationMS:    &ms, InputBytes: &n,
		Stamp: Stamp{Caller: p.Caller, MCPSessionID: p.SessionID, Client: p.Client, Origin: OriginServer},
	}
	inputs := c.Inputs
	if d.RecordArguments == "all" {
		// Every argument as given, and what applied when one was left
		// out (the policy of check_rate).
		inputs = allArguments(c.Args, c.Secret)
		for k, v := range c.Inputs {
			if _, given := inputs[k]; !given && inputs != nil {
				inputs[k] = v
			}
		}
	}
	rec.Inputs = object(inputs)
	rec.Outputs = object(c.Outputs)
	if c.Err != nil {
		rec.Status = "error"
		rec.ErrorCode = mcpkit.Name(fault.CodeOf(c.Err))
		rec.Error = clip.String(c.Message, maxErrorBytes)
	}
	if c.Valid && c.StringArg != nil {
		// Copy the ids of a valid call, so read_stream filters find it.
		rec.WorkflowID = mcpkit.Name(c.StringArg("workflow_id"))
		rec.SessionID = mcpkit.Name(c.StringArg("session_id"))
		rec.UserID = mcpkit.Name(c.StringArg("user_id"))
	}
	// The record is written even when the call's own context was
	// cancelled or ran out.
	ctx = context.WithoutCancel(ctx)
	r := stream.Record{Stream: keyspace.AuditLog, Value: rec, ID: (*string)(&rec.LogID), Timestamp: (*string)(&rec.Timestamp), Stamp: &rec.Stamp}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	if a.wait {
		defer cancel()
		_, err := a.d.write(ctx, r)
		a.done(c.Tool, err)
		return
	}
	a.slots <- struct{}{}
	a.running.Add(1)
	// Handed on here, in the order the calls end; the outcome comes back
	// on the goroutine that sent the record, with no goroutine per record
	// waiting for it.
	a.d.enqueue(ctx, r, func(_ stream.Written, err error) {
		cancel()
		a.done(c.Tool, err)
		<-a.slots
		a.running.Done()
	})
}

func (a *Auditor) done(tool string, err error) {
	if err != nil {
		a.failed()
		a.log.Warn("tool call not audited", "tool", tool, "err", err)
	}
}

// object is m as a JSON object, or nil when m is empty.
func object(m map[string]any) mcpkit.Object {
	if len(m) == 0 {
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return mcpkit.Object(b)
}

// allArguments is every top-level argument of args but the secret ones,
// each value at most maxArgumentBytes of JSON: a longer string is cut
// (with an ellipsis), a longer object, array or number becomes its cut
// JSON text as a string. Arguments that are not a JSON object give nil.
func allArguments(args []byte, secret []string) map[string]any {
	var m map[string]json.RawMessage
	if json.Unmarshal(args, &m) != nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		if slices.Contains(secret, k) {
			continue
		}
		var buf bytes.Buffer
		if json.Compact(&buf, v) != nil {
			continue
		}
		v = buf.Bytes()
		if len(v) <= maxArgumentBytes {
			out[k] = json.RawMessage(v)
			continue
		}
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = clip.String(s, maxArgumentBytes)
			continue
		}
		out[k] = clip.String(string(v), maxArgumentBytes)
	}
	return out
}

package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// AppendBatchInput is a batch of entries for one stream.
type AppendBatchInput struct {
	Stream  string          `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream to append to, by its name without the key prefix."`
	Entries []mcpkit.Object `json:"entries" jsonschema_description:"The entries, in the order they are appended. Each is an object of the arguments the stream's single-entry tool takes (audit_log_stream: audit_log; ccwj_update_stream: publish_ccwj_delta; user_feedback: submit_feedback; workflow_events: emit_workflow_event), checked as that tool checks them."`
}

// AppendBatchResult says where a batch was written.
type AppendBatchResult struct {
	Stream     string             `json:"stream" jsonschema_description:"Redis key of the stream written."`
	Entries    []BatchEntryResult `json:"entries" jsonschema_description:"One result per entry given, in the order given."`
	Appended   int                `json:"appended" jsonschema_description:"How many entries were appended."`
	Duplicates int                `json:"duplicates" jsonschema_description:"How many entries were duplicates: written before within the idempotency window, or earlier in the batch. Nothing new was written for them."`
}

// BatchEntryResult says where one entry of a batch was written.
type BatchEntryResult struct {
	EntryID   string `json:"entry_id" jsonschema_description:"Stream entry id (the first entry's, for a duplicate)."`
	LogID     string `json:"log_id,omitempty" jsonschema_description:"The entry's log_id, given or minted (audit_log_stream)."`
	EventID   string `json:"event_id,omitempty" jsonschema_description:"The entry's event_id, given or minted (the other streams)."`
	Timestamp string `json:"timestamp" jsonschema_description:"The entry's timestamp (the first entry's, for a duplicate)."`
	Duplicate bool   `json:"duplicate" jsonschema_description:"True when the id was already written, within the idempotency window or earlier in the batch: nothing new was written."`
}

// batchKind is how append_batch takes the entries of one stream: decoded
// and checked by the decoder of the stream's single-entry tool, and made
// into the record that tool writes.
type batchKind struct {
	check mcpkit.Tool
	// names are the argument names an entry's errors may start with.
	names  []string
	record func(in any) stream.Record
}

// kindOf is the batchKind of the single-entry tool named: its input
// struct, the names it refuses as the server's, and its record.
func kindOf[In any](tool string, stamped []string, record func(*In) stream.Record) batchKind {
	check := mcpkit.New(mcpkit.Spec[In, In]{
		Name: tool, Stamped: stamped,
		Handle: func(_ context.Context, in *In) (*In, error) { return in, nil },
	})
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
	}
	_ = json.Unmarshal(check.Def.RawInputSchema, &s)
	names := append([]string{"arguments"}, stamped...)
	for n := range s.Properties {
		names = append(names, n)
	}
	return batchKind{check: check, names: names, record: func(in any) stream.Record { return record(in.(*In)) }}
}

// batchKinds are the streams append_batch writes, built on the first
// append_batch call: each is a whole single-entry decoder (its schema
// reflected and encoded), which a server's start need not wait for.
var batchKinds = sync.OnceValue(func() map[string]batchKind {
	return map[string]batchKind{
		keyspace.AuditLog:      kindOf("audit_log", auditLogStamped, (*AuditLogInput).record),
		keyspace.CCWJUpdate:    kindOf("publish_ccwj_delta", StampedFields, (*CCWJDeltaInput).record),
		keyspace.UserFeedback:  kindOf("submit_feedback", StampedFields, (*FeedbackInput).record),
		keyspace.WorkflowEvent: kindOf("emit_workflow_event", StampedFields, (*WorkflowEventInput).record),
	}
})

// inEntry is err, the single-entry decoder's error for entry i, with each
// field it names put as entries[i].field. One problem names its field; a
// call with several has them joined by "; " in one message, each starting
// with its field (an argument name, or one with an index, "ids[2]"), and
// is split only where a known name starts the next.
func (k batchKind) inEntry(i int, err error) error {
	e, ok := fault.As(err)
	if !ok || e.Field != "" || e.Code != fault.Invalid {
		return stream.InEntry(i, err)
	}
	var parts []string
	rest := e.Message
	for rest != "" {
		cut := -1
		for at := 0; ; {
			j := strings.Index(rest[at:], "; ")
			if j < 0 {
				break
			}
			if k.startsWithName(rest[at+j+2:]) {
				cut = at + j
				break
			}
			at += j + 2
		}
		part := rest
		if cut >= 0 {
			part, rest = rest[:cut], rest[cut+2:]
		} else {
			rest = ""
		}
		parts = append(parts, k.named(i, part))
	}
	c := *e
	c.Message = strings.Join(parts, "; ")
	return &c
}

// startsWithName reports whether s starts with "<name>: " or "<name>[".
func (k batchKind) startsWithName(s string) bool {
	for _, n := range k.names {
		if rest, ok := strings.CutPrefix(s, n); ok && (strings.HasPrefix(rest, ": ") || strings.HasPrefix(rest, "[")) {
			return true
		}
	}
	return false
}

// named is one problem of entry i, "<field>: …", with its field put as
// entries[i].field.
func (k batchKind) named(i int, problem string) string {
	if k.startsWithName(problem) {
		field, msg, _ := strings.Cut(problem, ": ")
		return stream.EntryField(i, field) + ": " + msg
	}
	return stream.EntryField(i, "") + ": " + problem
}

func appendBatch(d *Deps) mcpkit.Tool {
	entryBytes := d.MaxEntryBytes
	bound := "limits.max_entry_bytes"
	if entryBytes > 0 {
		bound = fmt.Sprintf("%d bytes on this server, limits.max_entry_bytes", entryBytes)
	}
	return mcpkit.New(mcpkit.Spec[AppendBatchInput, AppendBatchResult]{
		Name:  "append_batch",
		Title: "Append a batch of entries",
		Description: fmt.Sprintf("Append 1 to %d entries to one stream (audit_log_stream, ccwj_update_stream, user_feedback or workflow_events) in one atomic step, "+
			"each checked, filled and stamped as the stream's single-entry tool does it (audit_log, publish_ccwj_delta, submit_feedback, emit_workflow_event) and announced on pub/sub. "+
			"All or nothing: when any entry is refused (an error names it, e.g. entries[3].status), nothing of the batch is written. "+
			"Bounds: each entry at most %s; the batch at most %d MiB serialised; the entries argument nests at most %d levels, so an entry's inputs, outputs or value at most %d. "+
			"Idempotent per entry: an entry with a log_id/event_id already written within the idempotency window (%s on this server, idempotency.ttl) returns the first entry with duplicate: true and is not written again, "+
			"so a batch whose answer was lost can be sent again as it was; an id repeated within the batch with the same payload is a duplicate of its first entry; "+
			"an id used before, or earlier in the batch, for a different payload fails the whole batch (conflict).",
			stream.MaxBatchEntries, bound, stream.MaxBatchBytes>>20, mcpkit.MaxDepth, mcpkit.MaxDepth-2, window(d)),
		// With ccwj_update_stream it replaces context values, as
		// publish_ccwj_delta does; a resend without ids appends again.
		Hints: mcpkit.Hints{ReadOnly: false, Destructive: true, Idempotent: false, OpenWorld: false},
		Schema: func(s *jsonschema.Schema) {
			p, _ := s.Properties.Get("entries")
			lo, hi := uint64(1), uint64(stream.MaxBatchEntries)
			p.MinItems, p.MaxItems = &lo, &hi
		},
		Record: func(in *AppendBatchInput, out *AppendBatchResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "entries", len(in.Entries))
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("stream", out.Stream, "appended", out.Appended, "duplicates", out.Duplicates)
		},
		Handle: func(ctx context.Context, in *AppendBatchInput) (*AppendBatchResult, error) {
			k := batchKinds()[in.Stream]
			recs := make([]stream.Record, len(in.Entries))
			var errs []error
			for i, raw := range in.Entries {
				// raw is part of the arguments Decode found valid JSON.
				v, err := k.check.CallOnValidJSON(ctx, raw, time.Minute)
				if err != nil {
					if errs = append(errs, k.inEntry(i, err)); len(errs) == maxBatchErrors {
						break
					}
					continue
				}
				recs[i] = k.record(v)
			}
			if len(errs) > 0 {
				return nil, stream.JoinInvalid(errs)
			}
			ws, err := d.writeBatch(ctx, in.Stream, recs)
			if err != nil {
				return nil, err
			}
			out := &AppendBatchResult{Entries: make([]BatchEntryResult, len(ws))}
			for i, w := range ws {
				out.Stream = w.Key
				r := BatchEntryResult{EntryID: w.EntryID, Timestamp: w.Timestamp, Duplicate: w.Duplicate}
				if in.Stream == keyspace.AuditLog {
					r.LogID = w.ID
				} else {
					r.EventID = w.ID
				}
				out.Entries[i] = r
				if w.Duplicate {
					out.Duplicates++
				} else {
					out.Appended++
				}
			}
			return out, nil
		},
	})
}

// maxBatchErrors bounds how many refused entries one answer names.
const maxBatchErrors = 8

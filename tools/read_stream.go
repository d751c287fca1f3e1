package tools

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// ReadStreamInput selects entries of one stream.
type ReadStreamInput struct {
	Stream  string `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream to read, by its name without the key prefix."`
	Start   string `json:"start,omitempty" jsonschema:"maxLength=48" jsonschema_description:"Lowest entry id to return: - (the default) for the first, an id such as 1700000000000-0 or 1700000000000, (id to exclude it, $ for only the entries added after this call began, or an RFC 3339 time such as 2026-01-02T15:04:05Z (the entries of that millisecond and later: id <ms>-0)."`
	End     string `json:"end,omitempty" jsonschema:"maxLength=48" jsonschema_description:"Highest entry id to return: + (the default) for the last, an id, (id to exclude it, or an RFC 3339 time (the entries up to and including that millisecond: id <ms>-18446744073709551615)."`
	Count   int    `json:"count,omitempty" jsonschema:"minimum=1,maximum=1000" jsonschema_description:"Most entries to return; 50 when absent."`
	Reverse bool   `json:"reverse,omitempty" jsonschema_description:"Newest first (from end down to start). A reverse read cannot wait: not with block_ms, nor with start $."`
	BlockMS int64  `json:"block_ms,omitempty" jsonschema:"minimum=0,maximum=30000,default=0" jsonschema_description:"When no entry from start to end matches, wait up to this many ms for one to be added; 0 (the default) answers at once. The answer says timed_out: true when none came."`
	// The filters; Schema says which streams have each field.
	EventType  mcpkit.Name `json:"event_type,omitempty"`
	Phase      mcpkit.Name `json:"phase,omitempty"`
	PhaseID    mcpkit.Name `json:"phase_id,omitempty"`
	Module     mcpkit.Name `json:"module,omitempty"`
	Status     mcpkit.Name `json:"status,omitempty"`
	Procedure  mcpkit.Name `json:"procedure,omitempty"`
	WorkflowID mcpkit.Name `json:"workflow_id,omitempty"`
	SessionID  mcpkit.Name `json:"session_id,omitempty"`
	UserID     mcpkit.Name `json:"user_id,omitempty"`
	Caller     mcpkit.Name `json:"caller,omitempty"`
}

// filter is one equality filter of a read: an entry field and the value
// it must have.
type filter struct {
	field string
	value mcpkit.Name
}

// filters lists every filter field, given or not, in the schema's order.
func (in *ReadStreamInput) filters() []filter {
	return []filter{
		{"event_type", in.EventType}, {"phase", in.Phase}, {"phase_id", in.PhaseID}, {"module", in.Module},
		{"status", in.Status}, {"procedure", in.Procedure}, {"workflow_id", in.WorkflowID},
		{"session_id", in.SessionID}, {"user_id", in.UserID}, {"caller", in.Caller},
	}
}

// filterFields lists the filter fields, in the schema's order.
var filterFields = func() []string {
	var out []string
	for _, f := range (&ReadStreamInput{}).filters() {
		out = append(out, f.field)
	}
	return out
}()

// Check validates the bounds, the filters against the stream's fields,
// and that only a forward read waits.
func (in *ReadStreamInput) Check() error {
	for _, b := range []struct {
		name, val string
		end       bool
	}{{"start", in.Start, false}, {"end", in.End, true}} {
		if b.val == "" {
			continue
		}
		if _, err := stream.Bound(b.val, b.end); err != nil {
			return fault.Invalidf(b.name, "%q %v", b.val, err)
		}
	}
	if in.Reverse && in.BlockMS > 0 {
		return fault.Invalidf("block_ms", "only a forward read can wait for new entries; drop reverse, or block_ms")
	}
	if in.Reverse && in.Start == stream.StartNow {
		return fault.Invalidf("start", "$ (only the entries added after this call began) needs a forward read; drop reverse")
	}
	for _, f := range in.filters() {
		if f.value != "" && !slices.Contains(streamFilters[in.Stream], f.field) {
			return fault.Invalidf(f.field, "%s entries have no %s field, so no entry could match; the filters %s takes are %s",
				in.Stream, f.field, in.Stream, strings.Join(streamFilters[in.Stream], ", "))
		}
	}
	return nil
}

// StreamEntry is one entry read back, decoded to the stream's schema.
type StreamEntry struct {
	ID     string         `json:"id" jsonschema_description:"Stream entry id."`
	Fields map[string]any `json:"fields" jsonschema_description:"The entry's fields, decoded: objects and numbers come back as JSON objects and numbers."`
}

// ReadStreamResult is a page of entries.
type ReadStreamResult struct {
	Stream   string        `json:"stream" jsonschema_description:"Redis key of the stream read."`
	Entries  []StreamEntry `json:"entries" jsonschema_description:"Matching entries, in the order asked."`
	Next     string        `json:"next,omitempty" jsonschema_description:"Present when more entries may match: pass it as start (or as end when reverse) to continue. With start $ or block_ms it is always present: the start of the next call, so no entry added meanwhile is missed."`
	Scanned  int           `json:"scanned" jsonschema_description:"How many entries were examined."`
	TimedOut bool          `json:"timed_out,omitempty" jsonschema_description:"True when block_ms ran out before a matching entry was added; absent otherwise."`
	WaitedMS int64         `json:"waited_ms,omitempty" jsonschema_description:"How long the call waited for new entries, in ms; absent when it did not wait."`
}

// maxScan bounds how many entries one filtered read examines.
const maxScan = 10000

// maxPageBytes bounds the entries one read holds (names and values), so a
// call's memory does not grow with count × limits.max_entry_bytes (1000 ×
// 64 KiB would be 64 MiB, copied several times over while it is encoded).
const maxPageBytes = 16 << 20

// records maps each stream to the record type its entries decode into.
var records = map[string]reflect.Type{
	keyspace.AuditLog:      reflect.TypeFor[AuditRecord](),
	keyspace.CCWJUpdate:    reflect.TypeFor[CCWJDeltaRecord](),
	keyspace.UserFeedback:  reflect.TypeFor[FeedbackRecord](),
	keyspace.WorkflowEvent: reflect.TypeFor[WorkflowEventRecord](),
}

// streamFilters lists, for each stream, the filter fields its record has.
var streamFilters = func() map[string][]string {
	m := map[string][]string{}
	for name, t := range records {
		have := recordFields(t)
		for _, f := range filterFields {
			if have[f] {
				m[name] = append(m[name], f)
			}
		}
	}
	return m
}()

// recordFields is the set of stream field names of a record type: its
// JSON names, through embedded structs, as the stream codec writes them.
func recordFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k := range recordFields(f.Type) {
				out[k] = true
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.IsExported() && name != "-" {
			if name == "" {
				name = f.Name
			}
			out[name] = true
		}
	}
	return out
}

// streamsWith lists the streams whose record has field.
func streamsWith(field string) []string {
	var out []string
	for _, s := range keyspace.Streams {
		if slices.Contains(streamFilters[s], field) {
			out = append(out, s)
		}
	}
	return out
}

func readStream(d *Deps) mcpkit.Tool {
	maxBlock := max(d.MaxBlock.Milliseconds(), 0)
	waits := fmt.Sprintf("With block_ms (at most %d ms on this server, streams.max_block), a forward read whose range holds no matching entry waits for one to be added "+
		"and answers as soon as one is (an entry that does not match does not end the wait), or with timed_out: true when the time runs out; "+
		"at most %d calls wait at once, a call beyond that is refused. Start $ reads only what is added after the call began; keep passing next as start to follow a stream without missing an entry.",
		maxBlock, stream.MaxWaiters)
	if maxBlock == 0 {
		waits = "Waiting for new entries (block_ms) is turned off on this server (streams.max_block 0). Start $ reads only what is added after the call began."
	}
	return mcpkit.New(mcpkit.Spec[ReadStreamInput, ReadStreamResult]{
		Name:  "read_stream",
		Title: "Read a stream",
		Description: "Read entries of one of the server's streams (audit_log_stream, ccwj_update_stream, user_feedback, workflow_events) by id or RFC 3339 time range, " +
			"oldest first or newest first, optionally only those whose fields equal the filters given (event_type, phase, phase_id, module, status, procedure, workflow_id, session_id, user_id, and caller, who wrote the entry as the server stamped it; " +
			"a filter for a field the stream's entries do not have is an error). " +
			"Returns at most count entries (and at most 16 MiB of them) and, when more may match, a next cursor. A filtered read examines at most 10000 entries per call. " + waits,
		Hints:       mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Unavailable: "Nothing was written; read again later.",
		Schema: func(s *jsonschema.Schema) {
			if p, ok := s.Properties.Get("block_ms"); ok {
				p.Maximum = jsonNumber(maxBlock)
			}
			for _, f := range filterFields {
				if p, ok := s.Properties.Get(f); ok {
					p.Description = fmt.Sprintf("Only entries whose %s equals this. Streams with this field: %s.", f, strings.Join(streamsWith(f), ", "))
					if f == "caller" {
						p.Description = "Only entries written by this caller, as the server stamped it (a bearer token's name over HTTP, audit.stdio_caller over stdio). Streams with this field: " +
							strings.Join(streamsWith(f), ", ") + "."
					}
				}
			}
		},
		Budget: func(in *ReadStreamInput) time.Duration { return time.Duration(in.BlockMS) * time.Millisecond },
		Record: func(in *ReadStreamInput, out *ReadStreamResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "start", in.Start, "end", in.End, "count", in.Count, "reverse", in.Reverse, "block_ms", in.BlockMS)
			for _, f := range in.filters() {
				if f.value != "" {
					inputs[f.field] = string(f.value)
				}
			}
			if in.Count == 0 {
				delete(inputs, "count")
			}
			if !in.Reverse {
				delete(inputs, "reverse")
			}
			if in.BlockMS == 0 {
				delete(inputs, "block_ms")
			}
			if out == nil {
				return inputs, nil
			}
			o := fields("entries", len(out.Entries), "scanned", out.Scanned, "next", out.Next)
			if n := len(out.Entries); n > 0 {
				o["first_id"], o["last_id"] = out.Entries[0].ID, out.Entries[n-1].ID
			}
			if out.TimedOut {
				o["timed_out"] = true
			}
			if out.WaitedMS > 0 {
				o["waited_ms"] = out.WaitedMS
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *ReadStreamInput) (*ReadStreamResult, error) {
			if in.BlockMS > maxBlock {
				return nil, fault.Invalidf("block_ms", "%d is above the most this server waits, %d (streams.max_block)", in.BlockMS, maxBlock)
			}
			q := stream.Query{Stream: in.Stream, Count: in.Count, Reverse: in.Reverse, MaxScan: maxScan,
				MaxBytes: maxPageBytes, MaxEntryBytes: d.MaxEntryBytes, Block: time.Duration(in.BlockMS) * time.Millisecond}
			q.Start, q.End = "-", "+"
			if in.Start != "" {
				q.Start, _ = stream.Bound(in.Start, false) // Check passed it
			}
			if in.End != "" {
				q.End, _ = stream.Bound(in.End, true)
			}
			if q.Count == 0 {
				q.Count = 50
			}
			q.Match = map[string]string{}
			for _, f := range in.filters() {
				if f.value != "" {
					q.Match[f.field] = string(f.value)
				}
			}
			page, err := d.Streams.Read(ctx, q)
			if err != nil {
				return nil, err
			}
			out := &ReadStreamResult{Stream: page.Key, Entries: make([]StreamEntry, len(page.Entries)), Next: page.Next, Scanned: page.Scanned,
				TimedOut: page.TimedOut, WaitedMS: page.Waited.Milliseconds()}
			for i, e := range page.Entries {
				out.Entries[i] = StreamEntry{ID: e.ID, Fields: stream.Decode(e.Values, records[in.Stream])}
			}
			return out, nil
		},
	})
}

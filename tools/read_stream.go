package tools

import (
	"context"
	"reflect"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// ReadStreamInput selects entries of one stream.
type ReadStreamInput struct {
	Stream     string      `json:"stream" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Stream to read, by its name without the key prefix."`
	Start      string      `json:"start,omitempty" jsonschema:"maxLength=48" jsonschema_description:"Lowest entry id to return: - (the default) for the first, an id such as 1700000000000-0 or 1700000000000, or (id to exclude it."`
	End        string      `json:"end,omitempty" jsonschema:"maxLength=48" jsonschema_description:"Highest entry id to return: + (the default) for the last, an id, or (id to exclude it."`
	Count      int         `json:"count,omitempty" jsonschema:"minimum=1,maximum=1000" jsonschema_description:"Most entries to return; 50 when absent."`
	Reverse    bool        `json:"reverse,omitempty" jsonschema_description:"Newest first (from end down to start)."`
	WorkflowID mcpkit.Name `json:"workflow_id,omitempty" jsonschema_description:"Only entries whose workflow_id equals this."`
	SessionID  mcpkit.Name `json:"session_id,omitempty" jsonschema_description:"Only entries whose session_id equals this."`
	UserID     mcpkit.Name `json:"user_id,omitempty" jsonschema_description:"Only entries whose user_id equals this."`
}

// Check validates the id bounds.
func (in *ReadStreamInput) Check() error {
	for _, b := range []struct{ name, val string }{{"start", in.Start}, {"end", in.End}} {
		if b.val == "" {
			continue
		}
		if err := stream.ParseID(b.val); err != nil {
			return fault.Invalidf(b.name, "%q %v", b.val, err)
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
	Stream  string        `json:"stream" jsonschema_description:"Redis key of the stream read."`
	Entries []StreamEntry `json:"entries" jsonschema_description:"Matching entries, in the order asked."`
	Next    string        `json:"next,omitempty" jsonschema_description:"Present when more entries may match: pass it as start (or as end when reverse) to continue."`
	Scanned int           `json:"scanned" jsonschema_description:"How many entries were examined."`
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

func readStream(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[ReadStreamInput, ReadStreamResult]{
		Name:  "read_stream",
		Title: "Read a stream",
		Description: "Read entries of one of the server's streams (audit_log_stream, ccwj_update_stream, user_feedback, workflow_events) by id range, " +
			"oldest first or newest first, optionally only those with a given workflow_id, session_id or user_id. " +
			"Returns at most count entries (and at most 16 MiB of them) and, when more may match, a next cursor. A filtered read examines at most 10000 entries per call.",
		Hints: mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Record: func(in *ReadStreamInput, out *ReadStreamResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "start", in.Start, "end", in.End, "count", in.Count, "reverse", in.Reverse,
				"workflow_id", string(in.WorkflowID), "session_id", string(in.SessionID), "user_id", string(in.UserID))
			if in.Count == 0 {
				delete(inputs, "count")
			}
			if !in.Reverse {
				delete(inputs, "reverse")
			}
			if out == nil {
				return inputs, nil
			}
			o := fields("entries", len(out.Entries), "scanned", out.Scanned, "next", out.Next)
			if n := len(out.Entries); n > 0 {
				o["first_id"], o["last_id"] = out.Entries[0].ID, out.Entries[n-1].ID
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *ReadStreamInput) (*ReadStreamResult, error) {
			q := stream.Query{Stream: in.Stream, Start: in.Start, End: in.End, Count: in.Count, Reverse: in.Reverse, MaxScan: maxScan,
				MaxBytes: maxPageBytes, MaxEntryBytes: d.MaxEntryBytes}
			if q.Start == "" {
				q.Start = "-"
			}
			if q.End == "" {
				q.End = "+"
			}
			if q.Count == 0 {
				q.Count = 50
			}
			match := map[string]string{}
			for k, v := range map[string]mcpkit.Name{"workflow_id": in.WorkflowID, "session_id": in.SessionID, "user_id": in.UserID} {
				if v != "" {
					match[k] = string(v)
				}
			}
			q.Match = match
			page, err := d.Streams.Read(ctx, q)
			if err != nil {
				return nil, err
			}
			out := &ReadStreamResult{Stream: page.Key, Entries: make([]StreamEntry, len(page.Entries)), Next: page.Next, Scanned: page.Scanned}
			for i, e := range page.Entries {
				out.Entries[i] = StreamEntry{ID: e.ID, Fields: stream.Decode(e.Values, records[in.Stream])}
			}
			return out, nil
		},
	})
}

package resources

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// Streams is what the resources read of the streams.
type Streams interface {
	Read(ctx context.Context, q stream.Query) (stream.Page, error)
	Context(ctx context.Context, workflowID string) (stream.WorkflowContext, error)
}

// Locks is what the resources read of the locks: never a token.
type Locks interface {
	Peek(ctx context.Context, resource string) (lock.State, error)
}

// Bounds of one read.
const (
	// Newest is how many entries a stream's resource and a workflow's
	// events hold: the newest ones.
	Newest = 20
	// maxScan bounds the entries of each stream a workflow's events
	// examine for its workflow_id.
	maxScan = 2000
	// maxReadBytes bounds the entries one read holds (names and values).
	maxReadBytes = 4 << 20
)

// Reader reads the resources.
type Reader struct {
	Streams Streams
	Locks   Locks
	Keys    keyspace.Keyspace
	// Records gives each stream's record type, so entries decode as
	// read_stream decodes them.
	Records map[string]reflect.Type
	// MaxEntryBytes is limits.max_entry_bytes (it sizes reads).
	MaxEntryBytes int
	// Timeout bounds one read (redis.timeout).
	Timeout time.Duration
	Log     *slog.Logger
}

// StreamEntry is one entry, decoded as read_stream decodes it.
type StreamEntry struct {
	Stream string         `json:"stream,omitempty"`
	ID     string         `json:"id"`
	Fields map[string]any `json:"fields"`
}

// StreamView is mcp-redis://streams/{stream}.
type StreamView struct {
	URI     string        `json:"uri"`
	Stream  string        `json:"stream"`
	Key     string        `json:"key"`
	Entries []StreamEntry `json:"entries"` // newest first, at most Newest
	Limit   int           `json:"limit"`
}

// EntryView is mcp-redis://streams/{stream}/{entry_id}.
type EntryView struct {
	URI    string      `json:"uri"`
	Stream string      `json:"stream"`
	Key    string      `json:"key"`
	Entry  StreamEntry `json:"entry"`
}

// ContextView is mcp-redis://workflows/{workflow_id}/context, as get_context
// answers.
type ContextView struct {
	URI         string                                `json:"uri"`
	WorkflowID  string                                `json:"workflow_id"`
	Context     map[string]map[string]json.RawMessage `json:"context"`
	LastDeltaID string                                `json:"last_delta_id,omitempty"`
	UpdatedAt   string                                `json:"updated_at,omitempty"`
}

// EventsView is mcp-redis://workflows/{workflow_id}/events: the newest
// entries of every stream whose workflow_id is the workflow's.
type EventsView struct {
	URI        string        `json:"uri"`
	WorkflowID string        `json:"workflow_id"`
	Entries    []StreamEntry `json:"entries"` // newest first, at most Newest
	Limit      int           `json:"limit"`
	// More: older entries of the workflow may exist, beyond Limit or
	// beyond the entries examined (Scanned; at most 2000 per stream).
	More    bool `json:"more"`
	Scanned int  `json:"scanned"`
}

// LockView is mcp-redis://locks/{resource}. It never holds the token.
type LockView struct {
	URI      string `json:"uri"`
	Resource string `json:"resource"`
	Key      string `json:"key"`
	Held     bool   `json:"held"`
	Owner    string `json:"owner,omitempty"`
	// FencingToken is the holder's; LastFencingToken, when free, the last
	// grant's (absent when never granted).
	FencingToken     int64 `json:"fencing_token,omitempty"`
	LastFencingToken int64 `json:"last_fencing_token,omitempty"`
	// TTLMs is the holder's remaining ttl; -1 when its key has no expiry
	// (set outside this server).
	TTLMs     *int64 `json:"ttl_ms,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// Read answers the resource ref names; uri is the URI as asked, echoed.
func (r *Reader) Read(ctx context.Context, ref Ref, uri string) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	switch ref.Kind {
	case Stream:
		page, err := r.Streams.Read(ctx, stream.Query{Stream: ref.Stream, Start: "-", End: "+", Count: Newest, Reverse: true,
			MaxBytes: maxReadBytes, MaxEntryBytes: r.MaxEntryBytes})
		if err != nil {
			return nil, err
		}
		return StreamView{URI: uri, Stream: ref.Stream, Key: page.Key, Entries: r.entries(ref.Stream, page.Entries, false), Limit: Newest}, nil
	case Entry:
		page, err := r.Streams.Read(ctx, stream.Query{Stream: ref.Stream, Start: ref.EntryID, End: ref.EntryID, Count: 1})
		if err != nil {
			return nil, err
		}
		if len(page.Entries) == 0 {
			return nil, &fault.Error{Code: fault.NotFound, Field: "entry_id",
				Message: strconv.Quote(ref.EntryID) + " is not in " + page.Key + " (never written, or trimmed by its retention)"}
		}
		return EntryView{URI: uri, Stream: ref.Stream, Key: page.Key, Entry: r.entries(ref.Stream, page.Entries, false)[0]}, nil
	case Context:
		wc, err := r.Streams.Context(ctx, ref.WorkflowID)
		if err != nil {
			return nil, err
		}
		v := ContextView{URI: uri, WorkflowID: ref.WorkflowID, Context: wc.Phases, LastDeltaID: wc.LastDeltaID, UpdatedAt: wc.UpdatedAt}
		if v.Context == nil {
			v.Context = map[string]map[string]json.RawMessage{}
		}
		return v, nil
	case Workflow:
		return r.events(ctx, ref, uri)
	case Lock:
		s, err := r.Locks.Peek(ctx, ref.Resource)
		if err != nil {
			return nil, err
		}
		v := LockView{URI: uri, Resource: ref.Resource, Key: s.Key, Held: s.Held}
		if !s.Held {
			v.LastFencingToken = s.Fence
			return v, nil
		}
		v.Owner, v.FencingToken = s.Owner, s.Fence
		ttl := s.TTL.Milliseconds()
		if s.TTL < 0 {
			ttl = -1
		} else {
			v.ExpiresAt = stream.Timestamp(s.ExpiresAt)
		}
		v.TTLMs = &ttl
		return v, nil
	}
	return nil, &fault.Error{Code: fault.Internal, Message: "read: unknown kind of resource"}
}

// events reads, from every stream, the newest entries of the workflow and
// keeps the newest Newest of them all.
func (r *Reader) events(ctx context.Context, ref Ref, uri string) (EventsView, error) {
	v := EventsView{URI: uri, WorkflowID: ref.WorkflowID, Limit: Newest, Entries: []StreamEntry{}}
	for _, name := range keyspace.Streams {
		page, err := r.Streams.Read(ctx, stream.Query{Stream: name, Start: "-", End: "+", Count: Newest, Reverse: true,
			Match: map[string]string{"workflow_id": ref.WorkflowID}, MaxScan: maxScan,
			MaxBytes: maxReadBytes / len(keyspace.Streams), MaxEntryBytes: r.MaxEntryBytes})
		if err != nil {
			return EventsView{}, err
		}
		v.Scanned += page.Scanned
		v.More = v.More || page.Next != ""
		v.Entries = append(v.Entries, r.entries(name, page.Entries, true)...)
	}
	slices.SortStableFunc(v.Entries, func(a, b StreamEntry) int { return compareIDs(b.ID, a.ID) })
	if len(v.Entries) > Newest {
		v.Entries, v.More = v.Entries[:Newest], true
	}
	return v, nil
}

func (r *Reader) entries(name string, es []stream.Entry, tagged bool) []StreamEntry {
	out := make([]StreamEntry, len(es))
	for i, e := range es {
		rt := r.Records[name]
		if rt == nil {
			rt = reflect.TypeFor[struct{}]() // every field as the string Redis holds
		}
		out[i] = StreamEntry{ID: e.ID, Fields: stream.Decode(e.Values, rt)}
		if tagged {
			out[i].Stream = name
		}
	}
	return out
}

// compareIDs orders two stream ids (ms-seq) as Redis does.
func compareIDs(a, b string) int {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	x, _ := strconv.ParseUint(am, 10, 64)
	y, _ := strconv.ParseUint(bm, 10, 64)
	if c := cmp.Compare(x, y); c != 0 {
		return c
	}
	x, _ = strconv.ParseUint(as, 10, 64)
	y, _ = strconv.ParseUint(bs, 10, 64)
	return cmp.Compare(x, y)
}

// Package tools holds the server's MCP tools, one file each: input and
// output structs (the schemas), description, annotations and a thin
// handler over narrow interfaces to the Redis layer.
package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// Streams is what the stream tools need of the Redis layer.
type Streams interface {
	Append(ctx context.Context, a stream.Append) (stream.Appended, error)
	Read(ctx context.Context, q stream.Query) (stream.Page, error)
	Context(ctx context.Context, workflowID string) (stream.WorkflowContext, error)
}

// Locks is what the lock tools need of the Redis layer.
type Locks interface {
	Acquire(ctx context.Context, resource string, ttl, wait time.Duration, owner string) (lock.Grant, error)
	ReleaseHeld(ctx context.Context, resource, token string) (lock.Holder, bool, error)
	ExtendHeld(ctx context.Context, resource, token string, ttl time.Duration) (lock.Holder, bool, time.Time, error)
}

// Limiter is what check_rate needs of the Redis layer.
type Limiter interface {
	Allow(ctx context.Context, subject string, p ratelimit.Policy, cost int) (ratelimit.Decision, error)
}

// Deps are what the tools are built from.
type Deps struct {
	Streams Streams
	// Audit verifies the hash chains (verify_audit).
	Audit   AuditVerifier
	Locks   Locks
	Limiter Limiter
	// LockMaxTTL and LockMaxWait bound ttl_ms and wait_ms.
	LockMaxTTL, LockMaxWait time.Duration
	// Policies are the rate-limit policies by name.
	Policies map[string]ratelimit.Policy
	// MaxEntryBytes bounds one serialised stream entry.
	MaxEntryBytes int
	// MaxClockSkew bounds how far ahead of the server's clock a caller's
	// timestamp may be (audit.max_clock_skew); 24h when zero.
	MaxClockSkew time.Duration
	// WaitReplicas is redis.wait_replicas: how many replicas confirm each
	// write before it is answered (0: none, replication is asynchronous).
	WaitReplicas int
	// RecordArguments is what a call record keeps of the arguments
	// (audit.record_arguments): "identifying" (the default) or "all".
	RecordArguments string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (d *Deps) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Timestamp formats t as the server writes timestamps: RFC 3339, UTC,
// millisecond precision.
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// NewID mints an entry id: a UUIDv7, so ids sort by creation time.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

// Origins of an entry: written by a tool call, or the server's own record
// of one. No caller can write origin server.
const (
	OriginClient = "client"
	OriginServer = "server"
)

// Stamp is what the server writes on every entry of the four streams, from
// what the transport and the clock say, never from the arguments: none of
// these names is in an input schema, and an argument of one is refused.
type Stamp struct {
	Caller       string `json:"caller,omitempty"`
	MCPSessionID string `json:"mcp_session_id,omitempty"`
	Client       string `json:"client,omitempty"`
	RecordedAt   string `json:"recorded_at,omitempty"`
	Origin       string `json:"origin,omitempty"`
}

// StampedFields are the names of Stamp's fields.
var StampedFields = []string{"caller", "mcp_session_id", "client", "recorded_at", "origin"}

// defaultClockSkew is audit.max_clock_skew's default.
const defaultClockSkew = 24 * time.Hour

// entry is one write to a stream, before the server fills its id and time.
type entry struct {
	stream string
	// record is a pointer to the record struct; id and ts point at its
	// log_id/event_id and timestamp fields, stamp at its Stamp.
	record any
	id, ts *string
	stamp  *Stamp
	// announce names the fields the pub/sub notice carries.
	announce []string
	cell     func() *stream.Cell
}

// written is the outcome shared by every write tool.
type written struct {
	Key, EntryID, ID, Timestamp string
	Duplicate                   bool
}

// write fills the id and timestamp the caller left out, puts a caller's
// timestamp in the server's form, stamps the entry, checks its size, and
// appends it. A stamp with no origin is a client's entry: it takes the
// call's provenance. The fingerprint leaves the timestamp and the stamp
// out, so a retry is the same payload whatever it says of the time (none,
// the server's, another) and over whichever session it comes; without a
// caller-supplied id there is nothing to retry and no fingerprint.
func (d *Deps) write(ctx context.Context, e entry) (written, error) {
	now := d.now()
	if err := d.normalise(e.ts, now); err != nil {
		return written{}, err
	}
	idem := *e.id
	if idem == "" {
		*e.id = NewID()
	}
	if e.stamp.Origin == "" {
		p := mcpkit.ProvenanceFrom(ctx)
		e.stamp.Caller, e.stamp.MCPSessionID, e.stamp.Client, e.stamp.Origin = p.Caller, p.SessionID, p.Client, OriginClient
	}
	e.stamp.RecordedAt = Timestamp(now)
	fields, err := stream.Encode(e.record)
	if err != nil {
		return written{}, fault.Invalidf("arguments", "%v", err)
	}
	if err := checkSize(fields, d.MaxEntryBytes); err != nil {
		return written{}, err
	}
	a := stream.Append{Stream: e.stream, Fields: fields, IdemID: idem, Notice: pick(fields, e.announce)}
	if idem != "" {
		a.Fingerprint = fingerprint(fields)
	}
	if e.cell != nil {
		a.Context = e.cell()
	}
	res, err := d.Streams.Append(ctx, a)
	if err != nil {
		return written{}, err
	}
	w := written{Key: res.Key, EntryID: res.ID, ID: *e.id, Timestamp: *e.ts, Duplicate: res.Duplicate}
	if res.Duplicate && res.Timestamp != "" {
		w.Timestamp = res.Timestamp
	}
	return w, nil
}

// normalise fills an absent timestamp with now, and puts a caller's in the
// server's form (RFC 3339, UTC, milliseconds), refusing one further ahead
// of now than the clock skew allows.
func (d *Deps) normalise(ts *string, now time.Time) error {
	if *ts == "" {
		*ts = Timestamp(now)
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *ts)
	if err != nil {
		return fault.Invalidf("timestamp", "%q is not an RFC 3339 timestamp (e.g. 2026-01-02T15:04:05.000Z)", *ts)
	}
	skew := d.MaxClockSkew
	if skew <= 0 {
		skew = defaultClockSkew
	}
	if ahead := t.Sub(now); ahead > skew {
		return fault.Invalidf("timestamp", "%s is %s ahead of the server's clock (%s), more than audit.max_clock_skew (%s) allows; give the time it happened, or leave timestamp out for the server's",
			*ts, ahead.Round(time.Second), Timestamp(now), skew)
	}
	*ts = Timestamp(t)
	return nil
}

// checkSize rejects an entry whose serialised fields exceed limit bytes,
// naming the largest field. The stamp is the server's, not the caller's,
// and bounded (a few hundred bytes): it is not counted, so what a caller
// may write does not depend on the name of its token or client.
func checkSize(fields []stream.Field, limit int) error {
	total, largest, largestLen := 0, "", -1
	for _, f := range fields {
		if slices.Contains(StampedFields, f.Name) {
			continue
		}
		n := len(f.Name) + len(f.Value)
		total += n
		if len(f.Value) > largestLen {
			largest, largestLen = f.Name, len(f.Value)
		}
	}
	if total > limit {
		return fault.Invalidf(largest, "the entry is %d bytes serialised, over the limit of %d (limits.max_entry_bytes); %s is the largest field at %d bytes", total, limit, largest, largestLen)
	}
	return nil
}

// fingerprint identifies an entry's payload: every field but the
// timestamp, which a retry may leave out, send back as the server filled
// it, or take anew, and but the stamp, which says how the payload came
// (a retry after a lost answer may come over a new session).
func fingerprint(fields []stream.Field) string {
	h := sha256.New()
	for _, f := range fields {
		if f.Name == "timestamp" || slices.Contains(StampedFields, f.Name) {
			continue
		}
		h.Write([]byte(f.Name))
		h.Write([]byte{0})
		h.Write([]byte(f.Value))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// pick returns the fields named, in the order named, when present.
func pick(fields []stream.Field, names []string) []stream.Field {
	out := make([]stream.Field, 0, len(names))
	for _, n := range names {
		for _, f := range fields {
			if f.Name == n {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

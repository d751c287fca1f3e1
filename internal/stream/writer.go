package stream

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// Timestamp formats t as the server writes times: RFC 3339, UTC,
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

// noticeFields are the fields each stream's pub/sub notice carries, when
// present, besides the stream and the entry id.
var noticeFields = map[string][]string{
	keyspace.AuditLog:      {"log_id", "module", "procedure", "status", "workflow_id", "session_id"},
	keyspace.CCWJUpdate:    {"event_id", "workflow_id", "phase_id", "field"},
	keyspace.UserFeedback:  {"event_id", "workflow_id", "phase_id", "session_id", "user_id", "module", "procedure"},
	keyspace.WorkflowEvent: {"event_id", "workflow_id", "phase", "event_type"},
}

// NoticeFields are the fields the pub/sub notice of stream carries.
func NoticeFields(stream string) []string { return noticeFields[stream] }

// DefaultClockSkew is audit.max_clock_skew's default.
const DefaultClockSkew = 24 * time.Hour

// Record is one entry to write, before the server fills its id and time.
type Record struct {
	Stream string // keyspace.AuditLog, …
	// Value is a pointer to the record struct (see Encode); ID and
	// Timestamp point at its log_id/event_id and timestamp fields, Stamp
	// at its Stamp, filled but for RecordedAt.
	Value         any
	ID, Timestamp *string
	Stamp         *Stamp
	// Cell, for CCWJ deltas, is the context cell the entry sets; it is
	// called once the record is complete.
	Cell func() *Cell
}

// Appender appends entries: a *Store.
type Appender interface {
	Append(ctx context.Context, a Append) (Appended, error)
}

// Writer turns records into appends: the write pipeline every stream tool
// shares.
type Writer struct {
	Appender Appender
	// MaxEntryBytes bounds one entry's serialised fields, the stamp left
	// out (limits.max_entry_bytes).
	MaxEntryBytes int
	// MaxClockSkew bounds how far ahead of the server's clock a caller's
	// timestamp may be; DefaultClockSkew when zero.
	MaxClockSkew time.Duration
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Written is what a write did.
type Written struct {
	Key, EntryID, ID, Timestamp string
	Duplicate                   bool
}

// Write fills the id and timestamp the caller left out, puts a caller's
// timestamp in the server's form, stamps the time, checks the entry's size
// and appends it, announcing the stream's notice fields. The fingerprint
// leaves the timestamp and the stamp out, so a retry is the same payload
// whatever it says of the time (none, the server's, another) and over
// whichever session it comes; without a caller-supplied id there is
// nothing to retry and no fingerprint.
func (w Writer) Write(ctx context.Context, r Record) (Written, error) {
	a, done, err := w.prepare(r)
	if err != nil {
		return Written{}, err
	}
	// Appended on the caller's goroutine: on a stream that is not chained
	// Enqueue would start one to wait on.
	return done(w.Appender.Append(ctx, a))
}

// Enqueuer is an Appender that can take an append without waiting for it:
// Enqueue hands it on in the order of the calls (on a chained stream, to
// its queue) and tells then of the outcome.
type Enqueuer interface {
	Enqueue(ctx context.Context, a Append, then func(Appended, error))
}

// Enqueue is Write that does not wait: the record is checked, filled and
// handed to the Appender before it returns (in the order of the calls,
// when the Appender is an Enqueuer), and then is told of the outcome, on
// whichever goroutine has it (so it must not block). Written this way,
// records sent one after another go to Redis together.
func (w Writer) Enqueue(ctx context.Context, r Record, then func(Written, error)) {
	a, done, err := w.prepare(r)
	if err != nil {
		then(Written{}, err)
		return
	}
	if e, ok := w.Appender.(Enqueuer); ok {
		e.Enqueue(ctx, a, func(out Appended, err error) { then(done(out, err)) })
		return
	}
	go func() { then(done(w.Appender.Append(ctx, a))) }()
}

// BatchAppender appends a batch of entries of one stream in one step: a
// *Store.
type BatchAppender interface {
	AppendBatch(ctx context.Context, stream string, as []Append) ([]Appended, error)
}

// WriteBatch is Write for records of one stream, appended together in one
// step (Store.AppendBatch): each is checked, filled, stamped and bounded
// as Write does it, an error naming the record's field as entries[i].field,
// and the batch is appended only when every record passes.
func (w Writer) WriteBatch(ctx context.Context, stream string, rs []Record) ([]Written, error) {
	b, ok := w.Appender.(BatchAppender)
	if !ok {
		return nil, &fault.Error{Code: fault.Internal, Message: "append a batch: the stream store takes no batches"}
	}
	as := make([]Append, len(rs))
	dones := make([]func(Appended, error) (Written, error), len(rs))
	var errs []error
	for i, r := range rs {
		if r.Stream != stream {
			return nil, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append a batch to %s: record %d is for %s", stream, i, r.Stream)}
		}
		a, done, err := w.prepare(r)
		if err != nil {
			if errs = append(errs, InEntry(i, err)); len(errs) == maxErrors {
				break
			}
			continue
		}
		as[i], dones[i] = a, done
	}
	if len(errs) > 0 {
		return nil, JoinInvalid(errs)
	}
	res, err := b.AppendBatch(ctx, stream, as)
	if err != nil {
		return nil, err
	}
	out := make([]Written, len(rs))
	for i := range res {
		out[i], _ = dones[i](res[i], nil)
	}
	return out, nil
}

// maxErrors bounds how many entries one batch's argument error names.
const maxErrors = 8

// prepare checks and fills r and encodes it as the append to make, and
// returns what turns the append's outcome into the write's.
func (w Writer) prepare(r Record) (Append, func(Appended, error) (Written, error), error) {
	now := time.Now()
	if w.Now != nil {
		now = w.Now()
	}
	stamp := Timestamp(now)
	if err := w.normalise(r.Timestamp, now, stamp); err != nil {
		return Append{}, nil, err
	}
	idem := *r.ID
	if idem == "" {
		*r.ID = NewID()
	}
	r.Stamp.RecordedAt = stamp
	fields, err := Encode(r.Value)
	if err != nil {
		return Append{}, nil, fault.Invalidf("arguments", "%v", err)
	}
	if err := checkSize(fields, w.MaxEntryBytes); err != nil {
		return Append{}, nil, err
	}
	a := Append{Stream: r.Stream, Fields: fields, IdemID: idem, Notice: pick(fields, noticeFields[r.Stream])}
	if idem != "" {
		a.Fingerprint = fingerprint(fields)
	}
	if r.Cell != nil {
		a.Context = r.Cell()
	}
	id, ts := *r.ID, *r.Timestamp
	return a, func(res Appended, err error) (Written, error) {
		if err != nil {
			return Written{}, err
		}
		out := Written{Key: res.Key, EntryID: res.ID, ID: id, Timestamp: ts, Duplicate: res.Duplicate}
		if res.Duplicate && res.Timestamp != "" {
			out.Timestamp = res.Timestamp
		}
		return out, nil
	}, nil
}

// normalise fills an absent timestamp with stamp (now in the server's
// form), and puts a caller's in that form (RFC 3339, UTC, milliseconds),
// refusing one further ahead of now than the clock skew allows.
func (w Writer) normalise(ts *string, now time.Time, stamp string) error {
	if *ts == "" {
		*ts = stamp
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, *ts)
	if err != nil {
		return fault.Invalidf("timestamp", "%q is not an RFC 3339 timestamp (e.g. 2026-01-02T15:04:05.000Z)", *ts)
	}
	skew := w.MaxClockSkew
	if skew <= 0 {
		skew = DefaultClockSkew
	}
	if ahead := t.Sub(now); ahead > skew {
		return fault.Invalidf("timestamp", "%s is %s ahead of the server's clock (%s), more than audit.max_clock_skew (%s) allows; give the time it happened, or leave timestamp out for the server's",
			*ts, ahead.Round(time.Second), stamp, skew)
	}
	*ts = Timestamp(t)
	return nil
}

// checkSize rejects an entry whose serialised fields exceed limit bytes,
// naming the largest field. The stamp is the server's, not the caller's,
// and bounded (a few hundred bytes): it is not counted, so what a caller
// may write does not depend on the name of its token or client.
func checkSize(fields []Field, limit int) error {
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
func fingerprint(fields []Field) string {
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
func pick(fields []Field, names []string) []Field {
	out := make([]Field, 0, len(names))
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

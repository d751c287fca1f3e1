// Package tools holds the server's MCP tools, one file each: input and
// output structs (the schemas), description, annotations and a thin
// handler over narrow interfaces to the Redis layer.
package tools

import (
	"context"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/groups"
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

// Groups is what claim_events, ack_events and stream_info need of the
// Redis layer.
type Groups interface {
	Claim(ctx context.Context, c groups.Claim) (groups.Claimed, error)
	Ack(ctx context.Context, stream, group string, ids []string) (groups.Acked, error)
	Info(ctx context.Context, stream string) (groups.Info, error)
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
	// Groups runs the consumer groups (claim_events, ack_events,
	// stream_info); ReclaimIdle is claim_events' default reclaim_idle_ms
	// (groups.reclaim_idle), MaxDeliveries groups.max_deliveries, both
	// for the descriptions.
	Groups        Groups
	ReclaimIdle   time.Duration
	MaxDeliveries int
	// LockMaxTTL and LockMaxWait bound ttl_ms and wait_ms.
	LockMaxTTL, LockMaxWait time.Duration
	// MaxBlock bounds read_stream's block_ms (streams.max_block); 0: no
	// read waits.
	MaxBlock time.Duration
	// Policies are the rate-limit policies by name.
	Policies map[string]ratelimit.Policy
	// IdempotencyTTL is idempotency.ttl, for the descriptions; 24h when
	// zero.
	IdempotencyTTL time.Duration
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
	// Dashboard answers show_dashboard: the overview of streams, groups,
	// locks, rates and the server's health.
	Dashboard Dashboard
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Dashboard is what show_dashboard needs: the live overview
// (internal/dashboard).
type Dashboard interface {
	Overview(ctx context.Context) (*Overview, error)
}

// Stamp, and what it names, are the stream package's.
type Stamp = stream.Stamp

// StampedFields are the names of Stamp's fields.
var StampedFields = stream.StampedFields

// Origins of an entry (stream.OriginClient, stream.OriginServer).
const (
	OriginClient = stream.OriginClient
	OriginServer = stream.OriginServer
)

// Timestamp formats t as the server writes every time: RFC 3339, UTC,
// millisecond precision.
func Timestamp(t time.Time) string { return stream.Timestamp(t) }

// write appends r through the stream write pipeline (stream.Writer). A
// stamp with no origin is a client's entry: it takes the call's
// provenance, which only the transport knows.
func (d *Deps) write(ctx context.Context, r stream.Record) (stream.Written, error) {
	return d.writer(ctx, &r).Write(ctx, r)
}

// writeBatch appends rs, records of stream, in one step
// (stream.Writer.WriteBatch), each stamped as write stamps it.
func (d *Deps) writeBatch(ctx context.Context, name string, rs []stream.Record) ([]stream.Written, error) {
	w := stream.Writer{Appender: d.Streams, MaxEntryBytes: d.MaxEntryBytes, MaxClockSkew: d.MaxClockSkew, Now: d.Now}
	for i := range rs {
		w = d.writer(ctx, &rs[i])
	}
	return w.WriteBatch(ctx, name, rs)
}

// enqueue is write that does not wait for Redis (stream.Writer.Enqueue):
// the record is handed on before it returns, and then is told of the
// outcome; it must not block.
func (d *Deps) enqueue(ctx context.Context, r stream.Record, then func(stream.Written, error)) {
	d.writer(ctx, &r).Enqueue(ctx, r, then)
}

// writer stamps r with the call's provenance, unless it is stamped, and
// returns the writer of the tools' records.
func (d *Deps) writer(ctx context.Context, r *stream.Record) stream.Writer {
	if r.Stamp.Origin == "" {
		p := mcpkit.ProvenanceFrom(ctx)
		r.Stamp.Caller, r.Stamp.MCPSessionID, r.Stamp.Client, r.Stamp.Origin = p.Caller, p.SessionID, p.Client, OriginClient
	}
	return stream.Writer{Appender: d.Streams, MaxEntryBytes: d.MaxEntryBytes, MaxClockSkew: d.MaxClockSkew, Now: d.Now}
}

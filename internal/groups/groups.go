// Package groups hands the entries of the server's streams to worker agents
// through Redis consumer groups: a claim reclaims what another consumer
// left idle, moves what was delivered too often to the stream's dead
// letters, reads new entries and, when asked, waits for them; an ack
// settles entries; Info describes a stream and its groups.
//
// Delivery is at least once: an entry stays pending with the consumer it
// was handed to until that consumer acknowledges it, and is handed to
// another (or the same) consumer once it has been pending longer than the
// claim's reclaim idle. The delivery limit is checked on reclaim, where
// Redis counts deliveries (XPENDING); a new entry is on its first.
package groups

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

var (
	//go:embed claim.lua
	claimSrc string
	//go:embed ack.lua
	ackSrc string
	//go:embed lag.lua
	lagSrc string

	claimScript = redis.NewScript(rdb.ScriptPrelude + claimSrc)
	ackScript   = redis.NewScript(rdb.ScriptPrelude + ackSrc)
	lagScript   = redis.NewScript(lagSrc)
)

// Bounds of one call.
const (
	// MaxCount bounds the entries one claim hands out.
	MaxCount = 100
	// MaxIDs bounds the ids one ack takes.
	MaxIDs = 100
	// MaxGroups and MaxConsumers bound what Info lists.
	MaxGroups    = 100
	MaxConsumers = 100
	// LagLimit bounds the entries Info counts for a lag Redis cannot tell.
	LagLimit = 10000
)

// waitSlice bounds one blocking read of a wait. A cancelled call returns at
// once; the read it leaves behind only reads, and ends within waitSlice.
const waitSlice = time.Second

// Groups runs consumer groups on the streams of one keyspace.
type Groups struct {
	// w runs the scripts (rdb.Conn.Writer: with redis.wait_replicas a
	// Durable, so WAIT follows each); r reads, without WAIT.
	w, r          redis.UniversalClient
	keys          keyspace.Keyspace
	maxDeliveries int
	maxLen        func(stream string) int64
	sharded       bool
	// waits holds a token for each blocking read in flight: they take at
	// most that many of the pool's connections, so a crowd of waiting
	// workers never starves the other calls.
	waits chan struct{}
	now   func() time.Time
}

// Option configures Groups.
type Option func(*Groups)

// WithShardedPubSub announces dead letters with SPUBLISH. Their channel is
// in the stream's slot (keyspace.DeadLetterEvents), so the script that
// moves an entry announces it in either mode.
func WithShardedPubSub() Option { return func(g *Groups) { g.sharded = true } }

// WithWaits sets how many blocking reads may be in flight at once; half
// the client's pool by default. A claim that finds them all taken waits
// for one (entries that come meanwhile are still there for it).
func WithWaits(n int) Option { return func(g *Groups) { g.waits = make(chan struct{}, max(n, 1)) } }

// WithClock sets the clock of dead_lettered_at; time.Now by default.
func WithClock(now func() time.Time) Option { return func(g *Groups) { g.now = now } }

// New returns Groups over c (the client writes go through: rdb.Conn.Writer).
// maxDeliveries is groups.max_deliveries; maxLen gives the MAXLEN ~ of each
// stream's dead letters (its own retention).
func New(c redis.UniversalClient, keys keyspace.Keyspace, maxDeliveries int, maxLen func(stream string) int64, opts ...Option) *Groups {
	g := &Groups{w: c, r: c, keys: keys, maxDeliveries: maxDeliveries, maxLen: maxLen, now: time.Now}
	if d, ok := c.(*rdb.Durable); ok {
		g.r = d.UniversalClient
	}
	for _, o := range opts {
		o(g)
	}
	if g.waits == nil {
		g.waits = make(chan struct{}, max(poolSize(g.r)/2, 1))
	}
	return g
}

// poolSize is the client's connection pool size (per node on Cluster).
func poolSize(c redis.UniversalClient) int {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().PoolSize
	case *redis.ClusterClient:
		return c.Options().PoolSize
	}
	return 10 * runtime.GOMAXPROCS(0)
}

// Claim asks for entries for one consumer of a group.
type Claim struct {
	Stream   string // keyspace.AuditLog, …
	Group    string
	Consumer string
	// Count is the most entries to hand out, 1 to MaxCount.
	Count int
	// ReclaimIdle: an entry pending that long with any consumer is
	// reclaimed for this one.
	ReclaimIdle time.Duration
	// From is where a group this claim makes starts: "$" (entries added
	// from now on) or "0" (every entry the stream holds).
	From string
	// Block, when above 0, waits up to that long for a new entry when
	// none was handed out at once.
	Block time.Duration
}

// Entry is one entry handed out.
type Entry struct {
	ID     string
	Values map[string]string
	// Deliveries counts the times the entry was handed out, this one
	// included.
	Deliveries int64
	// From is the consumer it was pending with, for a reclaimed entry;
	// "" for a new one.
	From string
}

// DeadLetter is an entry a claim moved to the dead letters.
type DeadLetter struct {
	// ID is the entry's id in its stream.
	ID string
	// DeadLetterID is its id in the dead letters; "" when the entry had
	// been trimmed from the stream, so there was nothing to move and it was
	// only acknowledged.
	DeadLetterID string
	// Deliveries is how often it was handed out.
	Deliveries int64
	// Consumer is the last one it was handed to.
	Consumer string
}

// Claimed is the outcome of a Claim.
type Claimed struct {
	Key           string // the stream's key
	DeadLetterKey string
	// Created: this claim made the group.
	Created     bool
	Entries     []Entry
	DeadLetters []DeadLetter
	// Waited is how long the claim waited for new entries.
	Waited time.Duration
}

// Claim hands up to c.Count entries to c.Consumer: first those pending
// longer than c.ReclaimIdle with any consumer (oldest id first), then new
// ones; with c.Block it waits for a new entry when there was none. An idle
// entry already handed out maxDeliveries times is moved to the dead
// letters instead, acknowledged and announced, in the same script.
//
// The wait is a blocking XREAD, which only reads: a call cancelled while
// waiting leaves nothing claimed behind. When it sees an entry, the claim
// runs again (another consumer may have taken it first).
func (g *Groups) Claim(ctx context.Context, c Claim) (Claimed, error) {
	if !slices.Contains(keyspace.Streams, c.Stream) {
		return Claimed{}, fault.Invalidf("stream", "%q is not one of %s", c.Stream, strings.Join(keyspace.Streams, ", "))
	}
	start := time.Now()
	out, newest, err := g.claim(ctx, c)
	if err != nil || len(out.Entries) > 0 || c.Block <= 0 {
		return out, err
	}
	deadline := start.Add(c.Block)
	for {
		seen, err := g.wait(ctx, out.Key, newest, deadline)
		if err != nil || !seen {
			out.Waited = time.Since(start)
			return out, err
		}
		next, n, err := g.claim(ctx, c)
		if err != nil {
			return Claimed{}, err
		}
		out.Entries, out.DeadLetters, newest = next.Entries, append(out.DeadLetters, next.DeadLetters...), n
		if len(out.Entries) > 0 {
			out.Waited = time.Since(start)
			return out, nil
		}
	}
}

// claim runs claim.lua once; it also returns the stream's newest id.
func (g *Groups) claim(ctx context.Context, c Claim) (Claimed, string, error) {
	key, dead := g.keys.Stream(c.Stream), g.keys.DeadLetter(c.Stream)
	publish := "publish"
	if g.sharded {
		publish = "spublish"
	}
	res, err := claimScript.Run(ctx, g.w, []string{key, dead},
		c.Group, c.Consumer, c.Count, max(c.ReclaimIdle.Milliseconds(), 0), c.From, g.maxDeliveries, g.maxLen(c.Stream),
		g.keys.DeadLetterEvents(c.Stream), publish, c.Stream, stream.Timestamp(g.now())).Slice()
	if err != nil {
		return Claimed{}, "", rdb.WrapNotDurable("claim from "+key, err,
			"What this call claimed stays pending with the consumer and is handed out again once it has been idle for the reclaim time; call claim_events again.")
	}
	bad := func() (Claimed, string, error) {
		return Claimed{}, "", &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("claim from %s: unexpected reply %v", key, res)}
	}
	if len(res) != 4 {
		return bad()
	}
	created, _ := res[0].(int64)
	entries, ok1 := res[1].([]any)
	moved, ok2 := res[2].([]any)
	newest, ok3 := res[3].(string)
	if !ok1 || !ok2 || !ok3 {
		return bad()
	}
	out := Claimed{Key: key, DeadLetterKey: dead, Created: created == 1, Entries: make([]Entry, 0, len(entries))}
	for _, e := range entries {
		t, _ := e.([]any)
		if len(t) != 4 {
			return bad()
		}
		id, _ := t[0].(string)
		flat, _ := t[1].([]any)
		n, _ := t[2].(int64)
		from, _ := t[3].(string)
		values := make(map[string]string, len(flat)/2)
		for i := 0; i+1 < len(flat); i += 2 {
			k, _ := flat[i].(string)
			v, _ := flat[i+1].(string)
			values[k] = v
		}
		out.Entries = append(out.Entries, Entry{ID: id, Values: values, Deliveries: n, From: from})
	}
	for _, d := range moved {
		t, _ := d.([]any)
		if len(t) != 4 {
			return bad()
		}
		var dl DeadLetter
		dl.ID, _ = t[0].(string)
		dl.DeadLetterID, _ = t[1].(string)
		dl.Deliveries, _ = t[2].(int64)
		dl.Consumer, _ = t[3].(string)
		out.DeadLetters = append(out.DeadLetters, dl)
	}
	return out, newest, nil
}

// wait reports whether an entry after id "after" came to key before
// deadline, blocking on XREAD in slices of at most waitSlice. A cancelled
// call is an error; a call out of time saw nothing.
func (g *Groups) wait(ctx context.Context, key, after string, deadline time.Time) (bool, error) {
	type read struct {
		streams []redis.XStream
		err     error
	}
	gone := func() (bool, error) {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, nil
		}
		return false, rdb.Wrap("wait for entries of "+key, ctx.Err())
	}
	for {
		left := time.Until(deadline)
		if left < time.Millisecond {
			return false, nil
		}
		timer := time.NewTimer(left)
		select {
		case g.waits <- struct{}{}:
			timer.Stop()
		case <-timer.C:
			return false, nil
		case <-ctx.Done():
			timer.Stop()
			return gone()
		}
		block := min(time.Until(deadline), waitSlice)
		if block < time.Millisecond {
			<-g.waits
			return false, nil
		}
		done := make(chan read, 1)
		go func() {
			defer func() { <-g.waits }()
			s, err := g.r.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: 1, Block: block}).Result()
			done <- read{s, err}
		}()
		select {
		case r := <-done:
			switch {
			case errors.Is(r.err, redis.Nil):
			case r.err != nil && ctx.Err() != nil:
				return gone()
			case r.err != nil:
				return false, rdb.Wrap("wait for entries of "+key, r.err)
			case len(r.streams) > 0 && len(r.streams[0].Messages) > 0:
				return true, nil
			}
		case <-ctx.Done():
			return gone()
		}
	}
}

// Acked is the outcome of an Ack.
type Acked struct {
	Key string
	// Acked were pending in the group and are now settled; NotPending were
	// not (never handed out, already acknowledged, or moved to the dead
	// letters), in the order given.
	Acked, NotPending []string
}

// Ack acknowledges ids (at most MaxIDs, each a full ms-seq id) in group.
// A group that does not exist is a fault.NotFound naming the group.
func (g *Groups) Ack(ctx context.Context, streamName, group string, ids []string) (Acked, error) {
	key := g.keys.Stream(streamName)
	if !slices.Contains(keyspace.Streams, streamName) {
		return Acked{}, fault.Invalidf("stream", "%q is not one of %s", streamName, strings.Join(keyspace.Streams, ", "))
	}
	if len(ids) == 0 || len(ids) > MaxIDs {
		return Acked{}, fault.Invalidf("ids", "%d ids; from 1 to %d allowed", len(ids), MaxIDs)
	}
	var unique []string
	for _, id := range ids {
		if !slices.Contains(unique, id) {
			unique = append(unique, id)
		}
	}
	args := make([]any, 0, 1+len(unique))
	args = append(args, group)
	for _, id := range unique {
		args = append(args, id)
	}
	res, err := ackScript.Run(ctx, g.w, []string{key}, args...).Slice()
	if err != nil {
		if noGroup(err) {
			return Acked{}, &fault.Error{Code: fault.NotFound, Field: "group",
				Message: fmt.Sprintf("%s has no consumer group %q; claim_events makes a group when it first claims for it", key, group)}
		}
		return Acked{}, rdb.WrapNotDurable("acknowledge in "+key, err,
			"The entries are acknowledged on the master; should a failover lose that, they are handed out again. Calling ack_events again is safe.")
	}
	if len(res) != len(unique) {
		return Acked{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("acknowledge in %s: unexpected reply %v", key, res)}
	}
	out := Acked{Key: key, Acked: []string{}, NotPending: []string{}}
	for i, r := range res {
		if r == int64(1) {
			out.Acked = append(out.Acked, unique[i])
		} else {
			out.NotPending = append(out.NotPending, unique[i])
		}
	}
	return out, nil
}

// noGroup reports Redis' NOGROUP error.
func noGroup(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "NOGROUP")
}

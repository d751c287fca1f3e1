// Package stream appends entries to the server's Redis streams, at most once
// per caller-supplied id, announces them on pub/sub, keeps the materialised
// workflow context, and reads entries back.
package stream

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

//go:embed append.lua
var appendSrc string

var appendScript = redis.NewScript(rdb.ScriptPrelude + entriesSrc + appendSrc)

// entriesSrc is what append.lua and append_batch.lua share: the type and
// hash checks, the chain head, an entry's timestamp.
//
//go:embed entries.lua
var entriesSrc string

// Client is the part of go-redis the store uses.
type Client interface {
	redis.Scripter
	Pipeline() redis.Pipeliner
	Get(ctx context.Context, key string) *redis.StringCmd
	XRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	XRevRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	HGetAll(ctx context.Context, key string) *redis.MapStringStringCmd
}

// Store reads and writes the streams under one keyspace.
type Store struct {
	rdb     Client
	keys    keyspace.Keyspace
	maxLen  func(stream string) int64
	idemTTL time.Duration
	// chains holds the chained streams by name; fixed by NewStore.
	chains map[string]*chainer
	onLink func(Link)
	// sharded: notices go out with SPUBLISH on ShardedEvents channels.
	sharded bool
	waiting waitSlots // reads waiting now (wait.go)
	// pipelineOnly sends every turn of a chained stream as a pipeline of
	// append.lua calls, never as one append_batch.lua call (coalesce.go):
	// BenchmarkAppendConcurrently sets it to time the two side by side.
	pipelineOnly bool
	// linger: see the constant; a test sets it longer.
	linger time.Duration
}

// WithShardedPubSub sends each notice with SPUBLISH on the stream's
// sharded channel (keyspace.ShardedEvents) instead of PUBLISH.
func WithShardedPubSub() Option { return func(s *Store) { s.sharded = true } }

// Option configures a Store.
type Option func(*Store)

// WithChain hash-chains the entries of the streams named (see package
// audit): each gets prev_hash and hash as its last two fields, linked to
// its predecessor in the same script that appends it. onLink, when not nil,
// is told of every entry linked; it runs on the appending goroutine and
// must not block.
func WithChain(streams []string, onLink func(Link)) Option {
	return func(s *Store) {
		for _, name := range streams {
			s.chains[name] = &chainer{s: s, stream: name, key: s.keys.Stream(name), headKey: s.keys.ChainHead(name)}
		}
		s.onLink = onLink
	}
}

// Link is one entry linked into a chain.
type Link struct {
	Stream, Key, ID, Hash string
	// Length is the chain's length with this entry, counted from its
	// genesis (trimming does not shorten it).
	Length int64
}

// NewStore returns a Store. maxLen gives each stream's MAXLEN ~ retention.
func NewStore(c Client, keys keyspace.Keyspace, maxLen func(stream string) int64, idemTTL time.Duration, opts ...Option) *Store {
	s := &Store{rdb: c, keys: keys, maxLen: maxLen, idemTTL: idemTTL, chains: map[string]*chainer{}, linger: linger}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Chained reports whether stream is hash-chained.
func (s *Store) Chained(stream string) bool { return s.chains[stream] != nil }

// Append is one entry to write.
type Append struct {
	Stream string // keyspace.AuditLog, …
	Fields []Field
	// IdemID is the caller-supplied log_id/event_id; "" when the server
	// minted the id, so no retry can repeat it and no record is kept.
	IdemID string
	// Fingerprint identifies the caller's payload, so a reused id with a
	// different payload is told apart from a retry.
	Fingerprint string
	// Notice lists the key fields announced on pub/sub besides the stream
	// and entry id, as name/value pairs.
	Notice []Field
	// Context, for CCWJ deltas, is the context cell this entry sets.
	Context *Cell
}

// Cell is one value of a workflow's context.
type Cell struct {
	WorkflowID, PhaseID, Field string
	Value                      json.RawMessage
	UpdatedAt                  string
}

// Appended is the outcome of an Append.
type Appended struct {
	Key       string // the stream's Redis key
	ID        string // the entry id; the first entry's id for a duplicate
	Duplicate bool
	// Timestamp is the first entry's timestamp field, for a duplicate.
	Timestamp string
	// Hash is the entry's chain hash, for a new entry of a chained stream.
	Hash string
}

// script is one run of append.lua; the chain fills args[chainArg] and
// args[chainArg+1] (ARGV[10], ARGV[11]) for each attempt.
type script struct {
	stream, key string
	keys        []string
	args        []any
	idemID      string
}

const chainArg = 9

// Append writes one entry atomically: the idempotency check, the chain
// link, XADD … MAXLEN ~, the context update and the PUBLISH are one
// script. A repeated IdemID with the same fingerprint returns the first
// entry's id and writes nothing; with another fingerprint it is a
// fault.Conflict.
func (s *Store) Append(ctx context.Context, a Append) (Appended, error) {
	sc, err := s.script(a)
	if err != nil {
		return Appended{}, err
	}
	if c := s.chains[a.Stream]; c != nil {
		return c.append(ctx, sc, a.Fields)
	}
	res, err := appendScript.Run(ctx, s.rdb, sc.keys, sc.args...).Slice()
	return sc.outcome(res, err)
}

// Enqueue is Append that does not wait (stream.Enqueuer): on a chained
// stream the entry joins the chain's queue before Enqueue returns, so
// entries enqueued one after another are linked in that order and sent
// together (chainer.enqueue, after linger); on another stream the append
// runs in the background. then is told of the outcome, on the goroutine
// that sent the entry: it must not block.
func (s *Store) Enqueue(ctx context.Context, a Append, then func(Appended, error)) {
	sc, err := s.script(a)
	if err != nil {
		then(Appended{}, err)
		return
	}
	if c := s.chains[a.Stream]; c != nil {
		c.enqueue(ctx, sc, a.Fields, then)
		return
	}
	go func() {
		res, err := appendScript.Run(ctx, s.rdb, sc.keys, sc.args...).Slice()
		then(sc.outcome(res, err))
	}()
}

func (s *Store) script(a Append) (*script, error) {
	key := s.keys.Stream(a.Stream)
	sc := &script{stream: a.Stream, key: key, keys: []string{key}, idemID: a.IdemID}
	args := make([]any, 0, 15+2*len(a.Fields))
	args = append(args, s.maxLen(a.Stream))
	if a.IdemID != "" {
		sc.keys = append(sc.keys, s.keys.Idempotency(a.Stream, a.IdemID))
		args = append(args, max(s.idemTTL.Milliseconds(), 1))
	} else {
		args = append(args, 0)
	}
	head, tail := notice(a.Stream, key, a.Notice)
	channel, publish := s.keys.Events(a.Stream), "publish"
	if s.sharded {
		channel, publish = s.keys.ShardedEvents(a.Stream), "spublish"
	}
	args = append(args, a.Fingerprint, channel, head, tail)
	if c := a.Context; c != nil {
		var v bytes.Buffer
		if err := json.Compact(&v, c.Value); err != nil {
			return nil, fault.Invalidf("value", "not valid JSON: %v", err)
		}
		sc.keys = append(sc.keys, s.keys.Context(c.WorkflowID))
		args = append(args, CellField(c.PhaseID, c.Field), v.String(), c.UpdatedAt)
	} else {
		args = append(args, "", "", "")
	}
	args = append(args, "", "", publish) // ARGV[10], ARGV[11]: the chain; ARGV[12]
	// Pointers into a.Fields, which go-redis writes as the strings they
	// point at: a string put in an interface is copied to the heap, two
	// allocations per field for every append.
	for i := range a.Fields {
		args = append(args, &a.Fields[i].Name, &a.Fields[i].Value)
	}
	if s.chains[a.Stream] != nil {
		for _, f := range a.Fields {
			if f.Name == audit.PrevHashField || f.Name == audit.HashField {
				return nil, fault.Invalidf(f.Name, "is written by the server's hash chain, never by a caller")
			}
		}
		sc.keys = append(sc.keys, s.keys.ChainHead(a.Stream))
		args = append(args, audit.PrevHashField, "", audit.HashField, "")
	}
	sc.args = args
	return sc, nil
}

// outcome reads the script's reply {id, state, text}.
func (sc *script) outcome(res []any, err error) (Appended, error) {
	if err != nil {
		return Appended{}, rdb.Wrap("append to "+sc.key, err)
	}
	if len(res) != 3 {
		return Appended{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append to %s: unexpected reply %v", sc.key, res)}
	}
	id, _ := res[0].(string)
	state, _ := res[1].(int64)
	text, _ := res[2].(string)
	out := Appended{Key: sc.key, ID: id, Duplicate: state == 1 || state == 2}
	switch state {
	case 0:
	case 1:
		out.Timestamp = text
	case 2:
		out.Timestamp = text
		return out, &fault.Error{Code: fault.Conflict, Field: idField(sc.stream),
			Message: fmt.Sprintf("%q was already used for a different entry (%s) within the idempotency window; use a new id for a new entry", sc.idemID, id)}
	default:
		return Appended{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append to %s: unexpected state %d", sc.key, state)}
	}
	return out, nil
}

func idField(stream string) string {
	if stream == keyspace.AuditLog {
		return "log_id"
	}
	return "event_id"
}

// notice splits the pub/sub notice around the entry id, which only the
// script knows: {"stream":…,"key":…,"id":"<id>",<key fields>}.
func notice(stream, key string, fields []Field) (head, tail string) {
	var b strings.Builder
	b.WriteString(`{"stream":`)
	writeJSONString(&b, stream)
	b.WriteString(`,"key":`)
	writeJSONString(&b, key)
	b.WriteString(`,"id":"`)
	head = b.String()
	b.Reset()
	b.WriteString(`"`)
	for _, f := range fields {
		b.WriteByte(',')
		writeJSONString(&b, f.Name)
		b.WriteByte(':')
		writeJSONString(&b, f.Value)
	}
	b.WriteString("}")
	return head, b.String()
}

// writeJSONString writes s as json.Marshal would. Most names and values
// are plain ASCII that needs no escape: those are written as they are,
// without json.Marshal's allocation (an audit_log notice quotes a dozen).
func writeJSONString(b *strings.Builder, s string) {
	if plainJSON(s) {
		b.Grow(len(s) + 2)
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	q, _ := json.Marshal(s)
	b.Write(q)
}

// plainJSON reports whether json.Marshal writes s between quotes as it
// is: printable ASCII but for the quote, the backslash, and <, >, & (which
// it escapes for HTML).
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// CellField is the context hash field of one phase's field: the JSON array
// ["phase_id","field"], which no bookkeeping field (last_delta_id,
// updated_at) can equal.
func CellField(phaseID, field string) string {
	b, _ := json.Marshal([]string{phaseID, field})
	return string(b)
}

// Entry is one stream entry as Redis holds it.
type Entry struct {
	ID     string
	Values map[string]string
}

// Query selects entries of one stream.
type Query struct {
	Stream     string
	Start, End string // ids, "-"/"+", "(" prefix for exclusive; Start may be StartNow
	Count      int
	Reverse    bool
	// Block, for a forward read, is how long to wait for a matching entry
	// when the range holds none (wait.go).
	Block time.Duration
	// Match keeps entries whose fields equal these values.
	Match map[string]string
	// MaxScan bounds how many entries one query examines when filtering.
	MaxScan int
	// MaxBytes, when set, bounds the memory of a page: it ends (with Next)
	// once its entries hold that many bytes of names and values, and no
	// XRANGE asks for more entries than MaxBytes / MaxEntryBytes (the
	// largest an entry can be). At least one entry is read each time.
	MaxBytes, MaxEntryBytes int
}

// Page is the result of a Query.
type Page struct {
	Key     string
	Entries []Entry
	// Next, when not empty, is where the range resumes: pass it as Start
	// (forward) or End (reverse) to continue.
	Next    string
	Scanned int
	// TimedOut: the read waited its whole Block and no entry matched.
	TimedOut bool
	// Waited is how long a waiting read took.
	Waited time.Duration
	last   string // the last entry examined
}

// Read returns up to q.Count entries of q.Stream in [Start, End] that match
// every q.Match pair, examining at most q.MaxScan entries; with StartNow or
// a Block, see readWaiting.
func (s *Store) Read(ctx context.Context, q Query) (Page, error) {
	if q.Start == StartNow || q.Block > 0 {
		return s.readWaiting(ctx, q)
	}
	return s.scan(ctx, q)
}

func (s *Store) scan(ctx context.Context, q Query) (Page, error) {
	key := s.keys.Stream(q.Stream)
	page := Page{Key: key}
	// Complete ids as Redis does, so the embedded backend (which takes an
	// end of "0" for 0-0) reads the same entries.
	start, end := completeID(q.Start, "0"), completeID(q.End, "18446744073709551615")
	batch := int64(q.Count)
	if len(q.Match) > 0 {
		batch = int64(min(max(q.Count*4, 100), 1000))
	}
	if q.MaxBytes > 0 && q.MaxEntryBytes > 0 {
		batch = min(batch, int64(max(q.MaxBytes/q.MaxEntryBytes, 1)))
	}
	size := 0
	for {
		if emptyInterval(start, end) {
			return page, nil
		}
		var cmd *redis.XMessageSliceCmd
		if q.Reverse {
			cmd = s.rdb.XRevRangeN(ctx, key, end, start, batch)
		} else {
			cmd = s.rdb.XRangeN(ctx, key, start, end, batch)
		}
		msgs, err := cmd.Result()
		if err != nil {
			return Page{}, rdb.Wrap("read "+key, err)
		}
		for i, m := range msgs {
			page.Scanned++
			page.last = m.ID
			e := Entry{ID: m.ID, Values: make(map[string]string, len(m.Values))}
			for k, v := range m.Values {
				e.Values[k] = fmt.Sprint(v)
			}
			if matches(e.Values, q.Match) {
				page.Entries = append(page.Entries, e)
				for k, v := range e.Values {
					size += len(k) + len(v)
				}
			}
			full := len(page.Entries) == q.Count || (q.MaxBytes > 0 && size >= q.MaxBytes)
			more := i < len(msgs)-1 || int64(len(msgs)) == batch
			if full || (q.MaxScan > 0 && page.Scanned >= q.MaxScan) {
				if more {
					page.Next = "(" + m.ID
				}
				return page, nil
			}
		}
		if int64(len(msgs)) < batch {
			return page, nil
		}
		last := "(" + msgs[len(msgs)-1].ID
		if q.Reverse {
			end = last
		} else {
			start = last
		}
	}
}

func matches(values, match map[string]string) bool {
	for k, want := range match {
		if values[k] != want {
			return false
		}
	}
	return true
}

// WorkflowContext is the materialised context of one workflow.
type WorkflowContext struct {
	// Phases maps phase_id → field → the latest value.
	Phases      map[string]map[string]json.RawMessage
	LastDeltaID string
	UpdatedAt   string
}

// Context returns the context of workflowID; Phases is empty when no delta
// was ever applied.
func (s *Store) Context(ctx context.Context, workflowID string) (WorkflowContext, error) {
	key := s.keys.Context(workflowID)
	h, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return WorkflowContext{}, rdb.Wrap("read "+key, err)
	}
	wc := WorkflowContext{Phases: map[string]map[string]json.RawMessage{}}
	for k, v := range h {
		switch k {
		case "last_delta_id":
			wc.LastDeltaID = v
			continue
		case "updated_at":
			wc.UpdatedAt = v
			continue
		}
		var cell []string
		if json.Unmarshal([]byte(k), &cell) != nil || len(cell) != 2 || !json.Valid([]byte(v)) {
			continue // not a cell this server wrote
		}
		if wc.Phases[cell[0]] == nil {
			wc.Phases[cell[0]] = map[string]json.RawMessage{}
		}
		wc.Phases[cell[0]][cell[1]] = json.RawMessage(v)
	}
	return wc, nil
}

// ParseID checks a stream id bound as read_stream takes it: "-", "+", "ms"
// or "ms-seq" with an optional "(" prefix for an exclusive bound.
func ParseID(s string) error {
	if s == "-" || s == "+" {
		return nil
	}
	s = strings.TrimPrefix(s, "(")
	ms, seq, hasSeq := strings.Cut(s, "-")
	if _, err := strconv.ParseUint(ms, 10, 64); err != nil || ms == "" || ms[0] == '+' {
		return fmt.Errorf("is not a stream id (ms or ms-seq, e.g. 1700000000000-0, or - / +)")
	}
	if hasSeq {
		if _, err := strconv.ParseUint(seq, 10, 64); err != nil || seq == "" || seq[0] == '+' {
			return fmt.Errorf("is not a stream id (ms or ms-seq, e.g. 1700000000000-0, or - / +)")
		}
	}
	return nil
}

// completeID completes bound, an id without a sequence number, with seq:
// Redis completes a start with 0 and an end with the largest sequence
// number, exclusive or not.
func completeID(bound, seq string) string {
	if bound == "-" || bound == "+" || strings.Contains(bound, "-") {
		return bound
	}
	return bound + "-" + seq
}

// emptyInterval reports whether the interval from start to end (complete
// bounds ParseID accepts) holds no entry because an exclusive bound has
// nothing beyond it: "(" of the largest id as the start, or of 0-0 as the
// end. Redis refuses those two ("invalid start ID for the interval") where
// it answers every other empty interval with no entries, as a read must.
func emptyInterval(start, end string) bool {
	return exclusiveID(start, ^uint64(0)) || exclusiveID(end, 0)
}

// exclusiveID reports whether bound is "(" and the id n-n.
func exclusiveID(bound string, n uint64) bool {
	id, ok := strings.CutPrefix(bound, "(")
	if !ok {
		return false
	}
	ms, seq, _ := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	s, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil && m == n && s == n
}

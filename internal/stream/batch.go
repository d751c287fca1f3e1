package stream

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

//go:embed append_batch.lua
var appendBatchSrc string

var appendBatchScript = redis.NewScript(rdb.ScriptPrelude + entriesSrc + appendBatchSrc)

// The bounds of one batch: how many entries, and how many bytes of field
// names and values all of them hold (the stamps counted). One script call
// carries the whole batch, and Redis runs nothing else while it runs: the
// bounds keep that call to milliseconds and its arguments well within what
// Redis takes in one request.
const (
	MaxBatchEntries = 500
	MaxBatchBytes   = 16 << 20
)

// EntryField names field of entry i of a batch, as a batch's errors do:
// entries[3].status; entries[3] when field is "".
func EntryField(i int, field string) string {
	if field == "" || field == "arguments" {
		return "entries[" + strconv.Itoa(i) + "]"
	}
	return "entries[" + strconv.Itoa(i) + "]." + field
}

// InEntry is err, an error about entry i of a batch, with the field it
// names put as EntryField does.
func InEntry(i int, err error) error {
	e, ok := fault.As(err)
	if !ok {
		return err
	}
	c := *e
	c.Field = EntryField(i, e.Field)
	return &c
}

// JoinInvalid is one argument error saying what each of errs says.
func JoinInvalid(errs []error) error {
	if len(errs) == 1 {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &fault.Error{Code: fault.Invalid, Message: strings.Join(msgs, "; ")}
}

// batch is one AppendBatch: its entries, each the arguments of its part of
// append_batch.lua, and the outcomes.
type batch struct {
	s           *Store
	stream, key string
	as          []Append
	// first[i] is the index of the entry whose id entry i repeats, or i.
	first []int
	// entries are the distinct entries, in order: those sent.
	entries []*batchEntry
	size    int
}

type batchEntry struct {
	i      int
	keys   []string
	head   []any // expect, fingerprint, notice tail, context field, value, updated_at
	fields []any
	prefix []byte // the canonical encoding up to prev_hash (chained)
	// dup: the entry is expected to be a duplicate (chained); hash is its
	// link when it is not.
	dup  bool
	hash string
}

// AppendBatch writes as, entries of stream, in one script call: every
// entry's idempotency check, the chain links, the XADDs, the context
// updates and the notices (one per entry appended) are one atomic step,
// which writes all of it or, on any error, nothing. An entry whose
// IdemID was written before with the same fingerprint is a duplicate, as
// with Append, and so is one repeating the IdemID and payload of an
// earlier entry of the batch (it gets that entry's id); an IdemID written
// before, or earlier in the batch, with another payload fails the whole
// batch with a fault.Conflict naming the entry (entries[i].log_id).
//
// On a chained stream the batch takes its turn among the process's single
// appends (one flusher per stream), and its new entries are linked in
// order from the head. When Redis finds duplicates the links did not
// expect, or another writer moved the head, the script writes nothing
// and the batch is linked again and resent.
func (s *Store) AppendBatch(ctx context.Context, stream string, as []Append) ([]Appended, error) {
	b, err := s.batch(stream, as)
	if err != nil {
		return nil, err
	}
	if c := s.chains[stream]; c != nil {
		return c.appendBatch(ctx, b)
	}
	keys, args := b.call("")
	res, err := appendBatchScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, rdb.Wrap("append a batch to "+b.key, err)
	}
	r, err := b.reply(res)
	if err != nil {
		return nil, err
	}
	if r.state != 0 {
		return nil, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append a batch to %s: unexpected state %d", b.key, r.state)}
	}
	return b.outcomes(r), nil
}

func (s *Store) batch(stream string, as []Append) (*batch, error) {
	if len(as) == 0 || len(as) > MaxBatchEntries {
		return nil, fault.Invalidf("entries", "has %d entries; a batch holds 1 to %d", len(as), MaxBatchEntries)
	}
	key := s.keys.Stream(stream)
	b := &batch{s: s, stream: stream, key: key, as: as, first: make([]int, len(as))}
	chained := s.chains[stream] != nil
	seen := map[string]int{}
	for i, a := range as {
		if a.Stream != stream {
			return nil, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append a batch to %s: entry %d is for %s", key, i, a.Stream)}
		}
		for _, f := range a.Fields {
			b.size += len(f.Name) + len(f.Value)
		}
		b.first[i] = i
		if a.IdemID != "" {
			if j, ok := seen[a.IdemID]; ok {
				if as[j].Fingerprint != a.Fingerprint {
					return nil, &fault.Error{Code: fault.Conflict, Field: EntryField(i, idField(stream)),
						Message: fmt.Sprintf("%q is the id of entries[%d] too, with a different payload; use a new id for a new entry", a.IdemID, j)}
				}
				b.first[i] = j
				continue
			}
			seen[a.IdemID] = i
		}
		e := &batchEntry{i: i, keys: make([]string, 0, 2), head: make([]any, 0, 6)}
		if a.IdemID != "" {
			e.keys = append(e.keys, s.keys.Idempotency(stream, a.IdemID))
			e.head = append(e.head, "new", a.Fingerprint)
		} else {
			e.head = append(e.head, "-", "")
		}
		_, tail := notice(stream, key, a.Notice)
		e.head = append(e.head, tail)
		if c := a.Context; c != nil {
			var v bytes.Buffer
			if err := json.Compact(&v, c.Value); err != nil {
				return nil, fault.Invalidf(EntryField(i, "value"), "not valid JSON: %v", err)
			}
			e.keys = append(e.keys, s.keys.Context(c.WorkflowID))
			e.head = append(e.head, CellField(c.PhaseID, c.Field), v.String(), c.UpdatedAt)
		} else {
			e.head = append(e.head, "", "", "")
		}
		e.fields = make([]any, 0, 2*len(a.Fields))
		for _, f := range a.Fields {
			if chained && (f.Name == audit.PrevHashField || f.Name == audit.HashField) {
				return nil, fault.Invalidf(EntryField(i, f.Name), "is written by the server's hash chain, never by a caller")
			}
			e.fields = append(e.fields, f.Name, f.Value)
		}
		if chained {
			pairs := make([]audit.Pair, len(a.Fields))
			for k, f := range a.Fields {
				pairs[k] = audit.Pair(f)
			}
			e.prefix = audit.Canonical(key, pairs)
		}
		b.entries = append(b.entries, e)
	}
	if b.size > MaxBatchBytes {
		return nil, fault.Invalidf("entries", "the batch is %d bytes serialised, over the limit of %d; send it as smaller batches", b.size, MaxBatchBytes)
	}
	return b, nil
}

// call is the keys and arguments of append_batch.lua; on a chained stream
// the entries not expected to be duplicates are linked in order from prev.
func (b *batch) call(prev string) ([]string, []any) {
	s := b.s
	chained := prev != ""
	keys := make([]string, 0, 2+2*len(b.entries))
	keys = append(keys, b.key)
	if chained {
		keys = append(keys, s.keys.ChainHead(b.stream))
	}
	head, _ := notice(b.stream, b.key, nil)
	channel, publish := s.keys.Events(b.stream), "publish"
	if s.sharded {
		channel, publish = s.keys.ShardedEvents(b.stream), "spublish"
	}
	n := 7
	for _, e := range b.entries {
		n += 7 + len(e.fields) + 4
	}
	args := make([]any, 0, n)
	args = append(args, s.maxLen(b.stream), max(s.idemTTL.Milliseconds(), 1), channel, publish, head, prev, len(b.entries))
	p := prev
	for _, e := range b.entries {
		keys = append(keys, e.keys...)
		linked := chained && !e.dup
		expect := e.head[0]
		if chained && e.dup {
			expect = "dup"
		}
		args = append(args, expect)
		args = append(args, e.head[1:]...)
		k := len(e.fields)
		if linked {
			k += 4
		}
		args = append(args, k)
		args = append(args, e.fields...)
		if linked {
			e.hash = link(e.prefix, p)
			args = append(args, audit.PrevHashField, p, audit.HashField, e.hash)
			p = e.hash
		}
	}
	return keys, args
}

// batchReply is append_batch.lua's reply.
type batchReply struct {
	state   int64
	head    string
	length  int64 // of the chain before the batch
	entries []batchState
}

type batchState struct {
	state     int64
	id, stamp string
}

func (b *batch) reply(res []any) (batchReply, error) {
	bad := &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append a batch to %s: unexpected reply of %d values", b.key, len(res))}
	if len(res) != 3+3*len(b.entries) {
		return batchReply{}, bad
	}
	var r batchReply
	r.state, _ = res[0].(int64)
	r.head, _ = res[1].(string)
	l, _ := res[2].(string)
	r.length, _ = strconv.ParseInt(l, 10, 64)
	r.entries = make([]batchState, len(b.entries))
	for k := range b.entries {
		st, ok := res[3+3*k].(int64)
		id, _ := res[4+3*k].(string)
		ts, _ := res[5+3*k].(string)
		if !ok {
			return batchReply{}, bad
		}
		r.entries[k] = batchState{st, id, ts}
	}
	if r.state == 2 {
		for k, e := range r.entries {
			if e.state == 2 {
				a := b.as[b.entries[k].i]
				return batchReply{}, &fault.Error{Code: fault.Conflict, Field: EntryField(b.entries[k].i, idField(b.stream)),
					Message: fmt.Sprintf("%q was already used for a different entry (%s) within the idempotency window; use a new id for a new entry; nothing of the batch was written", a.IdemID, e.id)}
			}
		}
		return batchReply{}, bad
	}
	return r, nil
}

// outcomes are the Appended of every entry given, in order, from the
// reply of a batch written.
func (b *batch) outcomes(r batchReply) []Appended {
	out := make([]Appended, len(b.as))
	for k, e := range b.entries {
		st := r.entries[k]
		o := Appended{Key: b.key, ID: st.id, Duplicate: st.state == 1}
		if o.Duplicate {
			o.Timestamp = st.stamp
		} else {
			o.Hash = e.hash
		}
		out[e.i] = o
	}
	for i, j := range b.first {
		if j == i {
			continue
		}
		o := out[j]
		o.Duplicate, o.Hash = true, ""
		if !out[j].Duplicate {
			o.Timestamp = fieldValue(b.as[j].Fields, "timestamp")
		}
		out[i] = o
	}
	return out
}

func fieldValue(fields []Field, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// appendBatch queues b behind the single appends already queued, and
// waits for its outcome; see append.
func (c *chainer) appendBatch(ctx context.Context, b *batch) ([]Appended, error) {
	p := &pending{ctx: ctx, batch: b, size: b.size, done: make(chan struct{})}
	c.submit(p)
	select {
	case <-p.done:
		return p.outs, p.err
	case <-ctx.Done():
		return nil, rdb.Wrap("append a batch to "+c.key, ctx.Err())
	}
}

// flushBatch sends p's batch, linked from the head, until it is written,
// fails, or other writers moved the head maxAttempts times.
func (c *chainer) flushBatch(p *pending) {
	b := p.batch
	fail := func(err error) {
		p.err = err
		close(p.done)
	}
	if err := p.ctx.Err(); err != nil {
		fail(rdb.Wrap("append a batch to "+c.key, err))
		return
	}
	ctx, cancel := batchContext([]*pending{p})
	defer cancel()
	for attempt := 1; ; attempt++ {
		if err := c.knowHead(ctx); err != nil {
			fail(err)
			return
		}
		keys, args := b.call(c.head)
		res, err := appendBatchScript.Run(ctx, c.s.rdb, keys, args...).Slice()
		if err != nil {
			// The outcome is unknown (a WAIT that timed out, a lost
			// answer): read the head again.
			c.headKnown = false
			fail(rdb.Wrap("append a batch to "+c.key, err))
			return
		}
		r, err := b.reply(res)
		if err != nil {
			fail(err)
			return
		}
		switch r.state {
		case 0:
			out := b.outcomes(r)
			c.head = r.head
			n := r.length
			for _, e := range b.entries {
				if o := out[e.i]; !o.Duplicate {
					n++
					if c.s.onLink != nil {
						c.s.onLink(Link{Stream: c.stream, Key: c.key, ID: o.ID, Hash: o.Hash, Length: n})
					}
				}
			}
			p.outs = out
			close(p.done)
			return
		case 1:
			c.head = r.head
			for k, e := range b.entries {
				e.dup = r.entries[k].state == 1
			}
			if attempt >= maxAttempts {
				fail(&fault.Error{Code: fault.Unavailable,
					Message: fmt.Sprintf("append a batch to %s: other writers kept moving the chain head (%d attempts); nothing of the batch was written; try again", c.key, attempt)})
				return
			}
		default:
			fail(&fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append a batch to %s: unexpected state %d", c.key, r.state)})
			return
		}
	}
}

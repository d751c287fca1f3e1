package stream

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// A turn of single appends to a chained stream (two or more entries that
// queued together, each with its own id or none) goes to Redis as one
// append_batch.lua call rather than a pipeline of append.lua calls: Redis
// checks the keys' types, the server's rights and the chain head once for
// the turn instead of once per entry, which is most of what a lone
// append.lua costs it. What each caller is answered is what its own
// append.lua would have answered:
//
//   - an entry whose id Redis holds with the same payload is a duplicate
//     (the first entry's id and timestamp), and is not linked;
//   - an id Redis holds with another payload is a conflict for that entry
//     alone: append_batch.lua then writes nothing, and the turn is sent
//     again as a pipeline, one append.lua call each, so the others are
//     written as they would have been;
//   - an error Redis answers for the script (a key of the wrong type, a
//     refused right, a cluster redirection, a script error) means nothing
//     of the turn was written: the turn is sent again as a pipeline, so
//     each entry is answered the error its own script meets;
//   - no answer (a timeout, a lost connection) or a WAIT that confirms too
//     few replicas is every entry's outcome, as in a pipeline.
//
// Two entries of one turn with the same id go as a pipeline (the second is
// a duplicate of the first, or a conflict), as does a turn of one entry.

// Where append.lua's arguments (store.go's script) hold what a batch entry
// needs.
const (
	argMaxLen      = 0
	argFingerprint = 2
	argChannel     = 3
	argNoticeHead  = 4
	argNoticeTail  = 5
	argCell        = 6 // the cell field, its value, updated_at
	argPublish     = 11
	argFields      = 12 // the field/value pairs; on a chained stream the last four are the link
)

// distinctIDs reports whether no two entries of live share an idempotency
// id.
func distinctIDs(live []*pending) bool {
	for i, p := range live {
		if p.sc.idemID == "" {
			continue
		}
		for _, q := range live[i+1:] {
			if q.sc.idemID == p.sc.idemID {
				return false
			}
		}
	}
	return true
}

// flushCoalesced sends live as one append_batch.lua call and returns the
// entries to send again; sent is false when nothing was written and the
// turn is to go as a pipeline instead.
func (c *chainer) flushCoalesced(ctx context.Context, live []*pending) (retry []*pending, sent bool) {
	keys, args, hashes := c.coalescedCall(live, c.head)
	res, err := appendBatchScript.Run(ctx, c.s.rdb, keys, args...).Slice()
	if err != nil {
		var nd *rdb.NotDurable
		var re redis.Error
		if !errors.As(err, &nd) && errors.As(err, &re) {
			return nil, false // Redis ran none of it: each entry meets its own error
		}
		// The outcome is unknown: read the head again.
		c.headKnown = false
		for _, p := range live {
			p.finish(p.sc.outcome(nil, err))
		}
		return nil, true
	}
	bad := func() {
		for _, p := range live {
			p.finish(Appended{}, &fault.Error{Code: fault.Internal, Message: fmt.Sprintf("append to %s: unexpected reply of %d values", c.key, len(res))})
		}
	}
	if len(res) != 3+3*len(live) {
		bad()
		return nil, true
	}
	state, _ := res[0].(int64)
	head, _ := res[1].(string)
	l, _ := res[2].(string)
	length, _ := strconv.ParseInt(l, 10, 64)
	switch state {
	case 0:
		for i, p := range live {
			st, _ := res[3+3*i].(int64)
			id, _ := res[4+3*i].(string)
			out := Appended{Key: c.key, ID: id}
			if st == 1 {
				out.Duplicate = true
				out.Timestamp, _ = res[5+3*i].(string)
			} else {
				length++
				out.Hash = hashes[i]
				if c.s.onLink != nil {
					c.s.onLink(Link{Stream: c.stream, Key: c.key, ID: id, Hash: hashes[i], Length: length})
				}
			}
			p.finish(out, nil)
		}
		c.head = head
		return nil, true
	case 1:
		// Another writer moved the head, or the duplicates are not those
		// expected: nothing was written. Relink onto the head, knowing
		// which are duplicates, and send again in order.
		c.head = head
		for i, p := range live {
			st, _ := res[3+3*i].(int64)
			p.dup = st == 1
			if c.again(p) {
				retry = append(retry, p)
			}
		}
		return retry, true
	case 2:
		c.head = head
		return nil, false // an id used for another payload: that entry's conflict alone
	default:
		bad()
		return nil, true
	}
}

// coalescedCall is the keys and arguments of append_batch.lua for live,
// linked in order from prev, and the hash each entry expected new gets.
func (c *chainer) coalescedCall(live []*pending, prev string) ([]string, []any, []string) {
	first := live[0].sc.args
	keys := make([]string, 0, 2+2*len(live))
	keys = append(keys, c.key, c.headKey)
	n := 7
	for _, p := range live {
		n += 7 + len(p.sc.args) - argFields
	}
	args := make([]any, 0, n)
	args = append(args, first[argMaxLen], max(c.s.idemTTL.Milliseconds(), 1), first[argChannel], first[argPublish],
		first[argNoticeHead], prev, len(live))
	hashes := make([]string, len(live))
	for i, p := range live {
		sc := p.sc
		// sc.keys: the stream, the idempotency record (with an id), the
		// context hash (with a cell), the chain head.
		keys = append(keys, sc.keys[1:len(sc.keys)-1]...)
		expect := "-"
		switch {
		case sc.idemID != "" && p.dup:
			expect = "dup"
		case sc.idemID != "":
			expect = "new"
		}
		fields := sc.args[argFields : len(sc.args)-4]
		k := len(fields)
		if expect != "dup" {
			k += 4
		}
		args = append(args, expect, sc.args[argFingerprint], sc.args[argNoticeTail])
		args = append(args, sc.args[argCell:argCell+3]...)
		args = append(args, k)
		args = append(args, fields...)
		if expect != "dup" {
			hashes[i] = link(p.prefix, prev)
			args = append(args, audit.PrevHashField, prev, audit.HashField, hashes[i])
			prev = hashes[i]
		}
	}
	return keys, args, hashes
}

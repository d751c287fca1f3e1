package stream

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// A chained stream's appends are linked by one flusher per stream and
// process at a time (a caller of append, or a goroutine), which sends them
// in order as one turn: each entry is hashed onto the one before it in the
// turn, so a process's own appends never race each other, and a turn costs
// one round trip. A turn of two or more appends with distinct idempotency
// ids is one append_batch.lua call (coalesce.go), so Redis runs one script
// for it, not one per entry; otherwise the turn is a pipeline of append.lua
// calls. Another process's append in between makes the turn miss the head;
// the script then writes nothing (append.lua: from that entry on) and
// answers the head, and those entries are rehashed onto it and sent again. An
// AppendBatch (batch.go) joins the same queue and is sent alone in its
// turn, as one append_batch.lua call, so it is ordered with the single
// appends of this process, never raced by them.
const (
	// maxBatch and maxBatchBytes bound one pipeline.
	maxBatch      = 128
	maxBatchBytes = 1 << 20
	// maxAttempts bounds how often one entry is rehashed because other
	// writers moved the head first.
	maxAttempts = 64
	// linger is how long an enqueued entry (a call record) waits for
	// others to join its turn before a goroutine sends them: at one call
	// at a time a call takes a few hundred µs, so a turn carries several
	// records as one append_batch.lua call instead of one round trip
	// each. A waited-for append arriving meanwhile sends them at once,
	// with its own entry (submit); so does a full turn.
	linger = time.Millisecond
)

type chainer struct {
	s                    *Store
	stream, key, headKey string

	mu    sync.Mutex
	queue []*pending
	// running: a flusher (a caller of append, or a goroutine) is sending
	// the queue, or timer is about to start one.
	running bool
	// timer, when not nil, starts the goroutine that sends what was
	// enqueued, once linger has passed (enqueue).
	timer *time.Timer

	// head is the last head seen; only the flusher touches it.
	head      string // hash
	headKnown bool
}

type pending struct {
	ctx      context.Context
	sc       *script
	prefix   []byte // the canonical encoding up to the prev_hash pair
	size     int
	attempts int
	// dup: the entry is expected to be a duplicate, as Redis last found
	// it when its turn was sent as one append_batch.lua call (coalesce.go).
	dup bool
	// done closes with the outcome; an entry enqueued with then has no
	// done: then is told of the outcome instead, on the flusher's
	// goroutine.
	done chan struct{}
	then func(Appended, error)
	out  Appended
	err  error
	// batch, when set, is an AppendBatch in the queue: it is sent alone,
	// in its turn, and outs are its outcomes.
	batch *batch
	outs  []Appended
}

// append writes an entry and waits for its outcome. A caller that finds
// no flusher running becomes the flusher itself until its own entry is
// written, then hands what queued meanwhile to a goroutine: a lone writer
// never waits on a goroutine switch (nor pays for a goroutine's start and
// stack), and a caller never flushes others' entries after its own.
func (c *chainer) append(ctx context.Context, sc *script, fields []Field) (Appended, error) {
	p := c.pending(ctx, sc, fields)
	c.submit(p)
	return p.wait(ctx, c.key)
}

// submit queues p and, when no flusher is running, flushes until p has its
// outcome.
func (c *chainer) submit(p *pending) {
	c.mu.Lock()
	c.queue = append(c.queue, p)
	if c.running && !c.claimTimer() {
		c.mu.Unlock()
		return
	}
	c.running = true
	c.mu.Unlock()
	for c.flushNext(p) {
	}
}

// claimTimer stops a lingering turn's timer, so that the caller sends the
// turn itself, and reports whether it did; mu is held.
func (c *chainer) claimTimer() bool {
	if c.timer == nil || !c.timer.Stop() {
		return false
	}
	c.timer = nil
	return true
}

// enqueue puts an entry on the queue, in the order of the calls, and
// returns at once; when no flusher is running, one starts after linger.
// then is told of the entry's outcome on the flusher's goroutine, so it
// must not block.
func (c *chainer) enqueue(ctx context.Context, sc *script, fields []Field, then func(Appended, error)) {
	p := c.pending(ctx, sc, fields)
	p.done, p.then = nil, then
	c.mu.Lock()
	c.queue = append(c.queue, p)
	switch {
	case !c.running:
		c.running = true
		c.timer = time.AfterFunc(c.s.linger, c.fire)
	case len(c.queue) >= maxBatch && c.claimTimer():
		go c.run()
	}
	c.mu.Unlock()
}

// fire starts the turn of what was enqueued once linger has passed.
func (c *chainer) fire() {
	c.mu.Lock()
	c.timer = nil
	c.mu.Unlock()
	c.run()
}

// pending makes the queue entry of an append.
func (c *chainer) pending(ctx context.Context, sc *script, fields []Field) *pending {
	pairs := make([]audit.Pair, len(fields))
	size := 0
	for i, f := range fields {
		pairs[i] = audit.Pair(f)
		size += len(f.Name) + len(f.Value)
	}
	return &pending{ctx: ctx, sc: sc, prefix: audit.Canonical(c.key, pairs), size: size, done: make(chan struct{})}
}

// finished reports whether p has its outcome.
func (p *pending) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits for p's outcome, or for ctx to end.
func (p *pending) wait(ctx context.Context, key string) (Appended, error) {
	select {
	case <-p.done:
		return p.out, p.err
	case <-ctx.Done():
		// The entry may still be written, as with any call whose answer
		// is lost.
		return Appended{}, rdb.Wrap("append to "+key, ctx.Err())
	}
}

// run sends batches until the queue is empty; running is set.
func (c *chainer) run() {
	for c.flushNext(nil) {
	}
}

// flushNext is one turn of the flusher: it sends the next batch and
// reports whether to go on. The flusher stops when the queue is empty;
// with own set (a caller flushing for itself), also once own has its
// outcome, handing a queue that is not empty to a goroutine.
func (c *chainer) flushNext(own *pending) bool {
	c.mu.Lock()
	if own != nil && own.finished() {
		if len(c.queue) > 0 {
			go c.run() // still running: a goroutine takes over
		} else {
			c.running = false
		}
		c.mu.Unlock()
		return false
	}
	if len(c.queue) > 0 && c.queue[0].batch != nil {
		// A batch goes alone, in its turn: entries queued before it
		// were sent first, those after it wait for it.
		p := c.queue[0]
		c.queue = c.queue[1:]
		c.mu.Unlock()
		c.flushBatch(p)
		return true
	}
	n, bytes := 0, 0
	for n < len(c.queue) && n < maxBatch && c.queue[n].batch == nil && (n == 0 || bytes+c.queue[n].size <= maxBatchBytes) {
		bytes += c.queue[n].size
		n++
	}
	if n == 0 {
		c.running = false
		c.mu.Unlock()
		return false
	}
	batch := append([]*pending(nil), c.queue[:n]...)
	c.queue = c.queue[n:]
	c.mu.Unlock()
	if retry := c.flush(batch); len(retry) > 0 {
		c.mu.Lock()
		c.queue = append(retry, c.queue...)
		c.mu.Unlock()
	}
	return true
}

func (p *pending) finish(out Appended, err error) {
	p.out, p.err = out, err
	if p.then != nil {
		p.then(out, err)
		return
	}
	close(p.done)
}

// flush sends one batch and returns the entries to send again.
func (c *chainer) flush(batch []*pending) []*pending {
	live := batch[:0]
	for _, p := range batch {
		if err := p.ctx.Err(); err != nil {
			p.finish(Appended{}, rdb.Wrap("append to "+c.key, err))
			continue
		}
		live = append(live, p)
	}
	if len(live) == 0 {
		return nil
	}
	ctx, cancel := batchContext(live)
	defer cancel()
	if err := c.knowHead(ctx); err != nil {
		for _, p := range live {
			p.finish(Appended{}, err)
		}
		return nil
	}
	if len(live) > 1 && !c.s.pipelineOnly && distinctIDs(live) {
		if retry, sent := c.flushCoalesced(ctx, live); sent {
			return retry
		}
	}
	return c.flushPipeline(ctx, live)
}

// flushPipeline sends live, one append.lua call each, in one pipeline and
// returns the entries to send again.
func (c *chainer) flushPipeline(ctx context.Context, live []*pending) []*pending {
	prev := c.head
	hashes := make([]string, len(live))
	pipe := c.s.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(live))
	for i, p := range live {
		hashes[i] = link(p.prefix, prev)
		n := len(p.sc.args)
		p.sc.args[chainArg], p.sc.args[chainArg+1] = prev, hashes[i]
		p.sc.args[n-3], p.sc.args[n-1] = prev, hashes[i]
		cmds[i] = appendScript.EvalSha(ctx, pipe, p.sc.keys, p.sc.args...)
		prev = hashes[i]
	}
	_, _ = pipe.Exec(ctx)
	var retry []*pending
	loaded := false
	for i, p := range live {
		res, err := cmds[i].Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if !loaded {
				if err := appendScript.Load(ctx, c.s.rdb).Err(); err != nil {
					p.finish(Appended{}, rdb.Wrap("append to "+c.key, err))
					continue
				}
				loaded = true
			}
			retry = append(retry, p)
			continue
		}
		if err != nil {
			// The outcome of what followed is unknown: read the head again.
			c.headKnown = false
			p.finish(p.sc.outcome(nil, err))
			continue
		}
		if len(res) == 3 {
			if state, _ := res[1].(int64); state == 3 {
				head, _ := res[2].(string)
				c.head = head
				if c.again(p) {
					retry = append(retry, p)
				}
				continue
			}
		}
		out, err := p.sc.outcome(res, err)
		if err == nil && !out.Duplicate {
			out.Hash = hashes[i]
			c.head = hashes[i]
			length, _ := strconv.ParseInt(res[2].(string), 10, 64)
			if c.s.onLink != nil {
				c.s.onLink(Link{Stream: c.stream, Key: c.key, ID: out.ID, Hash: hashes[i], Length: length})
			}
		}
		p.finish(out, err)
	}
	return retry
}

// again counts one more attempt of p, which missed the head, and reports
// whether to send it again: past maxAttempts p fails instead.
func (c *chainer) again(p *pending) bool {
	p.attempts++
	if p.attempts >= maxAttempts {
		p.finish(Appended{}, &fault.Error{Code: fault.Unavailable,
			Message: fmt.Sprintf("append to %s: other writers kept moving the chain head (%d attempts); try again", c.key, p.attempts)})
		return false
	}
	return true
}

// knowHead reads the chain head, unless the last one seen is known to be
// current as far as this process goes.
func (c *chainer) knowHead(ctx context.Context) error {
	if c.headKnown {
		return nil
	}
	h, err := c.s.rdb.Get(ctx, c.headKey).Result()
	switch {
	case err == redis.Nil:
		c.head = audit.Genesis
	case err != nil:
		return rdb.Wrap("read the chain head "+c.headKey, err)
	default:
		_, hash, _, ok := audit.ParseHead(h)
		if !ok {
			return &fault.Error{Code: fault.Internal, Message: "the chain head " + c.headKey + " is malformed"}
		}
		c.head = hash
	}
	c.headKnown = true
	return nil
}

// link is the hash of an entry whose canonical encoding up to prev_hash is
// prefix, linked onto prev.
func link(prefix []byte, prev string) string {
	h := sha256.New()
	h.Write(prefix)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(audit.PrevHashField)))
	h.Write(n[:])
	h.Write([]byte(audit.PrevHashField))
	binary.BigEndian.PutUint32(n[:], uint32(len(prev)))
	h.Write(n[:])
	h.Write([]byte(prev))
	return hex.EncodeToString(h.Sum(nil))
}

// batchContext keeps the values of the first call and runs until the
// latest deadline of the calls in the batch, so one caller going away
// does not fail the others.
func batchContext(batch []*pending) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, p := range batch {
		d, ok := p.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.WithoutCancel(p.ctx))
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
}

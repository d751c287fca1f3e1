package stream

// Waiting reads: a Query whose Start is StartNow ("$") or that has a Block.
//
// A read that finds nothing to return waits for new entries with XREAD
// BLOCK, on a connection of its own: a blocked XREAD holds its connection
// for the whole wait, so waits on the shared pool would starve every other
// call (the pool is 10 × GOMAXPROCS connections). Each wait opens one
// connection to the stream's master with the client's own options and
// closes it when the wait ends; at most MaxWaiters waits run at once, so
// waits add at most that many connections to Redis. go-redis cannot
// interrupt a blocked read when a context is cancelled (with or without
// ContextTimeoutEnabled), so a cancelled wait closes the socket under the
// read: the wait ends at once and the connection is gone, not parked in a
// pool.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// StartNow, as a Query's Start, reads only entries added after the read
// began: it is resolved once, to the stream's last id at that moment, so
// nothing added between that and a wait is missed.
const StartNow = "$"

// MaxWaiters bounds the reads of one Store that wait at once; a read that
// would wait beyond it is refused (fault.Unavailable, Field block_ms).
const MaxWaiters = 64

// maxSeq is the largest sequence number of a stream id.
const maxSeq = "18446744073709551615"

// waitMargin is how long before its context's deadline a wait gives up, so
// it answers timed out instead of failing with the deadline.
const waitMargin = 100 * time.Millisecond

// waitSlots counts the waits running.
type waitSlots struct{ n atomic.Int32 }

func (w *waitSlots) take() bool {
	for {
		n := w.n.Load()
		if n >= MaxWaiters {
			return false
		}
		if w.n.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (w *waitSlots) give() { w.n.Add(-1) }

// Waiting reports how many reads of s are waiting now.
func (s *Store) Waiting() int { return int(s.waiting.n.Load()) }

// Bound turns a read bound as read_stream takes it into the bound a Query
// takes: "-", "+", ids and "(" ids as ParseID accepts them, StartNow as a
// start, and an RFC 3339 time, which becomes the first id of its
// millisecond as a start (<ms>-0) and the last as an end
// (<ms>-18446744073709551615). The error reads after the value: "… is not …".
func Bound(s string, end bool) (string, error) {
	if s == StartNow {
		if end {
			return "", errors.New("is a start only: $ reads the entries added after the call began; use + for the last entry")
		}
		return s, nil
	}
	if ParseID(s) == nil {
		return s, nil
	}
	if !strings.ContainsAny(s, "T:") {
		if end {
			return "", errors.New("is not a stream id (ms or ms-seq, e.g. 1700000000000-0, or - / +) or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)")
		}
		return "", errors.New("is not a stream id (ms or ms-seq, e.g. 1700000000000-0, or - / +), $, or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)")
	}
	if strings.HasPrefix(s, "(") {
		return "", errors.New("is not a bound: ( excludes a stream id, not a time; give the time without (")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return "", errors.New("is not an RFC 3339 time (e.g. 2026-01-02T15:04:05Z or 2026-01-02T15:04:05.123+02:00)")
	}
	if t.Before(time.Unix(0, 0)) {
		return "", errors.New("is before 1970-01-01T00:00:00Z, the earliest time a stream id can hold")
	}
	ms := strconv.FormatInt(t.UnixMilli(), 10)
	if end {
		return ms + "-" + maxSeq, nil
	}
	return ms + "-0", nil
}

// readWaiting is Read for a Query with StartNow or a Block: the range is
// read as any other, and when nothing in it matches, the read waits up to
// q.Block for a matching entry. Next is always set: the start of the next
// read, so that no entry is missed.
func (s *Store) readWaiting(ctx context.Context, q Query) (Page, error) {
	began := time.Now()
	if q.Reverse && q.Block > 0 {
		return Page{}, fault.Invalidf("block_ms", "only a forward read can wait for new entries; drop reverse or block_ms")
	}
	if q.Reverse && q.Start == StartNow {
		return Page{}, fault.Invalidf("start", "$ reads the entries added after the call began, which a reverse read cannot wait for; read forward")
	}
	key := s.keys.Stream(q.Stream)
	if q.Start == StartNow {
		last, err := s.rdb.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil {
			return Page{}, rdb.Wrap("read "+key, err)
		}
		q.Start = "(0-0"
		if len(last) == 1 {
			q.Start = "(" + last[0].ID
		}
	}
	page, err := s.scan(ctx, q)
	if err != nil {
		return Page{}, err
	}
	cursor := completeID(q.Start, "0")
	if page.last != "" {
		cursor = "(" + page.last
	}
	if len(page.Entries) > 0 || page.Next != "" || q.Block <= 0 {
		if page.Next == "" {
			page.Next = cursor
		}
		return page, nil
	}
	return s.wait(ctx, q, page, cursor, began)
}

// wait waits on a connection of its own for entries after cursor, until
// one matches, the range's end is passed, or the block runs out.
func (s *Store) wait(ctx context.Context, q Query, page Page, cursor string, began time.Time) (Page, error) {
	key := page.Key
	if !s.waiting.take() {
		return Page{}, &fault.Error{Code: fault.Unavailable, Field: "block_ms",
			Message: fmt.Sprintf("%d reads are already waiting on this server, the most it lets wait at once", MaxWaiters),
			Hint:    "Retry in a moment, or read without block_ms."}
	}
	defer s.waiting.give()
	deadline := began.Add(q.Block)
	if dl, ok := ctx.Deadline(); ok && dl.Add(-waitMargin).Before(deadline) {
		deadline = dl.Add(-waitMargin)
	}
	sock := &waitSocket{}
	c, err := waitClient(ctx, s.rdb, key, sock)
	if err != nil {
		return Page{}, rdb.Wrap("wait for entries of "+key, err)
	}
	defer c.Close()
	// The one way to end a blocked read at once: close its socket.
	stop := context.AfterFunc(ctx, sock.close)
	defer stop()

	end := completeID(q.End, maxSeq)
	after := xreadID(cursor)
	fail := func(err error) (Page, error) {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return Page{}, rdb.Wrap("wait for entries of "+key, err)
	}
	if end != "+" {
		// Redis ids new entries from its clock (or after the last id, if
		// later): once that clock is past the end, no entry can come.
		now, err := c.Time(ctx).Result()
		if err != nil {
			return fail(err)
		}
		if beyond(strconv.FormatInt(now.UnixMilli(), 10)+"-0", end) {
			page.Next = "(" + after
			page.Waited = time.Since(began)
			return page, nil
		}
	}
	batch := int64(q.Count)
	if len(q.Match) > 0 {
		batch = int64(min(max(q.Count*4, 100), 1000))
	}
	if q.MaxBytes > 0 && q.MaxEntryBytes > 0 {
		batch = min(batch, int64(max(q.MaxBytes/q.MaxEntryBytes, 1)))
	}
	size := 0
	for len(page.Entries) == 0 {
		left := time.Until(deadline)
		if left < time.Millisecond {
			page.TimedOut = true
			break
		}
		// BLOCK counts whole ms, and 0 would be forever: round up.
		block := (left + time.Millisecond - 1).Truncate(time.Millisecond)
		res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: batch, Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			page.TimedOut = true
			break
		}
		if err != nil {
			return fail(err)
		}
		passed := false
		for _, st := range res {
			for _, m := range st.Messages {
				if beyond(m.ID, end) {
					passed = true
					break
				}
				after = m.ID
				page.Scanned++
				e := Entry{ID: m.ID, Values: make(map[string]string, len(m.Values))}
				for k, v := range m.Values {
					e.Values[k] = fmt.Sprint(v)
				}
				if !matches(e.Values, q.Match) {
					continue
				}
				page.Entries = append(page.Entries, e)
				for k, v := range e.Values {
					size += len(k) + len(v)
				}
				if len(page.Entries) == q.Count || (q.MaxBytes > 0 && size >= q.MaxBytes) {
					break
				}
			}
		}
		if passed {
			break
		}
	}
	page.Next = "(" + after
	page.Waited = time.Since(began)
	return page, nil
}

// waitSocket is the connection of one wait's client, to close under a
// blocked read. go-redis reads the closed socket as a failed command and
// drops the connection; closing the client itself under a running command
// would race with its pool.
type waitSocket struct {
	mu     sync.Mutex
	conn   net.Conn
	closed bool
}

// dialer wraps dial so that the socket it opens can be closed.
func (w *waitSocket) dialer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.closed {
			_ = conn.Close()
			return nil, net.ErrClosed
		}
		w.conn = conn
		return conn, nil
	}
}

func (w *waitSocket) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	if w.conn != nil {
		_ = w.conn.Close()
	}
}

// waitClient opens a one-connection client to the master that holds key,
// with the options of c (the store's client, or the one under an
// rdb.Durable): the same address, credentials, TLS and timeouts, through
// sock.
func waitClient(ctx context.Context, c any, key string, sock *waitSocket) (*redis.Client, error) {
	var o *redis.Options
	switch v := c.(type) {
	case *rdb.Durable:
		return waitClient(ctx, v.UniversalClient, key, sock)
	case *redis.Client:
		o = v.Options()
	case *redis.ClusterClient:
		node, err := v.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		o = node.Options()
	default:
		return nil, fmt.Errorf("a %T cannot open a connection of its own to wait on", c)
	}
	w := *o
	w.PoolSize, w.MaxActiveConns, w.MinIdleConns, w.MaxIdleConns = 1, 1, 0, 1
	w.PipelinePoolSize = -1
	// A read that failed is not tried again: the wait ends, and says so.
	w.MaxRetries = -1
	w.PushNotificationProcessor = nil
	dial := o.Dialer
	if dial == nil {
		dial = redis.NewDialer(o)
	}
	w.Dialer = sock.dialer(dial)
	if w.ClientName != "" {
		w.ClientName += ":wait"
	}
	return redis.NewClient(&w), nil
}

// xreadID is the id XREAD reads after for a complete start bound: the
// entries it returns are those the bound admits.
func xreadID(start string) string {
	if id, ok := strings.CutPrefix(start, "("); ok {
		return id
	}
	if start == "-" {
		return "0-0"
	}
	ms, seq := splitID(start)
	switch {
	case seq > 0:
		return strconv.FormatUint(ms, 10) + "-" + strconv.FormatUint(seq-1, 10)
	case ms > 0:
		return strconv.FormatUint(ms-1, 10) + "-" + maxSeq
	}
	return "0-0" // 0-0 itself is never an entry's id
}

// beyond reports whether id lies past end, a complete end bound.
func beyond(id, end string) bool {
	if end == "+" {
		return false
	}
	bound, excl := strings.CutPrefix(end, "(")
	im, is := splitID(id)
	bm, bs := splitID(bound)
	if im != bm {
		return im > bm
	}
	if excl {
		return is >= bs
	}
	return is > bs
}

// splitID parses a complete id, ms-seq.
func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

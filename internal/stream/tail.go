package stream

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
)

// TailClient is the part of go-redis a Tail reads with.
type TailClient interface {
	XRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	XRevRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	XRead(ctx context.Context, a *redis.XReadArgs) *redis.XStreamSliceCmd
}

// A Tail reads the entries of several streams merged in id order: those
// already there (Backlog), then those appended after them (Follow).
type Tail struct {
	Client  TailClient
	Keys    keyspace.Keyspace
	Streams []string // by name, keyspace.AuditLog, …
	// From is the lowest id to show (ms or ms-seq, or - for the oldest);
	// "" shows the Last newest entries of each stream.
	From string
	Last int
	// Match keeps the entries whose field equals one of its values, for
	// every field it names.
	Match map[string][]string
	// PerStream reads each stream with an XREAD of its own: in Redis
	// Cluster the streams are in different slots, and one XREAD over them
	// is refused (CROSSSLOT).
	PerStream bool
	// Block bounds one XREAD's wait, so Follow notices that its context
	// ended within it (go-redis does not interrupt a blocked read); a
	// second when zero.
	Block time.Duration
	// Log is told when Redis stops and starts answering while following.
	Log *slog.Logger
}

// TailEntry is one entry and the stream it is in.
type TailEntry struct {
	Stream string
	Entry
}

// Cursors hold, for each stream, the id Follow reads after: the newest
// entry the backlog saw, shown or not.
type Cursors map[string]string

// Bounds of one backlog walk: how many entries one XRANGE asks for, and
// how many entries of a stream a filtered "last N" examines at most.
const (
	tailBatch   = 500
	tailMaxScan = 10000
	followCount = 1000
)

// Backlog calls fn with the entries already in the streams, in id order:
// those from t.From on, or the t.Last newest of each stream that match
// (examining at most 10000 entries of a stream). It returns where Follow
// resumes, so that no entry appended meanwhile is missed or shown twice.
func (t *Tail) Backlog(ctx context.Context, fn func(TailEntry) error) (Cursors, error) {
	cur := Cursors{}
	if t.From == "" {
		return cur, t.last(ctx, cur, fn)
	}
	return cur, t.since(ctx, cur, fn)
}

func (t *Tail) last(ctx context.Context, cur Cursors, fn func(TailEntry) error) error {
	var all []TailEntry
	batch := int64(max(t.Last, 1))
	if len(t.Match) > 0 {
		batch = int64(min(max(t.Last*4, 100), 1000))
	}
	for _, s := range t.Streams {
		key := t.Keys.Stream(s)
		cur[s] = "0-0"
		var got []TailEntry
		end, scanned := "+", 0
		for len(got) < t.Last && scanned < tailMaxScan {
			msgs, err := t.Client.XRevRangeN(ctx, key, end, "-", batch).Result()
			if err != nil {
				return rdb.Wrap("read "+key, err)
			}
			for _, m := range msgs {
				if scanned == 0 {
					cur[s] = m.ID
				}
				scanned++
				if e := tailEntryOf(m); tailMatches(e.Values, t.Match) {
					got = append(got, TailEntry{Stream: s, Entry: e})
					if len(got) == t.Last {
						break
					}
				}
			}
			if int64(len(msgs)) < batch {
				break
			}
			end = "(" + msgs[len(msgs)-1].ID
		}
		slices.Reverse(got)
		all = append(all, got...)
	}
	slices.SortStableFunc(all, func(a, b TailEntry) int { return CompareIDs(a.ID, b.ID) })
	for _, e := range all {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// tailSource is one stream of a merged walk: a batch read ahead, and where
// the next batch starts.
type tailSource struct {
	stream, key string
	buf         []Entry
	next        string
	done        bool
}

// since walks every stream from t.From on, a batch of each at a time,
// and hands the entries on in id order (a k-way merge).
func (t *Tail) since(ctx context.Context, cur Cursors, fn func(TailEntry) error) error {
	srcs := make([]*tailSource, len(t.Streams))
	for i, s := range t.Streams {
		key := t.Keys.Stream(s)
		// The newest id before the walk: an entry appended during it is
		// either walked or after this cursor.
		cur[s] = "0-0"
		msgs, err := t.Client.XRevRangeN(ctx, key, "+", "-", 1).Result()
		if err != nil {
			return rdb.Wrap("read "+key, err)
		}
		if len(msgs) > 0 {
			cur[s] = msgs[0].ID
		}
		srcs[i] = &tailSource{stream: s, key: key, next: completeID(t.From, "0")}
	}
	for {
		var head *tailSource
		for _, src := range srcs {
			if len(src.buf) == 0 && !src.done {
				msgs, err := t.Client.XRangeN(ctx, src.key, src.next, "+", tailBatch).Result()
				if err != nil {
					return rdb.Wrap("read "+src.key, err)
				}
				for _, m := range msgs {
					src.buf = append(src.buf, tailEntryOf(m))
				}
				if len(msgs) < tailBatch {
					src.done = true
				} else {
					src.next = "(" + msgs[len(msgs)-1].ID
				}
			}
			if len(src.buf) > 0 && (head == nil || CompareIDs(src.buf[0].ID, head.buf[0].ID) < 0) {
				head = src
			}
		}
		if head == nil {
			return nil
		}
		e := head.buf[0]
		head.buf = head.buf[1:]
		if CompareIDs(e.ID, cur[head.stream]) > 0 {
			cur[head.stream] = e.ID
		}
		if tailMatches(e.Values, t.Match) {
			if err := fn(TailEntry{Stream: head.stream, Entry: e}); err != nil {
				return err
			}
		}
	}
}

// Follow calls fn with the entries appended after cur, a batch at a time
// in id order, until ctx ends (then it returns nil). While Redis does not
// answer it says so on t.Log and tries again every second; any other
// failure of Redis, or of fn, ends it.
func (t *Tail) Follow(ctx context.Context, cur Cursors, fn func([]TailEntry) error) error {
	groups := [][]string{t.Streams}
	if t.PerStream {
		groups = groups[:0]
		for _, s := range t.Streams {
			groups = append(groups, []string{s})
		}
	}
	if len(groups) == 1 {
		return t.follow(ctx, groups[0], cur, fn)
	}
	ctx, cancel := context.WithCancel(ctx)
	batches := make(chan []TailEntry)
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for _, g := range groups {
		own := Cursors{}
		for _, s := range g {
			own[s] = cur[s]
		}
		wg.Go(func() {
			errs <- t.follow(ctx, g, own, func(b []TailEntry) error {
				select {
				case batches <- b:
					return nil
				case <-ctx.Done():
					return nil
				}
			})
		})
	}
	defer func() {
		cancel()
		wg.Wait()
	}()
	for running := len(groups); running > 0; {
		select {
		case b := <-batches:
			if err := fn(b); err != nil {
				return err
			}
		case err := <-errs:
			if err != nil {
				return err
			}
			running--
		}
	}
	return nil
}

func (t *Tail) follow(ctx context.Context, streams []string, cur Cursors, fn func([]TailEntry) error) error {
	names := make(map[string]string, len(streams))
	keys := make([]string, len(streams))
	for i, s := range streams {
		keys[i] = t.Keys.Stream(s)
		names[keys[i]] = s
	}
	block := t.Block
	if block <= 0 {
		block = time.Second
	}
	down := false
	for ctx.Err() == nil {
		args := &redis.XReadArgs{Streams: make([]string, 0, 2*len(streams)), Count: followCount, Block: block}
		args.Streams = append(args.Streams, keys...)
		for _, s := range streams {
			args.Streams = append(args.Streams, cur[s])
		}
		res, err := t.Client.XRead(ctx, args).Result()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, redis.Nil) {
			res, err = nil, nil
		}
		if err != nil {
			if !rdb.Unreachable(err) {
				return rdb.Wrap("read "+strings.Join(keys, ", "), err)
			}
			if !down && t.Log != nil {
				t.Log.Warn("redis does not answer; trying again every second", "streams", strings.Join(keys, ", "), "err", err)
			}
			down = true
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		if down && t.Log != nil {
			t.Log.Info("redis answers again; following", "streams", strings.Join(keys, ", "))
		}
		down = false
		var batch []TailEntry
		for _, xs := range res {
			s := names[xs.Stream]
			for _, m := range xs.Messages {
				cur[s] = m.ID
				// A --from in the future: entries before it are not shown.
				if t.From != "" && CompareIDs(m.ID, t.From) < 0 {
					continue
				}
				if e := tailEntryOf(m); tailMatches(e.Values, t.Match) {
					batch = append(batch, TailEntry{Stream: s, Entry: e})
				}
			}
		}
		slices.SortStableFunc(batch, func(a, b TailEntry) int { return CompareIDs(a.ID, b.ID) })
		if len(batch) > 0 {
			if err := fn(batch); err != nil {
				return err
			}
		}
	}
	return nil
}

func tailEntryOf(m redis.XMessage) Entry {
	e := Entry{ID: m.ID, Values: make(map[string]string, len(m.Values))}
	for k, v := range m.Values {
		e.Values[k] = fmt.Sprint(v)
	}
	return e
}

// tailMatches reports whether values has, for every field of match, one of
// the values match lists.
func tailMatches(values map[string]string, match map[string][]string) bool {
	for k, want := range match {
		if !slices.Contains(want, values[k]) {
			return false
		}
	}
	return true
}

// CompareIDs orders two stream ids (ms-seq; ms alone is ms-0; - is the
// lowest, + the highest) as Redis does: -1, 0 or +1.
func CompareIDs(a, b string) int {
	am, as := tailIDParts(a)
	bm, bs := tailIDParts(b)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

func tailIDParts(id string) (ms, seq uint64) {
	switch id {
	case "-":
		return 0, 0
	case "+":
		return ^uint64(0), ^uint64(0)
	}
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}

// FieldNames lists the stream fields of a record type (see Encode), in
// the order they are written.
func FieldNames(record reflect.Type) []string {
	if record.Kind() == reflect.Pointer {
		record = record.Elem()
	}
	specs := specsOf(record)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.name
	}
	return names
}

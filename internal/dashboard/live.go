package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/notify"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/tools"
)

// Bounds of the live updates.
const (
	// MaxTabs bounds the pages following at once, on one server.
	MaxTabs = 256
	// tabQueue is how many frames one page may have waiting, and
	// tabBytes how many bytes; a page that lets more pile up is dropped
	// (it reconnects and catches up). A frame of entries holds about
	// frameBytes at most (one read of them), shared by every page that
	// takes all of them.
	tabQueue   = 64
	tabBytes   = 8 << 20
	frameBytes = 1 << 20
	// catchUp bounds the entries a (re)connecting page is sent from before
	// it connected; past that it is told to re-read (resync).
	catchUp = 1000
	// readPage bounds one read of new entries.
	readPage = 500
	// overviewEvery is how often pages get a fresh overview; lockSettle
	// how soon after a lock notice.
	overviewEvery = 2 * time.Second
	lockSettle    = 100 * time.Millisecond
	// pollEvery wakes each followed stream even without a notice: a
	// notice can be lost (pub/sub is at most once), an entry cannot.
	pollEvery = time.Second
	// workflowEvery bounds how often a page is told its workflow changed.
	workflowEvery = 250 * time.Millisecond
	// gather is the least time between two reads of a stream after
	// notices: a lone write is read at once, a burst within it goes out
	// as one event, not one each (at 1,000 writes/s, 50 pages took
	// ~30,000 socket writes a second without it).
	gather = 20 * time.Millisecond
)

// Reader reads a stream: a *stream.Store.
type Reader interface {
	Read(ctx context.Context, q stream.Query) (stream.Page, error)
}

// Frame is one Server-Sent Event: its name and its JSON data.
type Frame struct {
	Event string
	Data  []byte
}

// Live fans the server's changes out to the open pages: new entries of the
// stream each page tails (one reader per stream, however many pages tail
// it: each entry is read, decoded and encoded once), the overview every
// two seconds and soon after a lock changes, and a mark when a followed
// workflow changes. It hears of changes from the server's one Redis
// subscription (Notice), started with the first page.
type Live struct {
	streams   Reader
	collector *Collector
	// listen starts the Redis subscription; it is idempotent.
	listen        func()
	channels      map[string]string // notice channel → stream
	lockChannel   string
	maxEntryBytes int
	timeout       time.Duration
	log           *slog.Logger

	mu        sync.Mutex
	closed    bool
	tabs      map[*Tab]struct{}
	followers map[string]*follower
	poke      chan struct{} // cap 1: an overview is due soon
	stop      chan struct{}
	running   sync.WaitGroup
	lastOV    []byte // the newest overview frame's data
}

// LiveOptions build a Live.
type LiveOptions struct {
	Streams   Reader
	Collector *Collector
	Keys      keyspace.Keyspace
	// Listen starts the server's Redis subscription (idempotent).
	Listen        func()
	MaxEntryBytes int
	Timeout       time.Duration
	Log           *slog.Logger
}

// NewLive returns the fan-out; Close ends it.
func NewLive(o LiveOptions) *Live {
	l := &Live{streams: o.Streams, collector: o.Collector, listen: o.Listen, channels: map[string]string{},
		lockChannel: o.Keys.LockEvents(), maxEntryBytes: o.MaxEntryBytes, timeout: o.Timeout, log: o.Log,
		tabs: map[*Tab]struct{}{}, followers: map[string]*follower{}, poke: make(chan struct{}, 1), stop: make(chan struct{})}
	if l.listen == nil {
		l.listen = func() {}
	}
	for _, name := range keyspace.Streams {
		l.channels[o.Keys.Events(name)] = name
		l.channels[o.Keys.ShardedEvents(name)] = name
	}
	l.running.Add(1)
	go l.overviews()
	return l
}

// Tab is one open page's share of the updates.
type Tab struct {
	// Frames carries the page's events, in order; Gone is closed when
	// the page is dropped (too slow) or the server closes.
	Frames <-chan Frame
	frames chan Frame

	stream   string
	fw       *follower // the follower of stream; nil without one
	match    map[string]string
	after    string // the newest id the page has; the follower's goroutine owns it
	workflow string
	dirty    chan struct{} // cap 1: the workflow changed

	queued atomic.Int64 // bytes in frames

	once sync.Once
	gone chan struct{}
	// final, set before gone closes, is the last event to send (a
	// resync), if the page takes it at once.
	final *Frame
}

// Final is the event to send the page once Gone is closed; nil for none.
func (t *Tab) Final() *Frame {
	<-t.gone
	return t.final
}

// Follow is what a page asks to follow.
type Follow struct {
	// Stream is the stream to tail ("" none), from after After ("" from
	// now on), only entries whose fields equal Match.
	Stream string
	After  string
	Match  map[string]string
	// Workflow is the workflow whose changes the page is told of.
	Workflow string
}

// ErrTooManyTabs is Open's error past MaxTabs.
var ErrTooManyTabs = errors.New("too many dashboard pages are following this server")

// Open starts following f for one page.
func (l *Live) Open(f Follow) (*Tab, error) {
	t := &Tab{frames: make(chan Frame, tabQueue), stream: f.Stream, match: f.Match, after: f.After,
		workflow: f.Workflow, dirty: make(chan struct{}, 1), gone: make(chan struct{})}
	t.Frames = t.frames
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("the server is shutting down")
	}
	if len(l.tabs) >= MaxTabs {
		l.mu.Unlock()
		return nil, ErrTooManyTabs
	}
	l.tabs[t] = struct{}{}
	var fw *follower
	if t.stream != "" {
		fw = l.followers[t.stream]
		if fw == nil {
			fw = &follower{l: l, stream: t.stream, join: make(chan *Tab, MaxTabs), leave: make(chan *Tab, MaxTabs),
				wake: make(chan struct{}, 1)}
			l.followers[t.stream] = fw
			l.running.Add(1)
			go fw.run()
		}
		// Joined under l.mu, where the follower decides to retire: it
		// never retires with a join on its way. The channel holds
		// MaxTabs, so this never waits.
		t.fw = fw
		fw.join <- t
	}
	last := l.lastOV
	l.mu.Unlock()
	l.listen()
	if last != nil {
		t.offer(Frame{"overview", last})
	}
	l.pokeOverview()
	if t.workflow != "" {
		l.running.Add(1)
		go l.workflowMarks(t)
	}
	return t, nil
}

// Leave stops following for t's page.
func (l *Live) Leave(t *Tab) { l.drop(t) }

// drop forgets t and closes its frames.
func (l *Live) drop(t *Tab) { l.dropWith(t, nil) }

// dropWith drops t, to be told final last.
func (l *Live) dropWith(t *Tab, final *Frame) {
	t.once.Do(func() {
		t.final = final
		close(t.gone)
		l.mu.Lock()
		delete(l.tabs, t)
		l.mu.Unlock()
		if t.fw != nil {
			t.fw.leave <- t
		}
	})
}

// offer hands the page a frame without waiting; a page whose queue is full
// is dropped: it cannot keep up, and must not slow the others.
func (t *Tab) offer(f Frame) bool {
	select {
	case <-t.gone:
		return false
	default:
	}
	if t.queued.Add(int64(len(f.Data))) > tabBytes {
		return false
	}
	select {
	case t.frames <- f:
		return true
	default:
		return false
	}
}

// Sent tells that a frame taken from Frames went out.
func (t *Tab) Sent(f Frame) { t.queued.Add(-int64(len(f.Data))) }

// Gone is closed once the page was dropped or closed.
func (t *Tab) Gone() <-chan struct{} { return t.gone }

// send offers f to t and drops t when it cannot take it.
func (l *Live) send(t *Tab, f Frame) {
	if !t.offer(f) {
		l.drop(t)
	}
}

// Notice is told of every notice on the server's channels.
func (l *Live) Notice(channel, payload string) { l.Heard(channel, notify.Decode(payload)) }

// Heard is Notice of a payload already decoded.
func (l *Live) Heard(channel string, n notify.Notice) {
	if channel == l.lockChannel {
		l.collector.Fresh()
		l.pokeOverview()
		return
	}
	name, ok := l.channels[channel]
	if !ok {
		return
	}
	l.collector.Count(name, n.ID)
	l.mu.Lock()
	fw := l.followers[name]
	var marks []*Tab
	if n.WorkflowID != "" {
		for t := range l.tabs {
			if t.workflow == n.WorkflowID {
				marks = append(marks, t)
			}
		}
	}
	l.mu.Unlock()
	if fw != nil {
		fw.nudge()
	}
	for _, t := range marks {
		select {
		case t.dirty <- struct{}{}:
		default:
		}
	}
}

// Resubscribed is told when the Redis subscription was made again: the
// notices meanwhile are lost, not the entries; every reader reads on from
// where it was, and every page re-reads its workflow.
func (l *Live) Resubscribed() {
	l.mu.Lock()
	fws := make([]*follower, 0, len(l.followers))
	for _, fw := range l.followers {
		fws = append(fws, fw)
	}
	var tabs []*Tab
	for t := range l.tabs {
		tabs = append(tabs, t)
	}
	l.mu.Unlock()
	for _, fw := range fws {
		fw.nudge()
	}
	for _, t := range tabs {
		if t.workflow != "" {
			select {
			case t.dirty <- struct{}{}:
			default:
			}
		}
	}
	l.collector.Fresh()
	l.pokeOverview()
}

// Tabs is how many pages follow now.
func (l *Live) Tabs() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.tabs)
}

// Close drops every page and stops the readers.
func (l *Live) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	var tabs []*Tab
	for t := range l.tabs {
		tabs = append(tabs, t)
	}
	l.mu.Unlock()
	for _, t := range tabs {
		l.drop(t)
	}
	close(l.stop)
	l.running.Wait()
}

func (l *Live) pokeOverview() {
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// overviews sends every page the overview every overviewEvery, and soon
// after a poke; one overview (and one encoding of it) serves them all.
func (l *Live) overviews() {
	defer l.running.Done()
	tick := time.NewTicker(overviewEvery)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		case <-l.poke:
			select {
			case <-time.After(lockSettle):
			case <-l.stop:
				return
			}
		}
		if l.Tabs() == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.timeout+time.Second)
		ov, err := l.collector.Overview(ctx)
		cancel()
		if err != nil {
			continue
		}
		data, err := json.Marshal(ov)
		if err != nil {
			continue
		}
		l.mu.Lock()
		l.lastOV = data
		tabs := make([]*Tab, 0, len(l.tabs))
		for t := range l.tabs {
			tabs = append(tabs, t)
		}
		l.mu.Unlock()
		for _, t := range tabs {
			l.send(t, Frame{"overview", data})
		}
	}
}

// workflowMarks tells t, at most every workflowEvery, that its workflow
// changed.
func (l *Live) workflowMarks(t *Tab) {
	defer l.running.Done()
	data, _ := json.Marshal(map[string]string{"workflow_id": t.workflow})
	for {
		select {
		case <-t.gone:
			return
		case <-l.stop:
			return
		case <-t.dirty:
		}
		l.send(t, Frame{"workflow", data})
		select {
		case <-time.After(workflowEvery):
		case <-t.gone:
			return
		case <-l.stop:
			return
		}
	}
}

// follower reads one stream's new entries for every page that tails it.
type follower struct {
	l      *Live
	stream string
	join   chan *Tab
	leave  chan *Tab
	wake   chan struct{} // cap 1
}

func (f *follower) nudge() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// run is the follower's goroutine: it owns its pages' positions. It ends
// when its last page leaves.
func (f *follower) run() {
	defer f.l.running.Done()
	var (
		tabs   []*Tab
		cursor string    // the newest id read; "" until the first page joins
		last   time.Time // when the last read began
	)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case <-f.l.stop:
			return
		case t := <-f.join:
			if cursor == "" {
				var err error
				if cursor, err = f.last(); err != nil {
					f.l.dropWith(t, resync("the stream could not be read: "+sentence(err)))
					continue
				}
			}
			if t.after == "" || compareIDs(t.after, cursor) > 0 {
				if t.after == "" {
					t.after = cursor
				}
			} else if !f.catchUp(t, cursor) {
				continue
			}
			tabs = append(tabs, t)
			continue
		case t := <-f.leave:
			tabs = slices.DeleteFunc(tabs, func(x *Tab) bool { return x == t })
			if len(tabs) == 0 && f.retire() {
				return
			}
			continue
		case <-f.wake:
			if wait := gather - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-f.l.stop:
					return
				}
			}
		case <-tick.C:
		}
		if len(tabs) == 0 || cursor == "" {
			continue
		}
		last = time.Now()
		cursor = f.round(tabs, cursor)
	}
}

// retire removes the follower once it has no page, unless one is joining.
func (f *follower) retire() bool {
	f.l.mu.Lock()
	defer f.l.mu.Unlock()
	if len(f.join) > 0 {
		return false
	}
	if f.l.followers[f.stream] == f {
		delete(f.l.followers, f.stream)
	}
	return true
}

// last is the stream's newest id, "0-0" when it is empty.
func (f *follower) last() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), f.l.timeout)
	defer cancel()
	page, err := f.l.streams.Read(ctx, stream.Query{Stream: f.stream, Start: "-", End: "+", Count: 1, Reverse: true,
		MaxEntryBytes: f.l.maxEntryBytes, MaxBytes: f.l.maxEntryBytes})
	if err != nil {
		return "", err
	}
	if len(page.Entries) == 0 {
		return "0-0", nil
	}
	return page.Entries[0].ID, nil
}

// catchUp sends t the entries it lacks, after its id up to cursor,
// filtered in Redis' reads; it reports whether t may join.
func (f *follower) catchUp(t *Tab, cursor string) bool {
	sent := 0
	start := "(" + t.after
	for {
		ctx, cancel := context.WithTimeout(context.Background(), f.l.timeout)
		page, err := f.l.streams.Read(ctx, stream.Query{Stream: f.stream, Start: start, End: cursor, Count: readPage, Match: t.match,
			MaxScan: 10 * catchUp, MaxBytes: frameBytes, MaxEntryBytes: f.l.maxEntryBytes})
		cancel()
		if err != nil {
			f.l.dropWith(t, resync("the stream could not be read: "+sentence(err)))
			return false
		}
		if len(page.Entries) > 0 {
			f.l.send(t, f.frame(page.Entries, nil))
			sent += len(page.Entries)
			t.after = page.Entries[len(page.Entries)-1].ID
		}
		if page.Next == "" {
			break
		}
		if sent >= catchUp {
			f.l.dropWith(t, resync("more than 1000 entries were added since the page's newest"))
			return false
		}
		start = page.Next
	}
	t.after = cursor
	return true
}

// round reads what was added after cursor and hands each page the entries
// it matches; it returns the new cursor.
func (f *follower) round(tabs []*Tab, cursor string) string {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), f.l.timeout)
		page, err := f.l.streams.Read(ctx, stream.Query{Stream: f.stream, Start: "(" + cursor, End: "+", Count: readPage,
			MaxBytes: frameBytes, MaxEntryBytes: f.l.maxEntryBytes})
		cancel()
		if err != nil {
			// Try again at the next wake or tick.
			return cursor
		}
		if len(page.Entries) == 0 {
			return cursor
		}
		encoded := make([][]byte, len(page.Entries))
		for i, e := range page.Entries {
			encoded[i] = f.encode(e)
		}
		// The pages that take every entry of the read share one frame.
		var all *Frame
		first := page.Entries[0].ID
		for _, t := range tabs {
			if len(t.match) == 0 && compareIDs(first, t.after) > 0 {
				if all == nil {
					fr := f.frameOf(encoded, nil)
					all = &fr
				}
				f.l.send(t, *all)
				t.after = page.Entries[len(page.Entries)-1].ID
				continue
			}
			var mine []int
			for i, e := range page.Entries {
				if compareIDs(e.ID, t.after) > 0 && matches(e.Values, t.match) {
					mine = append(mine, i)
				}
			}
			if len(mine) > 0 {
				f.l.send(t, f.frameOf(encoded, mine))
			}
			t.after = page.Entries[len(page.Entries)-1].ID
		}
		cursor = page.Entries[len(page.Entries)-1].ID
		if page.Next == "" {
			return cursor
		}
	}
}

func matches(values, match map[string]string) bool {
	for k, v := range match {
		if values[k] != v {
			return false
		}
	}
	return true
}

// encode is one entry as read_stream answers it.
func (f *follower) encode(e stream.Entry) []byte {
	b, err := json.Marshal(tools.StreamEntry{ID: e.ID, Fields: stream.Decode(e.Values, tools.RecordType(f.stream))})
	if err != nil {
		b, _ = json.Marshal(tools.StreamEntry{ID: e.ID, Fields: map[string]any{}})
	}
	return b
}

// frame is an entries event of es (every one when pick is nil).
func (f *follower) frame(es []stream.Entry, pick []int) Frame {
	encoded := make([][]byte, len(es))
	for i, e := range es {
		encoded[i] = f.encode(e)
	}
	return f.frameOf(encoded, pick)
}

// frameOf joins already encoded entries into one entries event.
func (f *follower) frameOf(encoded [][]byte, pick []int) Frame {
	name, _ := json.Marshal(f.stream)
	buf := make([]byte, 0, 64+len(encoded)*256)
	buf = append(buf, `{"stream":`...)
	buf = append(buf, name...)
	buf = append(buf, `,"entries":[`...)
	n := 0
	add := func(b []byte) {
		if n > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, b...)
		n++
	}
	if pick == nil {
		for _, b := range encoded {
			add(b)
		}
	} else {
		for _, i := range pick {
			add(encoded[i])
		}
	}
	buf = append(buf, "]}"...)
	return Frame{"entries", buf}
}

func resync(reason string) *Frame {
	data, _ := json.Marshal(map[string]string{"reason": reason})
	return &Frame{"resync", data}
}

// compareIDs orders two stream ids (ms-seq).
func compareIDs(a, b string) int {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	switch {
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

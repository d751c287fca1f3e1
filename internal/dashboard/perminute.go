package dashboard

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// seedEntries bounds the entries read to seed a stream's counts.
const seedEntries = 5000

// perMinute counts each stream's entries by the minute of their ids, over
// the last 30 minutes: seeded once from the stream itself, then counted
// from the notices the server hears (every server's writes publish one).
type perMinute struct {
	mu      sync.Mutex
	streams map[string]*counts
}

type counts struct {
	// byMinute maps a minute (Unix ms / 60000) to its count.
	byMinute map[int64]int64
	// top is the newest id the seed counted: notices up to it are
	// counted already.
	topMS, topSeq uint64
	seeded        bool
}

func newPerMinute() *perMinute { return &perMinute{streams: map[string]*counts{}} }

func (p *perMinute) get(stream string) *counts {
	c := p.streams[stream]
	if c == nil {
		c = &counts{byMinute: map[int64]int64{}}
		p.streams[stream] = c
	}
	return c
}

func (p *perMinute) seeded(stream string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.get(stream).seeded
}

// seed counts ids, newest first, as the entries before any notice.
func (p *perMinute) seed(stream string, ids []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.get(stream)
	if c.seeded {
		return
	}
	c.seeded = true
	for i, id := range ids {
		ms, seq, ok := parseID(id)
		if !ok {
			continue
		}
		if i == 0 {
			c.topMS, c.topSeq = ms, seq
		}
		c.byMinute[int64(ms/60000)]++
	}
}

// add counts entry id, unless the seed counted it.
func (p *perMinute) add(stream, id string) {
	ms, seq, ok := parseID(id)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.get(stream)
	if ms < c.topMS || (ms == c.topMS && seq <= c.topSeq) {
		return
	}
	m := int64(ms / 60000)
	c.byMinute[m]++
	// Forget the minutes that left the window.
	if len(c.byMinute) > 2*minutes {
		for k := range c.byMinute {
			if k <= m-minutes {
				delete(c.byMinute, k)
			}
		}
	}
}

// series is the counts of the last 30 minutes up to now's, oldest first.
func (p *perMinute) series(stream string, now time.Time) []int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.get(stream)
	out := make([]int64, minutes)
	cur := now.UnixMilli() / 60000
	for i := range out {
		out[i] = c.byMinute[cur-int64(minutes-1-i)]
	}
	return out
}

func parseID(id string) (ms, seq uint64, ok bool) {
	a, b, found := strings.Cut(id, "-")
	ms, err := strconv.ParseUint(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	if found {
		if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return ms, seq, true
}

// Package dashboard is the live dashboard: the overview of streams,
// groups, locks, rates and health (show_dashboard, and the /ui page), the
// page itself (web/, embedded), and the live updates the page follows over
// Server-Sent Events, fed by the server's one Redis subscription.
//
// It reads only: nothing here writes to Redis.
package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/groups"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/ratelimit"
	"github.com/mcp-redis/mcp-redis/tools"
)

// Bounds of one overview: the locks and rate subjects it lists, and how
// many keys it examines to find them (SCAN), per Redis node.
const (
	MaxLocks      = 100
	MaxRates      = 50
	maxScanned    = 20000
	scanCount     = 1000
	minutes       = 30
	nearLimit     = 0.5
	cacheFor      = time.Second
	statsInterval = 5 * time.Second
)

// Stats are the server's call counters since it started.
type Stats struct {
	Calls, Errors uint64
	InFlight      int64
}

// Info describes a stream and its groups: a *groups.Groups.
type Info interface {
	Info(ctx context.Context, stream string) (groups.Info, error)
}

// Peeker reads a lock without changing it: a *lock.Locker.
type Peeker interface {
	Peek(ctx context.Context, resource string) (lock.State, error)
}

// Options are what a Collector reads from.
type Options struct {
	// Client runs the reads of its own (PING, SCAN, ZCOUNT, XREVRANGE).
	Client   redis.UniversalClient
	Keys     keyspace.Keyspace
	Groups   Info
	Locks    Peeker
	Policies map[string]ratelimit.Policy
	// Stats gives the call counters (internal/metrics).
	Stats   func() Stats
	Version string
	// Timeout bounds one overview's Redis work.
	Timeout time.Duration
	Log     *slog.Logger
	// Listen starts the server's Redis subscription, whose notices count
	// the entries per minute (Count); it may wait, and is idempotent.
	Listen func()
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Collector takes overviews. One overview is shared by every caller within
// a second of it (cacheFor), so many open tabs cost Redis what one does.
type Collector struct {
	o       Options
	started time.Time
	counts  *perMinute
	listen  sync.Once

	mu      sync.Mutex // one overview taken at a time
	last    *tools.Overview
	lastAt  time.Time
	samples []sample // call counters, for calls/s
}

type sample struct {
	at    time.Time
	stats Stats
}

// NewCollector returns a Collector reading through o.
func NewCollector(o Options) *Collector {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Stats == nil {
		o.Stats = func() Stats { return Stats{} }
	}
	return &Collector{o: o, started: o.Now(), counts: newPerMinute()}
}

// Overview is the current overview: taken now, or the one taken less than
// a second ago. Parts Redis could not give are left empty and named in
// Notes; it fails only when ctx ends first.
func (c *Collector) Overview(ctx context.Context) (*tools.Overview, error) {
	if c.o.Listen != nil {
		c.listen.Do(func() { go c.o.Listen() })
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.o.Now()
	if c.last != nil && now.Sub(c.lastAt) < cacheFor {
		return c.last, nil
	}
	if c.o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.Timeout)
		defer cancel()
	}
	ov := c.take(ctx, now)
	if err := ctx.Err(); err != nil && errors.Is(err, context.Canceled) {
		return nil, err
	}
	c.last, c.lastAt = ov, now
	return ov, nil
}

// Fresh drops the cached overview, so the next one is taken anew (a lock
// was taken or released).
func (c *Collector) Fresh() {
	c.mu.Lock()
	c.last = nil
	c.mu.Unlock()
}

func (c *Collector) take(ctx context.Context, now time.Time) *tools.Overview {
	ov := &tools.Overview{GeneratedAt: now.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		Streams: []tools.StreamSummary{}, Groups: []tools.GroupSummary{}, Locks: []tools.LockSummary{},
		Rates: []tools.RateSummary{}, Notes: []string{}}
	note := func(part string, err error) {
		ov.Notes = append(ov.Notes, part+": "+sentence(err))
	}
	ov.Server = c.health(ctx, now)
	if !ov.Server.RedisOK {
		// Nothing more would answer: say so once.
		for _, name := range keyspace.Streams {
			ov.Streams = append(ov.Streams, tools.StreamSummary{Name: name, Key: c.o.Keys.Stream(name), PerMinute: c.counts.series(name, now)})
		}
		return ov
	}
	for _, name := range keyspace.Streams {
		s := tools.StreamSummary{Name: name, Key: c.o.Keys.Stream(name)}
		info, err := c.o.Groups.Info(ctx, name)
		if err != nil {
			note(name, err)
		} else {
			s.Length, s.LastID, s.DeadLetters = info.Length, info.LastID, info.DeadLetters
			if info.LastID != "" {
				s.NewestAgeMS = ptr(info.NewestAge.Milliseconds())
			}
			for _, g := range info.Groups {
				gs := tools.GroupSummary{Stream: name, Name: g.Name, Consumers: g.Consumers, Pending: g.Pending,
					OldestPendingID: g.OldestPendingID, DeadLetters: info.DeadLetters}
				if g.LagKnown {
					gs.Lag = ptr(g.Lag)
				}
				if g.OldestPendingID != "" {
					gs.OldestPendingAgeMS, gs.OldestPendingIdleMS = ptr(g.OldestPendingAge.Milliseconds()), ptr(g.OldestPendingIdle.Milliseconds())
				}
				ov.Groups = append(ov.Groups, gs)
			}
		}
		if !c.counts.seeded(name) {
			c.seed(ctx, name, now)
		}
		s.PerMinute = c.counts.series(name, now)
		ov.Streams = append(ov.Streams, s)
	}
	if err := c.locks(ctx, ov); err != nil {
		note("locks", err)
	}
	if err := c.rates(ctx, ov); err != nil {
		note("rates", err)
	}
	return ov
}

// health pings Redis and turns the call counters into rates over the last
// statsInterval.
func (c *Collector) health(ctx context.Context, now time.Time) tools.Health {
	h := tools.Health{Version: c.o.Version, UptimeMS: now.Sub(c.started).Milliseconds()}
	t0 := time.Now()
	err := c.o.Client.Ping(ctx).Err()
	h.RedisLatencyMS = float64(time.Since(t0).Microseconds()) / 1000
	h.RedisOK = err == nil
	if err != nil {
		h.RedisError = sentence(err)
	}
	st := c.o.Stats()
	h.InFlight = st.InFlight
	c.samples = append(c.samples, sample{now, st})
	// Keep the newest sample at least statsInterval old, and those after.
	for len(c.samples) > 2 && now.Sub(c.samples[1].at) >= statsInterval {
		c.samples = c.samples[1:]
	}
	if first := c.samples[0]; len(c.samples) > 1 {
		if secs := now.Sub(first.at).Seconds(); secs > 0 {
			h.CallsPerS = round2(float64(st.Calls-first.stats.Calls) / secs)
			h.ErrorsPerS = round2(float64(st.Errors-first.stats.Errors) / secs)
		}
	}
	if h.CallsPerS > 0 {
		h.ErrorRate = round2(h.ErrorsPerS / h.CallsPerS)
	}
	return h
}

// scan lists the keys matching pattern, at most limit of them, examining
// at most maxScanned keys on each master (every master of a cluster).
// truncated reports that there may be more.
func (c *Collector) scan(ctx context.Context, pattern string, limit int) (keys []string, truncated bool, err error) {
	var mu sync.Mutex
	one := func(ctx context.Context, cl redis.Cmdable) error {
		var cursor uint64
		for examined := 0; ; examined += scanCount {
			if examined >= maxScanned {
				mu.Lock()
				truncated = true
				mu.Unlock()
				return nil
			}
			page, next, err := cl.Scan(ctx, cursor, pattern, scanCount).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			keys = append(keys, page...)
			full := len(keys) > limit
			mu.Unlock()
			if full {
				truncated = true
				return nil
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if cc, ok := c.o.Client.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return one(ctx, m) })
	} else {
		err = one(ctx, c.o.Client)
	}
	slices.Sort(keys)
	keys = slices.Compact(keys)
	return keys, truncated, err
}

// locks lists the locks held now, through the locker's Peek (one script a
// lock: owner, fencing token and ttl that belong together).
func (c *Collector) locks(ctx context.Context, ov *tools.Overview) error {
	prefix := c.o.Keys.Lock("")
	keys, truncated, err := c.scan(ctx, prefix+"*", MaxLocks)
	if err != nil {
		return err
	}
	ov.LocksTruncated = truncated || len(keys) > MaxLocks
	if len(keys) > MaxLocks {
		keys = keys[:MaxLocks]
	}
	for _, k := range keys {
		st, err := c.o.Locks.Peek(ctx, strings.TrimPrefix(k, prefix))
		if err != nil {
			return err
		}
		if !st.Held {
			continue
		}
		l := tools.LockSummary{Resource: strings.TrimPrefix(k, prefix), Owner: st.Owner, FencingToken: st.Fence, TTLMS: -1}
		if st.TTL >= 0 {
			l.TTLMS = st.TTL.Milliseconds()
		}
		if !st.ExpiresAt.IsZero() {
			l.ExpiresAt = st.ExpiresAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		ov.Locks = append(ov.Locks, l)
	}
	ov.LocksTotal = len(ov.Locks)
	return nil
}

// rates lists the subjects using at least half their policy's limit: a
// ZCOUNT of each window from Redis' own time, as window.lua counts.
func (c *Collector) rates(ctx context.Context, ov *tools.Overview) error {
	if len(c.o.Policies) == 0 {
		return nil
	}
	prefix := strings.TrimSuffix(c.o.Keys.Rate("", ""), ":") // mcp:rate:
	keys, _, err := c.scan(ctx, prefix+"*", 10*MaxRates)
	if err != nil {
		return err
	}
	now, err := c.o.Client.Time(ctx).Result()
	if err != nil {
		return err
	}
	type row struct {
		policy  ratelimit.Policy
		subject string
		count   *redis.IntCmd
	}
	var rows []row
	pipe := c.o.Client.Pipeline()
	for _, k := range keys {
		name, subject, ok := strings.Cut(strings.TrimPrefix(k, prefix), ":")
		p, known := c.o.Policies[name]
		if !ok || !known || p.Limit <= 0 || p.Window <= 0 {
			continue
		}
		from := now.Add(-p.Window).UnixMicro()
		rows = append(rows, row{p, subject, pipe.ZCount(ctx, k, "("+strconv.FormatInt(from, 10), "+inf")})
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	for _, r := range rows {
		used := r.count.Val()
		f := float64(used) / float64(r.policy.Limit)
		if f < nearLimit {
			continue
		}
		ov.Rates = append(ov.Rates, tools.RateSummary{Policy: r.policy.Name, Subject: r.subject, Used: used,
			Limit: int64(r.policy.Limit), WindowMS: r.policy.Window.Milliseconds(), Fraction: round2(f)})
	}
	sort.SliceStable(ov.Rates, func(i, j int) bool { return ov.Rates[i].Fraction > ov.Rates[j].Fraction })
	if len(ov.Rates) > MaxRates {
		ov.Rates = ov.Rates[:MaxRates]
	}
	return nil
}

// seed counts a stream's entries of the last 30 minutes from their ids,
// once (at most seedEntries of them, the newest); later entries are
// counted from their notices (Count).
func (c *Collector) seed(ctx context.Context, name string, now time.Time) {
	from := now.Add(-minutes * time.Minute).UnixMilli()
	es, err := c.o.Client.XRevRangeN(ctx, c.o.Keys.Stream(name), "+", strconv.FormatInt(from, 10), seedEntries).Result()
	if err != nil {
		return
	}
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	c.counts.seed(name, ids)
}

// Count counts one entry appended to stream, by its id, for the entries
// per minute: the live updates call it for every notice heard.
func (c *Collector) Count(stream, id string) { c.counts.add(stream, id) }

func sentence(err error) string {
	var rerr redis.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "Redis did not answer in time"
	case errors.As(err, &rerr):
		return "Redis answered: " + clipped(rerr.Error())
	default:
		return clipped(err.Error())
	}
}

func clipped(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func round2(f float64) float64 {
	v, _ := strconv.ParseFloat(fmt.Sprintf("%.2f", f), 64)
	return v
}

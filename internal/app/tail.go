package app

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/clip"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/rdb"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/tools"
)

// TailLast is how many of the newest entries of each stream `mcp-redis
// tail` shows without --from.
const TailLast = 10

// ErrTailEmbedded is Tail's answer on redis.url embedded: that Redis lives
// inside the serving process, and a tail of its own would be empty.
var ErrTailEmbedded = errors.New(`redis.url is embedded: the embedded Redis lives inside the serving process, so tail cannot open it. ` +
	`The running server logs how to reach it at start: embedded redis: inspect it with redis-cli … command="redis-cli -u redis://:<password>@127.0.0.1:<port>"; ` +
	`pass that URL: mcp-redis tail --redis-url redis://:<password>@127.0.0.1:<port>`)

// TailOptions are what `mcp-redis tail` asks.
type TailOptions struct {
	// Streams are names without the prefix; none is all four.
	Streams []string
	// From is an entry id, an RFC 3339 time or a negative duration (-10m:
	// ten minutes ago); "" shows the last TailLast entries of each stream.
	From string
	// Filters are field=value pairs: an entry is shown when it has, for
	// every field named, one of the values given for it.
	Filters []string
	// Follow keeps printing the entries appended until ctx ends.
	Follow bool
	// JSON prints one object per entry, {"stream", "id", "fields"}, the
	// fields decoded as read_stream decodes them; else one line a person
	// reads, in colour with Color.
	JSON, Color bool
}

// Tail prints the entries of the chosen streams to out, merged in id
// order, reading them with cfg's Redis connection; with o.Follow it goes
// on until ctx ends, and returns nil then.
func Tail(ctx context.Context, cfg config.Config, o TailOptions, out io.Writer, log *slog.Logger) error {
	if cfg.Redis.URL == config.Embedded {
		return ErrTailEmbedded
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	streams, err := tailStreams(o.Streams, cfg.Redis.Prefix)
	if err != nil {
		return err
	}
	match, err := tailFilters(o.Filters, streams, cfg.Audit.Chain)
	if err != nil {
		return err
	}
	from, ago, err := parseFrom(o.From)
	if err != nil {
		return err
	}
	// go-redis's own lines (a failed dial each second while Redis is
	// down) go to the log at debug level; Follow says it once.
	rdb.SetLogger(log)
	conn, emb, err := openRedis(cfg.Redis, log)
	if err != nil {
		return err
	}
	defer conn.Close()
	if emb != nil {
		defer emb.Close()
	}
	if ago > 0 {
		// Entry ids are Redis's clock, so "ago" is too.
		now, err := conn.Client.Time(ctx).Result()
		if err != nil {
			return rdb.Wrap("read the time of redis (TIME) for --from "+o.From, err)
		}
		from = idAt(now.Add(-ago))
	}
	_, cluster := conn.Client.(*redis.ClusterClient)
	t := &stream.Tail{
		Client: conn.Client, Keys: keyspace.Keyspace{Prefix: cfg.Redis.Prefix}, Streams: streams,
		From: from, Last: TailLast, Match: match, PerStream: cluster, Log: log,
	}
	w := bufio.NewWriter(out)
	p := &tailPrinter{w: w, json: o.JSON, color: o.Color}
	cur, err := t.Backlog(ctx, p.print)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if ctx.Err() != nil {
		return nil
	}
	if err != nil || !o.Follow {
		return err
	}
	return t.Follow(ctx, cur, func(batch []stream.TailEntry) error {
		for _, e := range batch {
			if err := p.print(e); err != nil {
				return err
			}
		}
		return w.Flush()
	})
}

// tailStreams checks the streams asked for, in the order given, once
// each; none is every stream.
func tailStreams(names []string, prefix string) ([]string, error) {
	if len(names) == 0 {
		return keyspace.Streams, nil
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(keyspace.Streams, n) {
			if s, ok := strings.CutPrefix(n, prefix); ok && slices.Contains(keyspace.Streams, s) {
				return nil, fmt.Errorf("stream %q: name it without the prefix %q: %s", n, prefix, s)
			}
			return nil, fmt.Errorf("unknown stream %q: the streams are %s", n, strings.Join(keyspace.Streams, ", "))
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// streamFields are the fields the entries of stream may have: its record
// type's, and the chain's when it is chained.
func streamFields(s string, chained []string) []string {
	fields := stream.FieldNames(tools.RecordType(s))
	if slices.Contains(chained, s) {
		fields = append(fields, audit.PrevHashField, audit.HashField)
	}
	return fields
}

// tailFilters turns field=value pairs into a match: a field given more
// than once matches any of its values. A field no chosen stream has is an
// error naming it, as it would match nothing.
func tailFilters(filters, streams, chained []string) (map[string][]string, error) {
	if len(filters) == 0 {
		return nil, nil
	}
	var known []string
	for _, s := range streams {
		for _, f := range streamFields(s, chained) {
			if !slices.Contains(known, f) {
				known = append(known, f)
			}
		}
	}
	match := map[string][]string{}
	var problems []error
	for _, f := range filters {
		field, value, ok := strings.Cut(f, "=")
		switch {
		case !ok || field == "":
			problems = append(problems, fmt.Errorf("--filter %q: not field=value (e.g. status=error)", f))
		case !slices.Contains(known, field):
			problems = append(problems, fmt.Errorf("--filter %q: no entry of %s has a field %q; their fields are %s",
				f, strings.Join(streams, ", "), field, strings.Join(known, ", ")))
		default:
			match[field] = append(match[field], value)
		}
	}
	return match, errors.Join(problems...)
}

// parseFrom reads --from: an entry id (or - for the oldest), an RFC 3339
// time (the first id of its millisecond), or a negative duration, which
// Tail turns into an id with Redis's clock.
func parseFrom(s string) (id string, ago time.Duration, err error) {
	if s == "" {
		return "", 0, nil
	}
	if s != "+" && !strings.HasPrefix(s, "(") && stream.ParseID(s) == nil {
		return s, 0, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d >= 0 {
			return "", 0, fmt.Errorf("--from %q: a duration goes back in time: -%s", s, s)
		}
		return "", -d, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return idAt(t), 0, nil
	}
	return "", 0, fmt.Errorf("--from %q: not an entry id (1767323045678-0, or - for the oldest), an RFC 3339 time (2026-01-02T03:04:05Z) or a negative duration (-10m)", s)
}

// idAt is the first entry id of t's millisecond.
func idAt(t time.Time) string {
	return strconv.FormatInt(max(t.UnixMilli(), 0), 10) + "-0"
}

// tailPrinter writes the entries, as JSON lines or as lines for a person.
type tailPrinter struct {
	w           io.Writer
	json, color bool
}

// tailJSON is one line of `tail --json`.
type tailJSON struct {
	Stream string         `json:"stream"`
	ID     string         `json:"id"`
	Fields map[string]any `json:"fields"`
}

func (p *tailPrinter) print(e stream.TailEntry) error {
	if p.json {
		b, err := json.Marshal(tailJSON{Stream: e.Stream, ID: e.ID, Fields: stream.Decode(e.Values, tools.RecordType(e.Stream))})
		if err != nil {
			return fmt.Errorf("encode entry %s of %s: %w", e.ID, e.Stream, err)
		}
		_, err = p.w.Write(append(b, '\n'))
		return err
	}
	_, err := io.WriteString(p.w, p.line(e))
	return err
}

// ANSI styles of the human format.
const (
	reset = "\x1b[0m"
	dim   = "\x1b[2m"
	bold  = "\x1b[1m"
	red   = "\x1b[31m"
	green = "\x1b[32m"
)

var streamColor = map[string]string{
	keyspace.AuditLog:      "\x1b[36m", // cyan
	keyspace.CCWJUpdate:    "\x1b[35m", // magenta
	keyspace.UserFeedback:  "\x1b[33m", // yellow
	keyspace.WorkflowEvent: "\x1b[34m", // blue
}

// Bounds of the human format: a key field's value, a value of the rest,
// and the whole rest, in bytes (cut with …).
const (
	keyValueBytes  = 64
	restValueBytes = 40
	restBytes      = 120
)

// humanSkips are the fields a line leaves out of its rest, to keep it
// short: the chain's hashes, and the stamp but for caller and origin
// (--json has them all).
var humanSkips = []string{audit.PrevHashField, audit.HashField, "recorded_at", "mcp_session_id", "client"}

// line is one entry for a person: its time (the entry's timestamp, else
// the id's), stream, id, the key fields of its pub/sub notice, and a short
// rest, without humanSkips. Every value is quoted when it
// holds a space or a character that is not printable, so nothing a
// writer put in an entry reaches the terminal as a control sequence.
func (p *tailPrinter) line(e stream.TailEntry) string {
	var b strings.Builder
	paint := func(style, s string) {
		if p.color && style != "" {
			b.WriteString(style + s + reset)
		} else {
			b.WriteString(s)
		}
	}
	when, fromTimestamp := entryTime(e)
	paint(dim, when)
	b.WriteString("  ")
	paint(streamColor[e.Stream], fmt.Sprintf("%-18s", e.Stream))
	b.WriteString("  ")
	paint(dim, fmt.Sprintf("%-15s", e.ID))
	key := stream.NoticeFields(e.Stream)
	for _, f := range key {
		v, ok := e.Values[f]
		if !ok {
			continue
		}
		style := bold
		if f == "status" {
			switch v {
			case "ok":
				style = green
			case "error":
				style = red
			}
		}
		b.WriteString("  " + f + "=")
		paint(style, show(clip.String(v, keyValueBytes)))
	}
	skip := append(slices.Clone(key), humanSkips...)
	if fromTimestamp {
		skip = append(skip, "timestamp")
	}
	order := stream.FieldNames(tools.RecordType(e.Stream))
	var extra []string
	for f := range e.Values {
		if !slices.Contains(order, f) {
			extra = append(extra, f)
		}
	}
	slices.Sort(extra)
	var rest []string
	for _, f := range append(order, extra...) {
		if v, ok := e.Values[f]; ok && !slices.Contains(skip, f) {
			rest = append(rest, show(f)+"="+show(clip.String(v, restValueBytes)))
		}
	}
	if len(rest) > 0 {
		b.WriteString("  ")
		paint(dim, clip.String(strings.Join(rest, " "), restBytes))
	}
	b.WriteString("\n")
	return b.String()
}

// entryTime is the entry's timestamp in the server's form, and true; or,
// when it has none that parses, the time of its id, and false.
func entryTime(e stream.TailEntry) (string, bool) {
	if ts, err := time.Parse(time.RFC3339Nano, e.Values["timestamp"]); err == nil {
		return stream.Timestamp(ts), true
	}
	ms, _, _ := strings.Cut(e.ID, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return stream.Timestamp(time.UnixMilli(n)), false
}

// show is v as it is, or quoted (Go syntax) when it is empty or holds a
// space, a character that is not printable, or bytes that are not UTF-8.
func show(v string) string {
	if v == "" {
		return `""`
	}
	for _, r := range v {
		if r == ' ' || r == utf8.RuneError || !unicode.IsPrint(r) {
			return strconv.Quote(v)
		}
	}
	return v
}

// Command go-worker is a member of a consumer group on one of the streams
// mcp-redis writes: it creates the group, takes its own pending entries
// first and then new ones (XREADGROUP), does the work of each entry once
// (keyed by its event_id, or log_id on the audit stream) and acknowledges
// it (XACK). It stands for a user's own service beside the server's
// claim_events and ack_events tools; see examples/README.md.
//
//	go run ./examples/go-worker --group indexers --from 0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
)

// streamShape is what a worker needs to know of one of the server's
// streams (README, "Entry encoding" and "Pub/sub notices").
type streamShape struct {
	// idField names the entry's own id, the key of the work.
	idField string
	// jsonFields hold JSON text: objects, arrays, any-JSON values and
	// numbers. Every other field is a string, as it is.
	jsonFields []string
	// keyFields are printed, in this order, on the entry's line.
	keyFields []string
}

var streams = map[string]streamShape{
	"audit_log_stream": {
		idField:    "log_id",
		jsonFields: []string{"inputs", "outputs", "duration_ms", "input_bytes"},
		keyFields:  []string{"log_id", "module", "procedure", "status", "workflow_id", "session_id"},
	},
	"ccwj_update_stream": {
		idField:    "event_id",
		jsonFields: []string{"value"},
		keyFields:  []string{"event_id", "workflow_id", "phase_id", "field", "value"},
	},
	"user_feedback": {
		idField:   "event_id",
		keyFields: []string{"event_id", "workflow_id", "phase_id", "session_id", "user_id", "module", "procedure"},
	},
	"workflow_events": {
		idField:   "event_id",
		keyFields: []string{"event_id", "workflow_id", "phase", "event_type"},
	},
}

// doneTTL is how long an entry's work is remembered as done: the server's
// default idempotency window, after which the same id written again is a
// new entry.
const doneTTL = 24 * time.Hour

// poll bounds one blocking read, so a stop is seen within it.
const poll = time.Second

type options struct {
	redisURL, prefix, stream, group, consumer, from string
	count, max                                      int
	idle                                            time.Duration
	json                                            bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("go-worker: ")
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		log.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

func parseFlags(args []string) (options, error) {
	host, _ := os.Hostname()
	var o options
	fs := flag.NewFlagSet("go-worker", flag.ContinueOnError)
	fs.StringVar(&o.redisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis the server writes to")
	fs.StringVar(&o.prefix, "prefix", "mcp:", "the server's key prefix (redis.prefix)")
	fs.StringVar(&o.stream, "stream", "workflow_events", "stream, without the prefix: "+strings.Join(streamNames(), ", "))
	fs.StringVar(&o.group, "group", "workers", "consumer group")
	fs.StringVar(&o.consumer, "consumer", "go-worker@"+host, "this worker's name in the group; keep it across restarts to get its pending entries back")
	fs.StringVar(&o.from, "from", "$", "where a group this worker creates starts: $ (entries added from now on) or 0 (every entry the stream holds)")
	fs.IntVar(&o.count, "count", 10, "entries per read")
	fs.IntVar(&o.max, "max", 0, "stop after this many entries (0: no limit)")
	fs.DurationVar(&o.idle, "idle", 0, "stop when no new entry came for this long (0: never)")
	fs.BoolVar(&o.json, "json", false, `print one JSON object per entry: {"stream","id","status","fields"}`)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if _, ok := streams[o.stream]; !ok {
		return o, fmt.Errorf("--stream %q is not one of the server's streams (%s)", o.stream, strings.Join(streamNames(), ", "))
	}
	if o.count < 1 {
		return o, fmt.Errorf("--count must be at least 1")
	}
	return o, nil
}

func streamNames() []string {
	return []string{"audit_log_stream", "ccwj_update_stream", "user_feedback", "workflow_events"}
}

type worker struct {
	options
	rdb   *redis.Client
	key   string
	shape streamShape
	out   io.Writer
	n     int // entries handled
}

func run(ctx context.Context, o options, out io.Writer) error {
	opts, err := redis.ParseURL(o.redisURL)
	if err != nil {
		return fmt.Errorf("--redis-url: %w", err)
	}
	w := &worker{options: o, rdb: redis.NewClient(opts), key: o.prefix + o.stream, shape: streams[o.stream], out: out}
	defer w.rdb.Close()

	err = w.rdb.XGroupCreateMkStream(ctx, w.key, o.group, o.from).Err()
	switch {
	case err == nil:
		log.Printf("created group %s on %s, starting at %s", o.group, w.key, o.from)
	case strings.HasPrefix(err.Error(), "BUSYGROUP"):
		// The group exists already: join it where it is.
	default:
		return fmt.Errorf("create group %s on %s: %w", o.group, w.key, err)
	}

	// Entries handed to this consumer earlier and never acknowledged (it
	// stopped between reading and XACK) come first: reading from id 0
	// gives them back, oldest first, without blocking.
	last := "0"
	for !w.done(ctx) {
		msgs, err := w.read(ctx, last, -1)
		if err != nil {
			return err
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			if w.done(ctx) {
				return nil
			}
			if err := w.handle(m); err != nil {
				return err
			}
			last = m.ID
		}
	}

	// Then entries nobody in the group has had yet.
	lastNew := time.Now()
	for !w.done(ctx) {
		block := poll
		if o.idle > 0 {
			left := o.idle - time.Since(lastNew)
			if left <= 0 {
				log.Printf("no new entry for %v: stopping", o.idle)
				return nil
			}
			block = max(min(block, left), time.Millisecond) // BLOCK 0 would wait for ever
		}
		msgs, err := w.read(ctx, ">", block)
		if err != nil {
			return err
		}
		if len(msgs) > 0 {
			lastNew = time.Now()
		}
		for _, m := range msgs {
			if w.done(ctx) {
				return nil
			}
			if err := w.handle(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// done reports whether the worker is to stop: told to, or --max reached.
func (w *worker) done(ctx context.Context) bool {
	return ctx.Err() != nil || (w.max > 0 && w.n >= w.max)
}

// read is one XREADGROUP from id; block < 0 does not wait.
func (w *worker) read(ctx context.Context, id string, block time.Duration) ([]redis.XMessage, error) {
	count := w.count
	if w.max > 0 {
		count = min(count, w.max-w.n)
	}
	// Not cut by a stop: a read blocks for at most poll, and what it hands
	// out is handled before the worker stops.
	res, err := w.rdb.XReadGroup(context.WithoutCancel(ctx), &redis.XReadGroupArgs{
		Group: w.group, Consumer: w.consumer, Streams: []string{w.key, id}, Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil // BLOCK ran out
	}
	if err != nil {
		return nil, fmt.Errorf("read %s as %s/%s: %w", w.key, w.group, w.consumer, err)
	}
	if len(res) == 0 {
		return nil, nil
	}
	return res[0].Messages, nil
}

// handle does the work of one entry and acknowledges it. Delivery is at
// least once: a worker that stops after the work and before its XACK gets
// the entry back when it starts again (as another consumer of the group
// does once the server's claim_events reclaims it). The done mark, set
// right after the work and before the XACK, tells such an entry apart;
// work that must happen exactly once would keep the mark in the same
// transaction as its own effect.
func (w *worker) handle(m redis.XMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	w.n++
	if len(m.Values) == 0 {
		// Pending, but trimmed from the stream since: nothing to do.
		w.report(m.ID, "gone", nil)
		return w.ack(ctx, m.ID)
	}
	fields := decode(m.Values, w.shape)
	id, _ := fields[w.shape.idField].(string)
	mark := w.prefix + "done:{" + w.key + "}:" + w.group + ":" + id
	if id != "" {
		seen, err := w.rdb.Exists(ctx, mark).Result()
		if err != nil {
			return fmt.Errorf("check %s: %w", mark, err)
		}
		if seen > 0 {
			w.report(m.ID, "already_done", fields)
			return w.ack(ctx, m.ID)
		}
	}

	w.report(m.ID, "done", fields) // the work: here, telling of the entry

	if id != "" {
		if err := w.rdb.Set(ctx, mark, m.ID, doneTTL).Err(); err != nil {
			return fmt.Errorf("mark %s done: %w", id, err)
		}
	}
	return w.ack(ctx, m.ID)
}

func (w *worker) ack(ctx context.Context, id string) error {
	if err := w.rdb.XAck(ctx, w.key, w.group, id).Err(); err != nil {
		return fmt.Errorf("acknowledge %s: %w", id, err)
	}
	return nil
}

// decode turns an entry's values into JSON values as the README's entry
// encoding says: strings as they are, JSON fields parsed. A value that is
// not valid JSON is kept as the string Redis holds.
func decode(values map[string]any, shape streamShape) map[string]any {
	out := make(map[string]any, len(values))
	for k, v := range values {
		s, _ := v.(string)
		out[k] = s
		if slices.Contains(shape.jsonFields, k) && json.Valid([]byte(s)) {
			out[k] = json.RawMessage(s)
		}
	}
	return out
}

// report prints one line for an entry: the entry id, what became of it and
// its key fields, or with --json one object with every field decoded.
func (w *worker) report(id, status string, fields map[string]any) {
	if w.json {
		fmt.Fprintln(w.out, marshal(map[string]any{"stream": w.stream, "id": id, "status": status, "fields": fields}))
		return
	}
	var b strings.Builder
	b.WriteString(id + " " + status)
	for _, k := range w.shape.keyFields {
		v, ok := fields[k]
		if !ok {
			continue
		}
		if s, isString := v.(string); isString && !slices.Contains(w.shape.jsonFields, k) {
			b.WriteString(" " + k + "=" + quote(s))
		} else {
			b.WriteString(" " + k + "=" + marshal(v))
		}
	}
	fmt.Fprintln(w.out, b.String())
}

// marshal is v's compact JSON, with <, > and & as they are.
func marshal(v any) string {
	var b strings.Builder
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(v)
	return strings.TrimSuffix(b.String(), "\n")
}

// quote quotes a value holding a space or a character that is not
// printable, so no entry can reach the terminal as escape sequences.
func quote(s string) string {
	if s == "" || strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '"' }) {
		return strconv.Quote(s)
	}
	return s
}

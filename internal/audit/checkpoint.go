package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

// CheckpointDomain separates a checkpoint's signed message.
const CheckpointDomain = "mcp-redis/audit-checkpoint/v1"

// Checkpoint is a signed statement that entry EntryID of stream Key has
// hash Hash and is the Length-th entry of the chain. The checkpoint stream
// holds one per entry, with the fields entry_id, hash, length, time,
// key_id and signature (standard base64 of the Ed25519 signature over
// Message).
type Checkpoint struct {
	ID                 string // its own id in the checkpoint stream
	Key, EntryID, Hash string
	Length             int64
	Time, KeyID        string
	Signature          []byte
}

// Message is what a checkpoint signs, encoded like the chain:
// lp(CheckpointDomain) || lp(key) || lp(entry id) || lp(hash) ||
// lp(length in decimal) || lp(time).
func (c Checkpoint) Message() []byte {
	var b []byte
	for _, s := range []string{CheckpointDomain, c.Key, c.EntryID, c.Hash, strconv.FormatInt(c.Length, 10), c.Time} {
		b = lp(b, s)
	}
	return b
}

// Verify reports whether c is signed by pub.
func (c Checkpoint) Verify(pub ed25519.PublicKey) bool {
	return len(c.Signature) == ed25519.SignatureSize && ed25519.Verify(pub, c.Message(), c.Signature)
}

func (c Checkpoint) values() []string {
	return []string{"entry_id", c.EntryID, "hash", c.Hash, "length", strconv.FormatInt(c.Length, 10),
		"time", c.Time, "key_id", c.KeyID, "signature", base64.StdEncoding.EncodeToString(c.Signature)}
}

func parseCheckpoint(key string, m redis.XMessage) (Checkpoint, error) {
	c := Checkpoint{ID: m.ID, Key: key}
	get := func(f string) string { s, _ := m.Values[f].(string); return s }
	c.EntryID, c.Hash, c.Time, c.KeyID = get("entry_id"), get("hash"), get("time"), get("key_id")
	var err error
	if c.Length, err = strconv.ParseInt(get("length"), 10, 64); err != nil {
		return c, fmt.Errorf("length %q is not a number", get("length"))
	}
	if c.Signature, err = base64.StdEncoding.DecodeString(get("signature")); err != nil {
		return c, fmt.Errorf("signature is not base64")
	}
	return c, nil
}

// Sign fills c's time, key id and signature.
func (s *Signer) Sign(c *Checkpoint, now time.Time) {
	c.Time = now.UTC().Format("2006-01-02T15:04:05.000Z07:00")
	c.KeyID = s.ID
	c.Signature = ed25519.Sign(s.priv, c.Message())
}

// CheckpointMaxLen is the MAXLEN ~ retention of a checkpoint stream.
const CheckpointMaxLen = 100000

// Client is the part of go-redis the audit package uses.
type Client interface {
	Do(ctx context.Context, args ...any) *redis.Cmd
	Get(ctx context.Context, key string) *redis.StringCmd
	XAdd(ctx context.Context, a *redis.XAddArgs) *redis.StringCmd
	XRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
	XRevRangeN(ctx context.Context, stream, start, stop string, count int64) *redis.XMessageSliceCmd
}

// Checkpointer signs checkpoints of the chained streams: one for every
// Every-th entry of a chain, and one every Interval for a chain that has
// advanced since its newest checkpoint.
type Checkpointer struct {
	c        Client
	keys     keyspace.Keyspace
	signer   *Signer
	streams  []string
	every    int64
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger

	due  chan Checkpoint
	stop chan struct{}
	wg   sync.WaitGroup
}

// CheckpointerConfig configures NewCheckpointer.
type CheckpointerConfig struct {
	Streams  []string
	Every    int
	Interval time.Duration
	// Timeout bounds each Redis command.
	Timeout time.Duration
}

// NewCheckpointer starts signing checkpoints; Close stops it.
func NewCheckpointer(c Client, keys keyspace.Keyspace, s *Signer, cfg CheckpointerConfig, log *slog.Logger) *Checkpointer {
	cp := &Checkpointer{c: c, keys: keys, signer: s, streams: cfg.Streams, every: int64(max(cfg.Every, 1)),
		interval: cfg.Interval, timeout: cfg.Timeout, log: log, due: make(chan Checkpoint, 64), stop: make(chan struct{})}
	if cp.timeout <= 0 {
		cp.timeout = 2 * time.Second
	}
	cp.wg.Add(1)
	go cp.run()
	return cp
}

// Linked is told of each entry appended to a chain (stream.WithChain's
// onLink). It never blocks: when checkpoints back up, the next interval's
// checkpoint covers the chain.
func (cp *Checkpointer) Linked(stream, key, id, hash string, length int64) {
	if length%cp.every != 0 {
		return
	}
	select {
	case cp.due <- Checkpoint{Key: key, EntryID: id, Hash: hash, Length: length}:
	default:
	}
}

// Close stops the checkpointer and waits for the checkpoint in progress.
func (cp *Checkpointer) Close() {
	close(cp.stop)
	cp.wg.Wait()
}

func (cp *Checkpointer) run() {
	defer cp.wg.Done()
	var tick <-chan time.Time
	if cp.interval > 0 {
		t := time.NewTicker(cp.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-cp.stop:
			return
		case c := <-cp.due:
			cp.write(c)
		case <-tick:
			for _, s := range cp.streams {
				cp.sinceLast(s)
			}
		}
	}
}

// sinceLast signs the head of stream when it is not the newest checkpoint.
func (cp *Checkpointer) sinceLast(stream string) {
	ctx, cancel := context.WithTimeout(context.Background(), cp.timeout)
	defer cancel()
	key := cp.keys.Stream(stream)
	h, err := cp.c.Get(ctx, cp.keys.ChainHead(stream)).Result()
	if err == redis.Nil {
		return
	}
	if err != nil {
		cp.log.Warn("audit checkpoint: read the chain head", "stream", key, "err", err)
		return
	}
	id, hash, length, ok := ParseHead(h)
	if !ok {
		cp.log.Warn("audit checkpoint: the chain head is malformed", "stream", key)
		return
	}
	last, err := cp.c.XRevRangeN(ctx, cp.keys.Checkpoints(stream), "+", "-", 1).Result()
	if err != nil {
		cp.log.Warn("audit checkpoint: read the newest checkpoint", "stream", key, "err", err)
		return
	}
	if len(last) == 1 && last[0].Values["entry_id"] == id {
		return
	}
	cp.write(Checkpoint{Key: key, EntryID: id, Hash: hash, Length: length})
}

func (cp *Checkpointer) write(c Checkpoint) {
	ctx, cancel := context.WithTimeout(context.Background(), cp.timeout)
	defer cancel()
	cp.signer.Sign(&c, time.Now())
	stream := strings.TrimPrefix(c.Key, cp.keys.Prefix)
	err := cp.c.XAdd(ctx, &redis.XAddArgs{Stream: cp.keys.Checkpoints(stream), MaxLen: CheckpointMaxLen, Approx: true, Values: c.values()}).Err()
	if err != nil {
		cp.log.Warn("audit checkpoint: write", "stream", c.Key, "entry", c.EntryID, "err", err)
	}
}

// ParseHead splits a chain head "<entry id> <hash> <length>".
func ParseHead(s string) (id, hash string, length int64, ok bool) {
	parts := strings.Split(s, " ")
	if len(parts) != 3 || !IsHash(parts[1]) {
		return "", "", 0, false
	}
	n, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", "", 0, false
	}
	return parts[0], parts[1], n, true
}

// WriteCheckpoint signs c now and appends it to its stream's checkpoint
// stream; tools that build chains outside the server (the bench) use it.
func WriteCheckpoint(ctx context.Context, c Client, keys keyspace.Keyspace, stream string, s *Signer, cp Checkpoint) error {
	cp.Key = keys.Stream(stream)
	s.Sign(&cp, time.Now())
	return c.XAdd(ctx, &redis.XAddArgs{Stream: keys.Checkpoints(stream), MaxLen: CheckpointMaxLen, Approx: true, Values: cp.values()}).Err()
}

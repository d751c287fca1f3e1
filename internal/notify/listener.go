package notify

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Listener is the server's one subscription to its notice channels. It
// SUBSCRIBEs to the channels by name, not PSUBSCRIBE to a pattern: Redis
// matches a pattern literally against the user's channel rules, so the
// least-privilege user (&mcp:*) may not PSUBSCRIBE mcp:events:*, while it
// may SUBSCRIBE to each channel. With sharded pub/sub each channel has a
// subscription of its own (SSUBSCRIBE), as its shard may be another node.
//
// go-redis reconnects a subscription by itself and subscribes again; the
// notices sent meanwhile are lost, so every confirmation after the first
// ones is reported to Resubscribed, whose subscribers must re-read.
type Listener struct {
	rdb      redis.UniversalClient
	channels []string
	sharded  bool
	// Handle is told of every notice; it must not block.
	handle func(channel, payload string)
	// resubscribed is told when a subscription was made again.
	resubscribed func()
	log          *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	subs    []*redis.PubSub
	ready   chan struct{} // closed once every channel was confirmed
	pending int           // confirmations still awaited; guarded by mu
	running sync.WaitGroup
}

// NewListener returns a Listener of channels, not yet subscribed: Start
// subscribes.
func NewListener(c redis.UniversalClient, channels []string, sharded bool, handle func(channel, payload string), resubscribed func(), log *slog.Logger) *Listener {
	return &Listener{rdb: c, channels: channels, sharded: sharded, handle: handle, resubscribed: resubscribed, log: log,
		ready: make(chan struct{})}
}

// Start subscribes, once, and waits up to wait for Redis to confirm every
// channel, so that a change made after Start returns is heard (when Redis
// answers: if it does not, go-redis keeps trying and the subscription
// starts when Redis is back).
func (l *Listener) Start(ctx context.Context, wait time.Duration) {
	l.mu.Lock()
	if !l.started && !l.closed {
		l.started = true
		l.pending = len(l.channels)
		groups := [][]string{l.channels}
		if l.sharded {
			groups = nil
			for _, c := range l.channels {
				groups = append(groups, []string{c})
			}
		}
		for _, g := range groups {
			var ps *redis.PubSub
			if l.sharded {
				ps = l.rdb.SSubscribe(context.WithoutCancel(ctx), g...)
			} else {
				ps = l.rdb.Subscribe(context.WithoutCancel(ctx), g...)
			}
			l.subs = append(l.subs, ps)
			l.running.Add(1)
			go l.run(ps, len(g))
		}
	}
	l.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-l.ready:
	case <-t.C:
	case <-ctx.Done():
	}
}

// Ready reports whether every channel has been confirmed once.
func (l *Listener) Ready() bool {
	select {
	case <-l.ready:
		return true
	default:
		return false
	}
}

func (l *Listener) run(ps *redis.PubSub, channels int) {
	defer l.running.Done()
	confirmed := 0
	for m := range ps.ChannelWithSubscriptions(redis.WithChannelSize(1024)) {
		switch m := m.(type) {
		case *redis.Message:
			l.handle(m.Channel, m.Payload)
		case *redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "ssubscribe" {
				continue
			}
			confirmed++
			if confirmed <= channels {
				l.confirm()
				continue
			}
			// Confirmed again: the connection was lost and remade.
			if confirmed%channels == 0 {
				l.log.Info("notify: subscribed again after a lost connection; subscribers are told to re-read")
				l.resubscribed()
			}
		}
	}
}

func (l *Listener) confirm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending--
	if l.pending == 0 {
		close(l.ready)
	}
}

// Close ends the subscriptions and waits for their goroutines.
func (l *Listener) Close() {
	l.mu.Lock()
	l.closed = true
	subs := l.subs
	l.subs = nil
	l.mu.Unlock()
	for _, ps := range subs {
		_ = ps.Close()
	}
	l.running.Wait()
}

// Notice is what the server's consumers read of one notice payload,
// decoded once for all of them: the entry id and workflow of a stream's
// notice, the resource of a lock's.
type Notice struct {
	ID         string `json:"id"`
	WorkflowID string `json:"workflow_id"`
	Resource   string `json:"resource"`
}

// Decode reads a notice payload; what is not JSON reads as no fields.
func Decode(payload string) Notice {
	var n Notice
	_ = json.Unmarshal([]byte(payload), &n)
	return n
}

package lock

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// waker wakes local waiters when a lock is released: one subscription per
// server to the release channel, fanned out by resource. A missed notice
// (pub/sub is at-most-once) costs a waiter at most one poll interval.
type waker struct {
	rdb     redis.UniversalClient
	channel string
	sharded bool // SSUBSCRIBE, not SUBSCRIBE

	mu        sync.Mutex
	ps        *redis.PubSub
	listeners map[string]*listenerSet
}

type listenerSet struct{ chans map[chan struct{}]struct{} }

func newWaker(c redis.UniversalClient, channel string) *waker {
	return &waker{rdb: c, channel: channel, listeners: map[string]*listenerSet{}}
}

// listen returns a channel that receives when resource is released, and a
// function to stop listening.
func (w *waker) listen(ctx context.Context, resource string) (<-chan struct{}, func()) {
	w.subscribe(ctx)
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	set := w.listeners[resource]
	if set == nil {
		set = &listenerSet{chans: map[chan struct{}]struct{}{}}
		w.listeners[resource] = set
	}
	set.chans[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(set.chans, ch)
		if len(set.chans) == 0 && w.listeners[resource] == set {
			delete(w.listeners, resource)
		}
		w.mu.Unlock()
	}
}

// subscribe opens the subscription once, waiting for Redis to confirm it
// so the first waiter cannot miss a release; if Redis does not answer,
// waiters poll and the next one tries again.
func (w *waker) subscribe(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ps != nil {
		return
	}
	subscribe := w.rdb.Subscribe
	if w.sharded {
		subscribe = w.rdb.SSubscribe
	}
	ps := subscribe(context.WithoutCancel(ctx), w.channel)
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := ps.Receive(rctx); err != nil {
		_ = ps.Close()
		return
	}
	w.ps = ps
	go w.run(ps.Channel(redis.WithChannelSize(256)))
}

func (w *waker) run(msgs <-chan *redis.Message) {
	for m := range msgs {
		var note struct {
			Event    string `json:"event"`
			Resource string `json:"resource"`
		}
		// A grant frees nothing: only a release is worth a waiter's try.
		if json.Unmarshal([]byte(m.Payload), &note) != nil || note.Event == EventAcquired {
			continue
		}
		w.mu.Lock()
		if set := w.listeners[note.Resource]; set != nil {
			for ch := range set.chans {
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
		w.mu.Unlock()
	}
}

func (w *waker) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ps != nil {
		_ = w.ps.Close()
		w.ps = nil
	}
}

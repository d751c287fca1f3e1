// Package notify fans changes out to subscribers: one Redis subscription
// per server process (Listener) tells a Hub which topics changed, and the
// Hub tells each subscriber of a topic, through a send function of the
// subscriber's own that must never block.
//
// A subscriber's backlog is a set, not a queue: a topic that changes again
// before the subscriber took the last change is pending once, however often
// it changed. So a slow subscriber costs at most one pending mark per topic
// it holds (at most MaxTopics), never stalls the others (each has its own
// goroutine), and loses only the intermediate changes: it is told once,
// when it can take it, that the topic changed, and re-reads it.
package notify

import (
	"errors"
	"strings"
	"sync"
	"time"
)

// Delivery is what a subscriber's send function reports.
type Delivery int

const (
	// Sent: the subscriber took the notice.
	Sent Delivery = iota
	// Full: the subscriber cannot take it now. The topic stays pending and
	// is offered again after Options.Retry.
	Full
	// Gone: the subscriber is no more; the Hub forgets it.
	Gone
)

// Send offers a subscriber the label of one changed topic (the name it
// subscribed under). It must not block.
type Send func(label string) Delivery

// Options bound a Hub.
type Options struct {
	// MaxTopics bounds the labels one subscriber may hold; 100 when zero.
	MaxTopics int
	// Gap is the least time between two rounds of notices to one
	// subscriber: changes within it are coalesced. 20ms when zero (at
	// 1,000 writes/s and 50 subscribers, notices reach them within 21 ms
	// at p99; cmd/mcp-redis-bench --subscribe).
	Gap time.Duration
	// Retry is how long a subscriber that reported Full waits before it is
	// offered its pending topics again. 100ms when zero.
	Retry time.Duration
	// Changed, when set, is told of a topic that gained its first
	// subscriber or lost its last one; it runs outside the Hub's lock and
	// should ask Live for the current state, as calls may overtake each
	// other.
	Changed func(topic string)
}

// ErrTooMany is Subscribe's error when the subscriber already holds
// MaxTopics labels.
var ErrTooMany = errors.New("too many subscriptions")

// Hub is the fan-out. The zero value is not usable: call NewHub.
type Hub struct {
	o Options

	mu     sync.Mutex
	closed bool
	subs   map[string]*subscriber
	// topics maps a topic to its subscribers and, for each, the labels
	// under which it holds the topic.
	topics  map[string]map[*subscriber]map[string]struct{}
	running sync.WaitGroup
}

type subscriber struct {
	key  string
	send Send
	// labels maps each label held to its topic.
	labels map[string]string
	// pending are the labels to tell, in the order they changed; queued
	// is the same set, for the check.
	pending []string
	queued  map[string]bool
	wake    chan struct{} // cap 1
	quit    chan struct{}
}

// NewHub returns a Hub with o's bounds.
func NewHub(o Options) *Hub {
	if o.MaxTopics <= 0 {
		o.MaxTopics = 100
	}
	if o.Gap <= 0 {
		o.Gap = 20 * time.Millisecond
	}
	if o.Retry <= 0 {
		o.Retry = 100 * time.Millisecond
	}
	return &Hub{o: o, subs: map[string]*subscriber{}, topics: map[string]map[*subscriber]map[string]struct{}{}}
}

// Subscribe makes subscriber key hold topic under label (the name it will
// be told). The first Subscribe of a key gives its send function; later
// ones keep the first. Holding a label again is a no-op.
func (h *Hub) Subscribe(key, topic, label string, send Send) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errors.New("notify: hub closed")
	}
	s := h.subs[key]
	if s == nil {
		s = &subscriber{key: key, send: send, labels: map[string]string{}, queued: map[string]bool{},
			wake: make(chan struct{}, 1), quit: make(chan struct{})}
		h.subs[key] = s
		h.running.Add(1)
		go h.run(s)
	}
	if _, ok := s.labels[label]; ok {
		// A label names one topic: the caller derives the topic from it.
		h.mu.Unlock()
		return nil
	}
	if len(s.labels) >= h.o.MaxTopics {
		h.mu.Unlock()
		return ErrTooMany
	}
	s.labels[label] = topic
	holders := h.topics[topic]
	first := holders == nil
	if first {
		holders = map[*subscriber]map[string]struct{}{}
		h.topics[topic] = holders
	}
	if holders[s] == nil {
		holders[s] = map[string]struct{}{}
	}
	holders[s][label] = struct{}{}
	h.mu.Unlock()
	if first {
		h.changed(topic)
	}
	return nil
}

// Unsubscribe drops label from subscriber key; an unknown one is a no-op.
func (h *Hub) Unsubscribe(key, label string) {
	h.mu.Lock()
	s := h.subs[key]
	var last string
	if s != nil {
		last = h.drop(s, label)
	}
	h.mu.Unlock()
	if last != "" {
		h.changed(last)
	}
}

// drop removes label from s and returns its topic when s was its last
// holder. h.mu is held.
func (h *Hub) drop(s *subscriber, label string) (last string) {
	topic, ok := s.labels[label]
	if !ok {
		return ""
	}
	delete(s.labels, label)
	if s.queued[label] {
		delete(s.queued, label)
		for i, p := range s.pending {
			if p == label {
				s.pending = append(s.pending[:i], s.pending[i+1:]...)
				break
			}
		}
	}
	holders := h.topics[topic]
	delete(holders[s], label)
	if len(holders[s]) == 0 {
		delete(holders, s)
	}
	if len(holders) == 0 {
		delete(h.topics, topic)
		return topic
	}
	return ""
}

// Forget drops subscriber key and everything it holds, and ends its
// goroutine.
func (h *Hub) Forget(key string) {
	h.mu.Lock()
	s := h.subs[key]
	var lost []string
	if s != nil {
		lost = h.forget(s)
	}
	h.mu.Unlock()
	for _, t := range lost {
		h.changed(t)
	}
}

// forget removes s, returning the topics it was the last holder of. h.mu
// is held.
func (h *Hub) forget(s *subscriber) (lost []string) {
	for label := range s.labels {
		if t := h.drop(s, label); t != "" {
			lost = append(lost, t)
		}
	}
	delete(h.subs, s.key)
	close(s.quit)
	return lost
}

// Publish marks topic changed for every subscriber that holds it. It never
// blocks on a subscriber.
func (h *Hub) Publish(topic string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, labels := range h.topics[topic] {
		for label := range labels {
			h.mark(s, label)
		}
	}
}

// PublishAll marks every topic changed: after the Redis subscription was
// lost and made again, when any change may have been missed.
func (h *Hub) PublishAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		for label := range s.labels {
			h.mark(s, label)
		}
	}
}

// mark makes label pending for s. h.mu is held.
func (h *Hub) mark(s *subscriber, label string) {
	if !s.queued[label] {
		s.queued[label] = true
		s.pending = append(s.pending, label)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Live reports whether anyone holds topic.
func (h *Hub) Live(topic string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.topics[topic] != nil
}

// Topics returns the topics held that begin with prefix.
func (h *Hub) Topics(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for t := range h.topics {
		if strings.HasPrefix(t, prefix) {
			out = append(out, t)
		}
	}
	return out
}

// Held returns how many labels subscriber key holds.
func (h *Hub) Held(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.subs[key]; s != nil {
		return len(s.labels)
	}
	return 0
}

// Pending returns how many labels of subscriber key wait to be told (for
// tests and metrics).
func (h *Hub) Pending(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.subs[key]; s != nil {
		return len(s.pending)
	}
	return 0
}

// MaxTopics is the bound on one subscriber's labels.
func (h *Hub) MaxTopics() int { return h.o.MaxTopics }

// Close forgets every subscriber and waits for their goroutines.
func (h *Hub) Close() {
	h.mu.Lock()
	h.closed = true
	for _, s := range h.subs {
		h.forget(s)
	}
	h.mu.Unlock()
	h.running.Wait()
}

func (h *Hub) changed(topic string) {
	if h.o.Changed != nil {
		h.o.Changed(topic)
	}
}

// take empties s's pending labels and returns them. h.mu is held.
func (s *subscriber) take() []string {
	p := s.pending
	s.pending = nil
	clear(s.queued)
	return p
}

// run tells s of its pending labels, a round at a time, at most one round
// per Gap; a Full subscriber keeps what it did not take, and is offered it
// again after Retry.
func (h *Hub) run(s *subscriber) {
	defer h.running.Done()
	for {
		select {
		case <-s.wake:
		case <-s.quit:
			return
		}
		for {
			h.mu.Lock()
			labels := s.take()
			h.mu.Unlock()
			if len(labels) == 0 {
				break
			}
			pause := h.o.Gap
			for i, label := range labels {
				d := s.send(label)
				if d == Sent {
					continue
				}
				if d == Gone {
					h.Forget(s.key)
					return
				}
				h.mu.Lock()
				for _, l := range labels[i:] {
					if _, held := s.labels[l]; held && !s.queued[l] {
						s.queued[l] = true
						s.pending = append(s.pending, l)
					}
				}
				h.mu.Unlock()
				pause = h.o.Retry
				break
			}
			if !sleep(pause, s.quit) {
				return
			}
		}
	}
}

// sleep waits d, or reports false when quit closes first.
func sleep(d time.Duration, quit <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-quit:
		return false
	}
}

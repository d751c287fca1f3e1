package notify_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/notify"
)

// recorder is a subscriber's side: what it was told, and whether it can
// take more.
type recorder struct {
	mu    sync.Mutex
	got   []string
	full  atomic.Bool
	gone  atomic.Bool
	calls atomic.Int64
}

func (r *recorder) send(label string) notify.Delivery {
	r.calls.Add(1)
	switch {
	case r.gone.Load():
		return notify.Gone
	case r.full.Load():
		return notify.Full
	}
	r.mu.Lock()
	r.got = append(r.got, label)
	r.mu.Unlock()
	return notify.Sent
}

func (r *recorder) told() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func (r *recorder) count(label string) int {
	n := 0
	for _, l := range r.told() {
		if l == label {
			n++
		}
	}
	return n
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func hub(t *testing.T, o notify.Options) *notify.Hub {
	h := notify.NewHub(o)
	t.Cleanup(h.Close)
	return h
}

// A subscriber that takes nothing holds at most one pending mark per topic
// however often the topic changes, and never holds up another; once it
// can take again, it is told once that the topic changed.
func TestASlowSubscriberHoldsOneMarkPerTopicAndStallsNoOne(t *testing.T) {
	h := hub(t, notify.Options{Gap: time.Millisecond, Retry: 5 * time.Millisecond})
	slow, fast := &recorder{}, &recorder{}
	slow.full.Store(true)
	for _, s := range []struct {
		key string
		r   *recorder
	}{{"slow", slow}, {"fast", fast}} {
		for _, topic := range []string{"a", "b"} {
			if err := h.Subscribe(s.key, topic, "uri:"+topic, s.r.send); err != nil {
				t.Fatal(err)
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 20000 {
			h.Publish([]string{"a", "b"}[i%2])
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a subscriber that takes nothing")
	}
	eventually(t, 2*time.Second, "the fast subscriber is told of both topics", func() bool {
		return fast.count("uri:a") > 0 && fast.count("uri:b") > 0
	})
	for range 50 {
		if n := h.Pending("slow"); n > 2 {
			t.Fatalf("the slow subscriber has %d pending marks for 2 topics", n)
		}
		time.Sleep(time.Millisecond)
	}
	if n := len(fast.told()); n >= 20000 {
		t.Errorf("the fast subscriber was told %d times for 20000 changes: nothing was coalesced", n)
	}
	before := slow.calls.Load()
	eventually(t, time.Second, "the slow subscriber is offered its topics again", func() bool { return slow.calls.Load() > before })

	slow.full.Store(false)
	eventually(t, time.Second, "the slow subscriber, able again, is told of both topics", func() bool {
		return slow.count("uri:a") == 1 && slow.count("uri:b") == 1
	})
	time.Sleep(50 * time.Millisecond)
	if got := slow.told(); len(got) != 2 {
		t.Errorf("the slow subscriber was told %v after 20000 changes it could not take; want each topic once", got)
	}
}

// Changes within the gap are told once, and the last change is always
// told: a subscriber never misses that a topic changed after it last read.
func TestChangesWithinTheGapAreCoalescedAndTheLastIsAlwaysTold(t *testing.T) {
	h := hub(t, notify.Options{Gap: 100 * time.Millisecond})
	r := &recorder{}
	if err := h.Subscribe("s", "t", "uri:t", r.send); err != nil {
		t.Fatal(err)
	}
	h.Publish("t")
	eventually(t, time.Second, "the first change is told at once", func() bool { return r.count("uri:t") == 1 })
	for range 100 {
		h.Publish("t")
	}
	time.Sleep(20 * time.Millisecond)
	if n := r.count("uri:t"); n != 1 {
		t.Errorf("told %d times within the gap; want once", n)
	}
	eventually(t, time.Second, "the changes after the first are told, once, after the gap", func() bool { return r.count("uri:t") == 2 })
	time.Sleep(250 * time.Millisecond)
	if n := r.count("uri:t"); n != 2 {
		t.Errorf("told %d times for 101 changes in two rounds; want 2", n)
	}
}

// A subscriber holds at most MaxTopics labels; holding one again is not a
// new one, and unsubscribing makes room.
func TestASubscriberHoldsAtMostMaxTopics(t *testing.T) {
	h := hub(t, notify.Options{MaxTopics: 3})
	r := &recorder{}
	for i := range 3 {
		if err := h.Subscribe("s", fmt.Sprint(i), fmt.Sprint("uri:", i), r.send); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.Subscribe("s", "0", "uri:0", r.send); err != nil {
		t.Errorf("holding a label again: %v", err)
	}
	if err := h.Subscribe("s", "3", "uri:3", r.send); !errors.Is(err, notify.ErrTooMany) {
		t.Errorf("a fourth label: %v; want ErrTooMany", err)
	}
	if err := h.Subscribe("other", "3", "uri:3", r.send); err != nil {
		t.Errorf("another subscriber is not bounded by the first: %v", err)
	}
	h.Unsubscribe("s", "uri:1")
	if err := h.Subscribe("s", "3", "uri:3", r.send); err != nil {
		t.Errorf("after an unsubscribe: %v", err)
	}
	if n := h.Held("s"); n != 3 {
		t.Errorf("holds %d labels", n)
	}
}

// An unsubscribed label is told nothing more, even a change pending when
// it was dropped; the other labels of the same topic still are.
func TestUnsubscribeStopsTheNoticesOfThatLabel(t *testing.T) {
	h := hub(t, notify.Options{Gap: time.Millisecond})
	r := &recorder{}
	for _, label := range []string{"uri:x", "uri:x-again"} {
		if err := h.Subscribe("s", "x", label, r.send); err != nil {
			t.Fatal(err)
		}
	}
	r.full.Store(true)
	h.Publish("x")
	eventually(t, time.Second, "the change is offered", func() bool { return r.calls.Load() > 0 })
	h.Unsubscribe("s", "uri:x")
	r.full.Store(false)
	eventually(t, time.Second, "the label still held is told", func() bool { return r.count("uri:x-again") == 1 })
	h.Publish("x")
	eventually(t, time.Second, "and told again", func() bool { return r.count("uri:x-again") == 2 })
	if n := r.count("uri:x"); n != 0 {
		t.Errorf("the dropped label was told %d times", n)
	}
}

// Changed hears a topic's first subscriber and its last one leaving (by
// Unsubscribe, Forget, or a send that reports Gone); Forget ends the
// subscriber's goroutine.
func TestTopicsComeAliveAndDieWithTheirSubscribers(t *testing.T) {
	var mu sync.Mutex
	var changes []string
	var h *notify.Hub
	h = hub(t, notify.Options{Gap: time.Millisecond, Changed: func(topic string) {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, fmt.Sprintf("%s:%v", topic, h.Live(topic)))
	}})
	seen := func() string {
		mu.Lock()
		defer mu.Unlock()
		return fmt.Sprint(changes)
	}
	goroutines := runtime.NumGoroutine()
	a, b := &recorder{}, &recorder{}
	_ = h.Subscribe("a", "t", "uri:t", a.send)
	_ = h.Subscribe("b", "t", "uri:t", b.send)
	_ = h.Subscribe("b", "u", "uri:u", b.send)
	h.Unsubscribe("a", "uri:t")
	h.Forget("a")
	if got := seen(); got != "[t:true u:true]" {
		t.Errorf("after two subscribers of t and one of u, one of t leaving: %s", got)
	}
	b.gone.Store(true)
	h.Publish("t")
	eventually(t, time.Second, "a subscriber that is gone is forgotten", func() bool { return h.Held("b") == 0 })
	if got := seen(); got != "[t:true u:true t:false u:false]" && got != "[t:true u:true u:false t:false]" {
		t.Errorf("after the last subscriber went: %s", got)
	}
	if h.Live("t") || len(h.Topics("")) != 0 {
		t.Errorf("topics still held: %v", h.Topics(""))
	}
	eventually(t, time.Second, "the subscribers' goroutines end", func() bool { return runtime.NumGoroutine() <= goroutines })
}

// PublishAll tells every subscriber of every label it holds.
func TestPublishAllTellsEverySubscriberOfEverything(t *testing.T) {
	h := hub(t, notify.Options{Gap: time.Millisecond})
	a, b := &recorder{}, &recorder{}
	_ = h.Subscribe("a", "t", "uri:t", a.send)
	_ = h.Subscribe("a", "u", "uri:u", a.send)
	_ = h.Subscribe("b", "u", "uri:u", b.send)
	h.PublishAll()
	eventually(t, time.Second, "everyone is told", func() bool {
		return a.count("uri:t") == 1 && a.count("uri:u") == 1 && b.count("uri:u") == 1
	})
}

package dashboard_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/dashboard"
	"github.com/mcp-redis/mcp-redis/internal/groups"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/lock"
	"github.com/mcp-redis/mcp-redis/internal/stream"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// newLive is a Live over a stream store on the shared Redis, under a
// prefix of the test's own; it hears no notices but its own polling (the
// test calls Notice when it wants a prompt read).
func newLive(t *testing.T) (*dashboard.Live, *redis.Client, keyspace.Keyspace) {
	t.Helper()
	c, prefix := testredis.Shared(t)
	keys := keyspace.Keyspace{Prefix: prefix}
	st := stream.NewStore(c, keys, func(string) int64 { return 10000 }, time.Hour)
	locker := lock.New(c, keys)
	t.Cleanup(locker.Close)
	col := dashboard.NewCollector(dashboard.Options{Client: c, Keys: keys, Timeout: time.Second,
		Groups: groups.New(c, keys, 5, func(string) int64 { return 10000 }), Locks: locker})
	l := dashboard.NewLive(dashboard.LiveOptions{Streams: st, Collector: col, Keys: keys, MaxEntryBytes: 64 << 10, Timeout: 2 * time.Second})
	t.Cleanup(l.Close)
	return l, c, keys
}

func add(t *testing.T, c *redis.Client, keys keyspace.Keyspace, workflow, eventType string) string {
	t.Helper()
	id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Stream(keyspace.WorkflowEvent),
		Values: []any{"event_id", "e", "workflow_id", workflow, "phase", "p", "event_type", eventType, "details", "d"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// ids collects the entry ids t is sent until n have come.
func ids(t *testing.T, tab *dashboard.Tab, n int) []string {
	t.Helper()
	var out []string
	deadline := time.After(5 * time.Second)
	for len(out) < n {
		select {
		case f := <-tab.Frames:
			tab.Sent(f)
			if f.Event != "entries" {
				continue
			}
			var e struct {
				Stream  string `json:"stream"`
				Entries []struct {
					ID     string         `json:"id"`
					Fields map[string]any `json:"fields"`
				} `json:"entries"`
			}
			if err := json.Unmarshal(f.Data, &e); err != nil {
				t.Fatalf("%s: %v", f.Data, err)
			}
			for _, x := range e.Entries {
				out = append(out, x.ID)
			}
		case <-tab.Gone():
			t.Fatalf("dropped after %d of %d", len(out), n)
		case <-deadline:
			t.Fatalf("%d of %d entries in 5s: %v", len(out), n, out)
		}
	}
	return out
}

func TestLiveTabsGetTheirEntriesInOrderEachReadOnce(t *testing.T) {
	l, c, keys := newLive(t)
	all, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent})
	if err != nil {
		t.Fatal(err)
	}
	done, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent, Match: map[string]string{"event_type": "done"}})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // both joined: they start from now
	var want, wantDone []string
	for i := range 20 {
		typ := "started"
		if i%3 == 0 {
			typ = "done"
		}
		id := add(t, c, keys, "wf", typ)
		want = append(want, id)
		if typ == "done" {
			wantDone = append(wantDone, id)
		}
		if i%5 == 0 {
			l.Notice(keys.Events(keyspace.WorkflowEvent), `{"id":"`+id+`","workflow_id":"wf"}`)
		}
	}
	l.Notice(keys.Events(keyspace.WorkflowEvent), `{}`)
	if got := ids(t, all, len(want)); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("all: %v, want %v", got, want)
	}
	if got := ids(t, done, len(wantDone)); strings.Join(got, " ") != strings.Join(wantDone, " ") {
		t.Errorf("done: %v, want %v", got, wantDone)
	}

	// A page back with the id it had gets what it missed, then the rest.
	missed := []string{add(t, c, keys, "wf", "x"), add(t, c, keys, "wf", "y")}
	back, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent, After: want[len(want)-1]})
	if err != nil {
		t.Fatal(err)
	}
	later := add(t, c, keys, "wf", "z")
	l.Notice(keys.Events(keyspace.WorkflowEvent), `{}`)
	if got, w := ids(t, back, 3), append(missed, later); strings.Join(got, " ") != strings.Join(w, " ") {
		t.Errorf("back: %v, want %v", got, w)
	}
}

func TestLiveTellsAPageTooFarBehindToReadAgain(t *testing.T) {
	l, c, keys := newLive(t)
	first := add(t, c, keys, "wf", "a")
	pipe := c.Pipeline()
	for range 1200 {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Stream(keyspace.WorkflowEvent), Values: []any{"event_type", "b"}})
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	tab, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent, After: first})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-tab.Gone():
	case <-time.After(5 * time.Second):
		t.Fatal("a page 1200 entries behind was not told to read again")
	}
	if f := tab.Final(); f == nil || f.Event != "resync" {
		t.Errorf("final event %+v, want resync", f)
	}
}

func TestLiveDropsAPageThatDoesNotTakeItsEvents(t *testing.T) {
	l, c, keys := newLive(t)
	slow, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent})
	if err != nil {
		t.Fatal(err)
	}
	fast, err := l.Open(dashboard.Follow{Stream: keyspace.WorkflowEvent})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	var want []string
	got := make(chan []string, 1)
	go func() {
		var out []string
		for len(out) < 200 {
			select {
			case f := <-fast.Frames:
				fast.Sent(f)
				var e struct {
					Entries []struct {
						ID string `json:"id"`
					} `json:"entries"`
				}
				if f.Event == "entries" && json.Unmarshal(f.Data, &e) == nil {
					for _, x := range e.Entries {
						out = append(out, x.ID)
					}
				}
			case <-fast.Gone():
				got <- out
				return
			case <-time.After(10 * time.Second):
				got <- out
				return
			}
		}
		got <- out
	}()
	big := strings.Repeat("x", 60<<10)
	for range 200 {
		// 12 MB in all: more than a page may have waiting (8 MiB).
		id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: keys.Stream(keyspace.WorkflowEvent),
			Values: []any{"event_type", "a", "details", big}}).Result()
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
		l.Notice(keys.Events(keyspace.WorkflowEvent), `{}`)
	}
	select {
	case <-slow.Gone():
	case <-time.After(5 * time.Second):
		t.Fatal("the page that takes nothing was not dropped")
	}
	if g := <-got; strings.Join(g, " ") != strings.Join(want, " ") {
		t.Errorf("the page that reads got %v", g)
	}
	if n := l.Tabs(); n != 1 {
		t.Errorf("%d pages follow, want 1", n)
	}
}

func TestLiveRefusesPagesPastTheBound(t *testing.T) {
	l, _, _ := newLive(t)
	for range dashboard.MaxTabs {
		if _, err := l.Open(dashboard.Follow{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Open(dashboard.Follow{}); err != dashboard.ErrTooManyTabs {
		t.Errorf("page %d: %v, want ErrTooManyTabs", dashboard.MaxTabs+1, err)
	}
}

func TestAppHTMLInlinesThePage(t *testing.T) {
	html, err := dashboard.AppHTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-mode="app"`, "<style>", "<script>"} {
		if !strings.Contains(html, want) {
			t.Errorf("no %s", want)
		}
	}
	for _, bad := range []string{`href="app.css"`, `src="app.js"`, `data-mode="http"`} {
		if strings.Contains(html, bad) {
			t.Errorf("still %s", bad)
		}
	}
}

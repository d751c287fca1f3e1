package app

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

func TestParseFromTakesAnIDATimeOrANegativeDuration(t *testing.T) {
	for _, c := range []struct {
		in   string
		id   string
		ago  time.Duration
		fail string
	}{
		{in: ""},
		{in: "1767323045678-3", id: "1767323045678-3"},
		{in: "1767323045678", id: "1767323045678"},
		{in: "0", id: "0"},
		{in: "-", id: "-"},
		{in: "2026-01-02T03:04:05.678Z", id: "1767323045678-0"},
		{in: "2026-01-02T05:04:05.678+02:00", id: "1767323045678-0"},
		{in: "1969-01-01T00:00:00Z", id: "0-0"},
		{in: "-10m", ago: 10 * time.Minute},
		{in: "-1h30m", ago: 90 * time.Minute},
		{in: "10m", fail: "-10m"},
		{in: "+", fail: "not an entry id"},
		{in: "(1-0", fail: "not an entry id"},
		{in: "yesterday", fail: "negative duration"},
		{in: "2026-01-02", fail: "RFC 3339"},
	} {
		id, ago, err := parseFrom(c.in)
		switch {
		case c.fail != "":
			if err == nil || !strings.Contains(err.Error(), c.fail) {
				t.Errorf("parseFrom(%q) = %q, %v, %v; want an error saying %q", c.in, id, ago, err, c.fail)
			}
		case err != nil || id != c.id || ago != c.ago:
			t.Errorf("parseFrom(%q) = %q, %v, %v; want %q, %v", c.in, id, ago, err, c.id, c.ago)
		}
	}
}

func TestTailFiltersNameTheFieldNoChosenStreamHas(t *testing.T) {
	all := keyspace.Streams
	m, err := tailFilters([]string{"status=ok", "status=error", "workflow_id=wf=1", "caller=ci"}, all, nil)
	if err != nil || strings.Join(m["status"], ",") != "ok,error" || m["workflow_id"][0] != "wf=1" || m["caller"][0] != "ci" {
		t.Errorf("filters: %v, %v", m, err)
	}
	if _, err := tailFilters([]string{"hash=abc"}, all, []string{keyspace.AuditLog}); err != nil {
		t.Errorf("hash of a chained stream: %v", err)
	}
	for _, c := range []struct {
		filters, streams []string
		want             string
	}{
		{[]string{"colour=red"}, all, `has a field "colour"`},
		{[]string{"status=ok"}, []string{keyspace.UserFeedback}, `no entry of user_feedback has a field "status"`},
		{[]string{"hash=abc"}, all, `"hash"`},
		{[]string{"status"}, all, "not field=value"},
		{[]string{"=ok"}, all, "not field=value"},
	} {
		if _, err := tailFilters(c.filters, c.streams, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("tailFilters(%v, %v) = %v, want an error saying %s", c.filters, c.streams, err, c.want)
		}
	}
}

func TestTailStreamsListsTheValidNames(t *testing.T) {
	if got, err := tailStreams([]string{"workflow_events", "audit_log_stream", "workflow_events"}, "mcp:"); err != nil || strings.Join(got, ",") != "workflow_events,audit_log_stream" {
		t.Errorf("tailStreams = %v, %v", got, err)
	}
	if _, err := tailStreams([]string{"events"}, "mcp:"); err == nil || !strings.Contains(err.Error(), "audit_log_stream, ccwj_update_stream, user_feedback, workflow_events") {
		t.Errorf("an unknown stream: %v", err)
	}
	if _, err := tailStreams([]string{"mcp:user_feedback"}, "mcp:"); err == nil || !strings.Contains(err.Error(), "without the prefix") {
		t.Errorf("a prefixed name: %v", err)
	}
}

func TestTailOnTheEmbeddedRedisIsAnErrorSayingHowToReachIt(t *testing.T) {
	cfg := config.Defaults()
	err := Tail(context.Background(), cfg, TailOptions{}, io.Discard, slog.New(slog.DiscardHandler))
	if !errors.Is(err, ErrTailEmbedded) || !strings.Contains(err.Error(), "--redis-url redis://:<password>@127.0.0.1:<port>") {
		t.Errorf("Tail on embedded: %v", err)
	}
}

func TestTheHumanLineShowsTheKeyFieldsAndEscapesWhatATerminalWouldRun(t *testing.T) {
	e := stream.TailEntry{Stream: keyspace.AuditLog, Entry: stream.Entry{ID: "1767323045678-0", Values: map[string]string{
		"module": "planner", "procedure": "draft", "status": "error", "log_id": "L-1", "rationale": "evil\x1b[2J\u202e", "note": "with space",
		"hash": "abc", "prev_hash": "def", "inputs": strings.Repeat("x", 100),
	}}}
	p := &tailPrinter{}
	got := p.line(e)
	for _, w := range []string{"2026-01-02T03:04:05.678Z  audit_log_stream    1767323045678-0  log_id=L-1  module=planner  procedure=draft  status=error  ",
		`rationale="evil\x1b[2J\u202e"`, `note="with space"`, "inputs=" + strings.Repeat("x", 40) + "…"} {
		if !strings.Contains(got, w) {
			t.Errorf("line %q does not hold %q", got, w)
		}
	}
	if strings.Contains(got, "\x1b") || strings.Contains(got, "hash=") || strings.Contains(got, "\u202e") {
		t.Errorf("line %q", got)
	}
	p.color = true
	if got := p.line(e); !strings.Contains(got, "status="+red+"error"+reset) || !strings.Contains(got, streamColor[keyspace.AuditLog]) {
		t.Errorf("coloured line %q", got)
	}
	// The time of an entry without a timestamp is its id's.
	if got := p.line(stream.TailEntry{Stream: keyspace.WorkflowEvent, Entry: stream.Entry{ID: "0-1", Values: map[string]string{"event_type": "x"}}}); !strings.Contains(got, "1970-01-01T00:00:00.000Z") {
		t.Errorf("line of an entry without timestamp %q", got)
	}
	p.color = false
	e.Values["timestamp"] = "2026-01-02T05:00:00+02:00"
	if got := p.line(e); !strings.HasPrefix(got, "2026-01-02T03:00:00.000Z") || strings.Contains(got, "timestamp=") {
		t.Errorf("line with a timestamp %q", got)
	}
}

package main_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// tailed is one line of `mcp-redis tail --json`.
type tailed struct {
	Stream string         `json:"stream"`
	ID     string         `json:"id"`
	Fields map[string]any `json:"fields"`
}

// parseTailed reads every line of out as one JSON object: tail --json
// prints nothing else, on stdout or stderr.
func parseTailed(t *testing.T, out string) []tailed {
	t.Helper()
	var got []tailed
	for line := range strings.Lines(out) {
		var e tailed
		d := json.NewDecoder(strings.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&e); err != nil {
			t.Fatalf("line %q of tail --json is not an entry: %v\noutput:\n%s", line, err, out)
		}
		got = append(got, e)
	}
	return got
}

// tailJSON runs `mcp-redis tail --json args…` on the shared Redis under
// prefix; it must exit 0.
func tailJSON(t *testing.T, prefix string, args ...string) []tailed {
	t.Helper()
	out, err := runBinary(t, runBound, nil, append([]string{"tail", "--json", "--redis-url", testredis.URL(), "--prefix", prefix}, args...)...)
	if err != nil {
		t.Fatalf("tail --json %v: %v\n%s", args, err, out)
	}
	return parseTailed(t, out)
}

// tailFails runs `mcp-redis tail args…` on the shared Redis under prefix;
// it must exit 1 and say every one of want.
func tailFails(t *testing.T, prefix string, args []string, want ...string) {
	t.Helper()
	out, err := runBinary(t, runBound, nil, append([]string{"tail", "--redis-url", testredis.URL(), "--prefix", prefix}, args...)...)
	if err == nil {
		t.Fatalf("tail %v exited 0:\n%s", args, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tail %v does not say %q:\n%s", args, w, out)
		}
	}
}

// xadd appends an entry under id, the fields in the server's encoding.
func xadd(t *testing.T, rdb *redis.Client, key, id string, kv ...string) string {
	t.Helper()
	got, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: key, ID: id, Values: kv}).Result()
	if err != nil {
		t.Fatalf("XADD %s %s: %v", key, id, err)
	}
	return got
}

// ids lists the stream and id of each entry, "stream/id".
func ids(es []tailed) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Stream + "/" + e.ID
	}
	return out
}

func ms(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// compareIDs orders two entry ids (ms-seq) as Redis does.
func compareIDs(a, b string) int {
	num := func(id string) (uint64, uint64) {
		m, s, _ := strings.Cut(id, "-")
		mi, _ := strconv.ParseUint(m, 10, 64)
		si, _ := strconv.ParseUint(s, 10, 64)
		return mi, si
	}
	am, as := num(a)
	bm, bs := num(b)
	if am != bm {
		return cmp.Compare(am, bm)
	}
	return cmp.Compare(as, bs)
}

func TestTailJSONPrintsWhatTheToolsWroteInIDOrderDecodedAsReadStreamDecodes(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	s := spawn(t, nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	audit := s.ok("audit_log", map[string]any{"module": "planner", "procedure": "draft", "status": "ok", "workflow_id": "wf-1",
		"inputs": map[string]any{"q": "x", "n": []int{1, 2}}, "log_id": "L-1"})
	delta := s.ok("publish_ccwj_delta", map[string]any{"workflow_id": "wf-1", "phase_id": "plan", "field": "steps", "value": 42})
	event := s.ok("emit_workflow_event", map[string]any{"workflow_id": "wf-1", "phase": "plan", "event_type": "phase_started"})
	fb := s.ok("submit_feedback", map[string]any{"feedback": "good plan", "user_id": "u-1"})

	got := tailJSON(t, prefix)
	if !slices.IsSortedFunc(got, func(a, b tailed) int { return compareIDs(a.ID, b.ID) }) {
		t.Errorf("entries not in id order: %v", ids(got))
	}
	byID := map[string]tailed{}
	for _, e := range got {
		byID[e.Stream+"/"+e.ID] = e
	}
	find := func(stream string, written map[string]any) tailed {
		t.Helper()
		e, ok := byID[stream+"/"+written["entry_id"].(string)]
		if !ok {
			t.Fatalf("entry %s of %s not printed: %v", written["entry_id"], stream, ids(got))
		}
		return e
	}
	a := find("audit_log_stream", audit)
	if a.Fields["module"] != "planner" || a.Fields["log_id"] != "L-1" || a.Fields["origin"] != "client" {
		t.Errorf("audit entry fields: %v", a.Fields)
	}
	if in, ok := a.Fields["inputs"].(map[string]any); !ok || in["q"] != "x" || fmt.Sprint(in["n"]) != "[1 2]" {
		t.Errorf("inputs is not decoded to its object: %#v", a.Fields["inputs"])
	}
	if v := find("ccwj_update_stream", delta).Fields["value"]; v != json.Number("42") {
		t.Errorf("value is %#v, want the number 42", v)
	}
	if e := find("workflow_events", event); e.Fields["event_type"] != "phase_started" {
		t.Errorf("workflow event fields: %v", e.Fields)
	}
	if e := find("user_feedback", fb); e.Fields["feedback"] != "good plan" {
		t.Errorf("feedback fields: %v", e.Fields)
	}
	// The server's own call records are in the trail too, with their
	// numbers decoded.
	records := 0
	for _, e := range got {
		if e.Stream == "audit_log_stream" && e.Fields["origin"] == "server" {
			records++
			if _, ok := e.Fields["duration_ms"].(json.Number); !ok {
				t.Errorf("duration_ms of a call record is %#v, not a number", e.Fields["duration_ms"])
			}
		}
	}
	if records != 3 {
		t.Errorf("%d call records, want 3 (the three tools other than audit_log): %v", records, ids(got))
	}
}

// Without --from, the newest 10 entries of each stream; --from an id, an
// RFC 3339 time or a negative duration; several streams merged by id.
func TestTailMergesTheStreamsByIDFromAnIDATimeOrADuration(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	audit, events := prefix+"audit_log_stream", prefix+"workflow_events"
	now := time.Now()
	// Twelve audit entries a minute apart, the last 1 minute ago, and a
	// workflow event between each pair of the last three.
	var auditIDs []string
	for i := range 12 {
		at := now.Add(time.Duration(i-12) * time.Minute)
		auditIDs = append(auditIDs, xadd(t, rdb, audit, ms(at)+"-0", "module", "m", "procedure", fmt.Sprintf("p%d", i), "status", "ok"))
	}
	var eventIDs []string
	for i := range 3 {
		at := now.Add(time.Duration(i-3)*time.Minute + 30*time.Second)
		eventIDs = append(eventIDs, xadd(t, rdb, events, ms(at)+"-0", "workflow_id", "wf", "phase", "p", "event_type", fmt.Sprintf("e%d", i)))
	}
	a := func(i int) string { return "audit_log_stream/" + auditIDs[i] }
	e := func(i int) string { return "workflow_events/" + eventIDs[i] }

	want := []string{a(2), a(3), a(4), a(5), a(6), a(7), a(8), a(9), e(0), a(10), e(1), a(11), e(2)}
	if got := ids(tailJSON(t, prefix)); !slices.Equal(got, want) {
		t.Errorf("tail (the last 10 of each stream):\n got %v\nwant %v", got, want)
	}
	if got := ids(tailJSON(t, prefix, "workflow_events")); !slices.Equal(got, []string{e(0), e(1), e(2)}) {
		t.Errorf("tail workflow_events: %v", got)
	}

	from := []string{a(9), e(0), a(10), e(1), a(11), e(2)}
	at9, _ := strconv.ParseInt(strings.TrimSuffix(auditIDs[9], "-0"), 10, 64)
	for _, f := range []string{auditIDs[9], strings.TrimSuffix(auditIDs[9], "-0"), time.UnixMilli(at9).UTC().Format(time.RFC3339Nano),
		time.UnixMilli(at9).In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)} {
		if got := ids(tailJSON(t, prefix, "--from", f)); !slices.Equal(got, from) {
			t.Errorf("tail --from %s:\n got %v\nwant %v", f, got, from)
		}
	}
	// 3m15s ago: after audit entry 8 (4 minutes ago), before entry 9 (3).
	if got := ids(tailJSON(t, prefix, "--from", "-3m15s")); !slices.Equal(got, from) {
		t.Errorf("tail --from -3m15s:\n got %v\nwant %v", got, from)
	}
	if got := ids(tailJSON(t, prefix, "--from", "-")); len(got) != 15 || got[0] != a(0) {
		t.Errorf("tail --from - (the oldest): %v", got)
	}
	if got := tailJSON(t, prefix, "--from", "-10s"); len(got) != 0 {
		t.Errorf("tail --from -10s: %v, want nothing", ids(got))
	}
	tailFails(t, prefix, []string{"--from", "10m"}, `--from "10m"`, "-10m")
	tailFails(t, prefix, []string{"--from", "yesterday"}, `--from "yesterday"`, "RFC 3339", "negative duration")
}

func TestTailFiltersOnFieldsAndNamesAFieldNoStreamHas(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	audit, feedback := prefix+"audit_log_stream", prefix+"user_feedback"
	ok1 := xadd(t, rdb, audit, "*", "module", "a", "procedure", "p", "status", "ok", "workflow_id", "wf-1")
	bad := xadd(t, rdb, audit, "*", "module", "b", "procedure", "p", "status", "error", "workflow_id", "wf-1", "error_code", "internal")
	ok2 := xadd(t, rdb, audit, "*", "module", "c", "procedure", "p", "status", "ok", "workflow_id", "wf-2")
	fb := xadd(t, rdb, feedback, "*", "feedback", "fine", "module", "a", "user_id", "u-1")

	for _, c := range []struct {
		filters []string
		want    []string
	}{
		{[]string{"status=error"}, []string{"audit_log_stream/" + bad}},
		{[]string{"status=ok", "status=error"}, []string{"audit_log_stream/" + ok1, "audit_log_stream/" + bad, "audit_log_stream/" + ok2}},
		{[]string{"workflow_id=wf-1", "status=ok"}, []string{"audit_log_stream/" + ok1}},
		{[]string{"module=a"}, []string{"audit_log_stream/" + ok1, "user_feedback/" + fb}},
		{[]string{"user_id=u-1"}, []string{"user_feedback/" + fb}},
		{[]string{"status=pending"}, nil},
	} {
		var args []string
		for _, f := range c.filters {
			args = append(args, "--filter", f)
		}
		if got := ids(tailJSON(t, prefix, args...)); !slices.Equal(got, c.want) {
			t.Errorf("tail %v:\n got %v\nwant %v", args, got, c.want)
		}
		if got := ids(tailJSON(t, prefix, append(args, "--from", "-")...)); !slices.Equal(got, c.want) {
			t.Errorf("tail --from - %v:\n got %v\nwant %v", args, got, c.want)
		}
	}
	tailFails(t, prefix, []string{"--filter", "colour=red"}, `"colour"`, "log_id")
	tailFails(t, prefix, []string{"user_feedback", "--filter", "status=ok"}, `"status"`, "user_feedback")
	tailFails(t, prefix, []string{"--filter", "status"}, "field=value")
	tailFails(t, prefix, []string{"audit_log"}, `unknown stream "audit_log"`, "audit_log_stream, ccwj_update_stream, user_feedback, workflow_events")
	tailFails(t, prefix, []string{prefix + "audit_log_stream"}, "without the prefix")
}

// --follow prints what is appended after it started, on every stream it
// follows, and exits 0 on SIGINT.
func TestTailFollowPrintsNewEntriesAndExitsZeroOnSIGINT(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	audit, events := prefix+"audit_log_stream", prefix+"workflow_events"
	old := xadd(t, rdb, audit, "*", "module", "m", "procedure", "before", "status", "ok", "workflow_id", "wf-f")
	p := startBinary(t, false, nil, "tail", "--follow", "--json", "--redis-url", testredis.URL(), "--prefix", prefix,
		"audit_log_stream", "workflow_events", "--filter", "workflow_id=wf-f")
	if got := ids(waitTailed(t, p, 1)); !slices.Equal(got, []string{"audit_log_stream/" + old}) {
		t.Fatalf("backlog: %v", got)
	}
	// A millisecond apart: entries of two streams in one millisecond may
	// come out in either order.
	skipped := xadd(t, rdb, audit, "*", "module", "m", "procedure", "after", "status", "ok", "workflow_id", "wf-other")
	ev := xadd(t, rdb, events, "*", "workflow_id", "wf-f", "phase", "p", "event_type", "done")
	time.Sleep(2 * time.Millisecond)
	next := xadd(t, rdb, audit, "*", "module", "m", "procedure", "after", "status", "ok", "workflow_id", "wf-f")
	got := waitTailed(t, p, 3)
	if want := []string{"audit_log_stream/" + old, "workflow_events/" + ev, "audit_log_stream/" + next}; !slices.Equal(ids(got), want) {
		t.Fatalf("tail --follow printed %v, want %v (not %s: another workflow)", ids(got), want, skipped)
	}
	if got[2].Fields["procedure"] != "after" {
		t.Errorf("followed entry fields: %v", got[2].Fields)
	}
	interrupt(t, p)
}

// waitTailed waits until `tail --follow --json` has printed n entries,
// and returns them; lines of its log (its stderr joins its stdout here)
// are left out.
func waitTailed(t *testing.T, p *binProc, n int) []tailed {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out := p.stderr.String()
		var entries strings.Builder
		for line := range strings.Lines(out) {
			if strings.HasPrefix(line, "{") {
				entries.WriteString(line)
			}
		}
		if got := parseTailed(t, entries.String()); len(got) >= n {
			return got
		}
		select {
		case <-p.done:
			t.Fatalf("tail --follow exited: %v\n%s", p.err, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("tail --follow printed fewer than %d entries within 15s:\n%s", n, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A Redis that goes away while tail follows is waited for, said once on
// stderr, and followed again when it is back.
func TestTailFollowWaitsForARedisThatRestarts(t *testing.T) {
	needsFull(t, "starts a redis-server of its own")
	srv := testredis.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = c.Close() })
	first := xadd(t, c, "mcp:workflow_events", "*", "workflow_id", "wf", "phase", "p", "event_type", "before")
	p := startBinary(t, false, nil, "tail", "--follow", "--json", "--redis-url", srv.URL(), "workflow_events")
	waitTailed(t, p, 1)
	srv.Kill()
	time.Sleep(1500 * time.Millisecond)
	srv.Start()
	after := xadd(t, c, "mcp:workflow_events", "*", "workflow_id", "wf", "phase", "p", "event_type", "after")
	if got := ids(waitTailed(t, p, 2)); !slices.Equal(got, []string{"workflow_events/" + first, "workflow_events/" + after}) {
		t.Errorf("tail --follow across a restart: %v", got)
	}
	log := p.stderr.String()
	if strings.Count(log, "redis does not answer") != 1 || !strings.Contains(log, "redis answers again") {
		t.Errorf("the log does not say once that Redis went away, and that it is back:\n%s", log)
	}
	interrupt(t, p)
}

// interrupt sends SIGINT, as Ctrl-C does; the process must exit 0.
func interrupt(t *testing.T, p *binProc) {
	t.Helper()
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("tail --follow after SIGINT: %v\n%s", p.err, p.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail --follow still runs 10s after SIGINT")
	}
}

// In Redis Cluster the streams are in different slots, where one XREAD
// over all of them is refused (CROSSSLOT): tail reads each on its own.
func TestTailFollowsStreamsInDifferentSlotsOfACluster(t *testing.T) {
	needsFull(t, "starts a real cluster")
	cl := testredis.StartCluster(t, testredis.ClusterOptions{ReplicasPerMaster: -1})
	c := cl.Client(t)
	add := func(key string, kv ...string) string {
		t.Helper()
		id, err := c.XAdd(context.Background(), &redis.XAddArgs{Stream: key, Values: kv}).Result()
		if err != nil {
			t.Fatalf("XADD %s: %v", key, err)
		}
		return id
	}
	a := add("mcp:audit_log_stream", "module", "m", "procedure", "p", "status", "ok")
	w := add("mcp:workflow_events", "workflow_id", "wf", "phase", "p", "event_type", "started")
	out, err := runBinary(t, runBound, nil, "tail", "--json", "--redis-url", cl.URL())
	if err != nil {
		t.Fatalf("tail on a cluster: %v\n%s", err, out)
	}
	if got := ids(parseTailed(t, out)); !slices.Equal(got, []string{"audit_log_stream/" + a, "workflow_events/" + w}) {
		t.Errorf("tail on a cluster: %v", got)
	}
	p := startBinary(t, false, nil, "tail", "--follow", "--json", "--redis-url", cl.URL())
	waitTailed(t, p, 2)
	f := add("mcp:user_feedback", "feedback", "fine")
	e := add("mcp:ccwj_update_stream", "workflow_id", "wf", "phase_id", "p", "field", "f", "value", "1")
	got := ids(waitTailed(t, p, 4))
	slices.Sort(got[2:])
	if want := []string{"audit_log_stream/" + a, "workflow_events/" + w, "ccwj_update_stream/" + e, "user_feedback/" + f}; !slices.Equal(got, want) {
		t.Errorf("tail --follow on a cluster: %v, want %v", got, want)
	}
	interrupt(t, p)
}

// The human format: time, stream, id and the key fields, no colour when
// stdout is not a terminal, and nothing an entry holds reaches the
// terminal as a control sequence.
func TestTailHumanLinesShowTheKeyFieldsWithoutColourWhenNotATerminal(t *testing.T) {
	needsFull(t, "starts the binary")
	rdb, prefix := testredis.Shared(t)
	id := xadd(t, rdb, prefix+"audit_log_stream", "1767323045678-0", "module", "planner", "procedure", "draft", "status", "ok",
		"workflow_id", "wf-1", "log_id", "L-1", "timestamp", "2026-01-02T03:04:05.000Z", "rationale", "\x1b[31mred\x1b]0;title\a", "caller", "ci-bot")
	out, err := runBinary(t, runBound, nil, "tail", "--redis-url", testredis.URL(), "--prefix", prefix)
	if err != nil {
		t.Fatalf("tail: %v\n%s", err, out)
	}
	for _, w := range []string{"2026-01-02T03:04:05.000Z", "audit_log_stream", id, "log_id=L-1", "module=planner", "procedure=draft",
		"status=ok", "workflow_id=wf-1", "caller=ci-bot", `rationale="\x1b[31mred\x1b]0;title\a"`} {
		if !strings.Contains(out, w) {
			t.Errorf("the line does not show %s:\n%s", w, out)
		}
	}
	if strings.ContainsAny(out, "\x1b\a") {
		t.Errorf("control characters reach the terminal: %q", out)
	}
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want one line:\n%s", out)
	}
}

// On the embedded default, tail says how to reach the Redis inside the
// running server; with the URL that server logs, it reads it.
func TestTailOnTheEmbeddedRedisSaysHowToReachItAndReadsItWithTheLoggedURL(t *testing.T) {
	needsFull(t, "starts the binary")
	embedded := []string{"MCP_REDIS_REDIS_URL=", "REDIS_URL="}
	out, err := runBinary(t, runBound, embedded, "tail")
	if err == nil {
		t.Fatalf("tail on the embedded Redis exited 0:\n%s", out)
	}
	for _, w := range []string{"embedded", "serving process", `command="redis-cli -u redis://:<password>@127.0.0.1:<port>"`,
		"mcp-redis tail --redis-url redis://:<password>@127.0.0.1:<port>"} {
		if !strings.Contains(out, w) {
			t.Errorf("the error does not say %s:\n%s", w, out)
		}
	}
	if help, _ := runBinary(t, runBound, nil, "tail", "--help"); !strings.Contains(help, "--redis-url redis://:<password>@127.0.0.1:<port>") {
		t.Errorf("tail --help does not say how to reach the embedded Redis:\n%s", help)
	}

	s := spawn(t, embedded)
	written := s.ok("emit_workflow_event", map[string]any{"workflow_id": "wf-e", "phase": "p", "event_type": "started"})
	m := regexp.MustCompile(`command="redis-cli -u (redis://[^"\s]+)"`).FindStringSubmatch(s.stderr.String())
	if m == nil {
		t.Fatalf("the server does not log the embedded Redis's URL:\n%s", s.stderr.String())
	}
	out, err = runBinary(t, runBound, embedded, "tail", "--json", "--redis-url", m[1], "workflow_events")
	if err != nil {
		t.Fatalf("tail --redis-url <the logged URL>: %v\n%s", err, out)
	}
	got := parseTailed(t, out)
	if len(got) != 1 || got[0].ID != written["entry_id"] || got[0].Fields["workflow_id"] != "wf-e" {
		t.Errorf("tail of the embedded Redis: %v", got)
	}
}

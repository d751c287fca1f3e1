package stream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// appends keeps what a Writer asked to append.
type appends struct{ got []stream.Append }

func (a *appends) Append(_ context.Context, x stream.Append) (stream.Appended, error) {
	a.got = append(a.got, x)
	return stream.Appended{Key: "mcp:" + x.Stream, ID: "1-0"}, nil
}

type rec struct {
	LogID     string `json:"log_id,omitempty"`
	Module    string `json:"module"`
	Status    string `json:"status"`
	Details   string `json:"details,omitempty"`
	Timestamp string `json:"timestamp,omitempty"`
	stream.Stamp
}

func write(t *testing.T, w stream.Writer, r *rec) (stream.Written, error) {
	t.Helper()
	return w.Write(context.Background(), stream.Record{Stream: keyspace.AuditLog, Value: r, ID: &r.LogID, Timestamp: &r.Timestamp, Stamp: &r.Stamp})
}

// The write pipeline fills what the caller left out, stamps the time,
// announces the stream's notice fields, and fingerprints a payload so a
// retry with another timestamp or over another session is the same one.
func TestWriterFillsStampsAnnouncesAndFingerprints(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 678_000_000, time.UTC)
	a := &appends{}
	w := stream.Writer{Appender: a, MaxEntryBytes: 1 << 10, Now: func() time.Time { return now }}

	r := &rec{Module: "m", Status: "ok", Stamp: stream.Stamp{Caller: "c", Origin: stream.OriginClient}}
	out, err := write(t, w, r)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID == "" || r.Timestamp != "2026-01-02T15:04:05.678Z" || r.RecordedAt != r.Timestamp || out.Timestamp != r.Timestamp {
		t.Errorf("written %+v, record %+v: want a minted id and the server's time", out, r)
	}
	if got := a.got[0]; got.IdemID != "" || got.Fingerprint != "" {
		t.Errorf("a minted id is kept as idempotency id %q, fingerprint %q: nothing can retry it", got.IdemID, got.Fingerprint)
	}
	var notice []string
	for _, f := range a.got[0].Notice {
		notice = append(notice, f.Name)
	}
	if strings.Join(notice, ",") != "log_id,module,status" {
		t.Errorf("notice fields %v; want the audit stream's, in order, when present", notice)
	}

	first := &rec{LogID: "L-1", Module: "m", Status: "ok", Timestamp: "2026-01-02T16:04:05+01:00", Stamp: stream.Stamp{MCPSessionID: "s1", Origin: stream.OriginClient}}
	retry := &rec{LogID: "L-1", Module: "m", Status: "ok", Stamp: stream.Stamp{MCPSessionID: "s2", Origin: stream.OriginClient}}
	other := &rec{LogID: "L-1", Module: "m", Status: "error", Stamp: stream.Stamp{MCPSessionID: "s1", Origin: stream.OriginClient}}
	for _, r := range []*rec{first, retry, other} {
		if _, err := write(t, w, r); err != nil {
			t.Fatal(err)
		}
	}
	if first.Timestamp != "2026-01-02T15:04:05.000Z" {
		t.Errorf("a caller's timestamp is written as %q; want RFC 3339 UTC with milliseconds", first.Timestamp)
	}
	fp := func(i int) string { return a.got[i].Fingerprint }
	if fp(1) == "" || fp(1) != fp(2) || fp(1) == fp(3) {
		t.Errorf("fingerprints first %q, retry %q, other payload %q: want first == retry != other", fp(1), fp(2), fp(3))
	}
}

// An entry over limits.max_entry_bytes, and a timestamp too far ahead, are
// argument errors naming the field, and nothing is appended.
func TestWriterRefusesAnEntryTooLargeOrFromTheFuture(t *testing.T) {
	now := time.Now()
	a := &appends{}
	w := stream.Writer{Appender: a, MaxEntryBytes: 100, MaxClockSkew: time.Hour, Now: func() time.Time { return now }}
	_, err := write(t, w, &rec{Module: "m", Status: "ok", Details: strings.Repeat("x", 200)})
	if fe, ok := fault.As(err); !ok || fe.Code != fault.Invalid || fe.Field != "details" || !strings.Contains(fe.Message, "limits.max_entry_bytes") {
		t.Errorf("a 200-byte field over a 100-byte limit: %v", err)
	}
	ahead := now.Add(2 * time.Hour).UTC().Format(time.RFC3339)
	_, err = write(t, w, &rec{Module: "m", Status: "ok", Timestamp: ahead})
	if fe, ok := fault.As(err); !ok || fe.Field != "timestamp" || !strings.Contains(fe.Message, "audit.max_clock_skew") {
		t.Errorf("a timestamp 2h ahead with a 1h skew: %v", err)
	}
	if len(a.got) != 0 {
		t.Errorf("%d appends after refusals", len(a.got))
	}
}

package stream_test

import (
	"context"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// readIDsEntries are the ids of the stream the id table reads: the first
// id there can be, both ends of one millisecond, filler up to 100 entries
// (a filtered read's batch), and the last ids there can be.
var readIDsEntries = func() []string {
	ids := []string{"0-1", "0-2", "5-0", "5-3", "7-0"}
	for ms := 10; len(ids) < 98; ms++ {
		ids = append(ids, strconv.Itoa(ms)+"-0")
	}
	return append(ids, "18446744073709551615-18446744073709551614", "18446744073709551615-18446744073709551615")
}()

// readIDsBounds are bounds of every form ParseID accepts, at the edges.
var readIDsBounds = []string{
	"-", "+",
	"0", "(0", "0-0", "(0-0", "0-1", "(0-1", "00-00", "(00-00",
	"5", "(5", "5-0", "(5-0", "5-3", "(5-3", "0005", "6", "(6",
	"18446744073709551615", "(18446744073709551615",
	"18446744073709551615-18446744073709551614", "(18446744073709551615-18446744073709551614",
	"18446744073709551615-18446744073709551615", "(18446744073709551615-18446744073709551615",
}

// readIDsID is a stream id as two numbers.
type readIDsID struct{ ms, seq uint64 }

func (a readIDsID) less(b readIDsID) bool {
	return a.ms < b.ms || a.ms == b.ms && a.seq < b.seq
}

func readIDsParse(s string) readIDsID {
	ms, seq, _ := strings.Cut(s, "-")
	m, _ := strconv.ParseUint(ms, 10, 64)
	q, _ := strconv.ParseUint(seq, 10, 64)
	return readIDsID{m, q}
}

// readIDsWant is what a bounded read returns, by the XRANGE rules stated
// independently of the code: "-" and "+" are the first and last id there
// can be; an id without a sequence is its millisecond's first entry as a
// start and its last as an end; "(" excludes the bound itself.
func readIDsWant(start, end string, reverse bool) []string {
	in := func(bound string, isStart bool) func(readIDsID) bool {
		id, excl := strings.CutPrefix(bound, "(")
		b := readIDsParse(id)
		switch {
		case bound == "-":
			b = readIDsID{0, 0}
		case bound == "+":
			b = readIDsID{math.MaxUint64, math.MaxUint64}
		case !strings.Contains(id, "-") && !isStart:
			b.seq = math.MaxUint64
		}
		return func(e readIDsID) bool {
			switch {
			case isStart && excl:
				return b.less(e)
			case isStart:
				return !e.less(b)
			case excl:
				return e.less(b)
			default:
				return !b.less(e)
			}
		}
	}
	lo, hi := in(start, true), in(end, false)
	var out []string
	for _, e := range readIDsEntries {
		if id := readIDsParse(e); lo(id) && hi(id) {
			out = append(out, e)
		}
	}
	if reverse {
		slices.Reverse(out)
	}
	return out
}

// Every bound the schema accepts reads the entries the XRANGE rules say,
// as a start and as an end, forward and in reverse; bounds Redis itself
// refuses (nothing is after the last id or before 0-0) read an empty
// page. No bound is an error.
func TestReadTakesEveryBoundParseIDAccepts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s, c, keys := newStore(t, b, 100000)
		ctx := context.Background()
		for _, id := range readIDsEntries {
			if err := c.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(keyspace.WorkflowEvent), ID: id, Values: []string{"n", id}}).Err(); err != nil {
				t.Fatalf("XADD %s: %v", id, err)
			}
		}
		for _, start := range readIDsBounds {
			for _, end := range readIDsBounds {
				for _, reverse := range []bool{false, true} {
					if stream.ParseID(start) != nil || stream.ParseID(end) != nil {
						t.Fatalf("ParseID refuses %q or %q", start, end)
					}
					page, err := s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: start, End: end, Count: 1000, Reverse: reverse})
					if err != nil {
						t.Errorf("Read(%s, %s, reverse %v) = %v", start, end, reverse, err)
						continue
					}
					var got []string
					for _, e := range page.Entries {
						got = append(got, e.ID)
					}
					if want := readIDsWant(start, end, reverse); !slices.Equal(got, want) {
						t.Errorf("Read(%s, %s, reverse %v) = %d entries %.60v…, want %d %.60v…", start, end, reverse, len(got), got, len(want), want)
					}
				}
			}
		}
		// The cursor past the last id there can be reads an empty page.
		page, err := s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: "(18446744073709551615-18446744073709551614", End: "+", Count: 1})
		if err != nil || len(page.Entries) != 1 || page.Next != "" && page.Next != "(18446744073709551615-18446744073709551615" {
			t.Fatalf("last page = %+v, %v", page, err)
		}
		page, err = s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: "(18446744073709551615-18446744073709551615", End: "+", Count: 1})
		if err != nil || len(page.Entries) != 0 || page.Next != "" {
			t.Fatalf("page after the last id = %+v, %v", page, err)
		}
		// A filtered read whose batch ends at the last id there can be
		// stops there.
		page, err = s.Read(ctx, stream.Query{Stream: keyspace.WorkflowEvent, Start: "-", End: "+", Count: 25, Match: map[string]string{"n": "none"}})
		if err != nil || len(page.Entries) != 0 || page.Scanned != len(readIDsEntries) {
			t.Fatalf("filtered read = %+v, %v", page, err)
		}
	})
}

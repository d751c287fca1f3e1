package transport

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
)

// JSON-RPC ids are echoed exactly as the client wrote them. mcp-go holds a
// numeric id as a float64, so a number a float64 does not hold (big
// integers), or whose text is not the one a float64 prints (1.0, 1e2, -0),
// came back changed, and two such ids could even share one entry of
// mcp-go's table of calls a notifications/cancelled can reach. encodeIDs
// hands mcp-go such an id as a string placeholder that embeds the number's
// text; restoreIDs turns the placeholder back into the number in what is
// written to the client.
//
// A placeholder is the string "\u0000<nonce>:<number text>". The nonce is
// random per process, so a client's own string id cannot be taken for a
// placeholder unless the client knows it.

// idNonce is this process's placeholder nonce: 96 random bits in hex.
var idNonce = func() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// idMarker is how every placeholder begins inside an encoded JSON string:
// json.Marshal writes NUL as \u0000.
var idMarker = []byte(`\u0000` + idNonce + `:`)

// idsIssued is set once encodeIDs has made a placeholder: until then no
// output can hold one (no one else knows the nonce), and restoreIDs need
// not look.
var idsIssued atomic.Bool

// exactID reports whether mcp-go echoes an id as it was sent: anything but
// a number, or an integer of at most 15 digits (a float64 holds each one
// and prints it back the same), -0 excepted.
func exactID(v []byte) bool {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return true
	}
	d := v
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > 15 || (d[0] == '0' && (len(d) > 1 || len(v) > 1)) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// encodeIDs returns msg, a message parseEnvelope handed on, ready for
// mcp-go: a numeric id that mcp-go would not echo exactly (see exactID) is
// replaced by a placeholder string, and so is a notifications/cancelled's
// params.requestId, so that it names the placeholder of the call it
// cancels. id and method are what parseEnvelope learnt (msgHead.ID and
// msgHead.Method). Every other message, the common case, is returned as it
// is at the cost of a few byte comparisons; only a rewritten one is
// copied.
func encodeIDs(msg []byte, id json.RawMessage, method string) []byte {
	cancel := method == string(mcp.MethodNotificationCancelled)
	if exactID(id) && !cancel {
		return msg
	}
	var spans [][2]int // number values to replace, in order
	start := jsonwalk.SkipSpace(msg, 0)
	if start == len(msg) || msg[start] != '{' {
		return msg
	}
	// encoding/json gives the id field every member whose name matches it
	// case-insensitively, the last one winning: each is replaced alike.
	eachMember(msg, start, func(name string, vs, ve int) {
		switch {
		case strings.EqualFold(name, "id"):
			if !exactID(msg[vs:ve]) {
				spans = append(spans, [2]int{vs, ve})
			}
		case cancel && strings.EqualFold(name, "params") && msg[vs] == '{':
			// mcp-go reads notification params into a map: exact names.
			eachMember(msg, vs, func(name string, rs, re int) {
				if name == "requestId" && !exactID(msg[rs:re]) {
					spans = append(spans, [2]int{rs, re})
				}
			})
		}
	})
	if len(spans) == 0 {
		return msg
	}
	idsIssued.Store(true)
	out := make([]byte, 0, len(msg)+len(spans)*(len(idMarker)+2))
	last := 0
	for _, s := range spans {
		out = append(out, msg[last:s[0]]...)
		out = append(out, '"')
		out = append(out, idMarker...)
		out = append(out, msg[s[0]:s[1]]...)
		out = append(out, '"')
		last = s[1]
	}
	return append(out, msg[last:]...)
}

// restoreIDs returns out, encoded JSON-RPC written to the client, with
// every placeholder string encodeIDs made ("\u0000<nonce>:<number>" as
// json.Marshal writes it) replaced by the number's text, so the client
// reads back the id it sent.
//
// It works on any chunk holding whole JSON strings: one encoded message,
// several, or a whole SSE event ("event: message\ndata: {…}\n\n"). An HTTP
// ResponseWriter that applies it to each Write is right as long as every
// Write carries whole messages or events (mcp-go writes each answer and
// each event in one Write); the body then gets shorter, so a
// Content-Length set before must be dropped. Without a placeholder, the
// common case, it returns out itself: at once while no placeholder was
// ever made, else after one bytes.Index over out. Only this process's
// nonce matches: a client's string id that merely looks like a
// placeholder is left as it is.
func restoreIDs(out []byte) []byte {
	if !idsIssued.Load() {
		return out
	}
	i := bytes.Index(out, idMarker)
	if i < 0 {
		return out
	}
	var b []byte
	last := 0
	for i >= 0 {
		// The placeholder must be a whole string: "<marker><number>".
		end := i + len(idMarker)
		for end < len(out) && isNumberByte(out[end]) {
			end++
		}
		if i-1 >= last && out[i-1] == '"' && end < len(out) && out[end] == '"' && end > i+len(idMarker) {
			b = append(b, out[last:i-1]...)
			b = append(b, out[i+len(idMarker):end]...)
			last = end + 1
		}
		next := bytes.Index(out[end:], idMarker)
		if next < 0 {
			break
		}
		i = end + next
	}
	if b == nil {
		return out
	}
	return append(b, out[last:]...)
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// The helpers below walk JSON that encoding/json has already accepted.

// eachMember calls f with the decoded name and the value's span of each
// member of the object that starts at b[at], in order.
func eachMember(b []byte, at int, f func(name string, start, end int)) {
	i := jsonwalk.SkipSpace(b, at+1)
	for i < len(b) && b[i] == '"' {
		ne := jsonwalk.StringEnd(b, i)
		name := jsonwalk.MemberName(b[i:ne])
		vs := jsonwalk.SkipSpace(b, jsonwalk.SkipSpace(b, ne)+1) // past the colon
		ve := jsonwalk.ValueEnd(b, vs)
		f(name, vs, ve)
		i = jsonwalk.SkipSpace(b, ve)
		if i >= len(b) || b[i] != ',' {
			return
		}
		i = jsonwalk.SkipSpace(b, i+1)
	}
}

// memberSpan returns the span of the value of the last member named name
// (case-insensitively with fold, as encoding/json matches a struct field)
// of the object that starts at b[at].
func memberSpan(b []byte, at int, name string, fold bool) (start, end int, ok bool) {
	eachMember(b, at, func(n string, vs, ve int) {
		if n == name || fold && strings.EqualFold(n, name) {
			start, end, ok = vs, ve, true
		}
	})
	return start, end, ok
}

package transport

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
)

// appendToolAnswer appends msg, encoded exactly as json.Marshal encodes
// it, when msg is the answer to a tools/call of the plain shape every
// mcpkit tool gives (text content, structured content as raw JSON, an
// optional isError), and reports whether it did. Anything else is left to
// json.Marshal.
//
// Why by hand: mcp-go's CallToolResult.MarshalJSON builds a map and
// marshals it, and encoding/json then compacts that output again inside
// the response, which cost about a tenth of the CPU of a call that does no
// I/O. A test compares both encoders on a corpus and by fuzzing.
func appendToolAnswer(b []byte, msg mcp.JSONRPCMessage) ([]byte, bool) {
	resp, ok := msg.(mcp.JSONRPCResponse)
	if !ok || resp.JSONRPC != mcp.JSONRPC_VERSION {
		return b, false
	}
	var r *mcp.CallToolResult
	switch v := resp.Result.(type) {
	case *mcp.CallToolResult:
		r = v
	case mcp.CallToolResult:
		r = &v
	}
	if r == nil || r.Meta != nil || r.ResultType != "" || len(r.InputRequests) > 0 || r.RequestState != "" {
		return b, false
	}
	structured := r.RawStructuredContent
	if len(structured) == 0 {
		switch v := r.StructuredContent.(type) {
		case nil:
		case json.RawMessage:
			if v == nil {
				return b, false // encodes as null
			}
			structured = v
		default:
			return b, false
		}
	}
	if len(structured) > 0 && !json.Valid(structured) {
		return b, false // json.Marshal fails on it
	}
	start := len(b)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	if b, ok = appendID(b, resp.ID.Value()); !ok {
		return b[:start], false
	}
	b = append(b, `,"result":{"content":[`...)
	for i, c := range r.Content {
		t, ok := c.(mcp.TextContent)
		if !ok || t.Annotations != nil || t.Meta != nil {
			return b[:start], false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"type":`...)
		b = appendString(b, t.Type)
		b = append(b, `,"text":`...)
		b = appendString(b, t.Text)
		b = append(b, '}')
	}
	b = append(b, ']')
	if r.IsError {
		b = append(b, `,"isError":true`...)
	}
	if len(structured) > 0 {
		b = append(b, `,"structuredContent":`...)
		b = appendRaw(b, structured)
	}
	return append(b, "}}"...), true
}

// appendID appends a request id as json.Marshal encodes it: a string, or
// a number mcp-go holds as a float64 (an integer, as encodeIDs arranges);
// it reports false for any other.
func appendID(b []byte, id any) ([]byte, bool) {
	switch v := id.(type) {
	case string:
		return appendString(b, v), true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) >= 1e15 || v == 0 && math.Signbit(v) {
			return b, false
		}
		return strconv.AppendInt(b, int64(v), 10), true
	case int64:
		return strconv.AppendInt(b, v, 10), true
	case int:
		return strconv.AppendInt(b, int64(v), 10), true
	}
	return b, false
}

// appendString appends s as json.Marshal encodes a string (HTML-safe).
// The common text, ASCII, is done here; other text is left to
// encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\n' && c != '\r' && c != '\t' || c >= utf8.RuneSelf {
			enc, _ := json.Marshal(s)
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '"':
			esc = `\"`
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '\r':
			esc = `\r`
		case '\t':
			esc = `\t`
		case '<':
			esc = `\u003c`
		case '>':
			esc = `\u003e`
		case '&':
			esc = `\u0026`
		default:
			continue
		}
		b = append(b, s[start:i]...)
		b = append(b, esc...)
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendRaw appends raw, valid JSON, as json.Marshal encodes a
// json.RawMessage: compacted, and HTML-safe.
func appendRaw(b []byte, raw []byte) []byte {
	if !bytes.ContainsAny(raw, " \t\r\n<>&\u2028\u2029") {
		return append(b, raw...)
	}
	var compact, safe bytes.Buffer
	_ = json.Compact(&compact, raw)
	json.HTMLEscape(&safe, compact.Bytes())
	return append(b, safe.Bytes()...)
}

package transport

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
)

// msgHead is what the envelope check learnt of a message, so no one parses
// it again to route it.
type msgHead struct {
	// ID is the id member as sent (nil when absent); numbers keep their
	// text, which mcp-go would round through a float64.
	ID json.RawMessage
	// Method is the method member ("" when absent).
	Method string
	// Object: the message is a JSON object the check parsed.
	Object bool
	// Answer: the message carries a result or an error, an answer to a
	// request of the server's.
	Answer bool
	// Tool is a tools/call's params.name, as mcp-go reads it; "" when
	// absent or not a string.
	Tool string
}

// Request reports whether the message is a request, which gets an answer
// and may run concurrently with others: an object with an id that is not
// null, a method, and no result or error. The id member is recognised as
// mcp-go recognises it (encoding/json: "\u0069d" and "ID" name it too).
func (h msgHead) Request() bool {
	return h.Object && !h.Answer && h.Method != "" && len(h.ID) > 0 && string(h.ID) != "null"
}

// checkEnvelope is parseEnvelope for a caller that needs only the answer.
func checkEnvelope(msg []byte) mcp.JSONRPCMessage {
	_, resp := parseEnvelope(msg)
	return resp
}

// parseEnvelope answers the malformed JSON-RPC messages that mcp-go would
// answer wrongly or not at all: a batch (removed from MCP in 2025-06-18), a
// message that is not an object, a method that is missing or not a string,
// an id that is neither a string, a number nor null, params that are not
// an object, and text that is not UTF-8 (RFC 8259 §8.1; encoding/json
// would turn each bad byte into U+FFFD, so distinct names would collide,
// while mcpkit stores raw argument text as it came). Invalid UTF-8 inside
// a tools/call's params.arguments is left to the tool's argument decoder,
// which names the argument. It returns a nil answer for a message to hand
// on, including one that is not JSON at all (mcp-go answers that with
// -32700), and in every case what it learnt of the message.
//
// It validates the message once (json.Valid) and walks its top-level
// members once (headMembers), decoding nothing it does not need: params,
// result and error are only looked at, never copied.
//
// What each check works around, in mcp-go v1.2.1's MCPServer.HandleMessage
// (server/request_handler.go), so that it can go once mcp-go is fixed:
// HandleMessage first decodes the message into a struct of jsonrpc,
// method (a string type), id (any) and result, and answers any decode
// failure with -32700 "Failed to parse message" and a null id. So a batch,
// a message that is not an object and a method that is not a string get
// -32700 instead of -32600 (checked below); an object, array or boolean id
// decodes into any and is echoed back as if valid; a number id is rounded
// through a float64 (ids.go restores it); a request without a method falls
// to the method switch's default, -32601 "Method  not found"; params that
// are not an object fail the per-method decode, answered -32600 with the
// decode error's text instead of -32602; and encoding/json turns invalid
// UTF-8 into U+FFFD without a word.
func parseEnvelope(msg []byte) (msgHead, mcp.JSONRPCMessage) {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return msgHead{}, nil
	}
	if msg[0] != '{' && !json.Valid(msg) {
		return msgHead{}, nil
	}
	switch msg[0] {
	case '[': // mcp-go: -32700 "Failed to parse message"
		if bytes.Equal(bytes.Join(bytes.Fields(msg), nil), []byte("[]")) {
			return msgHead{}, errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: an empty batch")
		}
		return msgHead{}, errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: JSON-RPC batches are not supported (MCP removed them in 2025-06-18); send one message at a time")
	case '{':
	default: // mcp-go: -32700 "Failed to parse message"
		return msgHead{}, errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: a message must be a JSON object")
	}
	if !json.Valid(msg) {
		return msgHead{}, nil
	}
	m := headMembers(msg)
	h := msgHead{Method: m.Method.name, Object: true, Answer: m.Result != 0 || m.Error != 0}
	if len(m.ID) > 0 {
		switch m.ID[0] {
		case '{', '[', 't', 'f': // mcp-go: accepted, and echoed
			return msgHead{}, errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: id must be a string, a number or null")
		}
		h.ID = m.ID
	}
	// The id is echoed as sent, whatever its size (mcp-go would round a
	// number through a float64).
	id := echoID(h.ID)
	if !utf8.Valid(msg) { // mcp-go: decoded as U+FFFD
		if resp := checkUTF8(msg, h, id); resp != nil {
			return msgHead{}, resp
		}
	}
	if h.Answer {
		return h, nil // a response to a request of the server's
	}
	if m.Method.first == 0 {
		if len(h.ID) == 0 {
			return h, nil // mcp-go reports the rest
		}
		// mcp-go: -32601 "Method  not found"
		return msgHead{}, errorResponse(id, mcp.INVALID_REQUEST, "invalid request: method is missing")
	}
	if m.Method.first != '"' { // mcp-go: -32700 "Failed to parse message"
		return msgHead{}, errorResponse(id, mcp.INVALID_REQUEST, "invalid request: method must be a string")
	}
	if m.Params != 0 && m.Params != '{' && m.Params != 'n' {
		if len(h.ID) == 0 {
			return h, nil // a notification gets no answer
		}
		// mcp-go: -32600 with the decode error's text
		return msgHead{}, errorResponse(id, mcp.INVALID_PARAMS, "invalid params: params must be an object of named parameters")
	}
	if h.Method == string(mcp.MethodToolsCall) && m.Params == '{' {
		h.Tool = toolName(msg)
	}
	return h, nil
}

// toolName is the params.name of msg, a valid JSON object whose params
// is an object, as encoding/json (and so mcp-go) reads it: the last member
// whose name matches case-insensitively; "" when it is not a string.
func toolName(msg []byte) string {
	ps, _, ok := memberSpan(msg, 0, "params", true)
	if !ok {
		return ""
	}
	start, end, ok := memberSpan(msg, ps, "name", true)
	if !ok || msg[start] != '"' {
		return ""
	}
	var name string
	if json.Unmarshal(msg[start:end], &name) != nil {
		return ""
	}
	return name
}

// echoID is a raw id as errorResponse takes it: nil when absent.
func echoID(id json.RawMessage) any {
	if len(id) == 0 {
		return nil
	}
	return id
}

// checkUTF8 answers a message, a JSON object that is not valid UTF-8, with
// -32700, unless every bad byte is inside the params.arguments of a
// tools/call: the tool's decoder reports those by argument name.
func checkUTF8(msg []byte, h msgHead, id any) mcp.JSONRPCMessage {
	bad := firstInvalidUTF8(msg)
	if h.Method == string(mcp.MethodToolsCall) {
		if start, end, ok := argumentsSpan(msg); ok {
			switch {
			case !utf8.Valid(msg[:start]):
			case utf8.Valid(msg[end:]):
				return nil
			default:
				bad = end + firstInvalidUTF8(msg[end:])
			}
		}
	}
	if !utf8.Valid(h.ID) {
		id = nil
	}
	return errorResponse(id, mcp.PARSE_ERROR, fmt.Sprintf("parse error: the message is not valid UTF-8 (byte %d is 0x%02x); JSON text must be UTF-8", bad, msg[bad]))
}

// firstInvalidUTF8 returns the offset of the first byte of b that is not
// part of a valid UTF-8 sequence, or len(b).
func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// argumentsSpan returns where the value of params.arguments lies in msg, a
// valid JSON object: the member encoding/json (and so mcp-go) takes, the
// last whose name matches case-insensitively.
func argumentsSpan(msg []byte) (start, end int, ok bool) {
	ps, _, ok := memberSpan(msg, 0, "params", true)
	if !ok || msg[ps] != '{' {
		return 0, 0, false
	}
	return memberSpan(msg, ps, "arguments", true)
}

// envHead is the members of a message the envelope check looks at.
type envHead struct {
	ID     json.RawMessage
	Method methodMember
	Params presence
	Result presence
	Error  presence
}

// headMembers reads the envelope members of msg, a valid JSON object, the
// way encoding/json fills a struct of them: each name matched
// case-insensitively, the last match winning, values only looked at (the
// id is a slice of msg, not a copy). One walk, no decoding: the message is
// decoded in full by mcp-go.
func headMembers(msg []byte) envHead {
	var m envHead
	walkMembers(msg, func(q, v []byte) bool {
		switch foldName(q) {
		case "id":
			m.ID = v
		case "method":
			m.Method = methodOf(v)
		case "params":
			m.Params = presence(v[0])
		case "result":
			m.Result = presence(v[0])
		case "error":
			m.Error = presence(v[0])
		}
		return true
	})
	return m
}

// envelopeNames are the member names headMembers looks for.
var envelopeNames = [...]string{"id", "method", "params", "result", "error"}

// foldName returns which of envelopeNames the quoted member name q
// matches case-insensitively (as encoding/json matches a field), or "".
func foldName(q []byte) string {
	// No name here is longer than "method": 6 characters, each at most
	// 3 bytes of UTF-8 folded (the Kelvin sign folds to k) or 6 escaped.
	plain := q[1 : len(q)-1]
	if len(plain) > 6*6 {
		return ""
	}
	if bytes.IndexByte(plain, '\\') >= 0 {
		plain = []byte(jsonwalk.MemberName(q))
	}
	for _, n := range envelopeNames {
		if bytes.EqualFold(plain, []byte(n)) {
			return n
		}
	}
	return ""
}

// presence records that a member is present, and the first byte of its
// value, without copying the value.
type presence byte

func (p *presence) UnmarshalJSON(b []byte) error {
	*p = presence(b[0])
	return nil
}

// methodMember is the method member: the first byte of its value, and the
// name when it is a string.
type methodMember struct {
	first byte
	name  string
}

func (m *methodMember) UnmarshalJSON(b []byte) error {
	*m = methodOf(b)
	return nil
}

// methodOf reads a method member's value, b.
func methodOf(b []byte) methodMember {
	if b[0] != '"' {
		return methodMember{first: b[0]}
	}
	if plain := b[1 : len(b)-1]; bytes.IndexByte(plain, '\\') < 0 {
		return methodMember{first: '"', name: string(plain)}
	}
	var name string
	_ = json.Unmarshal(b, &name)
	return methodMember{first: '"', name: name}
}

package transport

import (
	"bytes"
	"encoding/json"

	"github.com/mark3labs/mcp-go/mcp"
)

// checkEnvelope answers the malformed JSON-RPC messages that mcp-go would
// answer wrongly or not at all: a batch (removed from MCP in 2025-06-18), a
// message that is not an object, a method that is missing or not a string,
// an id that is neither a string, a number nor null, and params that are
// not an object. It returns nil for a message to hand on, including one
// that is not JSON at all (mcp-go answers that with -32700).
func checkEnvelope(msg []byte) mcp.JSONRPCMessage {
	msg = bytes.TrimSpace(msg)
	if len(msg) == 0 {
		return nil
	}
	if msg[0] != '{' && !json.Valid(msg) {
		return nil
	}
	switch msg[0] {
	case '[':
		if bytes.Equal(bytes.Join(bytes.Fields(msg), nil), []byte("[]")) {
			return errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: an empty batch")
		}
		return errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: JSON-RPC batches are not supported (MCP removed them in 2025-06-18); send one message at a time")
	case '{':
	default:
		return errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: a message must be a JSON object")
	}
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method json.RawMessage `json:"method"`
		Params json.RawMessage `json:"params"`
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if json.Unmarshal(msg, &m) != nil {
		return nil
	}
	var id any
	if len(m.ID) > 0 {
		switch m.ID[0] {
		case '{', '[', 't', 'f':
			return errorResponse(nil, mcp.INVALID_REQUEST, "invalid request: id must be a string, a number or null")
		}
		_ = json.Unmarshal(m.ID, &id)
	}
	if m.Result != nil || m.Error != nil {
		return nil // a response to a request of the server's
	}
	if len(m.Method) == 0 {
		if len(m.ID) == 0 {
			return nil // mcp-go reports the rest
		}
		return errorResponse(id, mcp.INVALID_REQUEST, "invalid request: method is missing")
	}
	if m.Method[0] != '"' {
		return errorResponse(id, mcp.INVALID_REQUEST, "invalid request: method must be a string")
	}
	if len(m.Params) > 0 && m.Params[0] != '{' && !bytes.Equal(m.Params, []byte("null")) {
		if len(m.ID) == 0 {
			return nil // a notification gets no answer
		}
		return errorResponse(id, mcp.INVALID_PARAMS, "invalid params: params must be an object of named parameters")
	}
	return nil
}

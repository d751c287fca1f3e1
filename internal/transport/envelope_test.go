package transport

import (
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

func TestMalformedEnvelopesGetTheRightJSONRPCError(t *testing.T) {
	for _, c := range []struct {
		msg  string
		code int // 0: handed on
	}{
		{`[]`, mcp.INVALID_REQUEST},
		{` [ ] `, mcp.INVALID_REQUEST},
		{`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, mcp.INVALID_REQUEST},
		{`42`, mcp.INVALID_REQUEST},
		{`null`, mcp.INVALID_REQUEST},
		{`"ping"`, mcp.INVALID_REQUEST},
		{`{"jsonrpc":"2.0","id":1}`, mcp.INVALID_REQUEST},
		{`{"jsonrpc":"2.0","id":1,"method":42}`, mcp.INVALID_REQUEST},
		{`{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}`, mcp.INVALID_REQUEST},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":["audit_log",{}]}`, mcp.INVALID_PARAMS},
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}`, 0},
		{`{"jsonrpc":"2.0","id":1,"method":"ping","params":null}`, 0},
		{`{"jsonrpc":"2.0","method":"notifications/initialized"}`, 0},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, 0},
		{`hello`, 0},
		{`{"jsonrpc":"2.0","id":1,`, 0},
		{``, 0},
		// Text that is not UTF-8: the tool's decoder names a bad argument;
		// anywhere else the message is not JSON text.
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"k\":\"v\xff\xc0\"}}}", 0},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"PARAMS\":{\"Arguments\":{\"k\xff\":1},\"name\":\"x\"}}", 0},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\xff\",\"arguments\":{}}}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"x\",\"arguments\":{\"k\":\"\xff\"},\"_meta\":{\"m\":\"\xff\"}}}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{\"arguments\":{\"k\":\"\xff\"},\"name\":\"x\",\"arguments\":{}}}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"prompts/get\",\"params\":{\"arguments\":{\"k\":\"\xff\"}}}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\xffng\"}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\xff\",\"id\":1,\"method\":\"ping\"}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"ping\"}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":1,\"reason\":\"\xff\"}}", mcp.PARSE_ERROR},
		{"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"k\xed\xa0\x80\":1}", mcp.PARSE_ERROR},
	} {
		resp := checkEnvelope([]byte(c.msg))
		if c.code == 0 {
			if resp != nil {
				t.Errorf("%s: answered %+v, want it handed on", c.msg, resp)
			}
			continue
		}
		raw, _ := json.Marshal(resp)
		var got struct {
			Error struct{ Code int } `json:"error"`
		}
		_ = json.Unmarshal(raw, &got)
		if got.Error.Code != c.code {
			t.Errorf("%s: answered %s, want code %d", c.msg, raw, c.code)
		}
	}
}

// An error answer echoes the id as sent, and as null when it cannot.
func TestEnvelopeErrorsEchoTheIDAsSent(t *testing.T) {
	for _, c := range []struct{ msg, id string }{
		{`{"jsonrpc":"2.0","id":12345678901234567890123,"method":42}`, `12345678901234567890123`},
		{`{"jsonrpc":"2.0","id":1.0,"method":"tools/call","params":[1]}`, `1.0`},
		{`{"jsonrpc":"2.0","id":"a\u0000b"}`, `"a\u0000b"`},
		{"{\"jsonrpc\":\"2.0\",\"id\":1e2,\"method\":\"p\xff\"}", `1e2`},
		{"{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"ping\"}", `null`},
		{`{"jsonrpc":"2.0","id":[1],"method":"ping"}`, `null`},
	} {
		raw, err := json.Marshal(checkEnvelope([]byte(c.msg)))
		if err != nil {
			t.Fatalf("%s: %v", c.msg, err)
		}
		var got struct{ ID json.RawMessage }
		if err := json.Unmarshal(raw, &got); err != nil || string(got.ID) != c.id {
			t.Errorf("%q: answered %s, want id %s", c.msg, raw, c.id)
		}
	}
}

// parseEnvelope learns what routing needs from its one parse.
func TestParseEnvelopeTellsRequestsFromTheRest(t *testing.T) {
	for _, c := range []struct {
		msg, method string
		request     bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, "tools/call", true},
		{`{"jsonrpc":"2.0","\u0069d":"x","method":"tools/call"}`, "tools/call", true},
		{`{"jsonrpc":"2.0","ID":0,"method":"ping"}`, "ping", true},
		{`{"jsonrpc":"2.0","id":null,"method":"ping"}`, "ping", false},
		{`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"id"}}`, "notifications/cancelled", false},
		{`{"jsonrpc":"2.0","method":"notifications/x","params":{"text":"\"id\":1"}}`, "notifications/x", false},
		{`{"jsonrpc":"2.0","id":1,"result":{}}`, "", false},
		{`{"jsonrpc":"2.0","id":1,"method":"tools\/call"}`, "tools/call", true},
		{`hello`, "", false},
	} {
		h, resp := parseEnvelope([]byte(c.msg))
		if resp != nil || h.Method != c.method || h.Request() != c.request {
			t.Errorf("%s: method %q, request %v (answer %+v); want %q, %v", c.msg, h.Method, h.Request(), resp, c.method, c.request)
		}
	}
}

// BenchmarkCheckEnvelope measures the envelope check every message pays
// before mcp-go sees it: a typical tools/call.
func BenchmarkCheckEnvelope(b *testing.B) {
	msg := []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"audit_log","arguments":{"module":"planner","procedure":"draft","status":"ok","inputs":{"query":"find flights","limit":10},"session_id":"s-1","workflow_id":"wf-1","log_id":"bench-1"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if checkEnvelope(msg) != nil {
			b.Fatal("answered a valid message")
		}
	}
}

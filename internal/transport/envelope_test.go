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

package transport

import (
	"bytes"
	"encoding/json"
	"testing"
)

// headCorpus are messages whose envelope members are found in unusual
// ways: folded and escaped names, duplicates, nulls, nesting.
var headCorpus = []string{
	`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"id":2}}}`,
	`{"ID":"a","Method":"ping"}`,
	`{"\u0069d":7,"m\u0065thod":"x","\u0070arams":null}`,
	`{"id":1,"id":"two","method":"a","method":"b"}`,
	`{"id":null,"method":"notifications/cancelled","params":{"requestId":1}}`,
	`{"\u212Ad":1}`,
	`{"id":1,"result":{},"error":null}`,
	`{"ERROR":{"code":1},"RESULT":0,"PARAMS":[1]}`,
	`{ "id" : 12345678901234567890 , "method" : "x\"y" , "params" : { } }`,
	`{"method":5,"id":[1]}`,
	`{"méthod":"x","idd":1,"":2}`,
	`{}`,
	`{"id":-0.0e+1,"method":"\u0074ools/call"}`,
	"{\"id\":\"\xff\",\"method\":\"x\"}",
	`{"\u006d\u0065\u0074\u0068\u006f\u0064":"long escaped name"}`,
}

// TestHeadMembersAgreesWithEncodingJSON: the envelope walk finds the
// members encoding/json (and so mcp-go) finds.
func TestHeadMembersAgreesWithEncodingJSON(t *testing.T) {
	for _, msg := range headCorpus {
		var want struct {
			ID     json.RawMessage `json:"id"`
			Method methodMember    `json:"method"`
			Params presence        `json:"params"`
			Result presence        `json:"result"`
			Error  presence        `json:"error"`
		}
		if err := json.Unmarshal([]byte(msg), &want); err != nil {
			t.Fatalf("%s: %v", msg, err)
		}
		got := headMembers([]byte(msg))
		if !bytes.Equal(got.ID, want.ID) || got.Method != want.Method || got.Params != want.Params ||
			got.Result != want.Result || got.Error != want.Error {
			t.Errorf("%s:\n got %+v\nwant %+v", msg, got, want)
		}
	}
}

// FuzzHeadMembers compares the walk with encoding/json on any object.
func FuzzHeadMembers(f *testing.F) {
	for _, m := range headCorpus {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, msg string) {
		var want struct {
			ID     json.RawMessage `json:"id"`
			Method methodMember    `json:"method"`
			Params presence        `json:"params"`
			Result presence        `json:"result"`
			Error  presence        `json:"error"`
		}
		b := bytes.TrimSpace([]byte(msg))
		if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &want) != nil {
			return
		}
		got := headMembers(b)
		if !bytes.Equal(got.ID, want.ID) || got.Method != want.Method || got.Params != want.Params ||
			got.Result != want.Result || got.Error != want.Error {
			t.Errorf("%q:\n got %+v\nwant %+v", msg, got, want)
		}
	})
}

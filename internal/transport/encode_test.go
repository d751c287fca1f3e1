package transport

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// answerCorpus are tool answers of the shapes appendToolAnswer encodes and
// of some it must leave to json.Marshal.
func answerCorpus() []mcp.JSONRPCMessage {
	structured := func(id any, raw string) mcp.JSONRPCMessage {
		return mcp.NewJSONRPCResultResponse(mcp.NewRequestId(id), mcp.NewToolResultStructured(json.RawMessage(raw), raw))
	}
	textOnly := mcp.NewToolResultError("invalid arguments: <x> & \"y\"\n\ttab. Fix the arguments and call audit_log again.")
	withMeta := mcp.NewToolResultText("t")
	withMeta.Meta = mcp.NewMetaFromMap(map[string]any{"k": 1})
	modern := mcp.NewToolResultText("t")
	modern.ResultType = "complete"
	raw := mcp.NewToolResultText("raw")
	raw.RawStructuredContent = json.RawMessage(`{ "a" : [1, 2] , "h":"<&>\u2028 é" }`)
	return []mcp.JSONRPCMessage{
		structured(float64(1), `{"id":"1700000000000-0","stream":"audit"}`),
		structured("abc", `{"id":"1-0","nested":{"x":[true,null,1.5e3]}}`),
		structured("\u0000"+idNonce+":1.0", `{}`),
		structured(float64(-42), `{"s":"unicode é ☃ \u2028 <b>"}`),
		structured(float64(123456789012345), ` { "spaced" : 1 } `),
		structured(int64(7), `{"ctl":"\u0001"}`),
		structured("é\x01\xff", `{"a":1}`),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(3)), textOnly),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(3)), *textOnly),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(4)), withMeta),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(5)), modern),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(6)), raw),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(0.5)), textOnly),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(nil), textOnly),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(8)), mcp.NewToolResultImage("img", "data", "image/png")),
		mcp.NewJSONRPCResultResponse(mcp.NewRequestId(float64(9)), mcp.EmptyResult{}),
		errorResponse(json.RawMessage(`1`), mcp.INVALID_REQUEST, "x"),
	}
}

// TestAppendToolAnswerEncodesAsJSONMarshal: the hand encoder writes what
// json.Marshal writes, byte for byte, or leaves the message to it.
func TestAppendToolAnswerEncodesAsJSONMarshal(t *testing.T) {
	hand := 0
	for _, msg := range answerCorpus() {
		want, err := json.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendToolAnswer(nil, msg)
		if !ok {
			continue
		}
		hand++
		if !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	if hand < 8 {
		t.Errorf("only %d answers encoded by hand", hand)
	}
}

// FuzzAppendToolAnswer compares the encoders on any text, structured
// content and id.
func FuzzAppendToolAnswer(f *testing.F) {
	f.Add("text <&> \"q\"\n", `{"id":"1-0"}`, "id", 1.0, false)
	f.Add("é\u2028", ` [1, {"a" : "<"}] `, "", -3.0, true)
	f.Fuzz(func(t *testing.T, text, structured, sid string, nid float64, isErr bool) {
		var id any = nid
		if sid != "" {
			id = sid
		}
		r := mcp.NewToolResultStructured(json.RawMessage(structured), text)
		r.IsError = isErr
		msg := mcp.NewJSONRPCResultResponse(mcp.NewRequestId(id), r)
		want, err := json.Marshal(msg)
		got, ok := appendToolAnswer(nil, msg)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("hand encoded %s; json.Marshal: %v", got, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

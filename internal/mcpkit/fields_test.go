package mcpkit_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// Every tool decodes its arguments member by member, and what that gives
// is what json.Unmarshal of the whole object gives: the same value, and an
// error exactly when it errs (the checks before it are shared, so their
// errors are the same ones). The corpus is each tool's valid call, each of
// its arguments replaced by every bad value and by null, and the calls the
// decode fuzzers start from.
func TestFieldByFieldDecodesAsUnmarshal(t *testing.T) {
	_, all := fuzzTools()
	var corpus [][]byte
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `{"module":"m","module":"m"}`, `{"\u006dodule":"m"}`, "{\"module\":\"m\xff\"}",
		` { "stream" : "audit_log_stream" , "entries" : [ { "module" : "m" , "procedure" : "p" , "status" : "ok" } , {"module":"m2","procedure":"p","status":"ok","inputs":{"a":[1,{"b":"\u00e9\n"}]}} ] } `,
		`{"stream":"audit_log_stream","entries":[]}`, `{"stream":"audit_log_stream","entries":null}`, `{"stream":"audit_log_stream","entries":[null,1,"x",[]]}`,
		`{"workflow_id":"w\u0031","phase":"p\"q","event_type":"t","details":"a\\b\/c"}`,
	} {
		corpus = append(corpus, []byte(s))
	}
	for _, args := range validArgs {
		corpus = append(corpus, []byte(args))
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(args), &m); err != nil {
			t.Fatal(err)
		}
		for name := range m {
			for _, v := range append(slices.Clone(badValues), `null`, `[{"a":1},{}]`) {
				var b bytes.Buffer
				b.WriteByte('{')
				for k, old := range m {
					if b.Len() > 1 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%q:", k)
					if k == name {
						b.WriteString(v)
					} else {
						b.Write(old)
					}
				}
				b.WriteByte('}')
				corpus = append(corpus, b.Bytes())
			}
		}
	}
	for name, tool := range all {
		if !mcpkit.DecodesByFieldForTest(tool) {
			t.Errorf("%s decodes its arguments with json.Unmarshal of the whole object", name)
		}
		for _, args := range corpus {
			decodeAlike(t, name, tool, args)
		}
	}
}

// FuzzFieldByFieldDecodesAsUnmarshal is the test above on arguments the
// fuzzer makes, for every tool.
func FuzzFieldByFieldDecodesAsUnmarshal(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, args []byte) {
		_, all := fuzzTools()
		for name, tool := range all {
			decodeAlike(t, name, tool, args)
		}
	})
}

func decodeAlike(t *testing.T, name string, tool mcpkit.Tool, args []byte) {
	t.Helper()
	fields, whole, errFields, errWhole := mcpkit.DecodeBothForTest(tool, args)
	if (errFields == nil) != (errWhole == nil) {
		t.Fatalf("%s(%s): member by member: %v; json.Unmarshal: %v", name, args, errFields, errWhole)
	}
	if errFields == nil && !reflect.DeepEqual(fields, whole) {
		t.Fatalf("%s(%s): member by member %#v, json.Unmarshal %#v", name, args, fields, whole)
	}
}

package mcpkit_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// unenforced returns every keyword of an input schema that Decode does not
// enforce, by where it sits ("count: multipleOf (on an integer)"), going by
// the lists in decode.go. A keyword Decode enforces only with certain
// values (the root's type and additionalProperties, format) is named with
// the value it does not enforce.
func unenforced(raw []byte) ([]string, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	var out []string
	for k, v := range root {
		switch {
		case slices.Contains(mcpkit.Annotations, k):
		case !slices.Contains(mcpkit.EnforcedAtRoot, k):
			out = append(out, k)
		case k == "type" && string(v) != `"object"`:
			out = append(out, "type "+string(v)+" (Decode takes an object of named arguments)")
		case k == "additionalProperties" && string(v) != "false":
			out = append(out, "additionalProperties "+string(v)+" (Decode refuses every unknown argument)")
		}
	}
	var props map[string]map[string]json.RawMessage
	if err := json.Unmarshal(root["properties"], &props); root["properties"] != nil && err != nil {
		return nil, fmt.Errorf("properties: %w", err)
	}
	for name, prop := range props {
		bad, err := unenforcedProperty(name, prop)
		if err != nil {
			return nil, err
		}
		out = append(out, bad...)
	}
	sort.Strings(out)
	return out, nil
}

// unenforcedProperty is unenforced for one property's schema, and for the
// schema of an array's items ("ids[]").
func unenforcedProperty(name string, prop map[string]json.RawMessage) ([]string, error) {
	var out []string
	var typ string
	if t, ok := prop["type"]; ok && json.Unmarshal(t, &typ) != nil {
		return []string{name + ": type " + string(t)}, nil
	}
	enforced, known := mcpkit.EnforcedByType[typ]
	if !known {
		return []string{name + ": type " + typ}, nil
	}
	for k, v := range prop {
		var format string
		switch {
		case k == "type", slices.Contains(mcpkit.Annotations, k):
		case !slices.Contains(enforced, k):
			out = append(out, fmt.Sprintf("%s: %s (on %s)", name, k, kind(typ)))
		case k == "format" && (json.Unmarshal(v, &format) != nil || !slices.Contains(mcpkit.EnforcedFormats, format)):
			out = append(out, name+": format "+string(v))
		case k == "items":
			var items map[string]json.RawMessage
			if err := json.Unmarshal(v, &items); err != nil {
				return nil, fmt.Errorf("%s: items: %w", name, err)
			}
			bad, err := unenforcedProperty(name+"[]", items)
			if err != nil {
				return nil, err
			}
			out = append(out, bad...)
		}
	}
	return out, nil
}

func kind(typ string) string {
	switch typ {
	case "":
		return "any JSON value"
	case "integer", "object", "array":
		return "an " + typ
	}
	return "a " + typ
}

// Every keyword of every input schema the server serves is one Decode
// enforces, or an annotation: a bound in a tag is never advertised and
// left unchecked. The schemas are those of the tools as built, and the
// golden files clients are shown (schemas/*.json).
func TestDecodeEnforcesEveryKeywordOfEveryServedSchema(t *testing.T) {
	served := map[string][]byte{}
	for name, tool := range realTools(&fakeStreams{}) {
		served["tool "+name] = tool.Def.RawInputSchema
	}
	golden, err := filepath.Glob(filepath.Join("..", "..", "schemas", "*.json"))
	if err != nil || len(golden) == 0 {
		t.Fatalf("no golden schemas in ../../schemas (%v)", err)
	}
	for _, path := range golden {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			InputSchema json.RawMessage `json:"inputSchema"`
		}
		if err := json.Unmarshal(b, &doc); err != nil || doc.InputSchema == nil {
			t.Fatalf("%s: no inputSchema (%v)", path, err)
		}
		served[filepath.ToSlash(path)] = doc.InputSchema
	}
	for where, raw := range served {
		bad, err := unenforced(raw)
		if err != nil {
			t.Errorf("%s: %v", where, err)
		}
		for _, k := range bad {
			t.Errorf("%s: Decode does not enforce %s; enforce it in decode.go and list it there, or drop it from the tag", where, k)
		}
	}
}

// The check above would see a keyword Decode does not enforce.
func TestUnenforcedNamesEveryKeywordDecodeDoesNotCheck(t *testing.T) {
	obj := func(props string) string {
		return `{"type":"object","properties":{` + props + `},"additionalProperties":false,"required":["a"]}`
	}
	for _, tc := range []struct {
		schema string
		want   []string
	}{
		{obj(`"a":{"type":"string","minLength":1,"maxLength":9,"pattern":"^x","enum":["x"],"format":"date-time","description":"d","title":"t","default":"x","examples":["x"]},` +
			`"b":{"type":"integer","minimum":1,"maximum":2,"default":1},"c":{"type":"number","maximum":1.5},"d":{"type":"boolean"},"e":{"type":"object"},"f":{"type":"array"},"g":{"description":"any"}`), nil},
		{obj(`"a":{"type":"integer","multipleOf":5}`), []string{"a: multipleOf (on an integer)"}},
		{obj(`"a":{"type":"integer","exclusiveMinimum":0}`), []string{"a: exclusiveMinimum (on an integer)"}},
		{obj(`"a":{"type":"integer","enum":[1,2]}`), []string{"a: enum (on an integer)"}},
		{obj(`"a":{"type":"string","minimum":1}`), []string{"a: minimum (on a string)"}},
		{obj(`"a":{"type":"string","format":"email"}`), []string{`a: format "email"`}},
		{obj(`"a":{"type":"string","const":"x"}`), []string{"a: const (on a string)"}},
		{obj(`"a":{"type":"array","items":{"type":"string","pattern":"^x"},"minItems":1,"maxItems":3}`), nil},
		{obj(`"a":{"type":"array","items":{"type":"integer","multipleOf":2},"uniqueItems":true}`), []string{"a: uniqueItems (on an array)", "a[]: multipleOf (on an integer)"}},
		{obj(`"a":{"type":"object","properties":{"b":{"type":"string"}},"required":["b"]}`), []string{"a: properties (on an object)", "a: required (on an object)"}},
		{obj(`"a":{"maxLength":3}`), []string{"a: maxLength (on any JSON value)"}},
		{obj(`"a":{"type":["string","null"]}`), []string{`a: type ["string","null"]`}},
		{obj(`"a":{"type":"null"}`), []string{"a: type null"}},
		{obj(`"a":{"anyOf":[{"type":"string"}]}`), []string{"a: anyOf (on any JSON value)"}},
		{`{"type":"object","properties":{},"additionalProperties":true}`, []string{"additionalProperties true (Decode refuses every unknown argument)"}},
		{`{"type":"object","properties":{},"additionalProperties":false,"minProperties":1,"oneOf":[]}`, []string{"minProperties", "oneOf"}},
		{`{"type":"array"}`, []string{`type "array" (Decode takes an object of named arguments)`}},
	} {
		got, err := unenforced([]byte(tc.schema))
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("unenforced(%s)\n = %s\nwant %s", tc.schema, strings.Join(got, "; "), strings.Join(tc.want, "; "))
		}
	}
}

package mcpkit

// A valid call is decoded member by member from the arguments Decode has
// already validated and split, rather than by json.Unmarshal of the whole
// object: encoding/json would scan every byte twice more (its own validity
// check, then the decode), and can neither decode text known to be valid
// nor take a member's extent from its caller. An argument kept as its raw
// text (Object, Value: inputs, outputs, a context value, append_batch's
// entries) is a copy of its bytes, and a string a string, with no scan at
// all; anything else goes through json.Unmarshal of its member alone.
// TestFieldByFieldDecodesAsUnmarshal holds the result to json.Unmarshal's
// for every tool over the bad-input corpus.

import (
	"encoding"
	"encoding/json"
	"reflect"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
)

type fieldKind int

const (
	kindJSON    fieldKind = iota // json.Unmarshal of the member into the field
	kindString                   // a string type: the member's string
	kindRaw                      // Object or Value: a copy of the member's text
	kindRawList                  // []Object or []Value: a copy of each item's text
)

// field is where an argument goes in the target struct.
type field struct {
	index []int
	kind  fieldKind
}

var (
	objectType          = reflect.TypeFor[Object]()
	valueType           = reflect.TypeFor[Value]()
	unmarshalerType     = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// fieldsOf maps each property of s to its field in t, a struct, by the
// field's JSON name; nil (Decode then uses json.Unmarshal) when a property
// has no field of its own or t has a shape whose decoding this does not
// repeat: an embedded pointer or unexported struct, a tagged embedded
// struct, a name at more than one depth, or a tag option other than
// omitempty and omitzero.
func fieldsOf(t reflect.Type, s *jsonschema.Schema) map[string]field {
	if t.Kind() != reflect.Struct {
		return nil
	}
	byName := map[string]field{}
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous {
			if f.Type.Kind() != reflect.Struct || !f.IsExported() || f.Tag.Get("json") != "" {
				return nil
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" && opts == "" {
			continue
		}
		for o := range strings.SplitSeq(opts, ",") {
			if o != "" && o != "omitempty" && o != "omitzero" {
				return nil
			}
		}
		if name == "" {
			name = f.Name
		}
		if _, twice := byName[name]; twice {
			return nil
		}
		byName[name] = field{index: f.Index, kind: kindOf(f.Type)}
	}
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		if _, ok := byName[pair.Key]; !ok {
			return nil
		}
	}
	return byName
}

func kindOf(t reflect.Type) fieldKind {
	switch {
	case t == objectType || t == valueType:
		return kindRaw
	case t.Kind() == reflect.Slice && (t.Elem() == objectType || t.Elem() == valueType):
		return kindRawList
	case t.Kind() == reflect.String && !decodesItself(t):
		return kindString
	}
	return kindJSON
}

// decodesItself: encoding/json would call a method of t to decode it.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(unmarshalerType) || p.Implements(unmarshalerType) ||
		t.Implements(textUnmarshalerType) || p.Implements(textUnmarshalerType)
}

// fill sets target's fields from the arguments, in the order given, as
// json.Unmarshal of the whole object would; args is a valid JSON object
// split by splitObject, with only known names.
func (d *decoder) fill(target any, args map[string]json.RawMessage, order []string) error {
	v := reflect.ValueOf(target).Elem()
	for _, name := range order {
		raw := args[name]
		f := d.fields[name]
		fv := v.FieldByIndex(f.index)
		var err error
		switch {
		case f.kind == kindRaw:
			fv.SetBytes(append([]byte(nil), raw...))
		case f.kind == kindRawList && raw[0] == '[':
			fv.Set(rawList(fv.Type(), raw))
		case f.kind == kindRawList && raw[0] == 'n':
			fv.SetZero()
		case f.kind == kindString && raw[0] == '"':
			fv.SetString(jsonString(raw))
		case f.kind == kindString && raw[0] == 'n':
			// null leaves a string as it is.
		default:
			err = json.Unmarshal(raw, fv.Addr().Interface())
		}
		if err != nil {
			return fault.Invalidf("arguments", "%v", err)
		}
	}
	return nil
}

// rawList is raw, a valid JSON array, as a slice of type t (of Object or
// Value): a copy of each item's text.
func rawList(t reflect.Type, raw []byte) reflect.Value {
	items := arrayItems(raw)
	out := reflect.MakeSlice(t, len(items), len(items))
	for k, item := range items {
		out.Index(k).SetBytes(append([]byte(nil), item...))
	}
	return out
}

// arrayItems returns the items of raw, a valid JSON array, as parts of it.
func arrayItems(raw []byte) [][]byte {
	var items [][]byte
	i := jsonwalk.SkipSpace(raw, 1)
	for raw[i] != ']' {
		end := jsonwalk.ValueEnd(raw, i)
		items = append(items, raw[i:end])
		i = jsonwalk.SkipSpace(raw, end)
		if raw[i] == ',' {
			i = jsonwalk.SkipSpace(raw, i+1)
		}
	}
	return items
}

// stringField is v's string argument name as decoded, "" when the input
// has no string argument of that name.
func (d *decoder) stringField(v reflect.Value, name string) string {
	f, ok := d.fields[name]
	if !ok || f.kind != kindString {
		return ""
	}
	return v.FieldByIndex(f.index).String()
}

// stringMember is the string member name of args, a JSON object, as
// json.Unmarshal would decode it; "" when there is none.
func stringMember(args []byte, name string) string {
	var m map[string]json.RawMessage
	var s string
	if json.Unmarshal(args, &m) == nil {
		_ = json.Unmarshal(m[name], &s)
	}
	return s
}

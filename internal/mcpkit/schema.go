// Package mcpkit adapts typed Go tools to mcp-go: it reflects each tool's
// input and output structs into JSON Schema with invopop/jsonschema,
// decodes and validates arguments against that same schema before a handler
// runs, and turns errors into the answer a model sees, in one place.
package mcpkit

import (
	"encoding/json"
	"reflect"

	"github.com/invopop/jsonschema"
)

// Object is a JSON object argument or result, kept as its raw text so
// numbers keep their precision. Its schema is {"type":"object"}.
type Object json.RawMessage

// JSONSchema states Object's schema.
func (Object) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// MarshalJSON returns the raw object ("null" when empty).
func (o Object) MarshalJSON() ([]byte, error) { return json.RawMessage(o).MarshalJSON() }

// UnmarshalJSON keeps a copy of the raw text.
func (o *Object) UnmarshalJSON(b []byte) error {
	*o = append((*o)[:0], b...)
	return nil
}

// Value is any JSON value, kept as its raw text. Its schema states no type.
type Value json.RawMessage

// JSONSchema states Value's schema: any JSON value.
func (Value) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Description: "Any JSON value."}
}

// MarshalJSON returns the raw value ("null" when empty).
func (v Value) MarshalJSON() ([]byte, error) { return json.RawMessage(v).MarshalJSON() }

// UnmarshalJSON keeps a copy of the raw text.
func (v *Value) UnmarshalJSON(b []byte) error {
	*v = append((*v)[:0], b...)
	return nil
}

// Reflect returns the flat, self-contained schema of a struct type: type
// object at the root, no $ref/$defs/$id/$schema, additionalProperties
// false, required = fields without omitempty.
func Reflect(t reflect.Type) *jsonschema.Schema {
	r := &jsonschema.Reflector{
		Anonymous:      true,
		DoNotReference: true,
		ExpandedStruct: true,
	}
	s := r.ReflectFromType(t)
	s.Version = ""
	return s
}

// Marshal returns a schema's JSON text.
func Marshal(s *jsonschema.Schema) json.RawMessage {
	b, err := json.Marshal(s)
	if err != nil {
		panic("mcpkit: marshal schema: " + err.Error())
	}
	return b
}

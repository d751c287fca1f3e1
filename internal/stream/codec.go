package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// Field is one field of a stream entry as Redis stores it.
type Field struct {
	Name  string
	Value string
}

// The entry encoding, shared by every stream (the README states it for
// consumers in other languages):
//
//   - one stream field per top-level field of the record, in struct order;
//   - strings as they are;
//   - integers, numbers and booleans as their JSON text (42, 1.5, true);
//   - objects, arrays and any-JSON values as compact JSON (a string held in
//     an any-JSON field keeps its quotes, so its type survives);
//   - absent optional fields are omitted.
//
// A record type is a struct whose fields are string, bool, integer or float
// kinds, pointers to those (nil = absent), json.RawMessage or a type whose
// underlying type is json.RawMessage (JSON), or embedded structs (flattened).

type kind int

const (
	kString kind = iota
	kInt
	kUint
	kFloat
	kBool
	kJSON
)

type fieldSpec struct {
	name      string
	index     []int
	kind      kind
	ptr       bool
	omitEmpty bool
}

var (
	rawType   = reflect.TypeFor[json.RawMessage]()
	specCache sync.Map // reflect.Type → []fieldSpec
)

func specsOf(t reflect.Type) []fieldSpec {
	if s, ok := specCache.Load(t); ok {
		return s.([]fieldSpec)
	}
	var specs []fieldSpec
	collect(t, nil, &specs)
	specCache.Store(t, specs)
	return specs
}

func collect(t reflect.Type, prefix []int, specs *[]fieldSpec) {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			collect(f.Type, index, specs)
			continue
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		s := fieldSpec{name: name, index: index, omitEmpty: strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")}
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			s.ptr, ft = true, ft.Elem()
		}
		switch {
		case ft.ConvertibleTo(rawType) && ft.Kind() == reflect.Slice:
			s.kind = kJSON
		case ft.Kind() == reflect.String:
			s.kind = kString
		case ft.Kind() == reflect.Bool:
			s.kind = kBool
		case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
			s.kind = kInt
		case ft.Kind() >= reflect.Uint && ft.Kind() <= reflect.Uint64:
			s.kind = kUint
		case ft.Kind() == reflect.Float32 || ft.Kind() == reflect.Float64:
			s.kind = kFloat
		default:
			panic(fmt.Sprintf("stream: field %s of %s has unsupported type %s", f.Name, t, f.Type))
		}
		*specs = append(*specs, s)
	}
}

// Encode turns a record (a struct or a pointer to one) into stream fields.
func Encode(record any) ([]Field, error) {
	v := reflect.Indirect(reflect.ValueOf(record))
	specs := specsOf(v.Type())
	out := make([]Field, 0, len(specs))
	for _, s := range specs {
		fv := v.FieldByIndex(s.index)
		if s.ptr {
			if fv.IsNil() {
				continue
			}
			fv = fv.Elem()
		} else if s.omitEmpty && fv.IsZero() {
			continue
		}
		var val string
		switch s.kind {
		case kString:
			val = fv.String()
		case kBool:
			val = strconv.FormatBool(fv.Bool())
		case kInt:
			val = strconv.FormatInt(fv.Int(), 10)
		case kUint:
			val = strconv.FormatUint(fv.Uint(), 10)
		case kFloat:
			f := fv.Float()
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("encode %s: %v is not a JSON number", s.name, f)
			}
			val = strconv.FormatFloat(f, 'g', -1, 64)
		case kJSON:
			raw := fv.Bytes()
			if len(raw) == 0 {
				if s.omitEmpty {
					continue
				}
				raw = []byte("null")
			}
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return nil, fmt.Errorf("encode %s: %w", s.name, err)
			}
			val = buf.String()
		}
		out = append(out, Field{Name: s.name, Value: val})
	}
	return out, nil
}

// Decode turns the values of a stream entry back into JSON values by the
// record type's fields: strings stay strings, numbers become json.Number,
// booleans bool, JSON fields json.RawMessage. A field the record does not
// know (written by another program), or a value that does not parse as its
// type, is returned as the string Redis holds.
func Decode(values map[string]string, record reflect.Type) map[string]any {
	if record.Kind() == reflect.Pointer {
		record = record.Elem()
	}
	kinds := make(map[string]kind)
	for _, s := range specsOf(record) {
		kinds[s.name] = s.kind
	}
	out := make(map[string]any, len(values))
	for name, val := range values {
		out[name] = decodeValue(kinds[name], val)
	}
	return out
}

func decodeValue(k kind, val string) any {
	switch k {
	case kBool:
		// Only the JSON text Encode writes: strconv.ParseBool would also
		// take 1, t, TRUE, …, which would not come back as written.
		switch val {
		case "true":
			return true
		case "false":
			return false
		}
	case kInt, kUint, kFloat:
		if _, err := strconv.ParseFloat(val, 64); err == nil && json.Valid([]byte(val)) {
			return json.Number(val)
		}
	case kJSON:
		if json.Valid([]byte(val)) {
			return json.RawMessage(val)
		}
	}
	return val
}

package mcpkit

// Decode checks arguments with a walker of its own rather than through a
// JSON Schema library (santhosh-tekuri/jsonschema v6 is in the module graph,
// through mcp-go). The library lacks today's sentences: it reports "got
// string, want integer" or "maxLength: got 300, want 256" at a JSON pointer,
// where a model is told "ttl_ms: must be an integer, not string "5000"" and,
// for a misspelt name, the valid ones. A layer turning its error kinds back
// into these sentences would still need most of this file, for what JSON
// Schema does not say: duplicate names, bytes that are not UTF-8 (which
// encoding/json, and so the library, turns into U+FFFD), nesting depth, the
// int64 range, strict RFC 3339, fields the server stamps, and byte bounds on
// what becomes a Redis key. The walker is the plainer of the two. What it
// enforces is listed below (enforcedAtRoot, enforcedByType); a test fails
// when a served input schema uses any other keyword.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/jsonwalk"
	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

// MaxDepth is how deeply an object or array argument may nest.
const MaxDepth = 16

// Patterns with a sentence for the model, so an error says what is wrong
// rather than quoting a regular expression. Tags refer to them by value.
const (
	// PatternName: not blank, no control characters (ids, names).
	PatternName = `^[^\x00-\x1f\x7f]*[^\x00-\x20\x7f][^\x00-\x1f\x7f]*$`
	// PatternKey: a lock resource or rate subject.
	PatternKey = `^[A-Za-z0-9._:/@-]+$`
	// PatternText: free text; tab, newline and carriage return allowed.
	PatternText = `^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$`
	// PatternEntryID: a complete stream entry id, ms-seq.
	PatternEntryID = `^[0-9]{1,20}-[0-9]{1,20}$`
)

// rfc3339 is the syntax of an RFC 3339 date-time (section 5.6), upper-case
// T and Z; time.Parse then checks the calendar.
var rfc3339 = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$`)

var patternReasons = map[string]string{
	PatternName:    "must not be blank or contain control characters (tab, newline, NUL, …)",
	PatternText:    "must not contain control characters other than tab and newline",
	PatternKey:     "may hold only letters, digits and . _ : / @ - (no spaces, control, glob or brace characters)",
	PatternEntryID: "must be a stream entry id as Redis gives it, ms-seq (e.g. 1700000000000-0)",
}

// The JSON Schema keywords Decode enforces, where they may appear in an
// input schema, and the annotations that need no enforcing. A keyword added
// to a tag and missing here fails the test of every served schema, so no
// bound is advertised that the server does not check.
var (
	// enforcedAtRoot: the input is an object (New refuses any other type) of
	// the named properties, with the required ones, and nothing else
	// (additionalProperties false: every unknown argument is refused).
	enforcedAtRoot = []string{"type", "properties", "required", "additionalProperties"}
	// enforcedByType: besides its type, what is checked in a property's
	// schema. Objects and arrays are any of their kind nested at most
	// MaxDepth deep; an array's items, when stated, are each checked as a
	// property of that schema; "" is a property of any JSON value (Value).
	enforcedByType = map[string][]string{
		"string":  {"minLength", "maxLength", "pattern", "enum", "format"},
		"integer": {"minimum", "maximum"},
		"number":  {"minimum", "maximum"},
		"boolean": nil,
		"object":  nil,
		"array":   {"items", "minItems", "maxItems"},
		"":        nil,
	}
	// enforcedFormats are the values of format that are checked.
	enforcedFormats = []string{"date-time"}
	// annotations say something to the reader and constrain nothing.
	annotations = []string{"$comment", "title", "description", "default", "examples", "deprecated", "readOnly", "writeOnly"}
)

// maxBytes bounds, in UTF-8 bytes, the strings that become parts of Redis
// keys: names and ids (Name) and lock resources and rate subjects (Key).
// The bound is the server's own and holds besides maxLength, which counts
// characters as JSON Schema does; JSON Schema has no keyword for bytes, so
// it is keyed here by the pattern those types carry.
var maxBytes = map[string]int{PatternName: MaxNameBytes, PatternKey: MaxKeyBytes}

// decoder validates raw arguments against a tool's input schema.
type decoder struct {
	schema *jsonschema.Schema
	names  []string // property names in schema order
	// known maps each property name to itself, so the name of an
	// argument that is one is taken from here, not copied again.
	known    map[string]string
	patterns map[string]*regexp.Regexp
	// stamped are names the server sets on what the tool writes.
	stamped []string
	// fields, when not nil, says where each argument goes in the target
	// struct (fields.go), so a valid call is decoded member by member
	// from the split arguments; nil decodes the whole object with
	// json.Unmarshal.
	fields map[string]field
}

func newDecoder(s *jsonschema.Schema, stamped []string, target reflect.Type) *decoder {
	d := &decoder{schema: s, patterns: map[string]*regexp.Regexp{}, known: map[string]string{}, stamped: stamped}
	d.fields = fieldsOf(target, s)
	for pair := s.Properties.Oldest(); pair != nil; pair = pair.Next() {
		d.names = append(d.names, pair.Key)
		d.known[pair.Key] = pair.Key
		for p := pair.Value; p != nil; p = p.Items {
			if p.Pattern != "" {
				d.patterns[p.Pattern] = compile(p.Pattern)
			}
		}
	}
	return d
}

// compiled holds each pattern compiled: the tools share a few (PatternName,
// PatternKey), so a server's start compiles each once, not once per tool.
var compiled sync.Map // string → *regexp.Regexp

// compile is pattern compiled, from compiled when it was before.
func compile(pattern string) *regexp.Regexp {
	if re, ok := compiled.Load(pattern); ok {
		return re.(*regexp.Regexp)
	}
	re, _ := compiled.LoadOrStore(pattern, regexp.MustCompile(pattern))
	return re.(*regexp.Regexp)
}

// problems collects every argument error of one call.
type problems []*fault.Error

func (p *problems) add(field, format string, a ...any) {
	*p = append(*p, fault.Invalidf(field, format, a...))
}

func (p problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	msgs := make([]string, len(p))
	for i, e := range p {
		msgs[i] = e.Error()
	}
	return &fault.Error{Code: fault.Invalid, Message: strings.Join(msgs, "; ")}
}

// Decode validates raw arguments against the schema and decodes them into
// target. Every problem found is reported in one error naming the fields.
func (d *decoder) Decode(raw []byte, target any) error {
	return d.decode(raw, target, false)
}

// decode is Decode; valid says raw is known to be valid JSON (a part of
// arguments Decode has checked), so it is not checked again.
func (d *decoder) decode(raw []byte, target any, valid bool) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = []byte("{}")
	}
	args, order, err := splitObject(raw, d.known, valid)
	if err != nil {
		return err
	}
	if !utf8.Valid(raw) {
		return notUTF8(raw)
	}
	var p problems
	var unknown []string
	for _, name := range order {
		if slices.Contains(d.stamped, name) {
			p.add(name, "is set by the server on every entry it writes (who called, over which session and client, when it was recorded), never by a caller; leave it out")
			continue
		}
		if !slices.Contains(d.names, name) {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		p.add("arguments", "%s", d.unknownArguments(unknown, args))
	}
	for _, name := range d.schema.Required {
		if _, ok := args[name]; !ok {
			p.add(name, "is required")
		}
	}
	for _, name := range d.names {
		raw, ok := args[name]
		if !ok {
			continue
		}
		prop, _ := d.schema.Properties.Get(name)
		d.check(&p, name, prop, raw)
	}
	if err := p.err(); err != nil {
		return err
	}
	if d.fields != nil {
		return d.fill(target, args, order)
	}
	if err := json.Unmarshal(raw, target); err != nil {
		return fault.Invalidf("arguments", "%v", err)
	}
	return nil
}

// decodeWhole is the last step of Decode as json.Unmarshal of the whole
// object, for the test that holds fill to it.
func (d *decoder) decodeWhole(raw []byte, target any) error {
	whole := *d
	whole.fields = nil
	return whole.Decode(raw, target)
}

// maxListed bounds how many unknown argument names one error lists.
const maxListed = 8

// unknownArguments is the sentence for the unknown names, in the order
// given, with "did you mean" for those close to a valid name the call left
// out (a name it gave is not what a typo was meant to be). It runs only on
// a rejected call, so a valid one never pays for the suggestions.
func (d *decoder) unknownArguments(unknown []string, given map[string]json.RawMessage) string {
	var missing []string
	for _, n := range d.names {
		if _, ok := given[n]; !ok {
			missing = append(missing, n)
		}
	}
	// A few names are enough to spot a typo; thousands would flood the answer.
	listed := make([]string, 0, min(len(unknown), maxListed)+1)
	var meant []string
	for _, name := range unknown[:min(len(unknown), maxListed)] {
		listed = append(listed, fmt.Sprintf("%q", clip(name)))
		// A name longer than any clip leaves is no typo of a valid one.
		if len(name) > maxClip {
			continue
		}
		if s, ok := suggest.Closest(name, missing); ok {
			if len(unknown) == 1 {
				meant = append(meant, fmt.Sprintf("%q", s))
			} else {
				meant = append(meant, fmt.Sprintf("%q for %q", s, name))
			}
		}
	}
	if n := len(unknown); n > maxListed {
		listed = append(listed, fmt.Sprintf("and %d more", n-maxListed))
	}
	valid := strings.Join(d.names, ", ")
	if len(meant) == 0 {
		return fmt.Sprintf("unknown argument %s; valid arguments are: %s", strings.Join(listed, ", "), valid)
	}
	return fmt.Sprintf("unknown argument %s: did you mean %s? valid arguments are: %s", strings.Join(listed, ", "), strings.Join(meant, ", "), valid)
}

// maxClip is how many bytes of a name or value clip keeps.
const maxClip = 64

// clip shortens s to at most maxClip bytes for a message, cutting between
// characters so the message stays valid UTF-8.
func clip(s string) string {
	if len(s) <= maxClip {
		return s
	}
	n := maxClip
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// splitObject reads a JSON object into its members, in order, rejecting
// anything else and duplicate names. It validates once (unless the caller
// knows raw to be valid), then walks the members by hand: the token API of
// encoding/json costs several times more on the hot path of every call. A
// name spelt plainly as one of known is that string.
func splitObject(raw []byte, known map[string]string, valid bool) (map[string]json.RawMessage, []string, error) {
	if raw[0] != '{' {
		return nil, nil, fault.Invalidf("arguments", "must be a JSON object of named arguments")
	}
	if !valid && !json.Valid(raw) {
		var v any
		err := json.Unmarshal(raw, &v)
		return nil, nil, fault.Invalidf("arguments", "not valid JSON: %v", err)
	}
	args := make(map[string]json.RawMessage, len(known))
	order := make([]string, 0, len(known))
	i := jsonwalk.SkipSpace(raw, 1)
	if raw[i] == '}' {
		return args, order, nil
	}
	for {
		end := jsonwalk.StringEnd(raw, i)
		name, ok := known[string(raw[i+1:end-1])]
		if !ok {
			name = jsonwalk.MemberName(raw[i:end])
		}
		i = jsonwalk.SkipSpace(raw, jsonwalk.SkipSpace(raw, end)+1) // past the colon
		vend := jsonwalk.ValueEnd(raw, i)
		if _, dup := args[name]; dup {
			return nil, nil, fault.Invalidf(clip(name), "is given more than once")
		}
		args[name] = raw[i:vend]
		order = append(order, name)
		i = jsonwalk.SkipSpace(raw, vend)
		if raw[i] == '}' {
			return args, order, nil
		}
		i = jsonwalk.SkipSpace(raw, i+1) // past the comma
	}
}

// notUTF8 reports, by argument, the bytes of raw (a valid JSON object)
// that are not UTF-8. JSON text must be UTF-8 (RFC 8259 §8.1), and
// encoding/json would turn each such byte into U+FFFD: distinct names would
// become one, while object arguments, kept as raw text, would be stored and
// echoed with the bytes as they came.
func notUTF8(raw []byte) error {
	var p problems
	i := jsonwalk.SkipSpace(raw, 1)
	for i < len(raw) && raw[i] == '"' {
		end := jsonwalk.StringEnd(raw, i)
		name := jsonwalk.MemberName(raw[i:end])
		vs := jsonwalk.SkipSpace(raw, jsonwalk.SkipSpace(raw, end)+1)
		ve := jsonwalk.ValueEnd(raw, vs)
		switch v := raw[vs:ve]; {
		case !utf8.Valid(raw[i:end]):
			p.add("arguments", "the argument name %q is not valid UTF-8; JSON text must be UTF-8", clip(string(raw[i+1:end-1])))
		case !utf8.Valid(v):
			p.add(clip(name), "is not valid UTF-8 (byte %d of its value is 0x%02x); JSON text must be UTF-8", badByte(v), v[badByte(v)])
		}
		i = jsonwalk.SkipSpace(raw, jsonwalk.SkipSpace(raw, ve)+1) // past the comma
	}
	if err := p.err(); err != nil {
		return err
	}
	return fault.Invalidf("arguments", "are not valid UTF-8; JSON text must be UTF-8")
}

// badByte returns the offset of the first byte of b that is not part of a
// valid UTF-8 sequence (b is not valid UTF-8).
func badByte(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}

// jsonType names the JSON type of a raw value.
func jsonType(raw json.RawMessage) string {
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

func (d *decoder) check(p *problems, name string, s *jsonschema.Schema, raw json.RawMessage) {
	got := jsonType(raw)
	want := s.Type
	switch {
	case want == "":
	case want == "integer" && got == "number":
	case want != got:
		article := "a"
		if want == "integer" || want == "object" || want == "array" {
			article = "an"
		}
		p.add(name, "must be %s %s, not %s", article, want, describe(got, raw))
		return
	}
	switch got {
	case "string":
		d.checkString(p, name, s, jsonString(raw))
	case "number":
		checkNumber(p, name, s, raw)
	case "object", "array":
		if depth(raw) > MaxDepth {
			p.add(name, "nests deeper than %d levels", MaxDepth)
			return
		}
		if got == "array" {
			d.checkItems(p, name, s, raw)
		}
	}
}

// checkItems checks an array's length and each of its items, naming an
// item by its index ("ids[2]"); at most maxListed items are reported.
func (d *decoder) checkItems(p *problems, name string, s *jsonschema.Schema, raw json.RawMessage) {
	if s.Items == nil && s.MinItems == nil && s.MaxItems == nil {
		return
	}
	// raw is part of the arguments, which splitObject found valid.
	items := arrayItems(raw)
	n := uint64(len(items))
	switch {
	case s.MinItems != nil && n < *s.MinItems:
		p.add(name, "has %d items; at least %d required", n, *s.MinItems)
		return
	case s.MaxItems != nil && n > *s.MaxItems:
		p.add(name, "has %d items; at most %d allowed", n, *s.MaxItems)
		return
	case s.Items == nil:
		return
	}
	before := len(*p)
	for i, item := range items {
		if len(*p)-before == maxListed {
			p.add(name, "has more wrong items than the %d named", maxListed)
			return
		}
		d.check(p, fmt.Sprintf("%s[%d]", name, i), s.Items, item)
	}
}

// jsonString decodes raw, a valid JSON string, as encoding/json would; one
// without escapes (most are) is its text between the quotes.
func jsonString(raw json.RawMessage) string {
	if plain := raw[1 : len(raw)-1]; bytes.IndexByte(plain, '\\') < 0 && utf8.Valid(plain) {
		return string(plain)
	}
	var v string
	_ = json.Unmarshal(raw, &v)
	return v
}

func describe(got string, raw json.RawMessage) string {
	if got == "null" {
		return "null (omit an optional argument instead)"
	}
	if len(raw) > 32 {
		return got
	}
	return got + " " + string(raw)
}

func (d *decoder) checkString(p *problems, name string, s *jsonschema.Schema, v string) {
	// minLength and maxLength count characters (code points), as JSON
	// Schema does; maxBytes is a separate bound, and each sentence says
	// which it counts.
	var chars uint64
	if s.MinLength != nil || s.MaxLength != nil {
		chars = uint64(utf8.RuneCountInString(v))
	}
	if s.MinLength != nil && chars < *s.MinLength {
		if *s.MinLength == 1 {
			p.add(name, "must not be empty")
		} else {
			p.add(name, "is %s; at least %d required", characters(chars), *s.MinLength)
		}
		return
	}
	if limit, ok := maxBytes[s.Pattern]; ok && len(v) > limit {
		p.add(name, "is %d bytes; at most %d allowed (a bound in UTF-8 bytes, not characters)", len(v), limit)
		return
	}
	if s.MaxLength != nil && chars > *s.MaxLength {
		p.add(name, "is %s; at most %d allowed", characters(chars), *s.MaxLength)
		return
	}
	if s.Pattern != "" && !d.patterns[s.Pattern].MatchString(v) {
		if reason, ok := patternReasons[s.Pattern]; ok {
			p.add(name, "%s", reason)
		} else {
			p.add(name, "must match %s", s.Pattern)
		}
		return
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, any(v)) {
		opts := make([]string, len(s.Enum))
		for i, e := range s.Enum {
			opts[i] = fmt.Sprint(e)
		}
		p.add(name, "%q is not one of %s", clip(v), strings.Join(opts, ", "))
		return
	}
	if s.Format == "date-time" {
		// time.Parse alone also takes "15:04:05,5", a one-digit hour and
		// offsets such as +24:00, none of which is RFC 3339.
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil || !rfc3339.MatchString(v) {
			p.add(name, "%q is not an RFC 3339 timestamp (e.g. 2026-01-02T15:04:05.000Z)", clip(v))
		}
	}
}

func characters(n uint64) string {
	if n == 1 {
		return "1 character"
	}
	return fmt.Sprintf("%d characters", n)
}

// maxNumberText bounds the text of a number compared with a bound:
// parsing decimal text is quadratic in its length, and no bound needs more.
const maxNumberText = 1024

func checkNumber(p *problems, name string, s *jsonschema.Schema, raw json.RawMessage) {
	text := string(raw)
	if s.Type == "integer" {
		if strings.ContainsAny(text, ".eE") {
			p.add(name, "must be a whole number, not %s", clip(text))
			return
		}
		// JSON has no leading zeros: 20 digits or more is beyond int64,
		// and not worth parsing (a megabyte of digits takes seconds).
		if digits := strings.TrimPrefix(text, "-"); len(digits) > 19 {
			switch {
			case text[0] == '-' && s.Minimum != "":
				p.add(name, "%s is below the minimum %s", clip(text), s.Minimum)
			case text[0] != '-' && s.Maximum != "":
				p.add(name, "%s is above the maximum %s", clip(text), s.Maximum)
			default:
				p.add(name, "%s is out of range", clip(text))
			}
			return
		}
	}
	if s.Type != "integer" && s.Minimum == "" && s.Maximum == "" {
		return // any JSON number, e.g. in a Value
	}
	if len(text) > maxNumberText {
		p.add(name, "has more than %d characters", maxNumberText)
		return
	}
	n, ok := new(big.Float).SetPrec(200).SetString(text)
	if !ok {
		// A valid JSON number big.Float cannot hold: an exponent beyond int32.
		p.add(name, "%s is out of range", clip(text))
		return
	}
	if s.Minimum != "" {
		if lim, _ := new(big.Float).SetPrec(200).SetString(string(s.Minimum)); lim != nil && n.Cmp(lim) < 0 {
			p.add(name, "%s is below the minimum %s", clip(text), s.Minimum)
			return
		}
	}
	if s.Maximum != "" {
		if lim, _ := new(big.Float).SetPrec(200).SetString(string(s.Maximum)); lim != nil && n.Cmp(lim) > 0 {
			p.add(name, "%s is above the maximum %s", clip(text), s.Maximum)
			return
		}
	}
	if s.Type == "integer" && !n.IsInt() {
		p.add(name, "must be a whole number")
		return
	}
	if s.Type == "integer" {
		if i, _ := n.Int(nil); !i.IsInt64() {
			p.add(name, "%s is out of range", clip(text))
		}
	}
}

// depth returns how deeply a JSON value nests: 0 for a scalar, 1 for {}.
func depth(raw []byte) int {
	deepest, cur, inString, escaped := 0, 0, false, false
	for _, c := range raw {
		switch {
		case escaped:
			escaped = false
		case inString:
			if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			cur++
			deepest = max(deepest, cur)
		case c == '}' || c == ']':
			cur--
		}
	}
	return deepest
}

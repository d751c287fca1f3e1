package mcpkit

import "github.com/invopop/jsonschema"

// MaxNameBytes bounds every id and name argument in UTF-8 bytes, as ids
// become parts of Redis keys.
const MaxNameBytes = 256

// Name is an id or a name (module, workflow_id, log_id, …): 1 to 256
// characters (maxLength, unless a tag lowers it) and at most 256 bytes, not
// blank, no control characters.
type Name string

// JSONSchema states Name's rules, which Decode enforces; the bound in
// bytes is Decode's own, as JSON Schema has no keyword for it.
func (Name) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", MinLength: uptr(1), MaxLength: uptr(MaxNameBytes), Pattern: PatternName}
}

// Text is free text (rationale, feedback, details): not empty, tab and
// newline allowed, no other control characters. Its size is bounded by the
// entry limit.
type Text string

// JSONSchema states Text's rules, which Decode enforces.
func (Text) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", MinLength: uptr(1), Pattern: PatternText}
}

// Timestamp is an RFC 3339 date-time.
type Timestamp string

// JSONSchema states Timestamp's rules, which Decode enforces.
func (Timestamp) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", Format: "date-time", MaxLength: uptr(64)}
}

func uptr(n uint64) *uint64 { return &n }

// MaxKeyBytes bounds a lock resource or rate subject in bytes; its pattern
// allows only ASCII, so that is as many characters.
const MaxKeyBytes = 200

// Key names a lock resource or a rate-limit subject, which becomes part of
// a Redis key: 1 to 200 bytes of letters, digits and . _ : / @ - (no
// whitespace, control, glob or brace characters, so it can neither match
// other keys in a pattern nor move to another cluster slot).
type Key string

// JSONSchema states Key's rules, which Decode enforces.
func (Key) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", MinLength: uptr(1), MaxLength: uptr(MaxKeyBytes), Pattern: PatternKey}
}

// EntryID is a stream entry id as Redis gives it: ms-seq, each part a
// decimal of at most 20 digits (e.g. 1700000000000-0). That each part fits
// 64 bits is the tool's check: a pattern cannot say it.
type EntryID string

// JSONSchema states EntryID's rules, which Decode enforces.
func (EntryID) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "string", MaxLength: uptr(41), Pattern: PatternEntryID}
}

// InvalidPromptArguments begins the message of every prompts/get refused
// for its arguments. mcp-go v1.2.1 answers any prompt handler's error with
// -32603 (server/handler_errors.go, handlerError) and has no way to say
// otherwise; the transports turn an answer with this message into -32602,
// the code the MCP specification gives a missing or invalid argument.
const InvalidPromptArguments = "invalid prompt arguments: "

// The scopes a credential may grant (README, Security): each tool needs
// one, and a token or access token given scopes calls only the tools they
// cover. ScopeAdmin covers every tool.
const (
	ScopeStreamsRead    = "streams:read"
	ScopeStreamsWrite   = "streams:write"
	ScopeStreamsConsume = "streams:consume"
	ScopeLocks          = "locks"
	ScopeRate           = "rate"
	ScopeAdmin          = "admin"
)

// Scopes are every scope, in the order the README lists them.
var Scopes = []string{ScopeStreamsRead, ScopeStreamsWrite, ScopeStreamsConsume, ScopeLocks, ScopeRate, ScopeAdmin}

package mcpkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"time"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-redis/mcp-redis/internal/fault"
)

// Hints are a tool's behaviour annotations. Every field is always stated:
// mcp-go would otherwise advertise a tool as destructive and open-world.
type Hints struct {
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// Spec describes one tool: its name, what it tells the model, and its
// handler over typed input and output.
type Spec[In, Out any] struct {
	Name        string
	Title       string
	Description string
	Hints       Hints
	// Schema, when set, adjusts the reflected input schema before it is
	// served and enforced: bounds that come from configuration.
	Schema func(s *jsonschema.Schema)
	// Budget, when set, is how long a call may run beyond the Redis
	// timeout, e.g. a bounded wait for a lock.
	Budget func(in *In) time.Duration
	Handle func(ctx context.Context, in *In) (*Out, error)
	// Record, when set, says what the server's record of a call keeps:
	// the arguments that identify the action (inputs) and the results
	// that say what happened (outputs; out is nil when the call failed).
	// It never returns a secret.
	Record func(in *In, out *Out) (inputs, outputs map[string]any)
	// Secret names the arguments no record of a call keeps, whatever
	// audit.record_arguments says (a lock's token).
	Secret []string
	// Stamped names the fields the server sets on what the tool writes
	// (who called, when it was recorded); an argument of such a name is
	// refused saying so.
	Stamped []string
	// Meta, when set, is the tool's _meta in tools/list (an MCP App's
	// ui.resourceUri).
	Meta map[string]any
	// Unavailable, when set, is the advice of the tool's "Redis is
	// unavailable" errors that carry none of their own; the default
	// speaks of retrying a write with its log_id/event_id.
	Unavailable string
}

// Tool is a tool ready to register: its definition with raw schemas, and a
// call that decodes, validates and runs it.
type Tool struct {
	Def mcp.Tool
	// Call runs the tool on raw JSON arguments; once they are valid, the
	// call runs under a deadline of timeout (plus the tool's budget).
	Call func(ctx context.Context, args []byte, timeout time.Duration) (any, error)
	// CallOnValidJSON is Call on args known to be valid JSON text (part of
	// arguments already decoded, as an append_batch entry is), which is
	// then not checked for JSON syntax again; everything else is checked.
	CallOnValidJSON func(ctx context.Context, args []byte, timeout time.Duration) (any, error)

	// run is Call that also returns the decoded input (nil when the
	// arguments are invalid), for record.
	run    func(ctx context.Context, args []byte, timeout time.Duration) (in, out any, err error)
	record func(in, out any) (inputs, outputs map[string]any)
	secret []string
	// unavailable is Spec.Unavailable.
	unavailable string
	// decodeBoth decodes args as Decode does (member by member, fill) and
	// with json.Unmarshal of the whole object, for the test that holds
	// the two equal.
	decodeBoth func(args []byte) (fields, whole any, errFields, errWhole error)
	// byField: the arguments are decoded member by member (fields.go).
	byField bool
	// stringArg is Call.StringArg of a call whose input decoded to in.
	stringArg func(in any, args []byte, name string) string
	// Gate, when set, decides before anything else whether the caller may
	// call the tool at all (the server's tools.* settings, the
	// credential's scopes): an error, a fault.Forbidden, is the call's
	// answer and what the observer is told.
	Gate func(ctx context.Context) error
}

// Name returns the tool's name.
func (t Tool) Name() string { return t.Def.Name }

// New builds a Tool from a Spec; it panics on a schema the adapter cannot
// serve, which is a programming error caught by the first test.
func New[In, Out any](spec Spec[In, Out]) Tool {
	in := Reflect(reflect.TypeFor[In]())
	if spec.Schema != nil {
		spec.Schema(in)
	}
	out := Reflect(reflect.TypeFor[Out]())
	if in.Type != "object" || out.Type != "object" {
		panic("mcpkit: " + spec.Name + ": input and output must be structs")
	}
	def := mcp.NewToolWithRawSchema(spec.Name, spec.Description, Marshal(in))
	def.RawOutputSchema = Marshal(out)
	if spec.Meta != nil {
		def.Meta = mcp.NewMetaFromMap(spec.Meta)
	}
	h := spec.Hints
	def.Annotations = mcp.ToolAnnotation{
		Title:           spec.Title,
		ReadOnlyHint:    mcp.ToBoolPtr(h.ReadOnly),
		DestructiveHint: mcp.ToBoolPtr(h.Destructive),
		IdempotentHint:  mcp.ToBoolPtr(h.Idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(h.OpenWorld),
	}
	dec := newDecoder(in, spec.Stamped, reflect.TypeFor[In]())
	run := func(ctx context.Context, args []byte, timeout time.Duration, valid bool) (any, any, error) {
		var v In
		if err := dec.decode(args, &v, valid); err != nil {
			return nil, nil, err
		}
		if c, ok := any(&v).(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				return nil, nil, err
			}
		}
		if spec.Budget != nil {
			timeout += spec.Budget(&v)
		}
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		out, err := spec.Handle(ctx, &v)
		if err != nil || out == nil {
			return &v, nil, err
		}
		return &v, out, nil
	}
	t := Tool{
		Def: def,
		Call: func(ctx context.Context, args []byte, timeout time.Duration) (any, error) {
			_, out, err := run(ctx, args, timeout, false)
			return out, err
		},
		CallOnValidJSON: func(ctx context.Context, args []byte, timeout time.Duration) (any, error) {
			_, out, err := run(ctx, args, timeout, true)
			return out, err
		},
		run: func(ctx context.Context, args []byte, timeout time.Duration) (any, any, error) {
			return run(ctx, args, timeout, false)
		},
		decodeBoth: func(args []byte) (any, any, error, error) {
			var f, w In
			ef := dec.Decode(args, &f)
			ew := dec.decodeWhole(args, &w)
			return &f, &w, ef, ew
		},
		byField: dec.fields != nil,
		stringArg: func(in any, args []byte, name string) string {
			if v, ok := in.(*In); ok && dec.fields != nil {
				return dec.stringField(reflect.ValueOf(v).Elem(), name)
			}
			return stringMember(args, name)
		},
		secret:      spec.Secret,
		unavailable: spec.Unavailable,
	}
	if spec.Record != nil {
		t.record = func(in, out any) (map[string]any, map[string]any) {
			i, _ := in.(*In)
			if i == nil {
				return nil, nil
			}
			o, _ := out.(*Out)
			return spec.Record(i, o)
		}
	}
	return t
}

// Call is what an Observer learns of one finished tool call.
type Call struct {
	Tool     string
	Args     []byte
	Duration time.Duration
	Err      error // nil on success
	// Message is the sentence the caller was told for Err (see Message):
	// what a record of the call may keep; Err may hold raw Redis text.
	Message string
	Result  any // the structured result on success
	// Valid: the arguments decoded and passed their checks.
	Valid bool
	// Provenance is who called, as the transport and protocol say.
	Provenance Provenance
	// Inputs and Outputs are what the tool's Record keeps of a valid
	// call: the identifying arguments, and (on success) results.
	Inputs, Outputs map[string]any
	// Secret names the arguments a record must never keep.
	Secret []string
	// StringArg, for a valid call, is its string argument of that name
	// as decoded ("" when it has none); nil when the call is not valid.
	StringArg func(name string) string
}

// Observer is told of every finished call, e.g. to audit it.
type Observer func(ctx context.Context, c Call)

// Handler returns the mcp-go handler of t: it runs the call, recovers a
// panic, tells obs (when not nil), and maps the outcome to a result. A
// fault.Invalid, Conflict, NotFound or Unavailable error becomes a tool
// error the model can act on; anything else is "internal error (ref …)"
// with the detail logged.
//
// The call runs under a deadline of timeout, so a Redis that does not
// answer gives a tool error in time, never a hang.
func (t Tool) Handler(obs Observer, timeout time.Duration, log *slog.Logger) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (res *mcp.CallToolResult, _ error) {
		args := []byte(req.Params.RawArguments)
		if len(args) == 0 && req.Params.Arguments != nil {
			args, _ = json.Marshal(req.Params.Arguments)
		}
		prov := provenanceOf(ctx)
		ctx = WithProvenance(ctx, prov)
		start := time.Now()
		var in, out any
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
				}
			}()
			if t.Gate != nil {
				if err = t.Gate(ctx); err != nil {
					return
				}
			}
			if t.run == nil {
				out, err = t.Call(ctx, args, timeout)
				return
			}
			in, out, err = t.run(ctx, args, timeout)
		}()
		var text []byte
		if err == nil {
			if text, err = json.Marshal(out); err != nil {
				err = fmt.Errorf("marshal result: %w", err)
			}
		}
		var msg string
		if err != nil {
			if e, ok := fault.As(err); ok && e.Code == fault.Unavailable && e.Hint == "" && t.unavailable != "" {
				// A copy: err may be shared.
				c := *e
				c.Hint = t.unavailable
				err = &c
			}
			msg = Message(err, t.Def.Name, log)
		}
		if obs != nil {
			c := Call{Tool: t.Def.Name, Args: args, Duration: time.Since(start), Err: err, Message: msg, Result: out,
				Valid: in != nil, Provenance: prov, Secret: t.secret}
			if in != nil && t.stringArg != nil {
				c.StringArg = func(name string) string { return t.stringArg(in, args, name) }
			}
			if t.record != nil && in != nil {
				res := out
				if err != nil {
					res = nil
				}
				c.Inputs, c.Outputs = t.record(in, res)
			}
			obs(ctx, c)
		}
		if err != nil {
			return mcp.NewToolResultError(msg), nil
		}
		return mcp.NewToolResultStructured(json.RawMessage(text), string(text)), nil
	}
}

// ErrorResult turns err into the tool error a model sees.
func ErrorResult(err error, tool string, log *slog.Logger) *mcp.CallToolResult {
	return mcp.NewToolResultError(Message(err, tool, log))
}

// Message is the sentence a model sees for err: its class, what the
// server knows of it in its own words, and for a fault with a cause
// (Redis' own error text, a script's SHA, a panic) a reference to the log
// line that has the cause. The cause itself never reaches the caller, nor
// a call record.
func Message(err error, tool string, log *slog.Logger) string {
	e, ok := fault.As(err)
	if !ok {
		e = &fault.Error{Code: fault.Internal, Err: err}
	}
	own := e.Message
	if e.Field != "" {
		own = e.Field + ": " + own
	}
	ref := ""
	if e.Err != nil || e.Code == fault.Internal {
		ref = newRef()
		lvl := slog.LevelWarn
		if e.Code == fault.Internal {
			lvl = slog.LevelError
		}
		log.Log(context.Background(), lvl, "tool call failed", "tool", tool, "code", string(e.Code), "ref", ref, "err", err)
	}
	switch e.Code {
	case fault.Invalid:
		return "invalid arguments: " + own + ". Fix the arguments and call " + tool + " again."
	case fault.Conflict:
		return "conflict: " + own
	case fault.NotFound:
		return "not found: " + own
	case fault.Forbidden:
		return "forbidden: " + own
	case fault.Unavailable:
		hint := e.Hint
		if hint == "" {
			hint = "Nothing is known to be written; retry later (a write retried with the same log_id/event_id is applied at most once)."
		}
		return "unavailable: " + own + " (ref " + ref + "). " + hint
	}
	return "internal error (ref " + ref + "); the server log has the details"
}

func newRef() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

package tools

import (
	"context"

	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/internal/stream"
)

// AuditVerifier is what verify_audit needs of the Redis layer: the chain
// walker, whether it holds the key that checks checkpoint signatures, and
// which streams are chained.
type AuditVerifier interface {
	Verify(ctx context.Context, req audit.Request) (*audit.Report, error)
	Trusted() bool
	Chained(stream string) bool
}

// VerifyAuditInput selects the part of a chain to verify.
type VerifyAuditInput struct {
	Stream     string `json:"stream,omitempty" jsonschema:"enum=audit_log_stream,enum=ccwj_update_stream,enum=user_feedback,enum=workflow_events" jsonschema_description:"Chained stream to verify, by its name without the key prefix; audit_log_stream when absent."`
	From       string `json:"from,omitempty" jsonschema:"maxLength=48" jsonschema_description:"Entry id to start at (its own prev_hash is taken as it is); the oldest entry kept when absent."`
	Cursor     string `json:"cursor,omitempty" jsonschema:"maxLength=120" jsonschema_description:"The next value of an earlier call, to resume after the last entry it checked; replaces from."`
	MaxEntries int    `json:"max_entries,omitempty" jsonschema:"minimum=1,maximum=10000" jsonschema_description:"Most entries to check in this call; 10000 when absent."`
}

// Check validates the bounds.
func (in *VerifyAuditInput) Check() error {
	if in.From != "" && in.From != "-" {
		if err := stream.ParseID(in.From); err != nil || in.From[0] == '(' {
			return fault.Invalidf("from", "%q is not a stream id (ms-seq, e.g. 1700000000000-0)", in.From)
		}
	}
	if in.Cursor != "" {
		if _, _, ok := audit.ParseCursor(in.Cursor); !ok {
			return fault.Invalidf("cursor", "is not a cursor this tool returned (<entry id>:<hash>)")
		}
	}
	return nil
}

// AuditProblem is the first break found.
type AuditProblem struct {
	EntryID string `json:"entry_id" jsonschema_description:"The first entry found modified, deleted, inserted or reordered (for a deletion: the entry after the gap, or the id a checkpoint names)."`
	Kind    string `json:"kind" jsonschema:"enum=modified,enum=deleted,enum=inserted,enum=reordered,enum=rewritten,enum=bad_signature" jsonschema_description:"What was found: modified (hash does not match content), deleted, inserted, reordered (prev_hash does not match the previous entry), rewritten (a signed checkpoint no longer matches), bad_signature (a checkpoint was forged or altered)."`
	Reason  string `json:"reason" jsonschema_description:"Why, in a sentence."`
}

// AuditCheckpoint is a signed checkpoint that was checked.
type AuditCheckpoint struct {
	EntryID string `json:"entry_id" jsonschema_description:"The entry it signs."`
	Hash    string `json:"hash" jsonschema_description:"The entry's hash it signs."`
	Time    string `json:"time" jsonschema_description:"When it was signed (RFC 3339, UTC)."`
	KeyID   string `json:"key_id" jsonschema_description:"The signing key's id."`
}

// VerifyAuditResult is the outcome of one call.
type VerifyAuditResult struct {
	OK                bool             `json:"ok" jsonschema_description:"No problem found in the entries checked."`
	Stream            string           `json:"stream" jsonschema_description:"Redis key of the stream verified."`
	Checked           int              `json:"checked" jsonschema_description:"Chained entries checked in this call."`
	Unchained         int              `json:"unchained,omitempty" jsonschema_description:"Entries written before the chain was turned on, skipped."`
	FirstID           string           `json:"first_id,omitempty" jsonschema_description:"First entry checked."`
	LastID            string           `json:"last_id,omitempty" jsonschema_description:"Last entry checked and found good."`
	FromGenesis       bool             `json:"from_genesis" jsonschema_description:"The first entry checked is the chain's first (its prev_hash is the genesis hash); false after trimming, from or cursor."`
	Problem           *AuditProblem    `json:"problem,omitempty" jsonschema_description:"The first break found; absent when ok."`
	SignaturesChecked bool             `json:"signatures_checked" jsonschema_description:"Whether the server holds the public key that checks checkpoint signatures."`
	Checkpoints       int              `json:"checkpoints_checked" jsonschema_description:"Signed checkpoints matched against their entries in this call."`
	LastCheckpoint    *AuditCheckpoint `json:"last_checkpoint,omitempty" jsonschema_description:"The newest signed checkpoint that matched."`
	Next              string           `json:"next,omitempty" jsonschema_description:"Present when max_entries ended the walk: pass it as cursor to continue."`
}

// maxVerify bounds the entries one verify_audit call checks.
const maxVerify = 10000

func verifyAudit(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[VerifyAuditInput, VerifyAuditResult]{
		Name:  "verify_audit",
		Title: "Verify the audit hash chain",
		Description: "Walk the hash chain of a chained stream (audit_log_stream by default) and its signed checkpoints, and report the first entry " +
			"that was modified, deleted, inserted or reordered, or a checkpoint that no longer matches (the chain was rewritten). " +
			"Checks at most max_entries (up to 10000) entries per call and returns a next cursor to resume.",
		Hints:       mcpkit.Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: false},
		Unavailable: "Nothing was written; verify again later.",
		Record: func(in *VerifyAuditInput, out *VerifyAuditResult) (map[string]any, map[string]any) {
			inputs := fields("stream", in.Stream, "from", in.From, "cursor", in.Cursor)
			if in.MaxEntries > 0 {
				inputs["max_entries"] = in.MaxEntries
			}
			if out == nil {
				return inputs, nil
			}
			o := fields("ok", out.OK, "checked", out.Checked, "first_id", out.FirstID, "last_id", out.LastID, "next", out.Next)
			if p := out.Problem; p != nil {
				o["problem_entry_id"], o["problem_kind"] = p.EntryID, p.Kind
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *VerifyAuditInput) (*VerifyAuditResult, error) {
			v := d.Audit
			if v == nil {
				return nil, &fault.Error{Code: fault.Internal, Message: "verify_audit: no chain verifier is configured"}
			}
			if in.Stream == "" {
				in.Stream = keyspace.AuditLog
			}
			if !v.Chained(in.Stream) {
				return nil, fault.Invalidf("stream", "%s is not chained (audit.chain); nothing to verify", in.Stream)
			}
			req := audit.Request{Stream: in.Stream, From: in.From, Limit: in.MaxEntries}
			if req.Limit == 0 {
				req.Limit = maxVerify
			}
			if in.Cursor != "" {
				req.After, req.PrevHash, _ = audit.ParseCursor(in.Cursor)
				req.From = ""
			}
			r, err := v.Verify(ctx, req)
			if err != nil {
				return nil, err
			}
			out := &VerifyAuditResult{OK: r.OK(), Stream: r.Key, Checked: r.Checked, Unchained: r.Unchained, FirstID: r.First, LastID: r.Last,
				FromGenesis: r.FromGenesis, SignaturesChecked: v.Trusted(), Checkpoints: r.Checkpoints, Next: r.Next}
			if p := r.Problem; p != nil {
				out.Problem = &AuditProblem{EntryID: p.EntryID, Kind: p.Kind, Reason: p.Reason}
				out.Next = ""
			}
			if c := r.Checkpoint; c != nil {
				out.LastCheckpoint = &AuditCheckpoint{EntryID: c.EntryID, Hash: c.Hash, Time: c.Time, KeyID: c.KeyID}
			}
			return out, nil
		},
	})
}

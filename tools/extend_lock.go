package tools

import (
	"context"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// ExtendLockInput asks for more time on a held lock.
type ExtendLockInput struct {
	Resource mcpkit.Key `json:"resource" jsonschema_description:"The locked resource."`
	Token    string     `json:"token" jsonschema:"maxLength=256" jsonschema_description:"The owner token acquire_lock returned."`
	TTLMS    int64      `json:"ttl_ms" jsonschema:"minimum=100,maximum=600000" jsonschema_description:"The lock's new ttl in ms, counted from now."`
}

// ExtendLockResult says whether the lock was extended.
type ExtendLockResult struct {
	Extended  bool   `json:"extended" jsonschema_description:"True when the lock was yours and now holds for ttl_ms from now."`
	Resource  string `json:"resource" jsonschema_description:"The resource."`
	TTLMS     int64  `json:"ttl_ms,omitempty" jsonschema_description:"The new ttl, when extended."`
	ExpiresAt string `json:"expires_at,omitempty" jsonschema_description:"The new expiry, RFC 3339 UTC by Redis's clock, when extended."`
	// FencingToken and Owner name the grant that was extended.
	FencingToken int64  `json:"fencing_token,omitempty" jsonschema_description:"The fencing token of the grant extended, when extended."`
	Owner        string `json:"owner,omitempty" jsonschema_description:"The owner label of the grant extended, when it has one."`
	Reason       string `json:"reason,omitempty" jsonschema:"enum=not_held" jsonschema_description:"not_held: the token does not hold the lock (wrong, or the lock expired or went to another); nothing was changed."`
}

func extendLock(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[ExtendLockInput, ExtendLockResult]{
		Name:  "extend_lock",
		Title: "Extend a lock",
		Description: "Set a new ttl on a lock you hold, by its token. " +
			"A token that does not hold the lock (wrong, expired, or another's) changes nothing and answers extended: false with reason not_held.",
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: false},
		Unavailable: "Call extend_lock again later with the same token, while the lock's ttl lasts.",
		Schema:      func(s *jsonschema.Schema) { setMax(s, "ttl_ms", d.LockMaxTTL) },
		Secret:      []string{"token"},
		Record: func(in *ExtendLockInput, out *ExtendLockResult) (map[string]any, map[string]any) {
			inputs := fields("resource", string(in.Resource), "ttl_ms", in.TTLMS)
			if out == nil {
				return inputs, nil
			}
			o := fields("extended", out.Extended, "expires_at", out.ExpiresAt, "reason", out.Reason, "owner", out.Owner)
			if out.FencingToken > 0 {
				o["fencing_token"] = out.FencingToken
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *ExtendLockInput) (*ExtendLockResult, error) {
			ttl := time.Duration(in.TTLMS) * time.Millisecond
			h, ok, until, err := d.Locks.ExtendHeld(ctx, string(in.Resource), in.Token, ttl)
			if err != nil {
				return nil, err
			}
			if !ok {
				return &ExtendLockResult{Resource: string(in.Resource), Reason: "not_held"}, nil
			}
			return &ExtendLockResult{Extended: true, Resource: string(in.Resource), TTLMS: in.TTLMS, ExpiresAt: Timestamp(until),
				FencingToken: h.Fence, Owner: h.Owner}, nil
		},
	})
}

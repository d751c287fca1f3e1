package tools

import (
	"context"

	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// ReleaseLockInput gives a lock back.
type ReleaseLockInput struct {
	Resource mcpkit.Key `json:"resource" jsonschema_description:"The locked resource."`
	Token    string     `json:"token" jsonschema:"maxLength=256" jsonschema_description:"The owner token acquire_lock returned."`
}

// ReleaseLockResult says whether the lock was released.
type ReleaseLockResult struct {
	Released bool   `json:"released" jsonschema_description:"True when the lock was yours and is now free."`
	Resource string `json:"resource" jsonschema_description:"The resource."`
	// FencingToken and Owner name the grant that was released.
	FencingToken int64  `json:"fencing_token,omitempty" jsonschema_description:"The fencing token of the grant released, when released."`
	Owner        string `json:"owner,omitempty" jsonschema_description:"The owner label of the grant released, when it had one."`
	Reason       string `json:"reason,omitempty" jsonschema:"enum=not_held" jsonschema_description:"not_held: the token does not hold the lock (wrong, or the lock expired or went to another); nothing was changed."`
}

func releaseLock(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[ReleaseLockInput, ReleaseLockResult]{
		Name:  "release_lock",
		Title: "Release a lock",
		Description: "Release a lock you hold, by its token, and wake whoever waits for it. " +
			"A token that does not hold the lock (wrong, expired, or another's) changes nothing and answers released: false with reason not_held.",
		Hints:       mcpkit.Hints{ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false},
		Unavailable: "Call release_lock again later with the same token: releasing twice is harmless.",
		Secret:      []string{"token"},
		Record: func(in *ReleaseLockInput, out *ReleaseLockResult) (map[string]any, map[string]any) {
			inputs := fields("resource", string(in.Resource))
			if out == nil {
				return inputs, nil
			}
			o := fields("released", out.Released, "reason", out.Reason, "owner", out.Owner)
			if out.FencingToken > 0 {
				o["fencing_token"] = out.FencingToken
			}
			return inputs, o
		},
		Handle: func(ctx context.Context, in *ReleaseLockInput) (*ReleaseLockResult, error) {
			h, ok, err := d.Locks.ReleaseHeld(ctx, string(in.Resource), in.Token)
			if err != nil {
				return nil, err
			}
			if !ok {
				return &ReleaseLockResult{Resource: string(in.Resource), Reason: "not_held"}, nil
			}
			return &ReleaseLockResult{Released: true, Resource: string(in.Resource), FencingToken: h.Fence, Owner: h.Owner}, nil
		},
	})
}

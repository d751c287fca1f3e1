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
	Reason   string `json:"reason,omitempty" jsonschema:"enum=not_held" jsonschema_description:"not_held: the token does not hold the lock (wrong, or the lock expired or went to another); nothing was changed."`
}

func releaseLock(d *Deps) mcpkit.Tool {
	return mcpkit.New(mcpkit.Spec[ReleaseLockInput, ReleaseLockResult]{
		Name:  "release_lock",
		Title: "Release a lock",
		Description: "Release a lock you hold, by its token, and wake whoever waits for it. " +
			"A token that does not hold the lock (wrong, expired, or another's) changes nothing and answers released: false with reason not_held.",
		Hints:  mcpkit.Hints{ReadOnly: false, Destructive: true, Idempotent: true, OpenWorld: false},
		Secret: []string{"token"},
		Record: func(in *ReleaseLockInput, out *ReleaseLockResult) (map[string]any, map[string]any) {
			inputs := fields("resource", string(in.Resource))
			if out == nil {
				return inputs, nil
			}
			return inputs, fields("released", out.Released, "reason", out.Reason)
		},
		Handle: func(ctx context.Context, in *ReleaseLockInput) (*ReleaseLockResult, error) {
			ok, err := d.Locks.Release(ctx, string(in.Resource), in.Token)
			if err != nil {
				return nil, err
			}
			out := &ReleaseLockResult{Released: ok, Resource: string(in.Resource)}
			if !ok {
				out.Reason = "not_held"
			}
			return out, nil
		},
	})
}

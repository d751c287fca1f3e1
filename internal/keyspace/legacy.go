package keyspace

import (
	"slices"
	"strings"
)

// Legacy is a helper key of the earlier layout, "{mcp:<main key>}:<kind>…",
// which lies outside the prefix, and the name it has now.
type Legacy struct {
	Old, New string
	Kind     string // one of the Kind constants
}

// LegacyMatch is the SCAN pattern that finds the earlier layout's keys.
func (k Keyspace) LegacyMatch() string { return "{" + k.Prefix + "*" }

// ParseLegacy names the current key of old, a key of the earlier layout:
//
//	{mcp:<stream>}:idem:<id>                  → mcp:idem:{mcp:<stream>}:<id>
//	{mcp:ccwj_update_stream}:ctx:<workflow>   → mcp:ctx:{mcp:ccwj_update_stream}:<workflow>
//	{mcp:<stream>}:chain                      → mcp:chain:{mcp:<stream>}
//	{mcp:<stream>}:checkpoints                → mcp:checkpoints:{mcp:<stream>}
//	{mcp:locks:<resource>}:fence              → mcp:fence:{mcp:locks:<resource>}
//	{mcp:locks:<resource>}:owner              → mcp:owner:{mcp:locks:<resource>}
//
// It reports false for any other key, which is not the server's. Old and new
// share a hash tag, so they share a cluster slot.
func (k Keyspace) ParseLegacy(old string) (Legacy, bool) {
	rest, ok := strings.CutPrefix(old, "{"+k.Prefix)
	if !ok {
		return Legacy{}, false
	}
	main, suffix, ok := strings.Cut(rest, "}")
	if !ok {
		return Legacy{}, false
	}
	l := Legacy{Old: old}
	if resource, ok := strings.CutPrefix(main, "locks:"); ok {
		if resource == "" || strings.ContainsAny(resource, "{") {
			return Legacy{}, false
		}
		switch suffix {
		case ":fence":
			l.Kind, l.New = KindFence, k.LockFence(resource)
		case ":owner":
			l.Kind, l.New = KindOwner, k.LockOwner(resource)
		default:
			return Legacy{}, false
		}
		return l, true
	}
	if !slices.Contains(Streams, main) {
		return Legacy{}, false
	}
	switch {
	case suffix == ":chain":
		l.Kind, l.New = KindChain, k.ChainHead(main)
	case suffix == ":checkpoints":
		l.Kind, l.New = KindCheckpoints, k.Checkpoints(main)
	case strings.HasPrefix(suffix, ":idem:") && len(suffix) > len(":idem:"):
		l.Kind, l.New = KindIdem, k.Idempotency(main, suffix[len(":idem:"):])
	case main == CCWJUpdate && strings.HasPrefix(suffix, ":ctx:") && len(suffix) > len(":ctx:"):
		l.Kind, l.New = KindCtx, k.Context(suffix[len(":ctx:"):])
	default:
		return Legacy{}, false
	}
	return l, true
}

package mcpkit

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Provenance is who made a call, as the server knows it: from the
// transport and the protocol, never from the call's arguments. The tools
// stamp it on every entry they write.
type Provenance struct {
	// Caller is the bearer token's name over HTTP, audit.stdio_caller over
	// stdio; "" when the transport knows none.
	Caller string
	// SessionID is the MCP session id, when the transport has one.
	SessionID string
	// Client is the client's name/version as it declared itself (in
	// initialize, or in a 2026-07-28 request's _meta); "" when it did not.
	Client string
}

type provenanceKey struct{}

// WithProvenance carries p to a tool's handler.
func WithProvenance(ctx context.Context, p Provenance) context.Context {
	return context.WithValue(ctx, provenanceKey{}, p)
}

// ProvenanceFrom returns the provenance Handler put in ctx, or the zero
// value.
func ProvenanceFrom(ctx context.Context) Provenance {
	p, _ := ctx.Value(provenanceKey{}).(Provenance)
	return p
}

type noSessionIDKey struct{}

// WithoutSessionID marks ctx as served by a transport that has no MCP
// session id (stdio): the id of its mcp-go session is the server's own
// bookkeeping, the same in every process, not an id worth recording.
func WithoutSessionID(ctx context.Context) context.Context {
	return context.WithValue(ctx, noSessionIDKey{}, true)
}

// maxClientBytes bounds the client name/version stamped on entries: the
// client chooses it, and it rides on every entry it writes.
const maxClientBytes = 256

// provenanceOf reads a call's provenance from its context.
func provenanceOf(ctx context.Context) Provenance {
	p := Provenance{Caller: CallerFrom(ctx)}
	sess := server.ClientSessionFromContext(ctx)
	if sess != nil && ctx.Value(noSessionIDKey{}) == nil {
		p.SessionID = sess.SessionID()
	}
	var info mcp.Implementation
	if ri := server.RequestProtocolInfoFromContext(ctx); ri != nil && ri.Modern {
		// A 2026-07-28 request declares its client itself; nothing of an
		// earlier request applies.
		if ri.ClientInfo != nil {
			info = *ri.ClientInfo
		}
	} else if s, ok := sess.(server.SessionWithClientInfo); ok {
		info = s.GetClientInfo()
	}
	p.Client = clientName(info)
	return p
}

// clientName renders a client's implementation as name/version, without
// control characters and at most maxClientBytes long.
func clientName(info mcp.Implementation) string {
	s := info.Name
	if info.Version != "" {
		s += "/" + info.Version
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if len(s) > maxClientBytes {
		n := maxClientBytes
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return s
}

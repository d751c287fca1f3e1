// Package resources serves the server's MCP resources — its streams, their
// entries, each workflow's context and events, and its locks — read-only,
// and keeps the subscriptions to them: notifications/resources/updated
// when one changes (resources/subscribe, 2025-11-25, and
// subscriptions/listen, 2026-07-28).
//
//	mcp-redis://streams/{stream}                  the newest entries
//	mcp-redis://streams/{stream}/{entry_id}       one entry
//	mcp-redis://workflows/{workflow_id}/context   as get_context
//	mcp-redis://workflows/{workflow_id}/events    the workflow's entries, all streams
//	mcp-redis://locks/{resource}                  holder, ttl, fencing token (never the token)
package resources

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/mcp-redis/mcp-redis/internal/clip"
	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
)

// Scheme begins every URI of the server's resources.
const Scheme = "mcp-redis://"

// Kind is what a URI names.
type Kind int

const (
	Stream   Kind = iota + 1 // mcp-redis://streams/{stream}
	Entry                    // mcp-redis://streams/{stream}/{entry_id}
	Context                  // mcp-redis://workflows/{workflow_id}/context
	Workflow                 // mcp-redis://workflows/{workflow_id}/events
	Lock                     // mcp-redis://locks/{resource}
)

// Ref is a parsed URI: its kind and the parts it names, decoded.
type Ref struct {
	Kind       Kind
	Stream     string // Stream, Entry
	EntryID    string // Entry
	WorkflowID string // Context, Workflow
	Resource   string // Lock
}

// URI is r's canonical URI: every part percent-encoded but the RFC 3986
// unreserved characters (and, in a lock resource, the / : @ it may hold).
// Changes are matched to subscriptions by it, so "…/wf%31/context" and
// "…/wf1/context" are one resource.
func (r Ref) URI() string {
	switch r.Kind {
	case Stream:
		return Scheme + "streams/" + escape(r.Stream)
	case Entry:
		return Scheme + "streams/" + escape(r.Stream) + "/" + escape(r.EntryID)
	case Context:
		return Scheme + "workflows/" + escape(r.WorkflowID) + "/context"
	case Workflow:
		return Scheme + "workflows/" + escape(r.WorkflowID) + "/events"
	case Lock:
		return Scheme + "locks/" + r.Resource
	}
	return ""
}

// Canonical URIs of each kind, for the changes a notice names.
func StreamURI(stream string) string      { return Ref{Kind: Stream, Stream: stream}.URI() }
func ContextURI(workflowID string) string { return Ref{Kind: Context, WorkflowID: workflowID}.URI() }
func EventsURI(workflowID string) string  { return Ref{Kind: Workflow, WorkflowID: workflowID}.URI() }
func LockURI(resource string) string      { return Ref{Kind: Lock, Resource: resource}.URI() }

// LockPrefix begins the URI of every lock.
const LockPrefix = Scheme + "locks/"

// escape percent-encodes every byte but A-Z a-z 0-9 - . _ ~.
func escape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; unreserved(c) {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// ErrNotOurs is Parse's error for a URI of another scheme: not the
// server's to judge (mcp-go answers it is not found).
var ErrNotOurs = errors.New("not an mcp-redis:// URI")

// Forms, for the sentences that say what a URI should look like.
const forms = "mcp-redis://streams/{stream}, mcp-redis://streams/{stream}/{entry_id}, " +
	"mcp-redis://workflows/{workflow_id}/context, mcp-redis://workflows/{workflow_id}/events or mcp-redis://locks/{resource}"

var (
	namePattern = regexp.MustCompile(mcpkit.PatternName)
	keyPattern  = regexp.MustCompile(mcpkit.PatternKey)
	entryID     = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)
)

// Parse reads uri. An error is a *fault.Error (code invalid_argument)
// whose Field names the part of the URI at fault (stream, entry_id,
// workflow_id, resource, or uri for its shape) and whose sentence says
// why; ErrNotOurs for a URI of another scheme.
func Parse(uri string) (Ref, error) {
	rest, ok := strings.CutPrefix(uri, Scheme)
	if !ok {
		return Ref{}, ErrNotOurs
	}
	if strings.ContainsAny(rest, "?#") {
		return Ref{}, bad(uri, "uri", "has a query or a fragment; the server's resources have neither (%s)", forms)
	}
	kind, path, _ := strings.Cut(rest, "/")
	switch kind {
	case "streams":
		segs := strings.Split(path, "/")
		if len(segs) > 2 {
			return Ref{}, bad(uri, "uri", "has %d parts after streams/; a stream is mcp-redis://streams/{stream} and an entry mcp-redis://streams/{stream}/{entry_id}", len(segs))
		}
		name, err := segment(uri, "stream", segs[0])
		if err != nil {
			return Ref{}, err
		}
		if !slices.Contains(keyspace.Streams, name) {
			return Ref{}, bad(uri, "stream", "%q is not one of the server's streams (%s)", name, strings.Join(keyspace.Streams, ", "))
		}
		if len(segs) == 1 {
			return Ref{Kind: Stream, Stream: name}, nil
		}
		id, err := segment(uri, "entry_id", segs[1])
		if err != nil {
			return Ref{}, err
		}
		if !entryID.MatchString(id) || !fitsUint64(id) {
			return Ref{}, bad(uri, "entry_id", "%q is not a stream entry id (ms-seq, e.g. 1767323045678-0)", id)
		}
		return Ref{Kind: Entry, Stream: name, EntryID: id}, nil
	case "workflows":
		raw, what, ok := cutLast(path, "/")
		if !ok || (what != "context" && what != "events") {
			return Ref{}, bad(uri, "uri", "a workflow's resources are mcp-redis://workflows/{workflow_id}/context and …/events")
		}
		if strings.Contains(raw, "/") {
			return Ref{}, bad(uri, "workflow_id", "holds a /; percent-encode it (%%2F)")
		}
		for i := 0; i < len(raw); i++ {
			// As the URI template {workflow_id} matches: unreserved
			// characters and %XX, anything else encoded.
			if c := raw[i]; !unreserved(c) && c != '%' && c != ',' {
				return Ref{}, bad(uri, "workflow_id", "holds %q; percent-encode every character but letters, digits and - . _ ~", string(c))
			}
		}
		wf, err := segment(uri, "workflow_id", raw)
		if err != nil {
			return Ref{}, err
		}
		if err := checkName(wf, namePattern, mcpkit.MaxNameBytes); err != "" {
			return Ref{}, bad(uri, "workflow_id", "%q %s", wf, err)
		}
		if what == "context" {
			return Ref{Kind: Context, WorkflowID: wf}, nil
		}
		return Ref{Kind: Workflow, WorkflowID: wf}, nil
	case "locks":
		res, err := segment(uri, "resource", path)
		if err != nil {
			return Ref{}, err
		}
		if err := checkName(res, keyPattern, mcpkit.MaxKeyBytes); err != "" {
			return Ref{}, bad(uri, "resource", "%q %s", res, err)
		}
		return Ref{Kind: Lock, Resource: res}, nil
	}
	return Ref{}, bad(uri, "uri", "names no resource of the server (%q); its resources are %s", kind, forms)
}

// segment decodes one percent-encoded part of uri.
func segment(uri, part, raw string) (string, error) {
	s, err := url.PathUnescape(raw)
	if err != nil {
		return "", bad(uri, part, "is not validly percent-encoded: %v", err)
	}
	if s == "" {
		return "", bad(uri, part, "is empty")
	}
	return s, nil
}

// checkName says why s is not a name of the pattern and bound, or "".
func checkName(s string, p *regexp.Regexp, maxBytes int) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case len(s) > maxBytes:
		return fmt.Sprintf("is %d bytes; at most %d allowed", len(s), maxBytes)
	case p == keyPattern && !p.MatchString(s):
		return "may hold only letters, digits and . _ : / @ - (no spaces, control, glob or brace characters)"
	case !p.MatchString(s):
		return "must not be blank or contain control characters (tab, newline, NUL, …)"
	}
	return ""
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

func fitsUint64(id string) bool {
	ms, seq, _ := strings.Cut(id, "-")
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// bad is the error of a URI whose part is at fault.
func bad(uri, part, format string, a ...any) *fault.Error {
	return &fault.Error{Code: fault.Invalid, Field: part,
		Message: fmt.Sprintf(format, a...) + fmt.Sprintf(" (in the resource URI %q)", clip.String(uri, 300))}
}

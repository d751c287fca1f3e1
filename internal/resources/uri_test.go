package resources_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/resources"
)

// Each URI form parses to what it names, and its canonical URI encodes
// every part the same way, so two spellings of one resource are one topic.
func TestEachURIFormParsesToWhatItNames(t *testing.T) {
	for _, tc := range []struct {
		uri       string
		want      resources.Ref
		canonical string
	}{
		{"mcp-redis://streams/audit_log_stream", resources.Ref{Kind: resources.Stream, Stream: "audit_log_stream"}, ""},
		{"mcp-redis://streams/audit%5Flog_stream", resources.Ref{Kind: resources.Stream, Stream: "audit_log_stream"}, "mcp-redis://streams/audit_log_stream"},
		{"mcp-redis://streams/user_feedback/1767323045678-0", resources.Ref{Kind: resources.Entry, Stream: "user_feedback", EntryID: "1767323045678-0"}, ""},
		{"mcp-redis://workflows/wf1/context", resources.Ref{Kind: resources.Context, WorkflowID: "wf1"}, ""},
		{"mcp-redis://workflows/wf%31/context", resources.Ref{Kind: resources.Context, WorkflowID: "wf1"}, "mcp-redis://workflows/wf1/context"},
		{"mcp-redis://workflows/wf%2F1%20%C3%A9/events", resources.Ref{Kind: resources.Workflow, WorkflowID: "wf/1 é"}, ""},
		{"mcp-redis://locks/db1", resources.Ref{Kind: resources.Lock, Resource: "db1"}, ""},
		{"mcp-redis://locks/svc/db:1@eu", resources.Ref{Kind: resources.Lock, Resource: "svc/db:1@eu"}, ""},
		{"mcp-redis://locks/svc%2Fdb", resources.Ref{Kind: resources.Lock, Resource: "svc/db"}, "mcp-redis://locks/svc/db"},
	} {
		got, err := resources.Parse(tc.uri)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.uri, got, err, tc.want)
			continue
		}
		want := tc.canonical
		if want == "" {
			want = tc.uri
		}
		if c := got.URI(); c != want {
			t.Errorf("canonical URI of %q = %q; want %q", tc.uri, c, want)
		}
	}
}

// A URI that names nothing is an invalid_argument error whose field is the
// part of the URI at fault, and whose sentence quotes the URI; another
// scheme is not the server's to judge.
func TestAURIThatNamesNothingSaysWhichPartIsAtFault(t *testing.T) {
	long := strings.Repeat("w", 257)
	for _, tc := range []struct{ uri, part, says string }{
		{"mcp-redis://streams/nope", "stream", `"nope" is not one of the server's streams (audit_log_stream, ccwj_update_stream, user_feedback, workflow_events)`},
		{"mcp-redis://streams/", "stream", "is empty"},
		{"mcp-redis://streams/audit_log_stream/1767323045678", "entry_id", "is not a stream entry id"},
		{"mcp-redis://streams/audit_log_stream/-", "entry_id", "is not a stream entry id"},
		{"mcp-redis://streams/audit_log_stream/99999999999999999999-0", "entry_id", "is not a stream entry id"},
		{"mcp-redis://streams/audit_log_stream/1-0/x", "uri", "has 3 parts"},
		{"mcp-redis://streams/audit_log_stream%zz", "stream", "is not validly percent-encoded"},
		{"mcp-redis://workflows/wf1", "uri", "a workflow's resources are"},
		{"mcp-redis://workflows/wf1/phases", "uri", "a workflow's resources are"},
		{"mcp-redis://workflows/wf/1/context", "workflow_id", "holds a /"},
		{"mcp-redis://workflows/wf:1/context", "workflow_id", `holds ":"`},
		{"mcp-redis://workflows/%20/context", "workflow_id", "must not be blank"},
		{"mcp-redis://workflows/wf%0A1/events", "workflow_id", "control characters"},
		{"mcp-redis://workflows/wf%FF/events", "workflow_id", "not valid UTF-8"},
		{"mcp-redis://workflows/" + long + "/events", "workflow_id", "is 257 bytes; at most 256"},
		{"mcp-redis://locks/", "resource", "is empty"},
		{"mcp-redis://locks/a%20b", "resource", "may hold only letters"},
		{"mcp-redis://locks/a%7Bb%7D", "resource", "may hold only letters"},
		{"mcp-redis://locks/" + strings.Repeat("r", 201), "resource", "is 201 bytes; at most 200"},
		{"mcp-redis://locks/db1?x=1", "uri", "has a query or a fragment"},
		{"mcp-redis://queues/q", "uri", `names no resource of the server ("queues")`},
	} {
		_, err := resources.Parse(tc.uri)
		e, ok := fault.As(err)
		if !ok || e.Code != fault.Invalid || e.Field != tc.part || !strings.Contains(e.Message, tc.says) || !strings.Contains(e.Message, "mcp-redis://") {
			t.Errorf("Parse(%q) = %v; want an invalid_argument naming %s: %q and the URI", tc.uri, err, tc.part, tc.says)
		}
	}
	for _, uri := range []string{"file:///etc/passwd", "MCP-REDIS://streams/audit_log_stream", ""} {
		if _, err := resources.Parse(uri); !errors.Is(err, resources.ErrNotOurs) {
			t.Errorf("Parse(%q) = %v; want ErrNotOurs", uri, err)
		}
	}
}

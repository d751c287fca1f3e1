package suggest_test

import (
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/suggest"
)

func TestClosestSuggestsOnlyNearNames(t *testing.T) {
	known := []string{"workflow_id", "phase_id", "field", "value", "details", "event_id"}
	for _, c := range []struct {
		got, want string
		ok        bool
	}{
		{"detials", "details", true},
		{"phase", "phase_id", true},
		{"workflowid", "workflow_id", true},
		{"Field", "field", true},
		{"banana", "", false},
		{"x", "", false},
	} {
		got, ok := suggest.Closest(c.got, known)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("Closest(%q) = %q, %v; want %q, %v", c.got, got, ok, c.want, c.ok)
		}
	}
}

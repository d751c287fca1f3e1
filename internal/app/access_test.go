package app

import (
	"slices"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/mcpkit"
	"github.com/mcp-redis/mcp-redis/tools"
)

// Every tool needs exactly one scope, and names in the table are tools:
// a new tool without a scope would be callable by no scoped credential.
func TestEveryToolNeedsAScope(t *testing.T) {
	all := tools.All(depsFrom(config.Defaults()))
	var names []string
	for _, tool := range all {
		names = append(names, tool.Name())
		s, ok := toolScopes[tool.Name()]
		if !ok || !slices.Contains(mcpkit.Scopes, s) || s == mcpkit.ScopeAdmin {
			t.Errorf("%s needs scope %q", tool.Name(), s)
		}
	}
	for name := range toolScopes {
		if !slices.Contains(names, name) {
			t.Errorf("toolScopes names %s, not a tool", name)
		}
	}
	if !slices.Equal(config.Scopes, mcpkit.Scopes) {
		t.Errorf("config.Scopes %v, mcpkit.Scopes %v", config.Scopes, mcpkit.Scopes)
	}
}

package app

import (
	"os"
	"testing"
)

// TestMain gives the servers these tests build a config directory of
// their own, where they make the audit signing key: never the developer's.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mcp-redis-app-config")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CONFIG_HOME", dir)
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

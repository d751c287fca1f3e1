package app_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/config"
)

// A signing key that can be neither read nor made turns checkpoints off,
// never the server: it starts, its writes are still chained, and
// verify_audit says signatures are not checked.
func TestWithoutAUsableSigningKeyTheServerRunsAndStillChains(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(c *config.Config) {
		c.Audit.SigningKeyFile = filepath.Join(file, "audit-signing.key") // below a plain file
	})
	for range 3 {
		h.ok("audit_log", `{"module":"m","procedure":"p","status":"ok"}`)
	}
	for _, e := range h.entries("audit_log_stream") {
		if h, _ := e.Values["hash"].(string); len(h) != 64 {
			t.Errorf("entry %s is not chained: %v", e.ID, e.Values)
		}
	}
	got := h.ok("verify_audit", `{}`)
	if got["ok"] != true || got["signatures_checked"] != false || got["checked"].(float64) < 3 {
		t.Errorf("verify_audit without a key = %v", got)
	}
}

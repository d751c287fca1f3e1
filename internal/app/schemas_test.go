package app_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcp-redis/mcp-redis/internal/app"
)

// The files in schemas/ are golden: `make schemas` rewrites them from the
// structs, and this test fails when they drift.
func TestSchemasDirectoryMatchesTheStructs(t *testing.T) {
	dir := filepath.Join("..", "..", "schemas")
	files, err := app.SchemaFiles()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("schemas/%s: %v (run make schemas)", name, err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("schemas/%s differs from the structs (run make schemas)", name)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if _, ok := files[e.Name()]; !ok {
			t.Errorf("schemas/%s belongs to no tool", e.Name())
		}
	}
}

package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/tools"
)

// SchemaFiles returns the generated schema file of every tool, by file
// name: the tool's name, title, description, annotations, input schema and
// output schema, as tools/list shows them under the default configuration
// (bounds such as locks.max_ttl and the policy names follow the
// configuration at run time).
func SchemaFiles() (map[string][]byte, error) {
	files := map[string][]byte{}
	for _, t := range tools.All(depsFrom(config.Defaults())) {
		doc := struct {
			Name         string          `json:"name"`
			Description  string          `json:"description"`
			Annotations  any             `json:"annotations"`
			InputSchema  json.RawMessage `json:"inputSchema"`
			OutputSchema json.RawMessage `json:"outputSchema"`
		}{t.Def.Name, t.Def.Description, t.Def.Annotations, t.Def.RawInputSchema, t.Def.RawOutputSchema}
		raw, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("schema of %s: %w", t.Def.Name, err)
		}
		var b bytes.Buffer
		if err := json.Indent(&b, raw, "", "  "); err != nil {
			return nil, err
		}
		b.WriteByte('\n')
		files[t.Def.Name+".json"] = b.Bytes()
	}
	return files, nil
}

// WriteSchemas writes SchemaFiles into dir, removing no other file.
func WriteSchemas(dir string) ([]string, error) {
	files, err := SchemaFiles()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var written []string
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return written, nil
}

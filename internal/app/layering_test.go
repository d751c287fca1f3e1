package app_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/mcp-redis/mcp-redis/"

// The rooms and what each may not reach (README, Architecture). A call
// goes transport → mcp-go → mcpkit → tools → domain (stream, lock,
// ratelimit, groups, audit) → rdb → go-redis → Lua; config, the embedded Redis
// and the wiring are app's, the composition root.
var forbidden = map[string][]string{
	// The Redis layer knows Redis, nothing of MCP, HTTP or configuration.
	"internal/keyspace":  {"github.com/", module},
	"internal/fault":     {"github.com/", module},
	"internal/clip":      {"github.com/", module},
	"internal/suggest":   {"github.com/mark3labs/", "github.com/redis/", module},
	"internal/jsonwalk":  {"github.com/", module},
	"internal/audit":     {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "internal/rdb"},
	"internal/rdb":       {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit"},
	"internal/stream":    {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "tools"},
	"internal/lock":      {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "tools"},
	"internal/ratelimit": {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "tools"},
	"internal/groups":    {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "tools"},
	// The notice fan-out knows Redis and nothing of MCP: it tells
	// subscribers through functions of theirs.
	"internal/notify": {"github.com/mark3labs/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/mcpkit", module + "internal/stream", module + "internal/lock", module + "tools"},
	// The resources speak MCP and read Redis only through the domain
	// packages and notify, never the tools, transports or configuration.
	"internal/resources": {"github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/app", module + "internal/transport", module + "internal/httpsec", module + "internal/embedded", module + "tools"},
	// The dashboard is a view over the tools and the domain packages:
	// it serves HTTP handlers the transport mounts, and knows nothing of
	// the configuration, the transports or the embedded Redis.
	"internal/dashboard": {"github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/app", module + "internal/transport", module + "internal/httpsec", module + "internal/embedded"},
	// The tools speak MCP only through mcpkit and Redis only through the
	// domain packages.
	"tools": {"github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/transport", module + "internal/httpsec", module + "internal/app", module + "internal/embedded"},
	// The prompts are text over the tools: they know no Redis, no
	// configuration and no transport.
	"prompts": {"github.com/redis/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/config", module + "internal/rdb", module + "internal/stream", module + "internal/lock", module + "internal/groups", module + "internal/transport", module + "internal/httpsec", module + "internal/app", module + "internal/embedded", module + "tools"},
	// The MCP kit and the transports know nothing of Redis.
	"internal/mcpkit":    {"github.com/redis/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/rdb", module + "internal/stream", module + "internal/lock", module + "internal/groups", module + "internal/config"},
	"internal/transport": {"github.com/redis/", "github.com/spf13/viper", "github.com/spf13/pflag", "github.com/alicebob/", module + "internal/rdb", module + "internal/stream", module + "internal/lock", module + "internal/groups", module + "internal/config", module + "tools"},
	"internal/httpsec":   {"github.com/redis/", "github.com/mark3labs/", module + "internal/mcpkit", module + "internal/config"},
	"internal/config":    {"github.com/redis/", "github.com/mark3labs/", "github.com/alicebob/", module + "internal/rdb"},
}

// Direct imports that must go through another room even where the
// dependency is allowed further down.
var notDirect = map[string][]string{
	"tools":              {"github.com/redis/go-redis", "github.com/mark3labs/mcp-go", module + "internal/rdb"},
	"internal/resources": {"github.com/redis/go-redis", module + "internal/rdb"},
}

func TestEachPackageReachesOnlyWhatItsRoomMay(t *testing.T) {
	for pkg, bad := range forbidden {
		for _, dep := range goList(t, "-deps", "./"+pkg) {
			if dep == module+pkg || strings.HasPrefix(dep, module+pkg+"/") {
				continue
			}
			for _, b := range bad {
				if strings.HasPrefix(dep, b) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
	for pkg, bad := range notDirect {
		for _, imp := range goList(t, "-f", "{{join .Imports \"\\n\"}}", "./"+pkg) {
			for _, b := range bad {
				if strings.HasPrefix(imp, b) {
					t.Errorf("%s imports %s directly", pkg, imp)
				}
			}
		}
	}
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

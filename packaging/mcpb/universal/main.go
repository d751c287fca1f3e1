// Command universal joins thin Mach-O executables into one macOS universal
// binary, as Apple's lipo -create does:
//
//	go run . -o mcp-redis-darwin mcp-redis-darwin-amd64 mcp-redis-darwin-arm64
//
// An MCP Bundle names one command per operating system: the manifest's
// server.mcp_config.platform_overrides is keyed by Node's process.platform
// (darwin, win32, linux) and the spec has no key for the CPU
// (modelcontextprotocol/mcpb issues #10 and #63). go build writes one
// architecture per file and lipo runs on macOS only, so this wraps
// github.com/blacktop/go-macho's CreateFat, which writes the fat header
// and copies each slice unchanged: the ad-hoc signature the Go linker
// gives a darwin/arm64 binary stays valid, and macOS starts the slice of
// its own CPU.
package main

import (
	"debug/macho"
	"errors"
	"flag"
	"fmt"
	"os"

	gomacho "github.com/blacktop/go-macho"
)

func main() {
	out := flag.String("o", "", "the universal binary to write")
	flag.Parse()
	if err := run(*out, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "universal:", err)
		os.Exit(1)
	}
}

func run(out string, thin []string) error {
	if out == "" || len(thin) < 2 {
		return errors.New("usage: universal -o OUT THIN THIN [THIN...]")
	}
	fat, err := gomacho.CreateFat(out, thin...)
	if err != nil {
		return fmt.Errorf("create %s: %w", out, err)
	}
	if err := fat.Close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	// Read it back with the standard library, the reader the tests use.
	check, err := macho.OpenFat(out)
	if err != nil {
		return fmt.Errorf("read back %s: %w", out, err)
	}
	defer check.Close()
	if len(check.Arches) != len(thin) {
		return fmt.Errorf("%s holds %d slices, want %d", out, len(check.Arches), len(thin))
	}
	return os.Chmod(out, 0o755)
}

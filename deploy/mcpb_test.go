package deploy_test

// These tests build the MCP Bundle (make mcpb), read it as a host would,
// and start the server from it the way Claude Desktop does: the manifest's
// mcp_config resolved by getMcpConfigForManifest of the pinned
// @anthropic-ai/mcpb (the code Claude for macOS and Windows runs), then
// spoken to over stdio with mcp-go's client.

import (
	"archive/zip"
	"bytes"
	"context"
	"debug/elf"
	"debug/macho"
	"debug/pe"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The version and commit the bundle test stamps: the manifest must carry
// the version without its v, the server the version as given.
const (
	bundleVersion = "1.2.3-rc.1"
	bundleCommit  = "0123456789ab"
)

// bundleBinaries are the server binaries a bundle carries, by path in the
// archive, each with the check of its format and CPU. darwin is one
// universal binary: the manifest names one command per OS.
var bundleBinaries = map[string]func(io.ReaderAt) error{
	"server/mcp-redis-darwin":            machoFat(macho.CpuAmd64, macho.CpuArm64),
	"server/mcp-redis-linux-amd64":       elfFor(elf.EM_X86_64),
	"server/mcp-redis-linux-arm64":       elfFor(elf.EM_AARCH64),
	"server/mcp-redis-windows-amd64.exe": peFor(pe.IMAGE_FILE_MACHINE_AMD64),
	"server/mcp-redis-windows-arm64.exe": peFor(pe.IMAGE_FILE_MACHINE_ARM64),
}

// mcpConfig is a manifest's server.mcp_config, or one of its overrides.
type mcpConfig struct {
	Command           string               `json:"command"`
	Args              []string             `json:"args"`
	Env               map[string]string    `json:"env"`
	PlatformOverrides map[string]mcpConfig `json:"platform_overrides"`
}

// bundleManifest is the part of manifest.json the checks read.
type bundleManifest struct {
	ManifestVersion string `json:"manifest_version"`
	Name            string `json:"name"`
	Version         string `json:"version"`
	Server          struct {
		Type       string    `json:"type"`
		EntryPoint string    `json:"entry_point"`
		MCPConfig  mcpConfig `json:"mcp_config"`
	} `json:"server"`
	Tools []struct {
		Name string `json:"name"`
	} `json:"tools"`
	Compatibility struct {
		Platforms []string `json:"platforms"`
	} `json:"compatibility"`
	UserConfig map[string]struct {
		Type     string `json:"type"`
		Required bool   `json:"required"`
		Default  any    `json:"default"`
	} `json:"user_config"`
}

// make mcpb cross-builds with make build's flags (static, -trimpath, the
// version stamp) for six platforms, and names the bundle after VERSION
// without its v.
func TestMakeMcpbBuildsEveryPlatformWithTheFlagsOfMakeBuild(t *testing.T) {
	bundle := makeDryRun(t, "mcpb")
	if i := strings.Index(bundle, " ./cmd/mcp-redis"); i >= 0 {
		bundle = bundle[:i+len(" ./cmd/mcp-redis")]
	}
	build := makeDryRun(t, "build")
	if got := strings.Replace(anyOut(bundle), "GOOS=$os GOARCH=$arch ", "", 1); got != anyOut(build) {
		t.Errorf("make mcpb builds with\n\t%s\nwant make build's flags for each GOOS and GOARCH\n\t%s", bundle, build)
	}
	dry := makeOut(t, "-n", "mcpb", "VERSION=v"+bundleVersion)
	for _, p := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64", "windows/arm64"} {
		if !strings.Contains(dry, " "+p+" ") && !strings.Contains(dry, " "+p+";") {
			t.Errorf("make mcpb does not build %s:\n%s", p, dry)
		}
	}
	for _, want := range []string{"manifest.mjs " + bundleVersion + " ", " validate bin/mcpb/manifest.json", " pack bin/mcpb bin/mcp-redis-" + bundleVersion + ".mcpb"} {
		if !strings.Contains(dry, want) {
			t.Errorf("make mcpb VERSION=v%s does not run …%s…:\n%s", bundleVersion, want, dry)
		}
	}
	if help := makeOut(t, "-s", "help"); !strings.Contains(help, "\n  mcpb ") {
		t.Errorf("make help does not list mcpb:\n%s", help)
	}
}

// The bundle holds every platform's binary, executable where that means
// anything; its manifest asks for an optional Redis URL and a key prefix
// and hands both to the server; and the server it starts, from the
// resolved mcp_config as Claude Desktop runs it, serves MCP over stdio:
// on the embedded Redis when the URL is left empty, on the real one when
// it is given.
func TestTheBundleStartsTheServerAsClaudeDesktopDoes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server for six platforms and starts it; not in the -short tier")
	}
	for _, tool := range []string{"make", "npm", "node"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("make mcpb needs %s on PATH (CI has it): %v", tool, err)
		}
	}
	root := repoRoot(t)
	out := t.TempDir()
	file := filepath.Join(out, "mcp-redis-"+bundleVersion+".mcpb")
	mk := exec.Command("make", "--no-print-directory", "mcpb", "VERSION=v"+bundleVersion, "COMMIT="+bundleCommit,
		"MCPB_DIR="+filepath.Join(out, "stage"), "MCPB_FILE="+file)
	mk.Dir = root
	if log, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("make mcpb: %v\n%s", err, log)
	} else if strings.Count(string(log), "Manifest schema validation passes!") < 2 {
		t.Fatalf("make mcpb ran without mcpb validate and mcpb pack both passing the manifest:\n%s", log)
	}

	m := checkArchive(t, file)
	checkManifest(t, m)

	// Unpacked by the library's own unpack, which restores the modes.
	dir := filepath.Join(out, "unpacked")
	run(t, filepath.Join(root, "packaging/mcpb/node_modules/.bin/mcpb"), "unpack", file, dir)
	host := "server/mcp-redis-" + runtime.GOOS + "-" + runtime.GOARCH
	if runtime.GOOS == "darwin" {
		host = "server/mcp-redis-darwin"
	}
	if st, err := os.Stat(filepath.Join(dir, host)); err != nil || st.Mode().Perm()&0o100 == 0 {
		t.Fatalf("unpacked %s: %v, mode %v; want it executable", host, err, st)
	}

	rdb, prefix := testredis.Shared(t)
	t.Logf("the shared Redis at %s, keys under %s (deleted at the end)", testredis.URL(), prefix)
	ctx := context.Background()
	home := t.TempDir()

	// Left empty, the optional URL means the embedded Redis: the server
	// starts, and nothing reaches the shared one.
	cfg := resolveMCPConfig(t, dir, home, map[string]string{"redis_url": "", "prefix": prefix})
	if got := cfg.Env[config.EnvName("redis.url")]; got != "" {
		t.Errorf("an empty Redis URL reaches the server as %s=%q, want empty", config.EnvName("redis.url"), got)
	}
	embedded := startFromBundle(t, dir, home, cfg)
	embedded.session(t, m, nil, "")
	if !strings.Contains(embedded.stderr.String(), `redis.url is \"embedded\"`) {
		t.Errorf("with an empty Redis URL the server does not say it runs on the embedded Redis; stderr:\n%s", embedded.stderr.String())
	}
	embedded.close(t)
	var leaked []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		leaked = append(leaked, iter.Val())
	}
	if err := iter.Err(); err != nil || len(leaked) != 0 {
		t.Errorf("with an empty Redis URL the server wrote to the shared Redis: %q %v", leaked, err)
	}

	// Given, it is the Redis the entries land in, under the given prefix.
	cfg = resolveMCPConfig(t, dir, home, map[string]string{"redis_url": testredis.URL(), "prefix": prefix})
	shared := startFromBundle(t, dir, home, cfg)
	shared.session(t, m, rdb, prefix)
	shared.close(t)
}

// checkArchive reads the bundle: exactly the expected files, each binary
// of its platform and CPU, the unix ones executable; and its manifest.
func checkArchive(t *testing.T, file string) bundleManifest {
	t.Helper()
	zr, err := zip.OpenReader(file)
	if err != nil {
		t.Fatalf("open the bundle: %v", err)
	}
	defer zr.Close()
	st, _ := os.Stat(file)
	t.Logf("%s: %d bytes", filepath.Base(file), st.Size())

	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
	}
	want := append(slices.Collect(maps.Keys(bundleBinaries)), "LICENSE", "manifest.json", "server/mcp-redis.sh")
	if got := slices.Sorted(maps.Keys(files)); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("the bundle holds\n\t%q\nwant\n\t%q", got, slices.Sorted(slices.Values(want)))
	}
	read := func(name string) []byte {
		t.Helper()
		f := files[name]
		if f == nil {
			t.Fatalf("the bundle has no %s", name)
		}
		r, err := f.Open()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer r.Close()
		b, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return b
	}
	for name, check := range bundleBinaries {
		if files[name] == nil {
			continue
		}
		if err := check(bytes.NewReader(read(name))); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if !strings.HasSuffix(name, ".exe") && files[name].Mode().Perm()&0o111 != 0o111 {
			t.Errorf("%s has mode %v in the bundle: a host would unpack it not executable", name, files[name].Mode())
		}
	}
	if sh := string(read("server/mcp-redis.sh")); !strings.HasPrefix(sh, "#!/bin/sh\n") || !strings.Contains(sh, `exec "$dir/mcp-redis-linux-$arch" "$@"`) {
		t.Errorf("server/mcp-redis.sh does not exec the binary of its architecture:\n%s", sh)
	}
	var m bundleManifest
	if err := json.Unmarshal(read("manifest.json"), &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	checkCommands(t, m.Server.MCPConfig, files)
	return m
}

// checkCommands checks that every OS's command, its override's or the
// base one, is ${__dirname}/ and a file of the bundle, or /bin/sh with a
// script of it.
func checkCommands(t *testing.T, mc mcpConfig, files map[string]*zip.File) {
	t.Helper()
	inBundle := func(s string) bool {
		rel, ok := strings.CutPrefix(strings.ReplaceAll(s, "${/}", "/"), "${__dirname}/")
		return ok && files[rel] != nil
	}
	for _, platform := range []string{"darwin", "linux", "win32"} {
		cmd, args := mc.Command, mc.Args
		if o := mc.PlatformOverrides[platform]; o.Command != "" {
			cmd = o.Command
			if o.Args != nil {
				args = o.Args
			}
		}
		switch {
		case cmd == "/bin/sh" && (len(args) == 0 || !inBundle(args[0])):
			t.Errorf("%s: /bin/sh runs %q, not a script of the bundle", platform, args)
		case cmd != "/bin/sh" && !inBundle(cmd):
			t.Errorf("%s: command %q is not ${__dirname}/ and a file of the bundle", platform, cmd)
		}
	}
}

// checkManifest holds the manifest to the server: its version, the two
// settings a user is asked, and how they reach the server.
func checkManifest(t *testing.T, m bundleManifest) {
	t.Helper()
	if m.Version != bundleVersion || m.Name != "mcp-redis" || m.ManifestVersion == "" {
		t.Errorf("manifest: name %q version %q manifest_version %q; want mcp-redis %s (VERSION without its v)", m.Name, m.Version, m.ManifestVersion, bundleVersion)
	}
	if m.Server.Type != "binary" || m.Server.EntryPoint != "server/mcp-redis-darwin" {
		t.Errorf("manifest: server type %q entry_point %q", m.Server.Type, m.Server.EntryPoint)
	}
	mc := m.Server.MCPConfig
	if mc.Command != "${__dirname}/server/mcp-redis-darwin" || !slices.Equal(mc.Args, []string{"serve"}) {
		t.Errorf("manifest: the base command (darwin) is %q %q, want the universal binary with serve", mc.Command, mc.Args)
	}
	if got := slices.Sorted(maps.Keys(mc.PlatformOverrides)); !slices.Equal(got, []string{"linux", "win32"}) {
		t.Errorf("manifest: platform_overrides for %q, want linux and win32", got)
	}
	if got := slices.Sorted(slices.Values(m.Compatibility.Platforms)); !slices.Equal(got, []string{"darwin", "linux", "win32"}) {
		t.Errorf("manifest: compatibility.platforms %q", got)
	}

	if got := slices.Sorted(maps.Keys(m.UserConfig)); !slices.Equal(got, []string{"prefix", "redis_url"}) {
		t.Errorf("manifest: user_config asks for %q, want prefix and redis_url", got)
	}
	url, prefix := m.UserConfig["redis_url"], m.UserConfig["prefix"]
	// The default "" makes the variable exist when nothing is entered:
	// without it the host leaves "${user_config.redis_url}" as it is.
	if url.Type != "string" || url.Required || url.Default != "" {
		t.Errorf("manifest: redis_url is %+v, want an optional string defaulting to \"\" (the embedded Redis)", url)
	}
	if prefix.Type != "string" || prefix.Required || prefix.Default != "mcp:" {
		t.Errorf("manifest: prefix is %+v, want an optional string defaulting to mcp:", prefix)
	}
	want := map[string]string{
		config.EnvName("redis.url"):    "${user_config.redis_url}",
		config.EnvName("redis.prefix"): "${user_config.prefix}",
	}
	if !maps.Equal(mc.Env, want) {
		t.Errorf("manifest: env %q, want %q", mc.Env, want)
	}
	// In args an item that is exactly "${user_config.x}" stays literal when
	// x is empty (replaceVariables), and --redis-url "" is an error.
	for platform, o := range mc.PlatformOverrides {
		if o.Env != nil {
			t.Errorf("manifest: %s overrides env, dropping the settings", platform)
		}
		for _, a := range append(slices.Clone(mc.Args), o.Args...) {
			if strings.Contains(a, "${user_config.") {
				t.Errorf("manifest: %s passes %q in args; settings go in env", platform, a)
			}
		}
	}
}

// resolveMCPConfig is the manifest's mcp_config for this OS with user's
// settings, resolved by the pinned library's getMcpConfigForManifest.
func resolveMCPConfig(t *testing.T, dir, home string, user map[string]string) mcpConfig {
	t.Helper()
	const script = `
import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";
import { readFileSync } from "node:fs";
import { join, sep } from "node:path";
const [dir, home, user] = process.argv.slice(1);
const config = await getMcpConfigForManifest({
  manifest: JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")),
  extensionPath: dir,
  systemDirs: { HOME: home, DESKTOP: join(home, "Desktop"), DOCUMENTS: join(home, "Documents"), DOWNLOADS: join(home, "Downloads") },
  userConfig: JSON.parse(user),
  pathSeparator: sep,
});
process.stdout.write(JSON.stringify(config ?? null));
`
	u, _ := json.Marshal(user)
	cmd := exec.Command("node", "--input-type=module", "-e", script, dir, home, string(u))
	cmd.Dir = filepath.Join(repoRoot(t), "packaging/mcpb")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("getMcpConfigForManifest: %v", err)
	}
	var cfg *mcpConfig
	if err := json.Unmarshal(b, &cfg); err != nil || cfg == nil {
		t.Fatalf("getMcpConfigForManifest gave %s (%v)", b, err)
	}
	for _, s := range append(append([]string{cfg.Command}, cfg.Args...), slices.Collect(maps.Values(cfg.Env))...) {
		if strings.Contains(s, "${") {
			t.Errorf("resolved mcp_config keeps a variable: %q in %+v", s, cfg)
		}
	}
	return *cfg
}

// bundled is a server started from an unpacked bundle.
type bundled struct {
	c      *client.Client
	stderr *testredis.Buffer
	closed bool
}

// startFromBundle starts cfg's command in the bundle's directory with
// only PATH, HOME and cfg's env, as a host spawns it, and connects
// mcp-go's stdio client.
func startFromBundle(t *testing.T, dir, home string, cfg mcpConfig) *bundled {
	t.Helper()
	b := &bundled{stderr: &testredis.Buffer{}}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
	for k, v := range cfg.Env {
		env = append(env, k+"="+v)
	}
	tr := transport.NewStdioWithOptions(cfg.Command, nil, cfg.Args, transport.WithCommandFunc(
		func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.CommandContext(ctx, command, args...)
			cmd.Dir, cmd.Env, cmd.Stderr = dir, env, b.stderr
			return cmd, nil
		}))
	b.c = client.NewClient(tr)
	if err := b.c.Start(context.Background()); err != nil {
		t.Fatalf("start %s %q: %v", cfg.Command, cfg.Args, err)
	}
	t.Cleanup(func() { b.close(t) })
	return b
}

// session runs initialize, tools/list and one audit_log call; with rdb it
// reads the entry back from prefix's audit stream.
func (b *bundled) session(t *testing.T, m bundleManifest, rdb *redis.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hello, err := b.c.Initialize(ctx, mcp.InitializeRequest{})
	if err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, b.stderr.String())
	}
	if hello.ServerInfo.Name != "mcp-redis" || hello.ServerInfo.Version != "v"+bundleVersion {
		t.Errorf("serverInfo %+v, want mcp-redis v%s (the stamped version)", hello.ServerInfo, bundleVersion)
	}
	list, err := b.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v\nstderr:\n%s", err, b.stderr.String())
	}
	var served, declared []string
	for _, tool := range list.Tools {
		served = append(served, tool.Name)
	}
	for _, tool := range m.Tools {
		declared = append(declared, tool.Name)
	}
	slices.Sort(served)
	slices.Sort(declared)
	if !slices.Equal(served, declared) {
		t.Errorf("the server serves tools %q; the manifest declares %q", served, declared)
	}

	req := mcp.CallToolRequest{}
	req.Params.Name = "audit_log"
	req.Params.Arguments = map[string]any{"module": "mcpb", "procedure": "try", "status": "ok"}
	res, err := b.c.CallTool(ctx, req)
	if err != nil || res.IsError {
		t.Fatalf("audit_log: %v %+v\nstderr:\n%s", err, res, b.stderr.String())
	}
	if rdb == nil {
		return
	}
	key := prefix + "audit_log_stream"
	msgs, err := rdb.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	var ours []redis.XMessage
	for _, msg := range msgs {
		if msg.Values["module"] == "mcpb" { // the server records its calls here too
			ours = append(ours, msg)
		}
	}
	if len(ours) != 1 || ours[0].Values["procedure"] != "try" || ours[0].Values["status"] != "ok" {
		t.Errorf("%s holds %v, want one entry module=mcpb procedure=try status=ok", key, ours)
	}
}

// close closes stdin and waits for the server to exit, so that nothing
// writes under the test's prefix once it is purged.
func (b *bundled) close(t *testing.T) {
	if b.closed {
		return
	}
	b.closed = true
	if err := b.c.Close(); err != nil {
		t.Logf("close: %v\nstderr:\n%s", err, b.stderr.String())
	}
}

func machoFat(cpus ...macho.Cpu) func(io.ReaderAt) error {
	return func(r io.ReaderAt) error {
		f, err := macho.NewFatFile(r)
		if err != nil {
			return fmt.Errorf("not a universal Mach-O: %w", err)
		}
		var got []macho.Cpu
		for _, a := range f.Arches {
			if a.Type != macho.TypeExec {
				return fmt.Errorf("the %v slice is a %v, not an executable", a.Cpu, a.Type)
			}
			got = append(got, a.Cpu)
		}
		slices.Sort(got)
		if !slices.Equal(got, slices.Sorted(slices.Values(cpus))) {
			return fmt.Errorf("slices for %v, want %v", got, cpus)
		}
		return nil
	}
}

func elfFor(machine elf.Machine) func(io.ReaderAt) error {
	return func(r io.ReaderAt) error {
		f, err := elf.NewFile(r)
		if err != nil {
			return fmt.Errorf("not ELF: %w", err)
		}
		if f.Machine != machine || f.Type != elf.ET_EXEC {
			return fmt.Errorf("ELF %v %v, want an executable for %v", f.Type, f.Machine, machine)
		}
		return nil
	}
}

func peFor(machine uint16) func(io.ReaderAt) error {
	return func(r io.ReaderAt) error {
		f, err := pe.NewFile(r)
		if err != nil {
			return fmt.Errorf("not PE: %w", err)
		}
		if f.Machine != machine {
			return fmt.Errorf("PE machine %#x, want %#x", f.Machine, machine)
		}
		return nil
	}
}

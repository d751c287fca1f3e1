package deploy_test

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	module     = "github.com/mcp-redis/mcp-redis"
	versionVar = module + "/internal/app.Version"
	// versionMark stands for the version in both build commands: the
	// Dockerfile's ${VERSION} and the Makefile's $(VERSION).
	versionMark = "@VERSION@"
	// makeTarget is the Makefile target that runs the Dockerfile's build
	// command without Docker.
	makeTarget = "docker-build-local"
)

// ---------------------------------------------------------------------------
// docker-compose.yml

type composeFile struct {
	Services map[string]service `yaml:"services"`
	Volumes  map[string]any     `yaml:"volumes"`
}

// service has the keys the checks read; the ones compose accepts in more
// than one form are any and normalised by the helpers below.
type service struct {
	Image       string       `yaml:"image"`
	Build       any          `yaml:"build"`
	Command     any          `yaml:"command"`
	Entrypoint  any          `yaml:"entrypoint"`
	Environment any          `yaml:"environment"`
	Ports       []any        `yaml:"ports"`
	DependsOn   any          `yaml:"depends_on"`
	Healthcheck *healthcheck `yaml:"healthcheck"`
	Volumes     []any        `yaml:"volumes"`
	Restart     string       `yaml:"restart"`
	NetworkMode string       `yaml:"network_mode"`
}

type healthcheck struct {
	Test    any  `yaml:"test"`
	Disable bool `yaml:"disable"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal([]byte(readRoot(t, "docker-compose.yml")), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

func mustService(t *testing.T, c composeFile, name string) service {
	t.Helper()
	s, ok := c.Services[name]
	if !ok {
		t.Fatalf("docker-compose.yml: no service %q (services: %v)", name, mapKeys(c.Services))
	}
	return s
}

func TestComposeRedis(t *testing.T) {
	c := loadCompose(t)
	r := mustService(t, c, "redis")

	if !strings.HasPrefix(r.Image, "redis:") {
		t.Errorf("redis: image %q is not a redis image", r.Image)
	}
	cmd := strings.Join(words(r.Command), " ")
	if !strings.Contains(" "+cmd+" ", " --appendonly yes ") {
		t.Errorf("redis: command %q does not turn AOF on (--appendonly yes)", cmd)
	}

	hc := r.Healthcheck
	switch {
	case hc == nil:
		t.Errorf("redis: no healthcheck")
	case hc.Disable:
		t.Errorf("redis: healthcheck disabled")
	default:
		test := words(hc.Test)
		if len(test) == 0 || test[0] == "NONE" || !slices.Contains(test, "redis-cli") || !slices.Contains(test, "ping") {
			t.Errorf("redis: healthcheck test %q is not redis-cli ping", test)
		}
	}

	// The data lives on a named volume at /data, where AOF writes.
	var dataVolume string
	for _, v := range r.Volumes {
		src, dst := volumeMount(v)
		if dst == "/data" {
			dataVolume = src
		}
	}
	if dataVolume == "" {
		t.Errorf("redis: nothing mounted at /data; the AOF would die with the container")
	} else if _, ok := c.Volumes[dataVolume]; !ok {
		t.Errorf("redis: /data comes from %q, not a named volume of the top-level volumes %v", dataVolume, mapKeys(c.Volumes))
	}
	if r.Restart == "" || r.Restart == "no" {
		t.Errorf("redis: no restart policy")
	}
}

func TestComposeServer(t *testing.T) {
	c := loadCompose(t)
	s := mustService(t, c, "mcp-redis")

	if ctx, dockerfile := buildContext(s.Build); ctx != "." || dockerfile != "Dockerfile" {
		t.Errorf("mcp-redis: build %v is not the repository's Dockerfile", s.Build)
	}

	deps := dependsOn(t, s.DependsOn)
	if cond, ok := deps["redis"]; !ok {
		t.Errorf("mcp-redis: does not depend on redis")
	} else if cond != "service_healthy" {
		t.Errorf("mcp-redis: depends on redis with condition %q, want service_healthy", cond)
	}

	env := envMap(t, s.Environment)
	cmd := append(words(s.Entrypoint), words(s.Command)...)

	// HTTP mode, on every interface of the container.
	transport := flagValue(cmd, "--transport")
	if transport == "" {
		transport = env["MCP_REDIS_TRANSPORT"]
	}
	if transport != "http" {
		t.Errorf("mcp-redis: transport %q, want http (MCP_REDIS_TRANSPORT=http)", transport)
	}
	listen := flagValue(cmd, "--listen")
	if listen == "" {
		listen = env["MCP_REDIS_HTTP_LISTEN"]
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("mcp-redis: listen address %q (MCP_REDIS_HTTP_LISTEN): %v", listen, err)
	}
	if host != "0.0.0.0" && host != "::" && host != "" {
		t.Errorf("mcp-redis: listens on %q: a published port cannot reach a loopback listener inside the container", listen)
	}
	published := false
	for _, p := range s.Ports {
		if _, target := portBinding(p); target == port {
			published = true
		}
	}
	if !published {
		t.Errorf("mcp-redis: the listen port %s is not published", port)
	}
	if exposed := dockerfileExpose(t); !slices.Contains(exposed, port) {
		t.Errorf("mcp-redis: listens on port %s, the Dockerfile exposes %v", port, exposed)
	}

	// Redis over the compose network, by service name.
	u, err := url.Parse(env["MCP_REDIS_REDIS_URL"])
	if err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
		t.Errorf("mcp-redis: MCP_REDIS_REDIS_URL %q is not redis://redis:…", env["MCP_REDIS_REDIS_URL"])
	}

	if s.Restart == "" || s.Restart == "no" {
		t.Errorf("mcp-redis: no restart policy")
	}
}

// tokenRef is one name=token pair whose token is a mandatory reference to
// the environment: ${VAR:?message} or ${VAR?message}. A default (${VAR:-x})
// would be a literal token, and a plain ${VAR} would start with no token.
var tokenRef = regexp.MustCompile(`^[a-z0-9_-]{1,64}=\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$`)

func TestComposeTokenFromEnvironment(t *testing.T) {
	c := loadCompose(t)
	s := mustService(t, c, "mcp-redis")
	env := envMap(t, s.Environment)
	tokens, ok := env["MCP_REDIS_HTTP_AUTH_TOKENS"]
	if !ok || tokens == "" {
		t.Fatalf("mcp-redis: no MCP_REDIS_HTTP_AUTH_TOKENS; beyond loopback the server refuses to start without one")
	}
	for _, pair := range splitOutsideBraces(tokens, ',') {
		if !tokenRef.MatchString(pair) {
			t.Errorf("mcp-redis: MCP_REDIS_HTTP_AUTH_TOKENS entry %q is not name=${VAR:?message}: a token must come from the environment, never the file", pair)
		}
	}
	// No other variable carries a token either.
	for k, v := range env {
		if k != "MCP_REDIS_HTTP_AUTH_TOKENS" && strings.Contains(strings.ToUpper(k), "TOKEN") {
			t.Errorf("mcp-redis: %s=%q: tokens go in MCP_REDIS_HTTP_AUTH_TOKENS, from the environment", k, v)
		}
	}
}

func TestComposePortsOnLoopback(t *testing.T) {
	c := loadCompose(t)
	for _, name := range mapKeys(c.Services) {
		s := c.Services[name]
		if s.NetworkMode == "host" {
			t.Errorf("%s: network_mode host publishes every port on every interface", name)
		}
		for _, p := range s.Ports {
			if ip, _ := portBinding(p); ip != "127.0.0.1" {
				t.Errorf("%s: port %v is published on %q, not 127.0.0.1", name, p, ip)
			}
		}
	}
}

// TestPortBinding pins the short port syntax the loopback check relies on.
func TestPortBinding(t *testing.T) {
	for in, want := range map[any][2]string{
		"127.0.0.1:8080:8080":     {"127.0.0.1", "8080"},
		"127.0.0.1:8080:8080/tcp": {"127.0.0.1", "8080"},
		"127.0.0.1::8080":         {"127.0.0.1", "8080"},
		"8080:8080":               {"", "8080"},
		"8080":                    {"", "8080"},
		8080:                      {"", "8080"},
		"0.0.0.0:80:8080":         {"0.0.0.0", "8080"},
		"[::1]:8080:8080":         {"::1", "8080"},
	} {
		ip, target := portBinding(in)
		if ip != want[0] || target != want[1] {
			t.Errorf("portBinding(%v) = %q, %q; want %q, %q", in, ip, target, want[0], want[1])
		}
	}
	ip, target := portBinding(map[string]any{"target": 8080, "published": "8080", "host_ip": "127.0.0.1"})
	if ip != "127.0.0.1" || target != "8080" {
		t.Errorf("long syntax: %q, %q", ip, target)
	}
	for _, bad := range []string{"a=${T:-literal-token-here}", "a=0123456789abcdef", "a=${T}", "a=$T"} {
		if tokenRef.MatchString(bad) {
			t.Errorf("tokenRef accepts %q", bad)
		}
	}
}

// words is a command, entrypoint or healthcheck test as a list of words:
// compose takes a list, or a string that it splits like a shell.
func words(v any) []string {
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return shellWords(v)
	case []any:
		out := make([]string, len(v))
		for i, w := range v {
			out[i] = fmt.Sprint(w)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// flagValue is the value of --name or --name=value in args, or "".
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// envMap is environment: as a map, or as a list of KEY=VALUE.
func envMap(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch v := v.(type) {
	case nil:
	case map[string]any:
		for k, val := range v {
			if val != nil {
				out[k] = fmt.Sprint(val)
			} else {
				out[k] = ""
			}
		}
	case []any:
		for _, kv := range v {
			k, val, _ := strings.Cut(fmt.Sprint(kv), "=")
			out[k] = val
		}
	default:
		t.Fatalf("environment: unexpected %T", v)
	}
	return out
}

// dependsOn is depends_on as service → condition: a list means
// service_started.
func dependsOn(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	switch v := v.(type) {
	case nil:
	case []any:
		for _, s := range v {
			out[fmt.Sprint(s)] = "service_started"
		}
	case map[string]any:
		for s, spec := range v {
			cond := "service_started"
			if m, ok := spec.(map[string]any); ok && m["condition"] != nil {
				cond = fmt.Sprint(m["condition"])
			}
			out[s] = cond
		}
	default:
		t.Fatalf("depends_on: unexpected %T", v)
	}
	return out
}

// buildContext is build: as context and Dockerfile.
func buildContext(v any) (ctx, dockerfile string) {
	switch v := v.(type) {
	case string:
		return filepath.Clean(v), "Dockerfile"
	case map[string]any:
		ctx, dockerfile = ".", "Dockerfile"
		if c, ok := v["context"].(string); ok {
			ctx = filepath.Clean(c)
		}
		if d, ok := v["dockerfile"].(string); ok {
			dockerfile = filepath.Clean(d)
		}
		return ctx, dockerfile
	}
	return "", ""
}

// volumeMount is a service volume as source and target.
func volumeMount(v any) (src, dst string) {
	switch v := v.(type) {
	case string:
		parts := strings.Split(v, ":")
		if len(parts) == 1 {
			return "", parts[0]
		}
		return parts[0], parts[1]
	case map[string]any:
		return fmt.Sprint(v["source"]), fmt.Sprint(v["target"])
	}
	return "", ""
}

// portBinding is a published port as host IP ("" for every interface) and
// container port, in the short syntax [[ip:]host_port:]container_port[/proto]
// or the long one.
func portBinding(v any) (hostIP, target string) {
	switch v := v.(type) {
	case map[string]any:
		if ip, ok := v["host_ip"]; ok && ip != nil {
			hostIP = fmt.Sprint(ip)
		}
		return hostIP, fmt.Sprint(v["target"])
	case string:
		s, _, _ := strings.Cut(v, "/")
		if strings.HasPrefix(s, "[") {
			if end := strings.Index(s, "]:"); end > 0 {
				hostIP, s = s[1:end], s[end+2:]
				_, target, _ = strings.Cut(s, ":")
				return hostIP, target
			}
		}
		parts := strings.Split(s, ":")
		switch len(parts) {
		case 3:
			return parts[0], parts[2]
		default:
			return "", parts[len(parts)-1]
		}
	}
	return "", fmt.Sprint(v)
}

// splitOutsideBraces splits s at sep, but not inside ${…}.
func splitOutsideBraces(s string, sep rune) []string {
	var out []string
	depth, start := 0, 0
	for i, r := range s {
		switch {
		case r == '{':
			depth++
		case r == '}' && depth > 0:
			depth--
		case r == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// ---------------------------------------------------------------------------
// Dockerfile

type instruction struct {
	cmd  string // upper case
	args string
}

type stage struct {
	image, name string
	ins         []instruction
}

// parseDockerfile splits the Dockerfile into stages of instructions, with
// line continuations joined and comments dropped.
func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	var stages []stage
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(readRoot(t, "Dockerfile"), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || trimmed == "" {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		logical = append(logical, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("Dockerfile: ends inside a line continuation")
	}
	for _, l := range logical {
		cmd, args, _ := strings.Cut(l, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			var st stage
			f := strings.Fields(in.args)
			for i := 0; i < len(f); i++ {
				switch {
				case strings.HasPrefix(f[i], "--"):
				case strings.EqualFold(f[i], "AS") && i+1 < len(f):
					st.name = f[i+1]
					i++
				case st.image == "":
					st.image = f[i]
				}
			}
			stages = append(stages, st)
			continue
		}
		if len(stages) == 0 {
			continue // ARG before the first FROM
		}
		s := &stages[len(stages)-1]
		s.ins = append(s.ins, in)
	}
	return stages
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.ins {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func dockerfileExpose(t *testing.T) []string {
	stages := parseDockerfile(t)
	var ports []string
	for _, in := range stages[len(stages)-1].all("EXPOSE") {
		for _, p := range strings.Fields(in.args) {
			p, _, _ = strings.Cut(p, "/")
			ports = append(ports, p)
		}
	}
	return ports
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("Dockerfile: %d FROM, want a build stage and a runtime stage", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	if !strings.HasPrefix(build.image, "golang:") {
		t.Errorf("build stage: image %q is not golang", build.image)
	}
	// go mod download in a layer of its own, before the source comes in.
	order := []string{}
	for _, in := range build.ins {
		switch {
		case in.cmd == "COPY" && slices.Contains(strings.Fields(in.args), "go.mod"):
			order = append(order, "copy-mod")
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download"):
			order = append(order, "download")
		case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
			order = append(order, "copy-all")
		}
	}
	if !slices.Equal(order, []string{"copy-mod", "download", "copy-all"}) {
		t.Errorf("build stage: want COPY go.mod go.sum, RUN go mod download, COPY . . in that order; have %v", order)
	}
	hasVersionArg := false
	for _, in := range build.all("ARG") {
		if name, _, _ := strings.Cut(in.args, "="); name == "VERSION" {
			hasVersionArg = true
		}
	}
	if !hasVersionArg {
		t.Errorf("build stage: no ARG VERSION")
	}

	b := dockerfileBuild(t, build)
	if b.env["CGO_ENABLED"] != "0" {
		t.Errorf("Dockerfile go build: CGO_ENABLED=%q, want 0 (a static binary for distroless/static)", b.env["CGO_ENABLED"])
	}
	if !slices.Contains(b.flags, "-trimpath") {
		t.Errorf("Dockerfile go build: no -trimpath in %v", b.flags)
	}
	checkVersionLdflag(t, "Dockerfile", b)
	if !slices.Equal(b.pkgs, []string{"./cmd/mcp-redis"}) {
		t.Errorf("Dockerfile go build: packages %v, want ./cmd/mcp-redis", b.pkgs)
	}

	// The runtime: distroless static, not root, exec form only (no shell).
	if !strings.Contains(final.image, "distroless/static") {
		t.Errorf("runtime stage: image %q is not distroless static", final.image)
	}
	users := final.all("USER")
	if len(users) == 0 {
		t.Errorf("runtime stage: no USER; the server would run as root")
	} else {
		user, group, _ := strings.Cut(users[len(users)-1].args, ":")
		if user == "root" || user == "0" || group == "root" || group == "0" {
			t.Errorf("runtime stage: USER %s is root", users[len(users)-1].args)
		}
	}
	copied := false
	for _, in := range final.all("COPY") {
		if strings.Contains(in.args, "--from="+build.name) && strings.Contains(in.args, b.out) {
			copied = true
		}
	}
	if build.name == "" || !copied {
		t.Errorf("runtime stage: no COPY --from=%s of %s", build.name, b.out)
	}
	if r := final.all("RUN"); len(r) > 0 {
		t.Errorf("runtime stage: RUN %s: distroless has no shell", r[0].args)
	}
	var argv []string
	for _, cmd := range []string{"ENTRYPOINT", "CMD", "HEALTHCHECK"} {
		for _, in := range final.all(cmd) {
			args := in.args
			if cmd == "HEALTHCHECK" {
				if args == "NONE" {
					continue
				}
				_, args, _ = strings.Cut(args, "CMD ")
			}
			var exec []string
			if err := yaml.Unmarshal([]byte(args), &exec); err != nil || !strings.HasPrefix(strings.TrimSpace(args), "[") {
				t.Errorf("runtime stage: %s %s is not exec form; distroless has no shell", cmd, in.args)
			}
			if cmd != "HEALTHCHECK" {
				argv = append(argv, exec...)
			}
		}
	}
	// The default command serves stdio; HTTP is chosen by the environment.
	if !slices.Contains(argv, "serve") {
		t.Errorf("runtime stage: ENTRYPOINT+CMD %v does not serve", argv)
	}
	if tr := flagValue(argv, "--transport"); tr != "" && tr != "stdio" {
		t.Errorf("runtime stage: the default command serves %s, want stdio", tr)
	}
	if len(dockerfileExpose(t)) == 0 {
		t.Errorf("runtime stage: no EXPOSE for the HTTP port")
	}
}

// TestBuildCommandsAgree checks that `make docker-build-local` and `make
// build` run the Dockerfile's go build: the same environment, flags, linker
// flags and package; only the output path differs (and GOOS/GOARCH values:
// the target platform in the image, IMAGE_GOOS/IMAGE_GOARCH in make).
func TestBuildCommandsAgree(t *testing.T) {
	stages := parseDockerfile(t)
	docker := dockerfileBuild(t, stages[0])
	mk := parseMakefile(t)

	local := mk.goBuild(t, makeTarget)
	if !strings.HasPrefix(local.out, "bin/") {
		t.Errorf("make %s: output %q is not under bin/", makeTarget, local.out)
	}
	if got, want := mapKeys(local.env), mapKeys(docker.env); !slices.Equal(got, want) {
		t.Errorf("make %s sets %v, the Dockerfile %v", makeTarget, got, want)
	}
	if !mk.helped(makeTarget) {
		t.Errorf("make %s has no `## ` comment: make help does not list it", makeTarget)
	}

	for _, target := range []string{makeTarget, "build"} {
		m := mk.goBuild(t, target)
		if m.env["CGO_ENABLED"] != docker.env["CGO_ENABLED"] {
			t.Errorf("make %s: CGO_ENABLED=%q, Dockerfile %q", target, m.env["CGO_ENABLED"], docker.env["CGO_ENABLED"])
		}
		if !slices.Equal(m.flags, docker.flags) {
			t.Errorf("make %s: flags %q, Dockerfile %q", target, m.flags, docker.flags)
		}
		if !slices.Equal(m.ldflags, docker.ldflags) {
			t.Errorf("make %s: -ldflags %q, Dockerfile %q", target, m.ldflags, docker.ldflags)
		}
		if !slices.Equal(m.pkgs, docker.pkgs) {
			t.Errorf("make %s: packages %q, Dockerfile %q", target, m.pkgs, docker.pkgs)
		}
		checkVersionLdflag(t, "make "+target, m)
	}
}

// TestVersionVariable checks that the -X target exists: the linker ignores
// -X of a missing or non-string variable, and the image would say "dev".
func TestVersionVariable(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "internal", "app")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range file.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, spec := range g.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if n.Name != "Version" {
						continue
					}
					if len(vs.Values) > i {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							return
						}
					} else if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
						return
					}
					t.Fatalf("%s: Version is not a string variable with a constant value; -X cannot set it", fset.Position(n.Pos()))
				}
			}
		}
	}
	t.Fatalf("internal/app: no package variable Version for -X %s", versionVar)
}

func checkVersionLdflag(t *testing.T, where string, b goBuild) {
	t.Helper()
	for i, f := range b.ldflags {
		if f == "-X" && i+1 < len(b.ldflags) && b.ldflags[i+1] == versionVar+"="+versionMark {
			return
		}
	}
	t.Errorf("%s: -ldflags %q does not stamp -X %s=$VERSION", where, b.ldflags, versionVar)
}

// goBuild is one go build command line.
type goBuild struct {
	env     map[string]string // VAR=value words before go
	flags   []string          // every flag but -o, with its value
	ldflags []string          // the words of -ldflags
	out     string
	pkgs    []string
}

// valueFlags are the go build flags that take a value.
var valueFlags = map[string]bool{
	"-o": true, "-ldflags": true, "-gcflags": true, "-asmflags": true, "-tags": true,
	"-mod": true, "-p": true, "-buildmode": true, "-pgo": true, "-modfile": true, "-overlay": true,
}

var envWord = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`)

// parseGoBuild finds `go build` in the shell words of a command.
func parseGoBuild(words []string) (goBuild, error) {
	at := -1
	for i := 0; i+1 < len(words); i++ {
		if words[i] == "go" && words[i+1] == "build" {
			at = i
			break
		}
	}
	if at < 0 {
		return goBuild{}, fmt.Errorf("no go build in %q", words)
	}
	b := goBuild{env: map[string]string{}}
	for i := at - 1; i >= 0 && envWord.MatchString(words[i]); i-- {
		k, v, _ := strings.Cut(words[i], "=")
		b.env[k] = v
	}
	args := words[at+2:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "&&" || a == ";" || a == "||" {
			break
		}
		if !strings.HasPrefix(a, "-") {
			b.pkgs = append(b.pkgs, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if valueFlags[name] && !hasVal {
			if i+1 >= len(args) {
				return b, fmt.Errorf("%s without a value", name)
			}
			val, hasVal = args[i+1], true
			i++
		}
		switch name {
		case "-o":
			b.out = val
			continue
		case "-ldflags":
			b.ldflags = strings.Fields(val)
		}
		if hasVal {
			b.flags = append(b.flags, name+"="+val)
		} else {
			b.flags = append(b.flags, name)
		}
	}
	return b, nil
}

// dockerfileBuild is the go build of the build stage, with ${VERSION} as
// versionMark.
func dockerfileBuild(t *testing.T, build stage) goBuild {
	t.Helper()
	for _, in := range build.all("RUN") {
		if !strings.Contains(in.args, "go build") {
			continue
		}
		w := shellWords(in.args)
		for len(w) > 0 && strings.HasPrefix(w[0], "--") { // --mount=…
			w = w[1:]
		}
		for i := range w {
			w[i] = strings.NewReplacer("${VERSION}", versionMark, "$VERSION", versionMark).Replace(w[i])
		}
		b, err := parseGoBuild(w)
		if err != nil {
			t.Fatalf("Dockerfile: %v", err)
		}
		return b
	}
	t.Fatalf("Dockerfile: no RUN go build in the build stage")
	return goBuild{}
}

// ---------------------------------------------------------------------------
// Makefile

type makefile struct {
	vars    map[string]string
	recipes map[string][]string
	help    map[string]bool
}

var (
	makeVar  = regexp.MustCompile(`^([A-Za-z_][A-Za-z0-9_]*)\s*(\?=|:=|=)\s*(.*)$`)
	makeRule = regexp.MustCompile(`^([a-z][a-z0-9_-]*):([^=].*)?$`)
	makeRef  = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
)

func parseMakefile(t *testing.T) makefile {
	t.Helper()
	m := makefile{vars: map[string]string{}, recipes: map[string][]string{}, help: map[string]bool{}}
	var target string
	for _, line := range strings.Split(readRoot(t, "Makefile"), "\n") {
		if strings.HasPrefix(line, "\t") {
			if target != "" {
				m.recipes[target] = append(m.recipes[target], strings.TrimLeft(strings.TrimSpace(line), "@-"))
			}
			continue
		}
		target = ""
		if v := makeVar.FindStringSubmatch(line); v != nil {
			m.vars[v[1]] = strings.TrimSpace(v[3])
		} else if tg := makeRule.FindStringSubmatch(line); tg != nil {
			target = tg[1]
			m.help[target] = strings.Contains(line, "## ")
		}
	}
	// The variables a caller sets: go for $(GO), the mark for $(VERSION).
	m.vars["GO"] = "go"
	m.vars["VERSION"] = versionMark
	return m
}

func (m makefile) helped(target string) bool { return m.help[target] }

// expand replaces $(VAR) until none is left, then $$ by $.
func (m makefile) expand(t *testing.T, s string) string {
	t.Helper()
	for range 10 {
		if !makeRef.MatchString(s) {
			break
		}
		s = makeRef.ReplaceAllStringFunc(s, func(ref string) string {
			name := makeRef.FindStringSubmatch(ref)[1]
			v, ok := m.vars[name]
			if !ok {
				t.Fatalf("Makefile: $(%s) is not defined", name)
			}
			return v
		})
	}
	if strings.Contains(strings.ReplaceAll(s, "$$", ""), "$(") {
		t.Fatalf("Makefile: cannot expand %q", s)
	}
	return strings.ReplaceAll(s, "$$", "$")
}

// goBuild is the go build in the recipe of target, expanded.
func (m makefile) goBuild(t *testing.T, target string) goBuild {
	t.Helper()
	recipe, ok := m.recipes[target]
	if !ok {
		t.Fatalf("Makefile: no target %s", target)
	}
	for _, line := range recipe {
		line = m.expand(t, line)
		if !strings.Contains(line, "go build") {
			continue
		}
		b, err := parseGoBuild(shellWords(line))
		if err != nil {
			t.Fatalf("Makefile %s: %v", target, err)
		}
		return b
	}
	t.Fatalf("Makefile: target %s runs no go build", target)
	return goBuild{}
}

// ---------------------------------------------------------------------------
// helpers

// shellWords splits s like a POSIX shell, without expansions: quotes group
// and are removed, $VAR and ${VAR} stay as they are.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	in := false // inside a word
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'':
			in = true
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				end = len(s) - i - 1
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case c == '"':
			in = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
		case c == '\\' && i+1 < len(s):
			in = true
			i++
			w.WriteByte(s[i])
		case c == ' ' || c == '\t' || c == '\n':
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			in = true
			w.WriteByte(c)
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}

func TestShellWords(t *testing.T) {
	got := shellWords(`CGO_ENABLED=0 go build -ldflags "-s -w -X a.V=${VERSION}" -o 'out dir/x' ./cmd\ x`)
	want := []string{"CGO_ENABLED=0", "go", "build", "-ldflags", "-s -w -X a.V=${VERSION}", "-o", "out dir/x", "./cmd x"}
	if !slices.Equal(got, want) {
		t.Errorf("shellWords = %q\nwant %q", got, want)
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module "+module+"\n") {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of %s above the test's directory", module)
		}
		dir = parent
	}
}

func readRoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mapKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

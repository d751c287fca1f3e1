package deploy_test

// These tests read the deployment files at the repository root as text,
// decode docker-compose.yml, and ask make and go what they would run; no
// Docker engine is needed (so `docker compose config` is not run).

import (
	"net"
	"net/url"
	"os"
	"os/exec"
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
)

// The image's go build is `make docker-build-local`'s, word for word, but
// for the output path: the same environment, flags, -ldflags and package.
// `make build` is the same again without GOOS and GOARCH.
func TestTheImageBuildsWithTheFlagsOfMakeDockerBuildLocal(t *testing.T) {
	docker := dockerfileGoBuild(t)
	// The Dockerfile's build arguments, as make is given them.
	local := makeDryRun(t, "docker-build-local", "IMAGE_GOOS=@TARGETOS@", "IMAGE_GOARCH=@TARGETARCH@")
	if anyOut(docker) != anyOut(local) {
		t.Errorf("the Dockerfile builds with\n\t%s\nmake docker-build-local with\n\t%s", docker, local)
	}
	if !strings.Contains(local, " -o bin/") {
		t.Errorf("make docker-build-local writes outside bin/: %s", local)
	}
	build := makeDryRun(t, "build")
	if want := strings.Replace(anyOut(local), "GOOS=@TARGETOS@ GOARCH=@TARGETARCH@ ", "", 1); anyOut(build) != want {
		t.Errorf("make build runs\n\t%s\nwant the image's build for this platform\n\t%s", build, want)
	}
	// A static binary for distroless/static, stamped with its version.
	for _, want := range []string{"CGO_ENABLED=0 ", " -trimpath ", " -X " + versionVar + "=@VERSION@", " -X " + module + "/internal/app.Commit=@COMMIT@", " ./cmd/mcp-redis"} {
		if !strings.Contains(docker, want) {
			t.Errorf("the image's go build lacks %q: %s", strings.TrimSpace(want), docker)
		}
	}
	if help := makeOut(t, "-s", "help"); !strings.Contains(help, "docker-build-local") {
		t.Errorf("make help does not list docker-build-local:\n%s", help)
	}
	// The linker ignores -X of a missing or non-string variable: the image
	// would say "v0.0.0-dev".
	for _, name := range []string{"Version", "Commit"} {
		doc := run(t, "go", "doc", module+"/internal/app", name)
		if !strings.Contains(doc, "var "+name+` = "`) && !strings.Contains(doc, "var "+name+" string") {
			t.Errorf("internal/app.%s is not a string variable -X can set:\n%s", name, doc)
		}
	}
}

// The image: pinned bases, Go as new as go.mod asks, a non-root distroless
// runtime with no shell, and a default command that serves stdio.
func TestTheImageIsPinnedStaticAndNonRoot(t *testing.T) {
	df := dockerfile(t)
	froms := regexp.MustCompile(`(?m)^FROM (?:--\S+ )*(\S+)`).FindAllStringSubmatch(df, -1)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile: %d FROM, want a build stage and a runtime stage", len(froms))
	}
	goVersion := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)$`).FindStringSubmatch(df)
	for _, f := range froms {
		image := f[1]
		if goVersion != nil {
			image = strings.ReplaceAll(image, "${GO_VERSION}", goVersion[1])
		}
		name, tag, _ := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
		if strings.Contains(image, "$") || tag == "" || tag == "latest" {
			t.Errorf("FROM %s (%s) is not pinned to a tag", f[1], name)
		}
	}
	// go.mod's go line must not be newer than the image's Go: the golang
	// images set GOTOOLCHAIN=local.
	mod := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(readRoot(t, "go.mod"))
	if !strings.HasPrefix(froms[0][1], "golang:${GO_VERSION}") || goVersion == nil || mod == nil || goVersion[1] != mod[1] {
		t.Errorf("the build stage is %s with GO_VERSION %v; go.mod says go %v", froms[0][1], goVersion, mod)
	}
	for _, layer := range [][2]string{{"COPY go.mod go.sum ./", "RUN go mod download"}, {"RUN go mod download", "COPY . ."}} {
		if i, j := strings.Index(df, layer[0]), strings.Index(df, layer[1]); i < 0 || j < i {
			t.Errorf("Dockerfile: want %q before %q, so the modules layer is cached", layer[0], layer[1])
		}
	}
	if !strings.Contains(df, "\nARG VERSION=") {
		t.Error("Dockerfile: no ARG VERSION for the -X stamp")
	}

	final := df[strings.LastIndex(df, "\nFROM "):]
	if !strings.Contains(froms[len(froms)-1][1], "distroless/static") {
		t.Errorf("the runtime stage is %s, not distroless static", froms[len(froms)-1][1])
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(final, -1)
	if len(users) == 0 {
		t.Error("the runtime stage has no USER: the server would run as root")
	} else if u, g, _ := strings.Cut(users[len(users)-1][1], ":"); u == "root" || u == "0" || g == "root" || g == "0" {
		t.Errorf("the runtime stage runs as USER %s", users[len(users)-1][1])
	}
	out := regexp.MustCompile(` -o (\S+) `).FindStringSubmatch(dockerfileGoBuild(t))
	if out == nil || !strings.Contains(final, "\nCOPY --from=build "+out[1]+" ") {
		t.Errorf("the runtime stage does not copy the binary the build stage writes (%v)", out)
	}
	if strings.Contains(final, "\nRUN ") {
		t.Error("the runtime stage has a RUN: distroless has no shell")
	}
	for _, in := range []string{"ENTRYPOINT", "CMD"} {
		if !strings.Contains(final, "\n"+in+" [") {
			t.Errorf("the runtime stage has no %s in exec form: distroless has no shell", in)
		}
	}
	cmd := regexp.MustCompile(`(?m)^CMD (.*)$`).FindStringSubmatch(final)
	if cmd == nil || !strings.Contains(cmd[1], `"serve"`) || strings.Contains(cmd[1], "http") {
		t.Errorf("the default command %v does not serve stdio", cmd)
	}
}

// compose is the part of docker-compose.yml the checks read, in the forms
// the file uses.
type compose struct {
	Services map[string]struct {
		Image string `yaml:"image"`
		Build struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Volumes     []string          `yaml:"volumes"`
		DependsOn   map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
		Restart     string `yaml:"restart"`
		NetworkMode string `yaml:"network_mode"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

// tokenList is MCP_REDIS_HTTP_AUTH_TOKENS whose every token is a mandatory
// reference to the environment, name=${VAR:?message}: a default (${VAR:-x})
// would be a literal token, and a plain ${VAR} would start with none.
var tokenList = regexp.MustCompile(`^(?:[a-z0-9_-]{1,64}=\$\{[A-Za-z_]\w*:?\?[^}]*\}(?:,|$))+$`)

// Compose runs Redis with AOF and a healthcheck, and the server over HTTP
// on it once it is healthy, with a token from the environment and every
// port on loopback.
func TestComposeRunsRedisWithAOFAndTheServerOverHTTPOnLoopback(t *testing.T) {
	var c compose
	if err := yaml.Unmarshal([]byte(readRoot(t, "docker-compose.yml")), &c); err != nil {
		t.Fatalf("docker-compose.yml: %v (these tests read the forms the file uses now)", err)
	}
	r, s := c.Services["redis"], c.Services["mcp-redis"]

	if !strings.HasPrefix(r.Image, "redis:") || strings.HasSuffix(r.Image, ":latest") {
		t.Errorf("redis: image %q is not a pinned redis image", r.Image)
	}
	if !strings.Contains(" "+strings.Join(r.Command, " ")+" ", " --appendonly yes ") {
		t.Errorf("redis: command %q does not turn AOF on", r.Command)
	}
	if !slices.Contains(r.Healthcheck.Test, "redis-cli") || !slices.Contains(r.Healthcheck.Test, "ping") {
		t.Errorf("redis: healthcheck %q is not redis-cli ping", r.Healthcheck.Test)
	}
	data := ""
	for _, v := range r.Volumes {
		if src, ok := strings.CutSuffix(v, ":/data"); ok {
			data = src
		}
	}
	if _, named := c.Volumes[data]; data == "" || !named {
		t.Errorf("redis: /data is not a named volume (%q): the AOF would die with the container", r.Volumes)
	}

	if s.Build.Context != "." || (s.Build.Dockerfile != "" && s.Build.Dockerfile != "Dockerfile") {
		t.Errorf("mcp-redis: built from %+v, not the repository's Dockerfile", s.Build)
	}
	if s.DependsOn["redis"].Condition != "service_healthy" {
		t.Errorf("mcp-redis: depends on redis %+v, want condition service_healthy", s.DependsOn)
	}
	env := s.Environment
	if env["MCP_REDIS_TRANSPORT"] != "http" {
		t.Errorf("mcp-redis: MCP_REDIS_TRANSPORT %q, want http", env["MCP_REDIS_TRANSPORT"])
	}
	// Inside the container it listens on every interface, or the published
	// port could not reach it; that port is the one the image exposes.
	host, port, err := net.SplitHostPort(env["MCP_REDIS_HTTP_LISTEN"])
	if err != nil || host != "0.0.0.0" {
		t.Errorf("mcp-redis: MCP_REDIS_HTTP_LISTEN %q, want 0.0.0.0:port (%v)", env["MCP_REDIS_HTTP_LISTEN"], err)
	}
	if !slices.ContainsFunc(s.Ports, func(p string) bool { return strings.HasSuffix(p, ":"+port) }) {
		t.Errorf("mcp-redis: the listen port %s is not published (%q)", port, s.Ports)
	}
	if !regexp.MustCompile(`(?m)^EXPOSE ` + regexp.QuoteMeta(port) + `\b`).MatchString(dockerfile(t)) {
		t.Errorf("mcp-redis: listens on %s, which the Dockerfile does not EXPOSE", port)
	}
	if u, err := url.Parse(env["MCP_REDIS_REDIS_URL"]); err != nil || u.Scheme != "redis" || u.Hostname() != "redis" {
		t.Errorf("mcp-redis: MCP_REDIS_REDIS_URL %q is not redis://redis:…", env["MCP_REDIS_REDIS_URL"])
	}

	if tokens := env["MCP_REDIS_HTTP_AUTH_TOKENS"]; !tokenList.MatchString(tokens) {
		t.Errorf("mcp-redis: MCP_REDIS_HTTP_AUTH_TOKENS %q is not name=${VAR:?message},…: a token comes from the environment, never the file", tokens)
	}
	for _, bad := range []string{"", "a=${T:-literal-token-here}", "a=0123456789abcdef", "a=${T}", "a=$T", "a=${T:?x},b=literal"} {
		if tokenList.MatchString(bad) {
			t.Errorf("the token check accepts %q", bad)
		}
	}
	for name, svc := range c.Services {
		for k, v := range svc.Environment {
			if k != "MCP_REDIS_HTTP_AUTH_TOKENS" && strings.Contains(strings.ToUpper(k), "TOKEN") {
				t.Errorf("%s: %s=%q: tokens go in MCP_REDIS_HTTP_AUTH_TOKENS, from the environment", name, k, v)
			}
		}
		if svc.NetworkMode == "host" {
			t.Errorf("%s: network_mode host publishes every port on every interface", name)
		}
		for _, p := range svc.Ports {
			if !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("%s: port %q is not published on 127.0.0.1 only", name, p)
			}
		}
		if svc.Restart == "" || svc.Restart == "no" {
			t.Errorf("%s: no restart policy", name)
		}
	}
}

// dockerfileGoBuild is the build stage's go build command on one line, its
// words single-spaced, the build arguments written @ARG@ as make is given
// them.
func dockerfileGoBuild(t *testing.T) string {
	t.Helper()
	line := regexp.MustCompile(`(?m)^RUN (.*go build.*)$`).FindStringSubmatch(dockerfile(t))
	if line == nil {
		t.Fatal("Dockerfile: no RUN … go build")
	}
	words := strings.Fields(line[1])
	for len(words) > 0 && strings.HasPrefix(words[0], "--") { // --mount=…
		words = words[1:]
	}
	return regexp.MustCompile(`\$\{(\w+)\}`).ReplaceAllString(strings.Join(words, " "), "@$1@")
}

// makeOut runs make with GO=go, VERSION=@VERSION@ and COMMIT=@COMMIT@
// (given, they are not asked of git) and returns its output.
func makeOut(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, "make", append([]string{"--no-print-directory", "GO=go", "VERSION=@VERSION@", "COMMIT=@COMMIT@"}, args...)...)
}

// makeDryRun is the go build line `make -n target vars…` prints, its words
// single-spaced.
func makeDryRun(t *testing.T, target string, vars ...string) string {
	t.Helper()
	out := makeOut(t, append([]string{"-n", target}, vars...)...)
	for line := range strings.SplitSeq(out, "\n") {
		if strings.Contains(line, "go build") {
			return strings.Join(strings.Fields(line), " ")
		}
	}
	t.Fatalf("make -n %s runs no go build:\n%s", target, out)
	return ""
}

// anyOut is a go build line with its output path left out.
func anyOut(build string) string {
	return regexp.MustCompile(` -o \S+`).ReplaceAllString(build, " -o …")
}

// run runs a tool in the repository root and returns its output; a tool
// that is not installed skips the test.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed: %v", name, err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dockerfile is the Dockerfile with comments dropped and continued lines
// joined.
func dockerfile(t *testing.T) string {
	t.Helper()
	df := regexp.MustCompile(`(?m)^\s*#.*\n`).ReplaceAllString(readRoot(t, "Dockerfile"), "")
	return strings.ReplaceAll(df, "\\\n", " ")
}

func readRoot(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// repoRoot is the directory above this package: deploy/ sits at the root.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "go.mod")); err != nil || !strings.Contains(string(b), "module "+module+"\n") {
		t.Fatalf("%s is not the root of %s: %v", root, module, err)
	}
	return root
}

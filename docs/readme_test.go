package docs_test

// The README's command blocks run as written. Every ```sh block carries,
// on the lines just above it, one of
//
//	<!-- run: GROUP -->        run it, in GROUP's shell
//	<!-- not run: REASON -->   why it cannot run here (Docker, a Ctrl-C, …)
//
// and a run block may add
//
//	<!-- expect: TEXT -->      its group's output must hold TEXT
//	<!-- check: COMMAND -->    run after the block, in its shell, to show
//	                           it did what the text says (a server it left
//	                           in the background answers)
//
// The blocks of a group run in README order as one `bash` script (set -euo
// pipefail), as a reader pasting them into one shell would, in a copy of
// the repository's files (a fresh clone: no bin/, no node_modules/), with
// stdin closed. The groups run one after another in the order they first
// appear, in the same copy. Two things differ from a reader's machine, and
// only in the script's text: the Redis at 127.0.0.1:6379 is a private
// redis-server the test starts, and the port 8080 is a free one, so that
// the run touches no shared Redis and no busy port. What a group leaves in
// the background is stopped with its process group.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

type block struct {
	line    int // of the opening fence
	text    string
	group   string
	notRun  string
	expects []string
	checks  []string
}

var (
	markRun    = regexp.MustCompile(`^<!-- run: ([a-z0-9-]+) -->$`)
	markNotRun = regexp.MustCompile(`^<!-- not run: (.+) -->$`)
	markExpect = regexp.MustCompile(`^<!-- expect: (.+) -->$`)
	markCheck  = regexp.MustCompile(`^<!-- check: (.+) -->$`)
)

// readmeBlocks returns the README's ```sh blocks with their marks.
func readmeBlocks(t *testing.T, readme string) []block {
	t.Helper()
	var blocks []block
	var marks []string
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "<!--") {
			marks = append(marks, strings.TrimSpace(l))
			continue
		}
		if !strings.HasPrefix(l, "```") {
			if strings.TrimSpace(l) != "" {
				marks = nil
			}
			continue
		}
		lang := strings.TrimPrefix(l, "```")
		start := i
		var body []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		if lang == "sh" {
			b := block{line: start + 1, text: strings.Join(body, "\n")}
			for _, m := range marks {
				if s := markRun.FindStringSubmatch(m); s != nil {
					b.group = s[1]
				} else if s := markNotRun.FindStringSubmatch(m); s != nil {
					b.notRun = s[1]
				} else if s := markExpect.FindStringSubmatch(m); s != nil {
					b.expects = append(b.expects, s[1])
				} else if s := markCheck.FindStringSubmatch(m); s != nil {
					b.checks = append(b.checks, s[1])
				}
			}
			blocks = append(blocks, b)
		}
		marks = nil
	}
	return blocks
}

// Every shell block is marked, either to run or with the reason it is
// not; a block is never silently left out.
func TestEveryShellBlockOfTheREADMEIsMarked(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme))
	runs := 0
	for _, b := range blocks {
		switch {
		case b.group == "" && b.notRun == "":
			t.Errorf("README.md:%d: a ```sh block with neither <!-- run: GROUP --> nor <!-- not run: REASON --> above it:\n%s", b.line, b.text)
		case b.group != "" && b.notRun != "":
			t.Errorf("README.md:%d: marked both to run and not to run", b.line)
		case b.notRun != "" && (len(b.expects) > 0 || len(b.checks) > 0):
			t.Errorf("README.md:%d: a block not run has expectations", b.line)
		case b.group != "":
			runs++
		}
	}
	if runs == 0 {
		t.Errorf("no block of the README is marked to run")
	}
}

func TestTheREADMEsShellBlocksRunAsWritten(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the server and runs the README's commands (-short)")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	copyDir := copyRepository(t, root)
	redis := testredis.Start(t)
	httpAddr := "127.0.0.1:" + strconv.Itoa(testredis.FreePort(t))
	localize := strings.NewReplacer("127.0.0.1:6379", redis.Addr, "127.0.0.1:8080", httpAddr)

	var order []string
	groups := map[string][]block{}
	for _, b := range readmeBlocks(t, string(readme)) {
		if b.group == "" {
			continue
		}
		if _, ok := groups[b.group]; !ok {
			order = append(order, b.group)
		}
		groups[b.group] = append(groups[b.group], b)
	}
	env := environment(t)
	for _, g := range order {
		var script strings.Builder
		script.WriteString("set -euo pipefail\n")
		var expects []string
		for _, b := range groups[g] {
			fmt.Fprintf(&script, "# README.md:%d\n%s\n", b.line, localize.Replace(b.text))
			for _, c := range b.checks {
				fmt.Fprintf(&script, "# check of README.md:%d\n%s\n", b.line, localize.Replace(c))
			}
			for _, e := range b.expects {
				expects = append(expects, localize.Replace(e))
			}
		}
		t.Run(g, func(t *testing.T) {
			out, err := runGroup(t, copyDir, env, script.String())
			if err != nil {
				t.Fatalf("the README's %q blocks failed: %v\nscript:\n%s\noutput:\n%s", g, err, script.String(), out)
			}
			for _, e := range expects {
				if !strings.Contains(out, e) {
					t.Errorf("the README's %q blocks' output lacks %q\noutput:\n%s", g, e, out)
				}
			}
		})
	}
}

// copyRepository copies the files git knows of, and those it would add
// (not ignored), into a temp dir: the tree a fresh clone has, with this
// checkout's changes.
func copyRepository(t *testing.T, root string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "mcp-redis")
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	list, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(list), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		info, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the checkout, not yet in git
		}
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// environment is the test's own, without MCP_REDIS_* settings (a reader's
// shell has none) and with go install writing into a temp dir.
func environment(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MCP_REDIS_") && !strings.HasPrefix(kv, "GOBIN=") {
			env = append(env, kv)
		}
	}
	return append(env, "GOBIN="+t.TempDir())
}

// runGroup runs script with bash in dir, in a process group of its own,
// within a bound; it returns what the script wrote. What it left in the
// background is stopped when it ends.
func runGroup(t *testing.T, dir string, env []string, script string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = nil // /dev/null
	// The output goes to a file, not a pipe: a server the script left in
	// the background holds the file open, and must not keep Wait waiting.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		waitGroupGone(cmd.Process.Pid)
	}
	if _, err := out.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	_, _ = io.Copy(&b, bufio.NewReader(out))
	if ctx.Err() != nil {
		runErr = fmt.Errorf("still running after 5m: %w", runErr)
	}
	return b.String(), runErr
}

// waitGroupGone waits, briefly, until no process of the group pgid is
// left, then kills what is.
func waitGroupGone(pgid int) {
	for range 50 {
		if syscall.Kill(-pgid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

//go:build unix

package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// nonblocking reports whether f's open file description is in
// non-blocking mode, without changing it (f.Fd would).
func nonblocking(t *testing.T, f *os.File) bool {
	t.Helper()
	sc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := sc.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		flags = int(r)
		if errno != 0 {
			ferr = errno
		}
	}); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	return flags&syscall.O_NONBLOCK != 0
}

// The server serves stdin and stdout through the Go poller when they are
// pipes (non-blocking mode), and puts them back in blocking mode when it
// exits: a host that keeps its own copy of either end finds it as it was.
func TestStdioPipesAreBlockingAgainWhenTheServerExits(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer inR.Close()
	defer outR.Close()
	cmd := exec.Command(bin, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)
	cmd.Stdin, cmd.Stdout = inR, outW // the test keeps its copies of the server's ends
	cmd.Env = append(os.Environ(), "MCP_REDIS_AUDIT_TOOL_CALLS=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := inW.WriteString(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}` + "\n"); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewReader(outR)
	_ = outR.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := lines.ReadString('\n')
	if err != nil || !strings.Contains(line, `"serverInfo"`) {
		t.Fatalf("initialize: %q %v", line, err)
	}
	if !nonblocking(t, inR) || !nonblocking(t, outW) {
		t.Errorf("while serving, stdin non-blocking %v, stdout %v; want both (served by the poller)", nonblocking(t, inR), nonblocking(t, outW))
	}
	inW.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the server exited with %v", err)
	}
	if nonblocking(t, inR) || nonblocking(t, outW) {
		t.Errorf("after the server exited, stdin non-blocking %v, stdout %v; want both blocking again", nonblocking(t, inR), nonblocking(t, outW))
	}
	outW.Close()
}

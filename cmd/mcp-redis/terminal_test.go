//go:build linux

package main_test

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// openPTY opens a pseudo-terminal pair: the controlling side and the
// terminal a process is given.
func openPTY(t *testing.T) (ctl, tty *os.File) {
	t.Helper()
	ctl, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(ctl.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return ctl, tty
}

// serve started by hand in a terminal says what it expects; started by a
// host over a pipe it says nothing of the kind.
func TestServeInATerminalSaysWhatItExpects(t *testing.T) {
	needsFull(t, "starts the binary")
	_, prefix := testredis.Shared(t)
	ctl, tty := openPTY(t)
	defer ctl.Close()
	var stderr bytes.Buffer
	cmd := exec.Command(bin, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, &stderr
	cmd.Env = append(os.Environ(), "MCP_REDIS_AUDIT_TOOL_CALLS=false")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	// The hint comes before serving; a ping typed at the terminal is
	// answered on it.
	if _, err := ctl.WriteString(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n"); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	go func() {
		var out []byte
		buf := make([]byte, 4096)
		for !bytes.Contains(out, []byte(`"result":{}`)) {
			n, err := ctl.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
		}
		got <- string(out)
	}()
	select {
	case out := <-got:
		if !strings.Contains(out, `{"jsonrpc":"2.0","id":1,"result":{}}`) {
			t.Errorf("the ping typed at the terminal got %q", out)
		}
	case <-time.After(20 * time.Second):
		t.Error("no answer to a ping typed at the terminal")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if log := stderr.String(); !strings.Contains(log, "stdin is a terminal") || !strings.Contains(log, "--transport http") {
		t.Errorf("stderr does not say what serve expects:\n%s", log)
	}

	// Over a pipe: no hint.
	p := startRawStdio(t, 8, []string{"MCP_REDIS_AUDIT_TOOL_CALLS=false"}, "serve", "--redis-url", testredis.URL(), "--prefix", prefix)
	if _, err := p.stdin.Write([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.lines:
	case <-time.After(20 * time.Second):
		t.Fatal("no answer over the pipe")
	}
	if strings.Contains(p.stderr.String(), "stdin is a terminal") {
		t.Errorf("the hint was said over a pipe:\n%s", p.stderr.String())
	}
}

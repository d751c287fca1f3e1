//go:build unix

package main

import (
	"os"
	"runtime"
	"syscall"
)

// pollable returns f, the process's stdin or stdout, as a file the Go
// runtime's network poller serves, when it is a pipe or a socket (what a
// host that spawns the server hands it), and a func that puts it back as
// it was. A blocking pipe is read and written in blocking system calls,
// each of which ties up a thread; a read that waits for the host's next
// request then has the runtime hand the thread's work to another one,
// which cost a call over stdio a few context switches. A terminal or a
// file is returned as it is: another process may share its mode.
func pollable(f *os.File) (*os.File, func()) {
	sc, err := f.SyscallConn()
	if err != nil {
		return f, func() {}
	}
	var fd int
	var st syscall.Stat_t
	var statErr error
	_ = sc.Control(func(u uintptr) {
		fd = int(u)
		statErr = syscall.Fstat(fd, &st)
	})
	if statErr != nil || st.Mode&syscall.S_IFMT != syscall.S_IFIFO && st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return f, func() {}
	}
	if syscall.SetNonblock(fd, true) != nil {
		return f, func() {}
	}
	// NewFile sees the descriptor non-blocking and registers it with the
	// poller. p is never closed (f owns the descriptor); the restore func
	// keeps p alive until it has run, as p's finalizer would close it.
	p := os.NewFile(uintptr(fd), f.Name())
	return p, func() {
		_ = syscall.SetNonblock(fd, false)
		runtime.KeepAlive(p)
	}
}

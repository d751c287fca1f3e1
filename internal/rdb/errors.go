package rdb

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
)

// Wrap names the operation that failed and classifies err: Redis that did
// not answer (refused, timed out, closed, loading, failing over) is
// fault.Unavailable, so the caller is told to retry; anything else is
// internal. A nil err stays nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if Unreachable(err) {
		return &fault.Error{Code: fault.Unavailable, Message: "redis is unavailable (" + op + ")", Err: err}
	}
	if errors.Is(err, context.Canceled) {
		return &fault.Error{Code: fault.Unavailable, Message: "call cancelled (" + op + ")", Err: err}
	}
	return &fault.Error{Code: fault.Internal, Message: op, Err: err}
}

// Unreachable reports whether err means Redis could not be reached or did
// not answer in time.
func Unreachable(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrPoolTimeout),
		errors.Is(err, redis.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, p := range []string{"LOADING", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY ", "READONLY"} {
			if strings.HasPrefix(msg, p) {
				return true
			}
		}
	}
	return false
}

package rdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
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
// fault.Unavailable, so the caller is told to retry; so is a failed TLS
// handshake, with its cause named (see TLSProblem). Anything else is
// internal. A nil err stays nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	// Its own sentence, made here, never err's text: that names addresses.
	if why := TLSProblem(err); why != "" {
		return &fault.Error{Code: fault.Unavailable, Message: "redis TLS handshake failed: " + why + " (" + op + ")", Err: err,
			Hint: "Nothing was written. A retry fails the same way until the server's Redis TLS settings or certificates are fixed; tell its operator."}
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

// TLSProblem says why a TLS handshake with Redis failed, in a sentence
// that names the setting to change and no address, or "" when err is not
// a TLS failure.
func TLSProblem(err error) string {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		op       *net.OpError
	)
	switch {
	case errors.As(err, &unknown):
		return "the server's certificate is signed by an unknown authority; set redis.tls.ca_file to the CA that signed it"
	case errors.As(err, &hostname):
		return "the server's certificate does not carry the name connected to; set redis.tls.server_name to a name it carries"
	case errors.As(err, &invalid):
		if invalid.Reason == x509.Expired {
			return "the server's certificate has expired or is not yet valid"
		}
		return "the server's certificate is not valid for a TLS server"
	case errors.As(err, &verify):
		return "the server's certificate did not verify"
	case errors.As(err, &header):
		return "the server did not answer in TLS; is the port a plain one (use redis://)?"
	case errors.As(err, &op) && op.Op == "remote error":
		// The server's alert: crypto/tls keeps its type unexported, so
		// its text ("tls: certificate required") is what there is.
		switch alert := strings.TrimPrefix(op.Err.Error(), "tls: "); alert {
		case "certificate required":
			return "the server requires a client certificate (tls-auth-clients); set redis.tls.cert_file and redis.tls.key_file"
		case "bad certificate", "unknown certificate authority", "unknown certificate", "certificate unknown":
			return "the server refused the client certificate (" + alert + "); it must be signed by a CA in the server's tls-ca-cert-file"
		case "protocol version not supported":
			return "the server accepts no TLS version this client offers (redis.tls.min_version)"
		case "handshake failure":
			return "the server refused the handshake (no common TLS version or cipher, or a client certificate is required)"
		default:
			return "the server sent TLS alert \"" + alert + "\""
		}
	}
	if msg := err.Error(); strings.Contains(msg, "tls: ") && strings.Contains(msg, "protocol version") {
		return "no TLS version both sides accept (redis.tls.min_version)"
	}
	return ""
}

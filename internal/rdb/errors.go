package rdb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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
	var nd *NotDurable
	if errors.As(err, &nd) {
		msg := fmt.Sprintf("durability not confirmed: Redis applied the write on its master, but only %d of the %d replicas redis.wait_replicas asks for acknowledged it within %v, so a failover may lose it (%s)",
			nd.Got, nd.Want, nd.Timeout, op)
		if nd.Err != nil {
			msg = fmt.Sprintf("durability not confirmed: Redis applied the write on its master, but WAIT for %d replicas failed, so a failover may lose it (%s)", nd.Want, op)
		}
		return &fault.Error{Code: fault.Unavailable, Message: msg, Err: err,
			Hint: "A retry with the same log_id or event_id is safe: the entry is kept at most once, and the retry is answered OK once a replica holds it."}
	}
	if why := Refused(err); why != "" {
		return &fault.Error{Code: fault.Unavailable, Message: "redis refused the server's user: " + why + " (" + op + ")", Err: err,
			Hint: "Nothing was written. A retry fails the same way until the server's Redis user is given the right or its credentials are fixed; tell its operator (the README gives the minimal ACL rule)."}
	}
	if movedOrAsk(err) {
		return &fault.Error{Code: fault.Unavailable, Message: "the cluster moved the key's slot (" + op + ")", Err: err,
			Hint: "Nothing was written; retry."}
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

// Refused says in a sentence why Redis refused the server's user (NOPERM,
// NOAUTH, WRONGPASS), or "" when err is no such refusal. The sentence
// quotes no Redis error code for credentials: tool errors carry none. A script's own
// refusal (see ScriptPrelude) names the command and the key or channel.
func Refused(err error) string {
	var re redis.Error
	if !errors.As(err, &re) {
		return ""
	}
	msg := re.Error()
	switch {
	case strings.HasPrefix(msg, "NOPERM "):
		if i := strings.Index(msg, "mcp-redis: "); i >= 0 {
			return msg[i+len("mcp-redis: "):]
		}
		return "it lacks a right a command needs (NOPERM: " + strings.TrimPrefix(msg, "NOPERM ") + ")"
	case strings.HasPrefix(msg, "NOAUTH"):
		return "Redis asks for credentials and redis.url gives none"
	case strings.HasPrefix(msg, "WRONGPASS"):
		return "Redis does not accept the credentials in redis.url (a wrong user or secret, or a disabled user)"
	}
	return ""
}

// WrapNotDurable is Wrap, with hint as the advice when err is a
// *NotDurable: what a caller of this write should do instead of the
// stream writes' retry with the same id.
func WrapNotDurable(op string, err error, hint string) error {
	w := Wrap(op, err)
	var nd *NotDurable
	if fe, ok := fault.As(w); ok && errors.As(err, &nd) {
		fe.Hint = hint
	}
	return w
}

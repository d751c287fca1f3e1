// Package httpsec guards the HTTP listener: DNS-rebinding and Origin
// checks, a body limit with read and write deadlines, bearer-token
// authentication (each a plain http middleware), and a bound on open
// connections.
package httpsec

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mcp-redis/mcp-redis/internal/clip"
)

// LoopbackHost rejects (403) a request whose Host is not a loopback name:
// on a server bound to loopback, a foreign Host means a page elsewhere
// reached it through DNS rebinding, as the MCP specification warns.
func LoopbackHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.Host) {
			http.Error(w, "forbidden: Host "+strconv.Quote(clip.String(r.Host, 100))+" is not a loopback name (DNS rebinding protection)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Origins rejects (403) a request whose Origin header is not in allowed.
// Requests without Origin (non-browser clients) pass. With loopback set
// (the server listens on loopback only), an Origin on a loopback name
// (http://localhost:3000, http://127.0.0.1:8080) passes too: a page on this
// machine is as trusted as the machine; a rebound foreign name is not.
func Origins(allowed []string, loopback bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && !slices.Contains(allowed, o) && !(loopback && loopbackOrigin(o)) {
			http.Error(w, "forbidden: Origin "+strconv.Quote(clip.String(o, 100))+" is not allowed (http.allowed_origins)", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func loopbackOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return isLoopbackHost(u.Host)
}

// Limits bounds a request: a body over maxBytes is refused with 413 —
// at once when Content-Length says so, without reading it. The time to
// read the request, body included, is bounded from its first byte by the
// http.Server's ReadTimeout, on every path; once the body is in, that
// deadline is lifted, so a call that runs long (a lock wait) is not cut
// off by it. The answer to a POST must be written within writeTimeout.
func Limits(maxBytes int64, writeTimeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBytes {
			tooLarge(w, r, maxBytes)
			return
		}
		rc := http.NewResponseController(w)
		if r.Method == http.MethodPost {
			_ = rc.SetWriteDeadline(time.Now().Add(writeTimeout))
		}
		if r.Body != nil && r.Body != http.NoBody {
			// Read the body here, bounded, so a chunked upload over the
			// limit is also a 413 rather than a parse error downstream.
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBytes))
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				tooLarge(w, r, maxBytes)
				return
			case isTimeout(err):
				w.Header().Set("Connection", "close")
				http.Error(w, "could not read the request body in time (http.read_timeout)", http.StatusRequestTimeout)
				return
			case err != nil:
				// Malformed chunked encoding, or the client went away.
				http.Error(w, "could not read the request body", http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		_ = rc.SetReadDeadline(time.Time{})
		next.ServeHTTP(w, r)
	})
}

// Stream lifts the read deadline of a GET that opens a long-lived stream
// (GET /sse): the server's ReadTimeout would otherwise end it. Use it after
// authentication, so only a known caller holds a stream. Other methods
// keep the deadline, so a body that never comes is still cut off.
func Stream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func tooLarge(w http.ResponseWriter, _ *http.Request, maxBytes int64) {
	w.Header().Set("Connection", "close")
	http.Error(w, "request body over "+strconv.FormatInt(maxBytes, 10)+" bytes (http.max_body_bytes)", http.StatusRequestEntityTooLarge)
}

// Tokens authenticates requests with named bearer tokens (name → token),
// compared in constant time. Only the Authorization header counts: a
// token in the query string is ignored. Tokens never reach a log line.
type Tokens struct {
	known      []tokenEntry
	scopes     map[string][]string
	namespaces map[string]string
}

type tokenEntry struct {
	name string
	sum  [32]byte
}

// identity is the Identity of the token named name: its scopes, or all.
func (t *Tokens) identity(name string) Identity {
	if sc, ok := t.scopes[name]; ok {
		return Identity{Name: name, Scopes: sc, Namespace: t.namespaces[name]}
	}
	return Identity{Name: name, All: true, Namespace: t.namespaces[name]}
}

// WithNamespaces puts the named tokens in tenant namespaces (name →
// namespace); a token not named works in the server's own.
func (t *Tokens) WithNamespaces(namespaces map[string]string) *Tokens {
	t.namespaces = namespaces
	return t
}

// WithScopes gives the named tokens scopes (name → scope names); a token
// not named keeps every scope.
func (t *Tokens) WithScopes(scopes map[string][]string) *Tokens {
	t.scopes = scopes
	return t
}

// NewTokens prepares tokens for Check.
func NewTokens(tokens map[string]string) *Tokens {
	// Comparing fixed-length digests keeps the time independent of the
	// tokens' lengths and of where they differ.
	t := &Tokens{}
	for name, tok := range tokens {
		t.known = append(t.known, tokenEntry{name, sha256.Sum256([]byte(tok))})
	}
	// In name order, so that a token given two names is always taken for
	// the first: the audit must not depend on map order.
	slices.SortFunc(t.known, func(a, b tokenEntry) int { return strings.Compare(a.name, b.name) })
	return t
}

// Check returns the name of the token r carries; present reports whether
// r carries a bearer token at all.
func (t *Tokens) Check(r *http.Request) (name string, present bool) {
	given, ok := bearerToken(r)
	if !ok {
		return "", false
	}
	sum := sha256.Sum256([]byte(given))
	for _, e := range t.known {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 && name == "" {
			name = e.name
		}
	}
	return name, true
}

// Identity is who a request's credential names and what it grants.
type Identity struct {
	// Name is the caller: a static token's name, or an access token's
	// subject. It is what the tools stamp on what the caller writes.
	Name string
	// Scopes are the scopes the credential grants (internal/mcpkit's
	// scope names); nil with All.
	Scopes []string
	// All: the credential grants every scope (a static token given no
	// scopes, as every token did before scopes).
	All bool
	// Namespace is the tenant namespace the credential works in; "" for
	// the server's own.
	Namespace string
}

// identityKey is the context key of the authenticated Identity.
type identityKey struct{}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// IdentityFrom is the Identity a request was authenticated as; ok is false
// when it was not (no tokens configured).
func IdentityFrom(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// TokenName is the name of the credential the request was authenticated
// with, or "".
func TokenName(ctx context.Context) string {
	id, _ := IdentityFrom(ctx)
	return id.Name
}

// Bearer authenticates with a named token from tokens; the name goes into
// the request's context (TokenName). A missing or wrong token is a 401
// with WWW-Authenticate.
func Bearer(tokens *Tokens, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, present := tokens.Check(r)
		if !present {
			unauthorized(w, `Bearer realm="mcp-redis"`, "missing bearer token")
			return
		}
		if name == "" {
			log.Warn("http: rejected a wrong bearer token", "remote", r.RemoteAddr, "path", r.URL.Path)
			unauthorized(w, `Bearer realm="mcp-redis", error="invalid_token"`, "invalid bearer token")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), tokens.identity(name))))
	})
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func unauthorized(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, "unauthorized: "+msg, http.StatusUnauthorized)
}

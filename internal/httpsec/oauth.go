package httpsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// OAuthConfig is what OAuth verifies access tokens against (internal/config
// checks it; README, Security, OAuth 2.1).
type OAuthConfig struct {
	// Issuer is the iss a token must carry; Resource this server's
	// canonical URI, which its aud must contain (RFC 8707).
	Issuer, Resource string
	// AuthorizationServers are named in the metadata (RFC 9728).
	AuthorizationServers []string
	// JWKSURL or JWKSFile holds the signing keys. The URL is fetched at
	// start, every RefreshInterval, and on a kid it lacks at most once per
	// RefreshInterval.
	JWKSURL, JWKSFile string
	RefreshInterval   time.Duration
	// Algorithms are the accepted alg values.
	Algorithms []string
	// ClockSkew is the leeway on exp, nbf and iat.
	ClockSkew time.Duration
	// Scopes maps an OAuth scope to the server's scopes it grants.
	Scopes map[string][]string
	// ServerScopes are the server's scopes in their canonical order.
	ServerScopes []string
	// NameClaim names the caller: Identity.Name is "oauth:" + its value.
	NameClaim string
	// ResourceName is the metadata's resource_name.
	ResourceName string
}

// OAuthCallerPrefix begins the name of every caller authenticated by an
// access token. A static token's name cannot hold ":", so the two never
// meet: no subject can pass for a token, nor own its sessions.
const OAuthCallerPrefix = "oauth:"

// maxSubject bounds the name claim's value: it is stamped on every entry
// the caller writes.
const maxSubject = 200

// OAuth verifies JWT access tokens (RFC 9068 profile, signature by the
// issuer's JWKS) and serves the Protected Resource Metadata (RFC 9728).
// A token never reaches a log line or an error.
type OAuth struct {
	cfg    OAuthConfig
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
	// supported are the OAuth scopes the metadata lists, sorted.
	supported []string
	metaURL   string
	log       *slog.Logger
}

// NewOAuth prepares the verifier; with a JWKS URL it fetches the keys (a
// failed first fetch is logged, not fatal: the authorization server may
// come up later) and refreshes them until ctx ends.
func NewOAuth(ctx context.Context, cfg OAuthConfig, log *slog.Logger) (*OAuth, error) {
	o := &OAuth{cfg: cfg, log: log}
	var err error
	switch {
	case cfg.JWKSFile != "":
		var b []byte
		if b, err = os.ReadFile(cfg.JWKSFile); err != nil {
			return nil, fmt.Errorf("read jwks file: %w", err)
		}
		o.keys, err = keyfunc.NewJWKSetJSON(b)
	default:
		interval := cfg.RefreshInterval
		if interval <= 0 {
			interval = 5 * time.Minute
		}
		o.keys, err = keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
			Client:      &http.Client{Timeout: 10 * time.Second},
			HTTPTimeout: 10 * time.Second,
			// One refetch at once on an unknown kid (a rotated key), then
			// at most one per interval. A caller past that is refused at
			// once: the wait is shorter than the next refetch, so the
			// limiter does not make it wait (and bounds the refetch).
			RefreshUnknownKID: rate.NewLimiter(rate.Every(interval), 1),
			RateLimitWaitMax:  10 * time.Second,
			RefreshInterval:   interval,
			RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
				return func(_ context.Context, err error) {
					log.Warn("oauth: could not fetch the JWKS", "url", u, "err", err)
				}
			},
		})
	}
	if err != nil {
		return nil, fmt.Errorf("oauth keys: %w", err)
	}
	o.parser = jwt.NewParser(
		jwt.WithValidMethods(cfg.Algorithms),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Resource),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	)
	for s := range cfg.Scopes {
		o.supported = append(o.supported, s)
	}
	slices.Sort(o.supported)
	o.metaURL = MetadataURL(cfg.Resource)
	return o, nil
}

// MetadataURL is where RFC 9728 §3.1 puts the metadata of resource: the
// well-known path inserted between its host and its path.
func MetadataURL(resource string) string {
	u, err := url.Parse(resource)
	if err != nil {
		return ""
	}
	u.Path = WellKnownPath + strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	return u.String()
}

// WellKnownPath is the path of the Protected Resource Metadata (RFC 9728).
const WellKnownPath = "/.well-known/oauth-protected-resource"

// MetadataPaths are the paths the metadata is served at: the one
// MetadataURL names, and the root one clients fall back to.
func (o *OAuth) MetadataPaths() []string {
	u, _ := url.Parse(o.metaURL)
	if u == nil || u.Path == WellKnownPath {
		return []string{WellKnownPath}
	}
	return []string{u.Path, WellKnownPath}
}

// MetadataURL is the absolute URL the challenges point to.
func (o *OAuth) MetadataURL() string { return o.metaURL }

// ServeMetadata answers with the Protected Resource Metadata document.
func (o *OAuth) ServeMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	doc := struct {
		Resource               string   `json:"resource"`
		AuthorizationServers   []string `json:"authorization_servers"`
		ScopesSupported        []string `json:"scopes_supported"`
		BearerMethodsSupported []string `json:"bearer_methods_supported"`
		ResourceName           string   `json:"resource_name,omitempty"`
	}{o.cfg.Resource, o.cfg.AuthorizationServers, o.supported, []string{"header"}, o.cfg.ResourceName}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	// Public, and read by browser-based clients on other origins.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_ = json.NewEncoder(w).Encode(doc)
}

// TokenError is why an access token was refused, in words safe to send
// back (error_description) and to log: never the token.
type TokenError struct{ Description string }

func (e *TokenError) Error() string { return "invalid access token: " + e.Description }

// Verify checks an access token and returns whom it names and the server's
// scopes it grants, with the token's own OAuth scopes (those the mapping
// knows) for a scope challenge.
func (o *OAuth) Verify(ctx context.Context, raw string) (Identity, []string, error) {
	claims := jwt.MapClaims{}
	_, err := o.parser.ParseWithClaims(raw, claims, o.keys.KeyfuncCtx(ctx))
	if err != nil {
		return Identity{}, nil, &TokenError{Description: describe(err, o.cfg)}
	}
	sub, _ := claims[o.cfg.NameClaim].(string)
	if sub == "" || len(sub) > maxSubject || strings.ContainsFunc(sub, unicode.IsControl) {
		return Identity{}, nil, &TokenError{Description: fmt.Sprintf("the %s claim must be a string of 1 to %d bytes without control characters: it names the caller", o.cfg.NameClaim, maxSubject)}
	}
	granted := tokenScopes(claims)
	var oauthScopes []string
	set := map[string]bool{}
	for _, s := range granted {
		names, ok := o.cfg.Scopes[s]
		if !ok {
			continue
		}
		oauthScopes = append(oauthScopes, s)
		for _, n := range names {
			set[n] = true
		}
	}
	var scopes []string
	for _, s := range o.cfg.ServerScopes {
		if set[s] {
			scopes = append(scopes, s)
		}
	}
	slices.Sort(oauthScopes)
	return Identity{Name: OAuthCallerPrefix + sub, Scopes: scopes}, slices.Compact(oauthScopes), nil
}

// tokenScopes reads scope (RFC 9068: space-separated) or, failing it, scp
// (an array, as some servers issue).
func tokenScopes(c jwt.MapClaims) []string {
	if s, ok := c["scope"].(string); ok {
		return strings.Fields(s)
	}
	switch v := c["scp"].(type) {
	case string:
		return strings.Fields(v)
	case []any:
		var out []string
		for _, e := range v {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// describe turns a jwt error into an error_description: plain words, no
// quotes or backslashes (they would end the quoted-string), no token.
func describe(err error, cfg OAuthConfig) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "the access token is not a well-formed JWT"
	case errors.Is(err, keyfunc.ErrKeyfunc) || errors.Is(err, jwt.ErrTokenUnverifiable):
		return "the access token is signed with no key the authorization server publishes (unknown kid)"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if strings.Contains(err.Error(), "signing method") {
			return "the access token's alg is not accepted; accepted: " + strings.Join(cfg.Algorithms, " ")
		}
		return "the access token's signature is invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "the access token has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "the access token is not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "the access token is issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "the access token is not issued by " + cfg.Issuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "the access token is not meant for this resource: its aud must contain " + cfg.Resource
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the access token lacks a required claim (exp, iss or aud)"
	}
	return "the access token is invalid"
}

// GrantingScope is the OAuth scope that grants the server's scope name
// (ok false when none does); an OAuth scope that grants name directly is
// preferred to one granting admin.
func (o *OAuth) GrantingScope(name string) (string, bool) {
	var viaAdmin string
	for _, s := range o.supported {
		names := o.cfg.Scopes[s]
		if slices.Contains(names, name) {
			return s, true
		}
		if viaAdmin == "" && slices.Contains(names, "admin") {
			viaAdmin = s
		}
	}
	return viaAdmin, viaAdmin != ""
}

// challenge is the WWW-Authenticate value of a refusal: errCode ""
// (no token), invalid_token or insufficient_scope; scopes for the scope
// parameter (RFC 6750 §3).
func (o *OAuth) challenge(errCode, desc string, scopes []string) string {
	var b strings.Builder
	b.WriteString("Bearer ")
	if errCode != "" {
		fmt.Fprintf(&b, `error=%q, `, errCode)
		if desc != "" {
			fmt.Fprintf(&b, `error_description="%s", `, quotable(desc))
		}
	}
	if len(scopes) > 0 {
		fmt.Fprintf(&b, `scope="%s", `, quotable(strings.Join(scopes, " ")))
	}
	fmt.Fprintf(&b, `resource_metadata="%s"`, quotable(o.metaURL))
	return b.String()
}

// quotable drops what may not stand in a quoted-string as written.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '"' || r == '\\' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// oauthKey is the context key of the OAuth scopes an access token granted.
type oauthKey struct{}

// OAuthScopesFrom returns the OAuth scopes (known to the mapping) of the
// access token the request was authenticated with; ok is false when it
// was not authenticated by an access token.
func OAuthScopesFrom(ctx context.Context) (scopes []string, ok bool) {
	scopes, ok = ctx.Value(oauthKey{}).([]string)
	return scopes, ok
}

// Authenticate is Bearer with access tokens too: a static token is tried
// first, then the access token verifier. Without a token, or with one
// that is neither, it answers 401 with a challenge naming the metadata;
// a valid access token granting none of the server's scopes is a 403
// insufficient_scope.
func Authenticate(tokens *Tokens, o *OAuth, log *slog.Logger, next http.Handler) http.Handler {
	if o == nil {
		return Bearer(tokens, log, next)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, present := bearerToken(r)
		if !present {
			unauthorized(w, o.challenge("", "", o.supported), "missing bearer token")
			return
		}
		if name, _ := tokens.Check(r); name != "" {
			next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), tokens.identity(name))))
			return
		}
		id, granted, err := o.Verify(r.Context(), raw)
		if err != nil {
			var te *TokenError
			desc := "the access token is invalid"
			if errors.As(err, &te) {
				desc = te.Description
			}
			log.Warn("http: rejected a bearer token", "remote", r.RemoteAddr, "path", r.URL.Path, "why", desc)
			unauthorized(w, o.challenge("invalid_token", desc, nil), "invalid bearer token: "+desc)
			return
		}
		if len(id.Scopes) == 0 {
			Forbidden(w, o.challenge("insufficient_scope", "the access token grants none of this server's scopes", o.supported),
				"the access token grants none of this server's scopes; ask for one of: "+strings.Join(o.supported, " "))
			return
		}
		ctx := context.WithValue(WithIdentity(r.Context(), id), oauthKey{}, granted)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// InsufficientScope answers 403 for a call that needs the server's scope
// name, which the request's access token does not grant: the challenge
// names the OAuth scope that would, with those the token has (so a client
// stepping up loses none).
func (o *OAuth) InsufficientScope(w http.ResponseWriter, r *http.Request, what, name string) {
	had, _ := OAuthScopesFrom(r.Context())
	want := slices.Clone(had)
	need, ok := o.GrantingScope(name)
	if ok && !slices.Contains(want, need) {
		want = append(want, need)
	}
	desc := what + " needs the scope " + name
	if ok {
		desc += ", granted by the OAuth scope " + need
	}
	Forbidden(w, o.challenge("insufficient_scope", desc, want), "insufficient scope: "+desc)
}

// Forbidden answers 403 with challenge as WWW-Authenticate.
func Forbidden(w http.ResponseWriter, challenge, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	http.Error(w, "forbidden: "+msg, http.StatusForbidden)
}

// Authenticated reports whether r carries a valid static or access token
// (for answers that say more to a known caller, as /readyz does).
func Authenticated(r *http.Request, tokens *Tokens, o *OAuth) bool {
	if name, _ := tokens.Check(r); name != "" {
		return true
	}
	if o == nil {
		return false
	}
	raw, ok := bearerToken(r)
	if !ok {
		return false
	}
	_, _, err := o.Verify(r.Context(), raw)
	return err == nil
}

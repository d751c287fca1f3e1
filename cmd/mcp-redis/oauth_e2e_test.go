package main_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// The listener as an OAuth 2.1 resource server: access tokens signed by
// keys a JWKS server on loopback publishes, checked for signature, time,
// issuer, audience and scope, every refusal a 401 or 403 whose
// WWW-Authenticate points to the Protected Resource Metadata.

const oauthIssuer = "https://auth.mcp-redis.test"

// signingKey is a key the test's authorization server signs with.
type signingKey struct {
	kid    string
	method jwt.SigningMethod
	priv   crypto.Signer
}

func newRSAKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, jwt.SigningMethodRS256, k}
}

func newECKey(t *testing.T, kid string) signingKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return signingKey{kid, jwt.SigningMethodES256, k}
}

// jwk is the public JWK of k (RFC 7517, 7518).
func (k signingKey) jwk() map[string]string {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		return map[string]string{"kty": "RSA", "kid": k.kid, "use": "sig", "alg": "RS256",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	case *ecdsa.PublicKey:
		// The uncompressed point: 0x04, then X and Y, 32 bytes each.
		raw, err := pub.Bytes()
		if err != nil {
			panic(err)
		}
		x, y := raw[1:33], raw[33:65]
		return map[string]string{"kty": "EC", "kid": k.kid, "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(x), "y": b64(y)}
	}
	panic("unknown key type")
}

// jwksServer is the authorization server's JWKS endpoint on loopback;
// set changes the keys it publishes, fetches counts the requests.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []signingKey
	fetches int
}

func startJWKS(t *testing.T, keys ...signingKey) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		set := map[string][]map[string]string{"keys": {}}
		for _, k := range s.keys {
			set["keys"] = append(set["keys"], k.jwk())
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(keys ...signingKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = keys
}

// oauthServer is mcp-redis serving HTTP with http.oauth pointing at jwks;
// resource is its canonical URI, metadata the URL of its metadata.
type oauthServer struct {
	*httpProc
	resource, metadata string
}

func startOAuth(t *testing.T, jwks *jwksServer, env []string, args ...string) *oauthServer {
	t.Helper()
	return startOAuthOn(t, "127.0.0.1", jwks, env, args...)
}

// startOAuthOn is startOAuth listening on host.
func startOAuthOn(t *testing.T, host string, jwks *jwksServer, env []string, args ...string) *oauthServer {
	t.Helper()
	port := strconv.Itoa(testredis.FreePort(t))
	resource := "http://127.0.0.1:" + port + "/mcp"
	env = append([]string{
		"MCP_REDIS_HTTP_OAUTH_ISSUER=" + oauthIssuer,
		"MCP_REDIS_HTTP_OAUTH_RESOURCE=" + resource,
		"MCP_REDIS_HTTP_OAUTH_JWKS_URL=" + jwks.URL + "/jwks",
		"MCP_REDIS_HTTP_OAUTH_SCOPES=mcp:read=streams:read,mcp:write=streams:read streams:write",
	}, env...)
	p := startHTTPOn(t, host+":"+port, env, args...)
	return &oauthServer{p, resource, "http://127.0.0.1:" + port + "/.well-known/oauth-protected-resource/mcp"}
}

// token signs claims with k; the test's claims fill what is not given.
// The token joins the secrets the server's log must not hold.
func (s *oauthServer) token(t *testing.T, k signingKey, claims jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	full := jwt.MapClaims{"iss": oauthIssuer, "aud": s.resource, "sub": "alice", "scope": "mcp:write",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for c, v := range claims {
		if v == nil {
			delete(full, c)
			continue
		}
		full[c] = v
	}
	tok := jwt.NewWithClaims(k.method, full)
	tok.Header["kid"] = k.kid
	var key any = k.priv
	if k.method == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	raw, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	s.secrets = append(s.secrets, raw)
	return raw
}

// refused checks an answer is status with a WWW-Authenticate of the
// Bearer scheme holding each of want.
func (s *oauthServer) refused(t *testing.T, what string, status int, call func() (*http.Response, string), want ...string) {
	t.Helper()
	res, body := call()
	if res.StatusCode != status {
		t.Errorf("%s: %d %s, want %d", what, res.StatusCode, body, status)
		return
	}
	h := res.Header.Get("WWW-Authenticate")
	if !strings.HasPrefix(h, "Bearer ") || !strings.Contains(h, `resource_metadata="`+s.metadata+`"`) {
		t.Errorf("%s: WWW-Authenticate %q names no resource_metadata %s", what, h, s.metadata)
	}
	for _, w := range want {
		if !strings.Contains(h, w) {
			t.Errorf("%s: WWW-Authenticate %q lacks %s", what, h, w)
		}
	}
}

func (s *oauthServer) emit(t *testing.T, tok string) (*http.Response, string) {
	t.Helper()
	return s.modernCall(t, "/mcp", "", bearer(tok), "emit_workflow_event", eventArgs)
}

func TestOAuthAccessTokensAreVerifiedAndEveryRefusalPointsToTheMetadata(t *testing.T) {
	needsFull(t, "starts the server and an authorization server's JWKS")
	rdb, prefix := testredis.Shared(t)
	rsaKey, ecKey := newRSAKey(t, "rsa-1"), newECKey(t, "ec-1")
	jwks := startJWKS(t, rsaKey, ecKey)
	static := newToken()
	s := startOAuth(t, jwks, []string{tokensEnv("ci", static)}, "--redis-url", testredis.URL(), "--prefix", prefix)
	ctx := context.Background()

	t.Run("the metadata document says what RFC 9728 asks", func(t *testing.T) {
		for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
			res, body := s.get(t, path, nil)
			if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("%s: %d %s", path, res.StatusCode, body)
			}
			var doc struct {
				Resource               string   `json:"resource"`
				AuthorizationServers   []string `json:"authorization_servers"`
				ScopesSupported        []string `json:"scopes_supported"`
				BearerMethodsSupported []string `json:"bearer_methods_supported"`
				ResourceName           string   `json:"resource_name"`
			}
			if err := json.Unmarshal([]byte(body), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Resource != s.resource || !slices.Equal(doc.AuthorizationServers, []string{oauthIssuer}) ||
				!slices.Equal(doc.ScopesSupported, []string{"mcp:read", "mcp:write"}) ||
				!slices.Equal(doc.BearerMethodsSupported, []string{"header"}) || doc.ResourceName == "" {
				t.Errorf("%s: %s", path, body)
			}
		}
	})

	t.Run("without a token: 401 naming the metadata and the scopes", func(t *testing.T) {
		s.refused(t, "no token", http.StatusUnauthorized, func() (*http.Response, string) {
			return s.modernCall(t, "/mcp", "", nil, "emit_workflow_event", eventArgs)
		}, `scope="mcp:read mcp:write"`)
		res, _ := s.get(t, "/metrics", nil)
		if res.StatusCode != http.StatusUnauthorized {
			t.Errorf("/metrics without a token: %d", res.StatusCode)
		}
	})

	t.Run("a valid RS256 token calls a tool, which stamps oauth:<sub>", func(t *testing.T) {
		res, body := s.emit(t, s.token(t, rsaKey, nil))
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"entry_id"`) {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
		entries := rdb.XRange(ctx, prefix+"workflow_events", "-", "+").Val()
		if len(entries) != 1 || entries[0].Values["caller"] != "oauth:alice" {
			t.Errorf("entries %v, want one by oauth:alice", entries)
		}
	})

	t.Run("a valid ES256 token with scp as an array calls a tool", func(t *testing.T) {
		res, body := s.emit(t, s.token(t, ecKey, jwt.MapClaims{"scope": nil, "scp": []string{"mcp:write"}, "sub": "bob"}))
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"entry_id"`) {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
	})

	t.Run("a static token still works beside OAuth", func(t *testing.T) {
		res, body := s.emit(t, static)
		if res.StatusCode != http.StatusOK || !strings.Contains(body, `"entry_id"`) {
			t.Fatalf("%d %s", res.StatusCode, body)
		}
	})

	now := time.Now()
	other := newRSAKey(t, "rsa-1") // the same kid, another key
	hsKey := signingKey{"rsa-1", jwt.SigningMethodHS256, nil}
	for _, c := range []struct {
		name, want string
		token      func() string
	}{
		{"an expired token", "expired", func() string {
			return s.token(t, rsaKey, jwt.MapClaims{"iat": now.Add(-time.Hour).Unix(), "exp": now.Add(-10 * time.Minute).Unix()})
		}},
		{"a token not yet valid (nbf)", "not valid yet", func() string {
			return s.token(t, rsaKey, jwt.MapClaims{"nbf": now.Add(10 * time.Minute).Unix()})
		}},
		{"a token without exp", "lacks a required claim", func() string { return s.token(t, rsaKey, jwt.MapClaims{"exp": nil}) }},
		{"a token for another resource", "not meant for this resource", func() string {
			return s.token(t, rsaKey, jwt.MapClaims{"aud": "https://other.example/mcp"})
		}},
		{"a token of another issuer", "not issued by", func() string {
			return s.token(t, rsaKey, jwt.MapClaims{"iss": "https://evil.example"})
		}},
		{"a token with a bad signature", "signature is invalid", func() string { return s.token(t, other, nil) }},
		{"a token with alg none", "alg is not accepted", func() string {
			return s.token(t, signingKey{"rsa-1", jwt.SigningMethodNone, nil}, nil)
		}},
		{"a token with alg HS256", "alg is not accepted", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": oauthIssuer, "aud": s.resource, "sub": "alice",
				"scope": "mcp:write", "exp": now.Add(time.Minute).Unix()})
			tok.Header["kid"] = hsKey.kid
			raw, err := tok.SignedString([]byte("the-rsa-public-key-as-an-hmac-secret"))
			if err != nil {
				t.Fatal(err)
			}
			s.secrets = append(s.secrets, raw)
			return raw
		}},
		{"a token that is no JWT", "not a well-formed JWT", func() string { return "not-a-jwt-but-long-enough-1234567890" }},
		// Last: it spends the one refetch an unknown kid may cause.
		{"a token signed with an unknown kid", "unknown kid", func() string { return s.token(t, newRSAKey(t, "rsa-9"), nil) }},
	} {
		t.Run(c.name+" is a 401 invalid_token", func(t *testing.T) {
			before := rdb.XLen(ctx, prefix+"workflow_events").Val()
			tok := c.token()
			s.refused(t, c.name, http.StatusUnauthorized, func() (*http.Response, string) { return s.emit(t, tok) },
				`error="invalid_token"`, c.want)
			if n := rdb.XLen(ctx, prefix+"workflow_events").Val(); n != before {
				t.Errorf("written although refused: %d entries, %d before", n, before)
			}
		})
	}

	t.Run("a tool whose scope the token lacks is a 403 naming it", func(t *testing.T) {
		tok := s.token(t, rsaKey, jwt.MapClaims{"scope": "mcp:read"})
		s.refused(t, "mcp:read calling emit_workflow_event", http.StatusForbidden, func() (*http.Response, string) { return s.emit(t, tok) },
			`error="insufficient_scope"`, `scope="mcp:read mcp:write"`, "streams:write")
		// The denial is in the audit trail, with the token's subject.
		var found bool
		for _, d := range denials(t, rdb, prefix) {
			caller, _ := d["caller"].(string)
			if d["procedure"] == "emit_workflow_event" && strings.HasPrefix(caller, "oauth:") && strings.Contains(d["error"].(string), "streams:write") {
				found = true
			}
		}
		if !found {
			t.Errorf("no call record of the denial: %v", denials(t, rdb, prefix))
		}
		// What the token does grant still works.
		res, body := s.modernCall(t, "/mcp", "", bearer(tok), "read_stream", `{"stream":"workflow_events"}`)
		if res.StatusCode != http.StatusOK || strings.Contains(body, `"isError":true`) {
			t.Errorf("read_stream with mcp:read: %d %s", res.StatusCode, body)
		}
	})

	t.Run("a token granting none of the server's scopes is a 403", func(t *testing.T) {
		tok := s.token(t, rsaKey, jwt.MapClaims{"scope": "openid profile"})
		s.refused(t, "scope openid profile", http.StatusForbidden, func() (*http.Response, string) { return s.emit(t, tok) },
			`error="insufficient_scope"`, `scope="mcp:read mcp:write"`)
	})
}

func TestOAuthKeyRotationIsFollowedAndARemovedKeyRefused(t *testing.T) {
	needsFull(t, "starts the server and an authorization server's JWKS")
	_, prefix := testredis.Shared(t)
	oldKey, newKey := newRSAKey(t, "2026-01"), newECKey(t, "2026-02")
	jwks := startJWKS(t, oldKey)
	s := startOAuth(t, jwks, nil, "--redis-url", testredis.URL(), "--prefix", prefix)

	oldTok := s.token(t, oldKey, nil)
	if res, body := s.emit(t, oldTok); res.StatusCode != http.StatusOK {
		t.Fatalf("the current key: %d %s", res.StatusCode, body)
	}
	jwks.set(newKey)
	jwks.mu.Lock()
	before := jwks.fetches
	jwks.mu.Unlock()
	if res, body := s.emit(t, s.token(t, newKey, nil)); res.StatusCode != http.StatusOK {
		t.Fatalf("a token of the new key, after the rotation: %d %s", res.StatusCode, body)
	}
	jwks.mu.Lock()
	if jwks.fetches != before+1 {
		t.Errorf("the JWKS was fetched %d times for the new kid, want once", jwks.fetches-before)
	}
	jwks.mu.Unlock()
	start := time.Now()
	s.refused(t, "a token of the removed key", http.StatusUnauthorized, func() (*http.Response, string) { return s.emit(t, oldTok) },
		`error="invalid_token"`, "unknown kid")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the refusal took %v: an unknown kid past the refetch bound must not wait", d)
	}
	jwks.mu.Lock()
	if jwks.fetches != before+1 {
		t.Errorf("the removed kid made the server fetch the JWKS again (%d fetches): at most one per interval", jwks.fetches-before)
	}
	jwks.mu.Unlock()
}

func TestOAuthLetsANonLoopbackListenStartWithoutStaticTokens(t *testing.T) {
	needsFull(t, "starts the server and an authorization server's JWKS")
	_, prefix := testredis.Shared(t)
	key := newRSAKey(t, "k")
	s := startOAuthOn(t, "0.0.0.0", startJWKS(t, key), nil, "--redis-url", testredis.URL(), "--prefix", prefix)
	s.refused(t, "no token", http.StatusUnauthorized, func() (*http.Response, string) { return s.emit(t, "") })
	if res, body := s.emit(t, s.token(t, key, nil)); res.StatusCode != http.StatusOK {
		t.Errorf("a valid token: %d %s", res.StatusCode, body)
	}
}

// clientCredentialsAS is an authorization server on loopback that knows
// one confidential client and grants it tokens by the client_credentials
// grant (RFC 6749 §4.4): its metadata (RFC 8414) at the well-known path,
// a token endpoint issuing RS256 JWTs for resource alone (RFC 8707), and
// the JWKS on jwks. What it refused, and the tokens it issued, it keeps.
type clientCredentialsAS struct {
	*httptest.Server
	jwks                   *jwksServer
	key                    signingKey
	clientID, clientSecret string
	resource               string
	scopes                 []string // scopes_supported

	mu       sync.Mutex
	paths    []string // every request, "METHOD path"
	requests int      // token requests
	granted  []string // the scope of each token issued
	methods  []string // how the client authenticated for each
	issued   []string // the access tokens issued
	refusals []string
}

func startClientCredentialsAS(t *testing.T, key signingKey, clientID, clientSecret, resource string, scopes ...string) *clientCredentialsAS {
	t.Helper()
	as := &clientCredentialsAS{jwks: startJWKS(t, key), key: key, clientID: clientID, clientSecret: clientSecret,
		resource: resource, scopes: scopes}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":         as.URL,
			"token_endpoint": as.URL + "/token",
			"jwks_uri":       as.jwks.URL + "/jwks",
			// RFC 8414 §2 needs no authorization endpoint when no grant
			// type uses one, but the SDK's OAuthMetadataSchema requires
			// authorization_endpoint and response_types_supported: one
			// that refuses every request, and no response type.
			"authorization_endpoint":                as.URL + "/authorize",
			"response_types_supported":              []string{},
			"grant_types_supported":                 []string{"client_credentials"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
			"scopes_supported":                      as.scopes,
		})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, _ *http.Request) {
		as.refuse(w, http.StatusBadRequest, "unsupported_response_type", "this authorization server grants client_credentials only")
	})
	mux.HandleFunc("POST /token", as.token)
	// Started once as.Server is set: the handlers read as.URL.
	as.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		as.mu.Lock()
		as.paths = append(as.paths, r.Method+" "+r.URL.Path)
		as.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	as.Start()
	t.Cleanup(as.Close)
	return as
}

// refuse answers an OAuth error (RFC 6749 §5.2) and keeps it.
func (as *clientCredentialsAS) refuse(w http.ResponseWriter, status int, code, desc string) {
	as.mu.Lock()
	as.refusals = append(as.refusals, code+": "+desc)
	as.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

// token is the token endpoint: the client authenticated by
// client_secret_basic or client_secret_post (one, not both), the
// client_credentials grant, one resource that is this server's, and
// scopes it supports.
func (as *clientCredentialsAS) token(w http.ResponseWriter, r *http.Request) {
	as.mu.Lock()
	as.requests++
	as.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		as.refuse(w, http.StatusBadRequest, "invalid_request", "the body is not a form: "+err.Error())
		return
	}
	form := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 §2.3.1: each is form-urlencoded before it is joined.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			as.refuse(w, http.StatusUnauthorized, "invalid_client", "the Basic credentials are not form-urlencoded")
			return
		}
	}
	method := "client_secret_basic"
	switch _, posted := form["client_secret"]; {
	case basic && posted:
		as.refuse(w, http.StatusBadRequest, "invalid_request", "the client authenticated twice, by Basic and in the body")
		return
	case posted:
		id, secret, method = form.Get("client_id"), form.Get("client_secret"), "client_secret_post"
	}
	if id != as.clientID || secret != as.clientSecret {
		as.refuse(w, http.StatusUnauthorized, "invalid_client", "unknown client or wrong secret")
		return
	}
	if g := form.Get("grant_type"); g != "client_credentials" {
		as.refuse(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type "+strconv.Quote(g))
		return
	}
	if res := form["resource"]; len(res) != 1 || res[0] != as.resource {
		as.refuse(w, http.StatusBadRequest, "invalid_target", fmt.Sprintf("resource %q, want the one resource %s", res, as.resource))
		return
	}
	scope := form.Get("scope")
	for s := range strings.FieldsSeq(scope) {
		if !slices.Contains(as.scopes, s) {
			as.refuse(w, http.StatusBadRequest, "invalid_scope", "scope "+strconv.Quote(s))
			return
		}
	}
	now := time.Now()
	tok := jwt.NewWithClaims(as.key.method, jwt.MapClaims{"iss": as.URL, "aud": as.resource, "sub": id, "client_id": id,
		"scope": scope, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": testredis.Random(8)})
	tok.Header["kid"] = as.key.kid
	tok.Header["typ"] = "at+jwt" // RFC 9068 §2.1
	raw, err := tok.SignedString(as.key.priv)
	if err != nil {
		as.refuse(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	as.mu.Lock()
	as.granted = append(as.granted, scope)
	as.methods = append(as.methods, method)
	as.issued = append(as.issued, raw)
	as.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": raw, "token_type": "Bearer", "expires_in": 300, "scope": scope})
}

// The official TypeScript SDK's client authorizes with its own OAuth
// support (ClientCredentialsProvider, e2e/node/oauth.mjs): from the 401's
// WWW-Authenticate to the Protected Resource Metadata, to the
// authorization server's metadata, to a token for this resource, and then
// uses the server with it. The scope it asks for maps to streams:write,
// so tools/list is the write tools; what it writes is stamped
// oauth:<client id>, and neither the token nor the client's secret is in
// Redis or the server's log.
func TestOAuthTheTypeScriptSDKClientAuthorizesWithClientCredentials(t *testing.T) {
	needsFull(t, "runs the Node SDK client against the binary and an authorization server")
	dir := nodeE2EDir(t)
	rdb, prefix := testredis.Shared(t)
	port := strconv.Itoa(testredis.FreePort(t))
	resource := "http://127.0.0.1:" + port + "/mcp"
	clientID, clientSecret := "sdk-client-"+testredis.Random(4), testredis.Random(24)
	as := startClientCredentialsAS(t, newRSAKey(t, "as-rsa-1"), clientID, clientSecret, resource, "mcp:read", "mcp:write")
	srv := startHTTPOn(t, "127.0.0.1:"+port, []string{
		"MCP_REDIS_HTTP_OAUTH_ISSUER=" + as.URL,
		"MCP_REDIS_HTTP_OAUTH_RESOURCE=" + resource,
		"MCP_REDIS_HTTP_OAUTH_JWKS_URL=" + as.jwks.URL + "/jwks",
		"MCP_REDIS_HTTP_OAUTH_SCOPES=mcp:read=streams:read,mcp:write=streams:write",
	}, "--redis-url", testredis.URL(), "--prefix", prefix)
	srv.secrets = append(srv.secrets, clientSecret)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "oauth.mjs"),
		"--url", resource, "--client-id", clientID, "--issuer", as.URL, "--scope", "mcp:write")
	cmd.Dir = dir
	// The secret goes by the environment, not the command line.
	cmd.Env = append(os.Environ(), "MCP_REDIS_CLIENT_SECRET="+clientSecret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()

	as.mu.Lock()
	paths, requests, granted, methods := slices.Clone(as.paths), as.requests, slices.Clone(as.granted), slices.Clone(as.methods)
	issued, refusals := slices.Clone(as.issued), slices.Clone(as.refusals)
	as.mu.Unlock()
	srv.secrets = append(srv.secrets, issued...)

	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var rep struct {
		OK       bool           `json:"ok"`
		Tools    []string       `json:"tools"`
		Result   map[string]any `json:"result"`
		Failures []string       `json:"failures"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil || runErr != nil || !rep.OK || len(rep.Failures) > 0 {
		t.Fatalf("oauth.mjs (%v, report %v) failed:\n%s\nstdout:\n%s\nstderr:\n%s\nauthorization server: requests %v, refused %v\nserver stderr:\n%s",
			runErr, err, strings.Join(rep.Failures, "\n"), stdout.String(), stderr.String(), paths, refusals, srv.stderr.String())
	}

	// The SDK found the authorization server through the server's
	// metadata (nothing else names it to the SDK but --issuer, which only
	// binds the credentials), read its metadata and asked once for a
	// token, with the scope it was given, authenticating by HTTP Basic
	// (the SDK's first choice of the methods the metadata lists).
	if !slices.Contains(paths, "GET /.well-known/oauth-authorization-server") || slices.Contains(paths, "GET /authorize") {
		t.Errorf("authorization server requests %v: want its metadata read, and no authorization request", paths)
	}
	if requests != 1 || len(issued) != 1 || !slices.Equal(granted, []string{"mcp:write"}) ||
		!slices.Equal(methods, []string{"client_secret_basic"}) || len(refusals) > 0 {
		t.Errorf("token endpoint: %d requests, %d tokens for scopes %q by %v, refused %v; want one token for mcp:write by client_secret_basic",
			requests, len(issued), granted, methods, refusals)
	}
	t.Logf("the authorization server was asked: %v", paths)

	// mcp:write maps to streams:write: tools/list is the write tools.
	wantTools := []string{"append_batch", "audit_log", "emit_workflow_event", "publish_ccwj_delta", "submit_feedback"}
	if !slices.Equal(rep.Tools, wantTools) {
		t.Errorf("tools/list = %v, want the streams:write tools %v", rep.Tools, wantTools)
	}

	// The audit entry is in Redis, written as oauth:<client id>.
	entryID, _ := rep.Result["entry_id"].(string)
	if rep.Result["stream"] != prefix+"audit_log_stream" || entryID == "" {
		t.Fatalf("audit_log result = %v", rep.Result)
	}
	msgs, err := rdb.XRange(context.Background(), prefix+"audit_log_stream", entryID, entryID).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE %saudit_log_stream %s: %v %v", prefix, entryID, msgs, err)
	}
	if v := msgs[0].Values; v["module"] != "oauth-e2e" || v["procedure"] != "sdk" || v["status"] != "ok" || v["caller"] != "oauth:"+clientID {
		t.Errorf("audit entry %v, want module oauth-e2e, procedure sdk, status ok by oauth:%s", v, clientID)
	}

	// Neither the access token nor the client secret is in any key; the
	// server's log is checked for both when it stops (srv.secrets).
	settled(t, rdb, prefix)
	noSecretUnder(t, rdb, prefix, append([]string{clientSecret}, issued...)...)
	if t.Failed() {
		t.Logf("server stderr:\n%s", srv.stderr.String())
	}
}

package httpsec_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcp-redis/mcp-redis/internal/httpsec"
)

const (
	testIssuer   = "https://auth.example"
	testResource = "https://mcp.example/mcp"
)

var testScopes = map[string][]string{"mcp:read": {"streams:read"}, "mcp:write": {"streams:read", "streams:write"}, "mcp:admin": {"admin"}}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, k *rsa.PrivateKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())}
}

func ecJWK(kid string, k *ecdsa.PrivateKey) map[string]string {
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	return map[string]string{"kty": "EC", "kid": kid, "alg": "ES256", "use": "sig", "crv": "P-256", "x": b64(x), "y": b64(y)}
}

type fixture struct {
	o       *httpsec.OAuth
	rsa     *rsa.PrivateKey
	ec      *ecdsa.PrivateKey
	fetches *atomic.Int32
	keys    *atomic.Value // []map[string]string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{rsa: rk, ec: ek, fetches: &atomic.Int32{}, keys: &atomic.Value{}}
	f.keys.Store([]map[string]string{rsaJWK("r1", rk), ecJWK("e1", ek)})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.fetches.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": f.keys.Load()})
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f.o, err = httpsec.NewOAuth(ctx, httpsec.OAuthConfig{
		Issuer: testIssuer, Resource: testResource, AuthorizationServers: []string{testIssuer},
		JWKSURL: srv.URL, RefreshInterval: time.Hour, Algorithms: []string{"RS256", "ES256"}, ClockSkew: time.Minute,
		Scopes: testScopes, ServerScopes: []string{"streams:read", "streams:write", "streams:consume", "locks", "rate", "admin"},
		NameClaim: "sub", ResourceName: "mcp-redis",
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) sign(t *testing.T, method jwt.SigningMethod, kid string, key any, over jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	c := jwt.MapClaims{"iss": testIssuer, "aud": []string{"https://other.example", testResource}, "sub": "alice",
		"scope": "mcp:write", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestAValidAccessTokenNamesItsSubjectAndMapsItsScopes(t *testing.T) {
	f := newFixture(t)
	for name, tok := range map[string]string{
		"RS256 with scope":  f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, nil),
		"ES256 with scp":    f.sign(t, jwt.SigningMethodES256, "e1", f.ec, jwt.MapClaims{"scope": nil, "scp": []string{"mcp:write", "unknown"}}),
		"exp within skew":   f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"exp": time.Now().Add(-30 * time.Second).Unix()}),
		"nbf within skew":   f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"nbf": time.Now().Add(30 * time.Second).Unix()}),
		"aud as one string": f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"aud": testResource}),
	} {
		id, granted, err := f.o.Verify(context.Background(), tok)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if id.Name != "oauth:alice" || id.All || !slices.Equal(id.Scopes, []string{"streams:read", "streams:write"}) || !slices.Equal(granted, []string{"mcp:write"}) {
			t.Errorf("%s: %+v %v", name, id, granted)
		}
	}
}

func TestAnAccessTokenIsRefusedForEachFlawSayingWhich(t *testing.T) {
	f := newFixture(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now()
	for _, c := range []struct{ name, token, want string }{
		{"expired beyond the skew", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"exp": now.Add(-2 * time.Minute).Unix()}), "expired"},
		{"nbf beyond the skew", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"nbf": now.Add(2 * time.Minute).Unix()}), "not valid yet"},
		{"iat in the future", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"iat": now.Add(2 * time.Minute).Unix()}), "issued in the future"},
		{"no exp", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"exp": nil}), "lacks a required claim"},
		{"no aud", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"aud": nil}), "lacks a required claim"},
		{"another audience", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"aud": "https://mcp.example/"}), "not meant for this resource"},
		{"another issuer", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"iss": "https://auth.example/"}), "not issued by"},
		{"a bad signature", f.sign(t, jwt.SigningMethodRS256, "r1", other, nil), "signature is invalid"},
		{"alg none", f.sign(t, jwt.SigningMethodNone, "r1", jwt.UnsafeAllowNoneSignatureType, nil), "alg is not accepted"},
		{"alg HS256 keyed with the public key", f.sign(t, jwt.SigningMethodHS256, "r1", f.rsa.N.Bytes(), nil), "alg is not accepted"},
		{"RS512, not in the list", f.sign(t, jwt.SigningMethodRS512, "r1", f.rsa, nil), "alg is not accepted"},
		{"no sub", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"sub": nil}), "the sub claim must be"},
		{"a sub with a newline", f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"sub": "a\nb"}), "the sub claim must be"},
		{"garbage", "a.b.c", "not a well-formed JWT"},
		{"an unknown kid", f.sign(t, jwt.SigningMethodRS256, "r9", f.rsa, nil), "unknown kid"},
	} {
		_, _, err := f.o.Verify(context.Background(), c.token)
		var te *httpsec.TokenError
		if err == nil || !strings.Contains(err.Error(), c.want) || !asTokenError(err, &te) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
			continue
		}
		if strings.ContainsAny(te.Description, "\"\\") || strings.Contains(te.Description, c.token) {
			t.Errorf("%s: the description %q would break the challenge or holds the token", c.name, te.Description)
		}
	}
}

func asTokenError(err error, te **httpsec.TokenError) bool {
	e, ok := err.(*httpsec.TokenError)
	*te = e
	return ok
}

func TestAnUnknownKidRefetchesTheKeysAtMostOncePerInterval(t *testing.T) {
	f := newFixture(t)
	if n := f.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start", n)
	}
	rotated, _ := rsa.GenerateKey(rand.Reader, 2048)
	f.keys.Store([]map[string]string{rsaJWK("r2", rotated)})
	if _, _, err := f.o.Verify(context.Background(), f.sign(t, jwt.SigningMethodRS256, "r2", rotated, nil)); err != nil {
		t.Fatalf("the rotated key: %v", err)
	}
	if _, _, err := f.o.Verify(context.Background(), f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, nil)); err == nil {
		t.Error("the removed key is still accepted")
	}
	start := time.Now()
	for range 20 {
		_, _, _ = f.o.Verify(context.Background(), f.sign(t, jwt.SigningMethodRS256, "r-new", rotated, nil))
	}
	if n := f.fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2: at start and once for the first unknown kid", n)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("20 unknown kids took %v: past the bound they must be refused at once", d)
	}
}

func TestTheChallengesNameTheMetadataTheErrorAndTheScopes(t *testing.T) {
	f := newFixture(t)
	const meta = `resource_metadata="https://mcp.example/.well-known/oauth-protected-resource/mcp"`
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := httpsec.Authenticate(httpsec.NewTokens(map[string]string{"ci": "static-token-0123456789"}), f.o, slog.New(slog.NewTextHandler(io.Discard, nil)), ok)
	for _, c := range []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"no token", "", 401, `Bearer scope="mcp:admin mcp:read mcp:write", ` + meta},
		{"a static token", "Bearer static-token-0123456789", http.StatusTeapot, ""},
		{"an expired token", "Bearer " + f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix()}), 401,
			`Bearer error="invalid_token", error_description="the access token has expired", ` + meta},
		{"a token granting nothing here", "Bearer " + f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"scope": "openid"}), 403,
			`Bearer error="insufficient_scope", error_description="the access token grants none of this server's scopes", scope="mcp:admin mcp:read mcp:write", ` + meta},
		{"a valid token", "Bearer " + f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, nil), http.StatusTeapot, ""},
	} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != c.status || rec.Header().Get("WWW-Authenticate") != c.challenge {
			t.Errorf("%s: %d %q, want %d %q", c.name, rec.Code, rec.Header().Get("WWW-Authenticate"), c.status, c.challenge)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+f.sign(t, jwt.SigningMethodRS256, "r1", f.rsa, jwt.MapClaims{"scope": "mcp:read"}))
	httpsec.Authenticate(httpsec.NewTokens(nil), f.o, slog.Default(), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.o.InsufficientScope(w, r, "the tool acquire_lock", "locks")
	})).ServeHTTP(rec, req)
	want := `Bearer error="insufficient_scope", error_description="the tool acquire_lock needs the scope locks, granted by the OAuth scope mcp:admin", scope="mcp:read mcp:admin", ` + meta
	if rec.Code != 403 || rec.Header().Get("WWW-Authenticate") != want {
		t.Errorf("insufficient scope: %d %q, want %q", rec.Code, rec.Header().Get("WWW-Authenticate"), want)
	}
}

func TestTheMetadataURLFollowsRFC9728(t *testing.T) {
	for resource, want := range map[string]string{
		"https://mcp.example/mcp":        "https://mcp.example/.well-known/oauth-protected-resource/mcp",
		"https://mcp.example":            "https://mcp.example/.well-known/oauth-protected-resource",
		"https://mcp.example/":           "https://mcp.example/.well-known/oauth-protected-resource",
		"http://127.0.0.1:8080/team/mcp": "http://127.0.0.1:8080/.well-known/oauth-protected-resource/team/mcp",
	} {
		if got := httpsec.MetadataURL(resource); got != want {
			t.Errorf("%s: %s, want %s", resource, got, want)
		}
	}
}

func TestAJWKSFileServesAsTheKeys(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := filepath.Join(t.TempDir(), "jwks.json")
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{ecJWK("f1", k)}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	o, err := httpsec.NewOAuth(context.Background(), httpsec.OAuthConfig{Issuer: testIssuer, Resource: testResource, JWKSFile: path,
		Algorithms: []string{"ES256"}, Scopes: testScopes, ServerScopes: []string{"streams:read", "streams:write"}, NameClaim: "client_id"},
		slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": testIssuer, "aud": testResource, "client_id": "ci-bot",
		"scope": "mcp:read", "exp": time.Now().Add(time.Minute).Unix()})
	tok.Header["kid"] = "f1"
	s, _ := tok.SignedString(k)
	id, _, err := o.Verify(context.Background(), s)
	if err != nil || id.Name != "oauth:ci-bot" || !slices.Equal(id.Scopes, []string{"streams:read"}) {
		t.Errorf("%+v %v", id, err)
	}
}

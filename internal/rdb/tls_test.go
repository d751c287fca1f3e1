package rdb

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcp-redis/mcp-redis/internal/fault"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// openTLS opens url with the TLS settings s and returns the conn and the
// error of one PING.
func openTLS(t *testing.T, url string, s TLS, log *slog.Logger) (*Conn, error) {
	t.Helper()
	c, err := Open(Options{URL: url, Timeout: 2 * time.Second, TLS: s}, log)
	if err != nil {
		t.Fatalf("Open(%q, %+v): %v", url, s, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c, Ping(ctx, c.Client)
}

// assertTLSProblem checks that err, wrapped as a tool would, is an
// unavailable fault whose own message names a TLS problem with want in it,
// and no address.
func assertTLSProblem(t *testing.T, srv *testredis.Server, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("PING succeeded; want a TLS failure naming %q", want)
	}
	w := Wrap("ping", err)
	fe, ok := fault.As(w)
	if !ok || fe.Code != fault.Unavailable {
		t.Fatalf("Wrap(%v) = %#v; want an unavailable fault", err, w)
	}
	if !strings.Contains(fe.Message, "redis TLS handshake failed") || !strings.Contains(fe.Message, want) {
		t.Errorf("message %q does not name the TLS problem %q (cause: %v)", fe.Message, want, err)
	}
	t.Logf("tool message: %s", fe.Message)
	_, port, _ := strings.Cut(srv.Addr, ":")
	if strings.Contains(fe.Message, "127.0.0.1") || strings.Contains(fe.Message, port) {
		t.Errorf("message %q carries the server's address", fe.Message)
	}
}

func TestAPrivateCAInCAFileIsTrusted(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	if _, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile}, quiet); err != nil {
		t.Fatalf("PING over TLS with the private CA: %v", err)
	}
	if _, err := openTLS(t, "rediss://localhost:"+strings.Split(srv.Addr, ":")[1], TLS{CAFile: pki.CAFile}, quiet); err != nil {
		t.Fatalf("PING over TLS to localhost with the private CA: %v", err)
	}
}

func TestWithoutCAFileAPrivateCAIsAnUnknownAuthorityNotAnInternalError(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	_, err := openTLS(t, srv.URL(), TLS{}, quiet)
	assertTLSProblem(t, srv, err, "unknown authority; set redis.tls.ca_file")
}

func TestMutualTLSWorksWithAClientCertificateAndWithoutOneSaysItIsRequired(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("yes")...)
	mutual := TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey}
	if _, err := openTLS(t, srv.URL(), mutual, quiet); err != nil {
		t.Fatalf("PING with the client certificate: %v", err)
	}
	_, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile}, quiet)
	assertTLSProblem(t, srv, err, "requires a client certificate")
}

func TestAClientCertificateFromAnotherCAIsRefusedByTheServer(t *testing.T) {
	pki, other := testredis.NewPKI(t), testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("yes")...)
	_, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile, CertFile: other.ClientCert, KeyFile: other.ClientKey}, quiet)
	assertTLSProblem(t, srv, err, "refused the client certificate")
}

func TestAServerNameTheCertificateDoesNotCarryIsAClearError(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	_, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile, ServerName: "redis.example.com"}, quiet)
	assertTLSProblem(t, srv, err, "set redis.tls.server_name")
	if _, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile, ServerName: "localhost"}, quiet); err != nil {
		t.Errorf("server_name localhost, which the certificate carries: %v", err)
	}
}

func TestMinVersion13WorksAgainstRedisAndIsRefusedByATLS12OnlyServer(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	if _, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile, MinVersion: "1.3"}, quiet); err != nil {
		t.Fatalf("PING with min_version 1.3: %v", err)
	}
	old := testredis.StartTLS(t, append(pki.ServerArgs("no"), "--tls-protocols", "TLSv1.2")...)
	if _, err := openTLS(t, old.URL(), TLS{CAFile: pki.CAFile}, quiet); err != nil {
		t.Fatalf("PING a TLS 1.2 server with the default min_version 1.2: %v", err)
	}
	_, err := openTLS(t, old.URL(), TLS{CAFile: pki.CAFile, MinVersion: "1.3"}, quiet)
	assertTLSProblem(t, old, err, "redis.tls.min_version")
}

func TestInsecureSkipVerifyConnectsWithoutTheCAAndWarnsLoudly(t *testing.T) {
	pki := testredis.NewPKI(t)
	srv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	var logs testredis.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	if _, err := openTLS(t, srv.URL(), TLS{InsecureSkipVerify: true}, log); err != nil {
		t.Fatalf("PING with insecure_skip_verify: %v", err)
	}
	if got := logs.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "INSECURE") {
		t.Errorf("no loud warning; log:\n%s", got)
	}
	var quietLogs testredis.Buffer
	if _, err := openTLS(t, srv.URL(), TLS{CAFile: pki.CAFile}, slog.New(slog.NewTextHandler(&quietLogs, nil))); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(quietLogs.String(), "INSECURE") {
		t.Errorf("verified TLS warned: %s", quietLogs.String())
	}
}

func TestTLSToAPlainPortIsAToolErrorNotAnInternalOne(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a redis-server and waits out the 2s timeout; not in the -short tier")
	}
	plain := testredis.Start(t)
	_, err := openTLS(t, "rediss://"+plain.Addr, TLS{InsecureSkipVerify: true}, quiet)
	if err == nil {
		t.Fatal("TLS to a plain port succeeded")
	}
	// Redis answers the ClientHello with an error line, or closes: either
	// way a tool error, never internal.
	if fe, ok := fault.As(Wrap("ping", err)); !ok || fe.Code != fault.Unavailable {
		t.Errorf("Wrap(%v) = %v; want unavailable", err, Wrap("ping", err))
	}
}

// tlsOf returns the TLS config the client dials with.
func tlsOf(t *testing.T, c redis.UniversalClient) *tls.Config {
	t.Helper()
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.Options().TLSConfig
	}
	return options(t, c).TLSConfig
}

func TestEveryTLSURLFormCarriesTheSameTLSConfig(t *testing.T) {
	pki := testredis.NewPKI(t)
	s := TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, MinVersion: "1.3"}
	for _, tc := range []struct{ url, serverName, pinned string }{
		{"rediss://cache.example.com:6380", "cache.example.com", "pinned.example"},
		// Each node is checked against the host it dials, not the first seed's.
		{"rediss+sentinel://s1:26379,s2:26379?master_name=m", "", "pinned.example"},
		{"rediss+cluster://n1:7000,n2:7001", "", "pinned.example"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			for _, pin := range []string{"", tc.pinned} {
				s := s
				s.ServerName = pin
				want := tc.serverName
				if pin != "" {
					want = pin
				}
				c, err := Open(Options{URL: tc.url, Timeout: time.Second, TLS: s}, quiet)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				got := tlsOf(t, c.Client)
				if got == nil || got.RootCAs == nil || len(got.Certificates) != 1 || got.MinVersion != tls.VersionTLS13 ||
					got.InsecureSkipVerify || got.ServerName != want {
					t.Errorf("server_name %q: TLSConfig %+v; want the CA, one client certificate, TLS 1.3, ServerName %q", pin, got, want)
				}
			}
		})
	}
}

func TestTheDefaultTLSSettingsKeepTheURLsTLS(t *testing.T) {
	c, err := Open(Options{URL: "rediss://h:6380?skip_verify=true", Timeout: time.Second, TLS: TLS{MinVersion: "1.2"}}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := tlsOf(t, c.Client)
	if got == nil || got.ServerName != "h" || got.MinVersion != tls.VersionTLS12 || !got.InsecureSkipVerify || got.RootCAs != nil {
		t.Errorf("TLSConfig %+v; want ServerName h, TLS 1.2, skip_verify from the URL, system roots", got)
	}
}

func TestTLSSettingsWithAURLWithoutTLSAreRefused(t *testing.T) {
	for _, url := range []string{"redis://h:6379", "unix:///run/redis.sock", "redis+cluster://n1:7000"} {
		c, err := Open(Options{URL: url, Timeout: time.Second, TLS: TLS{CAFile: "/ca.pem"}}, quiet)
		if err == nil || !strings.Contains(err.Error(), "redis.tls") {
			if c != nil {
				c.Close()
			}
			t.Errorf("Open(%s with ca_file) = %v; want an error naming redis.tls", url, err)
		}
	}
}

func TestUnreadableTLSFilesAreErrorsNamingTheirKey(t *testing.T) {
	pki := testredis.NewPKI(t)
	for _, tc := range []struct {
		s    TLS
		want string
	}{
		{TLS{CAFile: "/nonexistent/ca.pem"}, "redis.tls.ca_file"},
		{TLS{CAFile: pki.ClientKey}, "redis.tls.ca_file"},
		{TLS{CertFile: pki.ClientCert, KeyFile: pki.ServerKey}, "redis.tls.cert_file"},
		{TLS{MinVersion: "1.1"}, "redis.tls.min_version"},
	} {
		if _, err := Open(Options{URL: "rediss://h:6380", Timeout: time.Second, TLS: tc.s}, quiet); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open with %+v = %v; want an error naming %s", tc.s, err, tc.want)
		}
	}
}

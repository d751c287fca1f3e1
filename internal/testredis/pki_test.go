package testredis

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
)

func TestThePKIsCertificatesVerifyAgainstItsCAForTheirUse(t *testing.T) {
	p := NewPKI(t)
	pem, err := os.ReadFile(p.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("ca.pem holds no certificate")
	}
	for _, tc := range []struct {
		cert, key string
		opts      x509.VerifyOptions
	}{
		{p.ServerCert, p.ServerKey, x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"}},
		{p.ServerCert, p.ServerKey, x509.VerifyOptions{Roots: roots, DNSName: "localhost"}},
		{p.ClientCert, p.ClientKey, x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}},
	} {
		pair, err := tls.LoadX509KeyPair(tc.cert, tc.key)
		if err != nil {
			t.Fatalf("%s with %s: %v", tc.cert, tc.key, err)
		}
		if _, err := pair.Leaf.Verify(tc.opts); err != nil {
			t.Errorf("%s for %q: %v", tc.cert, tc.opts.DNSName, err)
		}
	}
	if _, err := tls.LoadX509KeyPair(p.ServerCert, p.ClientKey); err == nil {
		t.Error("the server certificate pairs with the client key")
	}
}

func TestStartTLSServesTLSOnlyOnItsAddr(t *testing.T) {
	p := NewPKI(t)
	s := StartTLS(t, p.ServerArgs("no")...)
	if got := s.URL(); got != "rediss://"+s.Addr {
		t.Errorf("URL = %s", got)
	}
	pem, _ := os.ReadFile(p.CAFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	c, err := tls.Dial("tcp", s.Addr, &tls.Config{RootCAs: roots})
	if err != nil {
		t.Fatalf("TLS to %s: %v", s.Addr, err)
	}
	_ = c.Close()
}

package main_test

import (
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// tlEnv is the environment of a server that reaches srv over TLS with the
// given redis.tls settings (name=value, without the MCP_REDIS_REDIS_TLS_
// prefix).
func tlEnv(srv *testredis.Server, settings ...string) []string {
	env := []string{"MCP_REDIS_REDIS_URL=" + srv.URL(), "MCP_REDIS_REDIS_TIMEOUT=1s"}
	for _, s := range settings {
		env = append(env, "MCP_REDIS_REDIS_TLS_"+s)
	}
	return env
}

// Over mutual TLS with a private CA, set only through the environment, the
// tools write and read; a server without a client certificate answers a
// tool error that names the TLS problem, not an internal error, and no
// address.
func TestOverStdioMutualTLSWithAPrivateCAServesAndAMissingClientCertificateIsNamed(t *testing.T) {
	needsFull(t, "starts a TLS redis-server and the binary")
	pki := testredis.NewPKI(t)
	redisSrv := testredis.StartTLS(t, pki.ServerArgs("yes")...)

	srv := spawn(t, tlEnv(redisSrv, "CA_FILE="+pki.CAFile, "CERT_FILE="+pki.ClientCert, "KEY_FILE="+pki.ClientKey))
	srv.ok("audit_log", args(`{"module":"tls","procedure":"mutual","status":"ok","log_id":"tls-1"}`))
	out := srv.ok("read_stream", args(`{"stream":"audit_log_stream","count":100}`))
	entries, _ := out["entries"].([]any)
	found := false
	for _, e := range entries {
		if f, _ := e.(map[string]any)["fields"].(map[string]any); f["log_id"] == "tls-1" {
			found = true
		}
	}
	if !found {
		t.Errorf("read_stream over TLS does not return the entry written: %v", out)
	}

	noCert := spawn(t, tlEnv(redisSrv, "CA_FILE="+pki.CAFile))
	_, port, _ := strings.Cut(redisSrv.Addr, ":")
	// Under TLS 1.3 the server refuses a missing certificate after the
	// client's handshake has completed: a command written before the
	// server's alert is read can meet the reset of the connection the
	// server closed instead, and is answered "redis is unavailable". A
	// second call reads the alert; every answer must be a tool error that
	// is not internal and carries no address.
	var res *mcp.CallToolResult
	var text string
	for range 3 {
		res = noCert.call("audit_log", args(`{"module":"tls","procedure":"nocert","status":"ok"}`))
		text = resultText(res)
		if !res.IsError || strings.Contains(text, "internal error") || strings.Contains(text, "127.0.0.1") || strings.Contains(text, port) {
			t.Fatalf("the tool error is not one, is internal or carries the address: %q", text)
		}
		if strings.Contains(text, "TLS handshake failed") {
			break
		}
	}
	if !res.IsError || !strings.Contains(text, "redis TLS handshake failed: the server requires a client certificate") ||
		!strings.Contains(text, "redis.tls.cert_file") {
		t.Errorf("audit_log without a client certificate: isError=%v %q", res.IsError, text)
	}
	t.Logf("tool error: %s", text)
	if strings.Contains(text, "internal error") || strings.Contains(text, "127.0.0.1") || strings.Contains(text, port) {
		t.Errorf("the tool error is internal or carries the address: %q", text)
	}
	// A configuration fault: retrying alone does not help.
	if strings.Contains(text, "retry later") || !strings.Contains(text, "tell its operator") {
		t.Errorf("the tool error does not say a retry fails until the TLS settings are fixed: %q", text)
	}
}

// insecure_skip_verify connects without the CA, and the server says loudly
// on stderr that it does.
func TestOverStdioInsecureSkipVerifyServesAndWarnsAtStart(t *testing.T) {
	needsFull(t, "starts a TLS redis-server and the binary")
	pki := testredis.NewPKI(t)
	redisSrv := testredis.StartTLS(t, pki.ServerArgs("no")...)
	srv := spawn(t, tlEnv(redisSrv, "INSECURE_SKIP_VERIFY=true"))
	srv.ok("audit_log", args(`{"module":"tls","procedure":"insecure","status":"ok"}`))
	if !strings.Contains(srv.stderr.String(), "INSECURE: redis TLS certificate verification is OFF") {
		t.Errorf("no warning on stderr:\n%s", srv.stderr.String())
	}
}

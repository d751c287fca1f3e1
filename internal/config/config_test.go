package config_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
	"github.com/mcp-redis/mcp-redis/internal/testredis"
)

// isolate runs the test in an empty temp dir (so no stray ./config.yaml is
// read) with every MCP_REDIS_* variable and REDIS_URL unset; t.Setenv
// restores them afterwards.
func isolate(t *testing.T) string {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, config.EnvPrefix+"_") || name == "REDIS_URL" {
			t.Setenv(name, "")
			if err := os.Unsetenv(name); err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	t.Chdir(dir)
	return dir
}

// unset removes an environment variable for the rest of the test.
func unset(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}

// flags declares the server's flags and parses args.
func flags(t *testing.T, args ...string) *pflag.FlagSet {
	t.Helper()
	fs := pflag.NewFlagSet("mcp-redis", pflag.ContinueOnError)
	config.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return fs
}

func writeFile(t *testing.T, path, text string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, fs *pflag.FlagSet) config.Config {
	t.Helper()
	c, err := config.Load(fs)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

// invalid loads a configuration that must be invalid and returns its error.
func invalid(t *testing.T, fs *pflag.FlagSet) *config.InvalidError {
	t.Helper()
	c, err := config.Load(fs)
	if err == nil {
		t.Fatalf("Load succeeded with %+v; want an *InvalidError", c)
	}
	var ie *config.InvalidError
	if !errors.As(err, &ie) {
		t.Fatalf("Load error is %T (%v); want *config.InvalidError", err, err)
	}
	if !reflect.DeepEqual(c, config.Config{}) {
		t.Errorf("Load returned %+v with its error; want the zero Config", c)
	}
	return ie
}

// A file that sets every key to a non-default value.
const fullFile = `
redis:
  url: redis://file:6379/1
  prefix: "file:"
  timeout: 3s
  wait_replicas: 1
  wait_timeout: 250ms
  sharded_pubsub: true
streams:
  audit_log_stream:
    maxlen: 11
  ccwj_update_stream:
    maxlen: 12
  user_feedback:
    maxlen: 13
  workflow_events:
    maxlen: 14
limits:
  max_entry_bytes: 2048
audit:
  tool_calls: false
idempotency:
  ttl: 90m
log:
  level: debug
transport: stdio
`

func fileConfig() config.Config {
	return config.Config{
		Redis: config.Redis{URL: "redis://file:6379/1", Prefix: "file:", Timeout: 3 * time.Second, TLS: config.Defaults().Redis.TLS,
			WaitReplicas: 1, WaitTimeout: 250 * time.Millisecond, ShardedPubSub: true},
		Streams: config.Streams{
			MaxBlock:      config.Defaults().Streams.MaxBlock,
			AuditLog:      config.Stream{MaxLen: 11},
			CCWJUpdate:    config.Stream{MaxLen: 12},
			UserFeedback:  config.Stream{MaxLen: 13},
			WorkflowEvent: config.Stream{MaxLen: 14},
		},
		Limits:      config.Limits{MaxEntryBytes: 2048},
		Audit:       func() config.Audit { a := config.Defaults().Audit; a.ToolCalls = false; return a }(),
		Idempotency: config.Idempotency{TTL: 90 * time.Minute},
		Log:         config.Log{Level: "debug"},
		Transport:   "stdio",
		Stdio:       config.Stdio{MaxMessageBytes: 4 << 20},
		Locks:       config.Defaults().Locks,
		Rate:        config.Defaults().Rate,
		HTTP:        config.Defaults().HTTP,
		Tools:       config.Defaults().Tools,
		Groups:      config.Defaults().Groups,
	}
}

func TestLoadReturnsTheDefaultsWhenNothingIsSet(t *testing.T) {
	isolate(t)
	want := config.Defaults()
	if got := load(t, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(nil) = %+v\nwant %+v", got, want)
	}
	if got := load(t, flags(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(no flags given) = %+v\nwant %+v", got, want)
	}
}

func TestTheDefaultsAreValidAndWhatTheDocsPromise(t *testing.T) {
	d := config.Defaults()
	if err := d.Validate(); err != nil {
		t.Fatalf("Defaults().Validate() = %v", err)
	}
	if d.Redis.URL != config.Embedded || d.Redis.Prefix != "mcp:" || d.Transport != "stdio" ||
		d.Log.Level != "info" || !d.Audit.ToolCalls || d.Redis.Timeout != 2*time.Second {
		t.Errorf("unexpected defaults: %+v", d)
	}
	for _, name := range keyspace.Streams {
		if d.Streams.Get(name).MaxLen != 100000 {
			t.Errorf("default maxlen of %s = %d; want 100000", name, d.Streams.Get(name).MaxLen)
		}
	}
}

func TestAMissingConfigYAMLInTheWorkingDirectoryIsFine(t *testing.T) {
	dir := isolate(t)
	if _, err := os.Stat(filepath.Join(dir, "config.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temp dir unexpectedly has a config.yaml: %v", err)
	}
	if _, err := config.Load(flags(t)); err != nil {
		t.Fatalf("Load without ./config.yaml: %v", err)
	}
}

func TestConfigYAMLInTheWorkingDirectoryIsReadWithoutAFlag(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", fullFile)
	if got, want := load(t, flags(t)), fileConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
}

func TestTheConfigFlagReadsTheNamedFileInsteadOfConfigYAML(t *testing.T) {
	dir := isolate(t)
	writeFile(t, "config.yaml", "log:\n  level: error\n")
	other := writeFile(t, filepath.Join(dir, "other.yaml"), fullFile)
	if got, want := load(t, flags(t, "--config", other)), fileConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("Load(--config %s) = %+v\nwant %+v", other, got, want)
	}
}

func TestTheConfigFlagPointingAtAMissingFileIsAnError(t *testing.T) {
	dir := isolate(t)
	missing := filepath.Join(dir, "nope", "config.yaml")
	_, err := config.Load(flags(t, "--config", missing))
	if err == nil {
		t.Fatal("Load with --config naming a missing file succeeded")
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v does not wrap fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), missing) {
		t.Errorf("error %q does not name the file %s", err, missing)
	}
}

func TestAConfigFileThatIsNotYAMLIsAnError(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "redis: [unclosed\n")
	if _, err := config.Load(nil); err == nil {
		t.Fatal("Load of a malformed config.yaml succeeded")
	}
}

func TestTheConfigFileOverridesTheDefaults(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "redis:\n  prefix: \"f:\"\nstreams:\n  user_feedback:\n    maxlen: 7\n")
	want := config.Defaults()
	want.Redis.Prefix = "f:"
	want.Streams.UserFeedback.MaxLen = 7
	if got := load(t, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v (only the two keys in the file changed)", got, want)
	}
}

func TestTheEnvironmentOverridesTheConfigFile(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", fullFile)
	t.Setenv("MCP_REDIS_REDIS_URL", "redis://env:6379/2")
	t.Setenv("MCP_REDIS_REDIS_PREFIX", "env:")
	t.Setenv("MCP_REDIS_REDIS_TIMEOUT", "750ms")
	t.Setenv("MCP_REDIS_STREAMS_AUDIT_LOG_STREAM_MAXLEN", "21")
	t.Setenv("MCP_REDIS_STREAMS_WORKFLOW_EVENTS_MAXLEN", "24")
	t.Setenv("MCP_REDIS_LIMITS_MAX_ENTRY_BYTES", "4096")
	t.Setenv("MCP_REDIS_AUDIT_TOOL_CALLS", "true")
	t.Setenv("MCP_REDIS_IDEMPOTENCY_TTL", "2h")
	t.Setenv("MCP_REDIS_LOG_LEVEL", "warn")

	want := fileConfig()
	want.Redis.URL, want.Redis.Prefix, want.Redis.Timeout = "redis://env:6379/2", "env:", 750*time.Millisecond
	want.Streams.AuditLog.MaxLen = 21
	want.Streams.WorkflowEvent.MaxLen = 24
	want.Limits.MaxEntryBytes = 4096
	want.Audit.ToolCalls = true
	want.Idempotency.TTL = 2 * time.Hour
	want.Log.Level = "warn"
	if got := load(t, flags(t)); !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
}

func TestAFalseBooleanInTheEnvironmentOverridesATrueOneInTheFile(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "audit:\n  tool_calls: true\n")
	t.Setenv("MCP_REDIS_AUDIT_TOOL_CALLS", "false")
	if got := load(t, nil); got.Audit.ToolCalls {
		t.Error("audit.tool_calls = true; want false from MCP_REDIS_AUDIT_TOOL_CALLS")
	}
}

func TestFlagsOverrideTheEnvironmentAndTheFile(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", fullFile)
	t.Setenv("MCP_REDIS_REDIS_URL", "redis://env:6379")
	t.Setenv("MCP_REDIS_REDIS_PREFIX", "env:")
	t.Setenv("MCP_REDIS_LOG_LEVEL", "warn")
	// An invalid transport from the environment is hidden by the flag.
	t.Setenv("MCP_REDIS_TRANSPORT", "carrier-pigeon")

	got := load(t, flags(t, "--redis-url", "redis://flag:6379/3", "--prefix", "flag:",
		"--log-level", "error", "--transport", "stdio"))
	want := fileConfig()
	want.Redis.URL = "redis://flag:6379/3"
	want.Redis.Prefix = "flag:"
	want.Log.Level = "error"
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
}

func TestAFlagThatIsNotGivenDoesNotHideTheLayersBelow(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "redis:\n  prefix: \"file:\"\n")
	t.Setenv("MCP_REDIS_LOG_LEVEL", "debug")
	got := load(t, flags(t, "--redis-url", "redis://flag:6379"))
	if got.Redis.Prefix != "file:" || got.Log.Level != "debug" || got.Redis.URL != "redis://flag:6379" {
		t.Errorf("Load = %+v; want prefix from the file, level from env, url from the flag", got.Redis)
	}
}

func TestKeysSetOnlyInTheEnvironmentReachTheStruct(t *testing.T) {
	// viper's Unmarshal ignores AutomaticEnv keys it has not seen elsewhere;
	// every key must still arrive with no file and no flags.
	isolate(t)
	env := map[string]string{
		"MCP_REDIS_REDIS_URL":                         "rediss://envonly:6380/4",
		"MCP_REDIS_REDIS_PREFIX":                      "eo:",
		"MCP_REDIS_REDIS_TIMEOUT":                     "1500ms",
		"MCP_REDIS_REDIS_WAIT_REPLICAS":               "2",
		"MCP_REDIS_REDIS_WAIT_TIMEOUT":                "400ms",
		"MCP_REDIS_REDIS_SHARDED_PUBSUB":              "true",
		"MCP_REDIS_STREAMS_AUDIT_LOG_STREAM_MAXLEN":   "31",
		"MCP_REDIS_STREAMS_CCWJ_UPDATE_STREAM_MAXLEN": "32",
		"MCP_REDIS_STREAMS_USER_FEEDBACK_MAXLEN":      "33",
		"MCP_REDIS_STREAMS_WORKFLOW_EVENTS_MAXLEN":    "34",
		"MCP_REDIS_LIMITS_MAX_ENTRY_BYTES":            "8192",
		"MCP_REDIS_AUDIT_TOOL_CALLS":                  "false",
		"MCP_REDIS_IDEMPOTENCY_TTL":                   "10m",
		"MCP_REDIS_LOG_LEVEL":                         "error",
		"MCP_REDIS_TRANSPORT":                         "stdio",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	want := config.Config{
		Redis: config.Redis{URL: "rediss://envonly:6380/4", Prefix: "eo:", Timeout: 1500 * time.Millisecond, TLS: config.Defaults().Redis.TLS,
			WaitReplicas: 2, WaitTimeout: 400 * time.Millisecond, ShardedPubSub: true},
		Streams: config.Streams{
			MaxBlock:      config.Defaults().Streams.MaxBlock,
			AuditLog:      config.Stream{MaxLen: 31},
			CCWJUpdate:    config.Stream{MaxLen: 32},
			UserFeedback:  config.Stream{MaxLen: 33},
			WorkflowEvent: config.Stream{MaxLen: 34},
		},
		Limits:      config.Limits{MaxEntryBytes: 8192},
		Audit:       func() config.Audit { a := config.Defaults().Audit; a.ToolCalls = false; return a }(),
		Idempotency: config.Idempotency{TTL: 10 * time.Minute},
		Log:         config.Log{Level: "error"},
		Transport:   "stdio",
		Stdio:       config.Stdio{MaxMessageBytes: 4 << 20},
		Locks:       config.Defaults().Locks,
		Rate:        config.Defaults().Rate,
		HTTP:        config.Defaults().HTTP,
		Tools:       config.Defaults().Tools,
		Groups:      config.Defaults().Groups,
	}
	if got := load(t, nil); !reflect.DeepEqual(got, want) {
		t.Errorf("Load = %+v\nwant %+v", got, want)
	}
}

func TestAPlainREDIS_URLIsUsedWhenMCP_REDIS_REDIS_URLIsUnset(t *testing.T) {
	isolate(t)
	t.Setenv("REDIS_URL", "redis://plain:6379/5")
	if got := load(t, nil).Redis.URL; got != "redis://plain:6379/5" {
		t.Errorf("redis.url = %q; want the REDIS_URL value", got)
	}
}

func TestAPlainREDIS_URLOverridesTheConfigFileLikeAnyEnvironmentVariable(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "redis:\n  url: redis://file:6379\n")
	t.Setenv("REDIS_URL", "redis://plain:6379")
	if got := load(t, nil).Redis.URL; got != "redis://plain:6379" {
		t.Errorf("redis.url = %q; want REDIS_URL over the file", got)
	}
}

func TestMCP_REDIS_REDIS_URLWinsOverAPlainREDIS_URL(t *testing.T) {
	isolate(t)
	t.Setenv("REDIS_URL", "redis://plain:6379")
	t.Setenv("MCP_REDIS_REDIS_URL", "redis://prefixed:6379")
	if got := load(t, nil).Redis.URL; got != "redis://prefixed:6379" {
		t.Errorf("redis.url = %q; want MCP_REDIS_REDIS_URL", got)
	}
}

func TestTheRedisURLFlagWinsOverAPlainREDIS_URL(t *testing.T) {
	isolate(t)
	t.Setenv("REDIS_URL", "redis://plain:6379")
	if got := load(t, flags(t, "--redis-url", "redis://flag:6379")).Redis.URL; got != "redis://flag:6379" {
		t.Errorf("redis.url = %q; want the --redis-url value", got)
	}
}

func TestAPlainREDIS_URLDoesNotLeakIntoLaterLoads(t *testing.T) {
	// Load builds a fresh viper each time; a REDIS_URL binding must not
	// survive into a load where MCP_REDIS_REDIS_URL is set, or REDIS_URL unset.
	isolate(t)
	t.Setenv("REDIS_URL", "redis://plain:6379")
	_ = load(t, nil)
	unset(t, "REDIS_URL")
	if got := load(t, nil).Redis.URL; got != config.Embedded {
		t.Errorf("redis.url = %q after REDIS_URL was unset; want %q", got, config.Embedded)
	}
}

func TestAFileWithSeveralProblemsReportsAllOfThemInOneError(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", `
redis:
  url: http://example.com
  prefix: "has space{"
  timeout: soon
  colour: blue
streams:
  audit_log_stream:
    maxlen: 0
  user_feedback:
    maxlen: lots
  mystery_stream:
    maxlen: 5
limits:
  max_entry_bytes: 10
idempotency:
  ttl: 10ms
log:
  level: loud
transport: carrier-pigeon
unknown_top: 1
`)
	ie := invalid(t, nil)
	msg := ie.Error()
	for _, want := range []string{
		"redis.url",                       // bad scheme
		`"http"`,                          // …naming the scheme
		"redis.prefix",                    // whitespace/braces
		"redis.timeout",                   // bad duration
		"redis.colour: unknown key",       // unknown nested key
		"streams.audit_log_stream.maxlen", // out of range
		"streams.user_feedback.maxlen",    // not a number
		"streams.mystery_stream.maxlen: unknown key",
		"limits.max_entry_bytes",
		"idempotency.ttl",
		"log.level",
		"transport",
		"unknown_top: unknown key",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if len(ie.Problems) != 12 {
		t.Errorf("got %d problems; want 12 (one per bad key):\n%s", len(ie.Problems), msg)
	}
	if !strings.HasPrefix(msg, "invalid configuration:\n") {
		t.Errorf("error does not start with a heading:\n%s", msg)
	}
	for _, line := range strings.Split(msg, "\n")[1:] {
		if !strings.HasPrefix(line, "  - ") {
			t.Errorf("line %q is not one problem per line:\n%s", line, msg)
		}
	}
}

func TestAValueThatCannotBeDecodedIsReportedOnceAndNotAsZero(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_REDIS_TIMEOUT", "soon")
	t.Setenv("MCP_REDIS_STREAMS_USER_FEEDBACK_MAXLEN", "lots")
	ie := invalid(t, nil)
	msg := ie.Error()
	if len(ie.Problems) != 2 {
		t.Errorf("got %d problems; want 2:\n%s", len(ie.Problems), msg)
	}
	for _, bogus := range []string{"0s is out of range", "0 must be at least 1"} {
		if strings.Contains(msg, bogus) {
			t.Errorf("error reports the zero left by a failed decode (%q):\n%s", bogus, msg)
		}
	}
	for _, want := range []string{"redis.timeout: ", "streams.user_feedback.maxlen: "} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not start a problem with %q:\n%s", want, msg)
		}
	}
}

func TestProblemsFromTheFileTheEnvironmentAndFlagsAreReportedTogether(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "limits:\n  max_entry_bytes: 99999999\n")
	t.Setenv("MCP_REDIS_IDEMPOTENCY_TTL", "1ms")
	t.Setenv("MCP_REDIS_AUDIT_TOOL_CALLS", "maybe")
	ie := invalid(t, flags(t, "--prefix", "a*b", "--log-level", "verbose"))
	msg := ie.Error()
	for _, want := range []string{"limits.max_entry_bytes", "idempotency.ttl", "audit.tool_calls", "redis.prefix", "log.level"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q:\n%s", want, msg)
		}
	}
	if len(ie.Problems) != 5 {
		t.Errorf("got %d problems; want 5:\n%s", len(ie.Problems), msg)
	}
}

func TestRangeLimitsAreInclusive(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_REDIS_TIMEOUT", "10ms")
	t.Setenv("MCP_REDIS_LIMITS_MAX_ENTRY_BYTES", "1024")
	t.Setenv("MCP_REDIS_IDEMPOTENCY_TTL", "1s")
	t.Setenv("MCP_REDIS_STREAMS_CCWJ_UPDATE_STREAM_MAXLEN", "1")
	_ = load(t, nil)

	t.Setenv("MCP_REDIS_REDIS_TIMEOUT", "1m")
	t.Setenv("MCP_REDIS_LIMITS_MAX_ENTRY_BYTES", "16777216")
	_ = load(t, nil)

	t.Setenv("MCP_REDIS_REDIS_TIMEOUT", "61s")
	t.Setenv("MCP_REDIS_LIMITS_MAX_ENTRY_BYTES", "16777217")
	if ie := invalid(t, nil); len(ie.Problems) != 2 {
		t.Errorf("got %d problems; want 2:\n%v", len(ie.Problems), ie)
	}
}

func TestAnEmptyPrefixIsInvalid(t *testing.T) {
	isolate(t)
	ie := invalid(t, flags(t, "--prefix="))
	if !strings.Contains(ie.Error(), "redis.prefix") {
		t.Errorf("error does not mention redis.prefix: %v", ie)
	}
}

func TestAPasswordInAMalformedURLNeverAppearsInTheError(t *testing.T) {
	const secret = "S3cretPw"
	for _, raw := range []string{
		"redis://user:" + secret + "/x@host:6379",         // unencoded "/" in the password
		"redis://user:" + secret + "?q@host:6379",         // unencoded "?"
		"redis://user:" + secret + "#f@host:6379",         // unencoded "#"
		"redis://user:123/" + secret + "@host:6379",       // parses, but the "path" is the password's tail
		"redis://user:" + secret + "%zz@host:6379",        // bad escape
		"redis://user:" + secret + "@ho st:6379",          // bad host
		"redis://user:" + secret + "@host:port",           // bad port
		"redis://user:" + secret + "@[::1:6379",           // bad IPv6 literal
		"redis://user:" + secret + "@host:6379/0\x7f",     // control character
		"redis+sentinel://:" + secret + "/@h1:1,h2:2",     // sentinel
		"http://user:" + secret + "@host:6379",            // wrong scheme
		"redis://user:" + secret + "@host:6379/" + secret, // path is not a db
	} {
		t.Run(strings.ReplaceAll(raw, "/", "∕"), func(t *testing.T) {
			isolate(t)
			t.Setenv("MCP_REDIS_REDIS_URL", raw)
			ie := invalid(t, nil)
			if !strings.Contains(ie.Error(), "redis.url") {
				t.Errorf("error does not mention redis.url: %v", ie)
			}
			for _, leak := range []string{secret, secret[:4], secret[len(secret)-4:]} {
				if strings.Contains(ie.Error(), leak) {
					t.Errorf("error shows (part of) the password %q:\n%v", leak, ie)
				}
			}
			if err := config.ValidateURL(raw); err == nil || strings.Contains(err.Error(), secret[:4]) {
				t.Errorf("ValidateURL(%q) = %v; want an error without the password", raw, err)
			}
		})
	}
}

func TestValidateURLAcceptsEverySupportedForm(t *testing.T) {
	for _, raw := range []string{
		config.Embedded,
		"redis://127.0.0.1:6379",
		"redis://127.0.0.1:6379/",
		"redis://user:p%2Fw@127.0.0.1:6379/15",
		"rediss://cache.example.com:6380/0?skip_verify=true",
		"unix:///run/redis.sock",
		"unix:///run/redis.sock?db=2",
		"redis+sentinel://s1:26379,s2:26379?master_name=mymaster",
		"rediss+sentinel://s1:26379?master_name=mymaster",
		"redis+cluster://n1:7000,n2:7001",
		"rediss+cluster://n1:7000",
		"redis+cluster://n1:7000/0",
		"redis://[::1]:6379/0",
	} {
		if err := config.ValidateURL(raw); err != nil {
			t.Errorf("ValidateURL(%q) = %v; want nil", raw, err)
		}
	}
}

func TestValidateURLRejectsWhatCannotWork(t *testing.T) {
	for _, raw := range []string{
		"",
		"Embedded",
		"127.0.0.1:6379",
		"localhost",
		"http://127.0.0.1:6379",
		"redis+foo://h:1",
		"unix://",
		"redis://",
		"redis:///0",
		"redis://h:6379/zero",
		"redis://h:6379/0/1",
		"redis+cluster://n1:7000/3",
	} {
		if err := config.ValidateURL(raw); err == nil {
			t.Errorf("ValidateURL(%q) = nil; want an error", raw)
		}
	}
}

func TestStreamsGetReturnsEachStreamByItsName(t *testing.T) {
	c := fileConfig()
	want := map[string]int64{keyspace.AuditLog: 11, keyspace.CCWJUpdate: 12, keyspace.UserFeedback: 13, keyspace.WorkflowEvent: 14}
	for name, n := range want {
		if got := c.Streams.Get(name).MaxLen; got != n {
			t.Errorf("Streams.Get(%q).MaxLen = %d; want %d", name, got, n)
		}
	}
	if got := c.Streams.Get("nope"); got != (config.Stream{}) {
		t.Errorf("Streams.Get(unknown) = %+v; want zero", got)
	}
}

func TestValidateReportsEveryProblemOfAStructBuiltInCode(t *testing.T) {
	c := config.Defaults()
	c.Redis.URL = "ftp://x"
	c.Transport = "sse"
	c.Streams.UserFeedback.MaxLen = -1
	err := c.Validate()
	var ie *config.InvalidError
	if !errors.As(err, &ie) || len(ie.Problems) != 3 {
		t.Fatalf("Validate = %v; want an *InvalidError with 3 problems", err)
	}
}

// wait_replicas needs a Redis with replicas and a WAIT that fits in a
// call's Redis time; sharded pub/sub needs a real Redis 7.
func TestWaitReplicasAndShardedPubSubAreChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(*config.Redis)
		keys []string
	}{
		{"embedded with wait_replicas", func(r *config.Redis) { r.WaitReplicas = 1 }, []string{"redis.wait_replicas"}},
		{"negative wait_replicas", func(r *config.Redis) { r.URL = "redis://h:6379"; r.WaitReplicas = -1 }, []string{"redis.wait_replicas"}},
		{"wait_timeout not below timeout", func(r *config.Redis) {
			r.URL, r.WaitReplicas, r.WaitTimeout = "redis://h:6379", 1, r.Timeout
		}, []string{"redis.wait_timeout"}},
		{"embedded with sharded pub/sub", func(r *config.Redis) { r.ShardedPubSub = true }, []string{"redis.sharded_pubsub"}},
	} {
		c := config.Defaults()
		tc.set(&c.Redis)
		var ie *config.InvalidError
		if err := c.Validate(); !errors.As(err, &ie) || len(ie.Problems) != len(tc.keys) {
			t.Errorf("%s: Validate = %v; want %d problems", tc.name, err, len(tc.keys))
			continue
		}
		for i, k := range tc.keys {
			if !strings.HasPrefix(ie.Problems[i].Error(), k+":") {
				t.Errorf("%s: problem %q does not name %s", tc.name, ie.Problems[i], k)
			}
		}
	}
	c := config.Defaults()
	c.Redis.URL, c.Redis.WaitReplicas, c.Redis.WaitTimeout, c.Redis.ShardedPubSub = "redis+cluster://h:7000", 1, time.Second, true
	if err := c.Validate(); err != nil {
		t.Errorf("wait_replicas 1, wait_timeout 1s, sharded pub/sub over a cluster: %v", err)
	}
}

func TestEveryFlagIsDeclaredByAddFlags(t *testing.T) {
	fs := flags(t)
	for name := range config.Flags {
		if fs.Lookup(name) == nil {
			t.Errorf("AddFlags does not declare --%s", name)
		}
	}
	if fs.Lookup("config") == nil {
		t.Error("AddFlags does not declare --config")
	}
}

func TestTheShippedConfigYAMLLoadsToTheDefaults(t *testing.T) {
	shipped, err := filepath.Abs(filepath.Join("..", "..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(shipped); errors.Is(err, fs.ErrNotExist) {
		t.Skip("no config.yaml at the repository root")
	}
	isolate(t)
	if got, want := load(t, flags(t, "--config", shipped)), config.Defaults(); !reflect.DeepEqual(got, want) {
		t.Errorf("%s loads to %+v\nwant the defaults %+v", shipped, got, want)
	}
}

func TestRatePoliciesComeFromTheFileAndBurstIsRefused(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "rate:\n  policies:\n    api:\n      limit: 100\n      window: 10s\n")
	c, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Rate.Policies["api"]; got.Limit != 100 || got.Window != 10*time.Second {
		t.Errorf("api policy = %+v", got)
	}
	if _, ok := c.Rate.Policies["default"]; !ok {
		t.Errorf("the default policy is gone: %+v", c.Rate.Policies)
	}
	writeFile(t, "config.yaml", "rate:\n  policies:\n    api:\n      limit: 0\n      window: 1ns\n      burst: 5\n    \"bad:name\":\n      limit: 1\n      window: 1s\n")
	_, err = config.Load(nil)
	for _, want := range []string{"rate.policies.api.limit", "rate.policies.api.window", "rate.policies.api.burst", "bad:name"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not name %s", err, want)
		}
	}
}

func TestTheHTTPBoundsOnConnectionsAndSessionsAreChecked(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_TRANSPORT", "http")
	t.Setenv("MCP_REDIS_HTTP_MAX_CONNECTIONS", "8")
	t.Setenv("MCP_REDIS_HTTP_MAX_SESSIONS", "1")
	t.Setenv("MCP_REDIS_HTTP_SESSION_IDLE_TIMEOUT", "100ms")
	c := load(t, nil)
	if c.HTTP.MaxConnections != 8 || c.HTTP.MaxSessions != 1 || c.HTTP.SessionIdleTimeout != 100*time.Millisecond {
		t.Errorf("http bounds = %+v", c.HTTP)
	}
	t.Setenv("MCP_REDIS_HTTP_MAX_CONNECTIONS", "7")
	t.Setenv("MCP_REDIS_HTTP_MAX_SESSIONS", "0")
	t.Setenv("MCP_REDIS_HTTP_SESSION_IDLE_TIMEOUT", "25h")
	ie := invalid(t, nil)
	for _, want := range []string{"http.max_connections", "http.max_sessions", "http.session_idle_timeout"} {
		if !strings.Contains(ie.Error(), want) {
			t.Errorf("error does not name %s:\n%v", want, ie)
		}
	}
}

func TestTLSSettingsComeFromTheEnvironment(t *testing.T) {
	isolate(t)
	pki := testredis.NewPKI(t)
	t.Setenv("MCP_REDIS_REDIS_URL", "rediss://127.0.0.1:6380")
	t.Setenv("MCP_REDIS_REDIS_TLS_CA_FILE", pki.CAFile)
	t.Setenv("MCP_REDIS_REDIS_TLS_CERT_FILE", pki.ClientCert)
	t.Setenv("MCP_REDIS_REDIS_TLS_KEY_FILE", pki.ClientKey)
	t.Setenv("MCP_REDIS_REDIS_TLS_SERVER_NAME", "localhost")
	t.Setenv("MCP_REDIS_REDIS_TLS_MIN_VERSION", "1.3")
	t.Setenv("MCP_REDIS_REDIS_TLS_INSECURE_SKIP_VERIFY", "true")
	want := config.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey,
		ServerName: "localhost", MinVersion: "1.3", InsecureSkipVerify: true}
	if got := load(t, nil).Redis.TLS; got != want {
		t.Errorf("redis.tls = %+v\nwant %+v", got, want)
	}
}

func TestEveryTLSProblemIsReportedTogether(t *testing.T) {
	dir := isolate(t)
	pki, other := testredis.NewPKI(t), testredis.NewPKI(t)
	notPEM := writeFile(t, filepath.Join(dir, "not.pem"), "no certificate here\n")
	writeFile(t, "config.yaml", `
redis:
  url: rediss://127.0.0.1:6380
  tls:
    ca_file: `+notPEM+`
    cert_file: `+pki.ClientCert+`
    key_file: `+other.ClientKey+`
    min_version: "1.1"
`)
	ie := invalid(t, nil)
	for _, want := range []string{"redis.tls.ca_file: " + notPEM + " holds no PEM certificate",
		"redis.tls.cert_file: with key_file: tls: private key does not match public key",
		`redis.tls.min_version: "1.1" is not one of 1.2, 1.3`} {
		if !strings.Contains(ie.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, ie)
		}
	}
	if len(ie.Problems) != 3 {
		t.Errorf("%d problems; want 3:\n%v", len(ie.Problems), ie)
	}

	writeFile(t, "config.yaml", "redis:\n  url: rediss://h:6380\n  tls:\n    ca_file: /nonexistent/ca.pem\n    cert_file: "+pki.ClientCert+"\n")
	ie = invalid(t, nil)
	for _, want := range []string{"redis.tls.ca_file: open /nonexistent/ca.pem", "redis.tls.key_file: needed with cert_file"} {
		if !strings.Contains(ie.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, ie)
		}
	}
}

func TestTLSSettingsWithAURLWithoutTLSAreAProblemNamingRedisTLS(t *testing.T) {
	pki := testredis.NewPKI(t)
	for _, url := range []string{config.Embedded, "redis://h:6379", "unix:///run/redis.sock", "redis+sentinel://s:26379?master_name=m", "redis+cluster://n:7000"} {
		for _, s := range []config.TLS{{CAFile: pki.CAFile}, {MinVersion: "1.3"}, {InsecureSkipVerify: true}, {ServerName: "x"}} {
			c := config.Defaults()
			c.Redis.URL, c.Redis.TLS = url, s
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "redis.tls: set, but redis.url does not use TLS") {
				t.Errorf("%s with %+v: Validate = %v; want a problem naming redis.tls", url, s, err)
			}
		}
	}
	for _, url := range []string{"rediss://h:6380", "rediss+sentinel://s:26379?master_name=m", "rediss+cluster://n:7000"} {
		c := config.Defaults()
		c.Redis.URL = url
		c.Redis.TLS = config.TLS{CAFile: pki.CAFile, CertFile: pki.ClientCert, KeyFile: pki.ClientKey, MinVersion: "1.3", ServerName: "localhost"}
		if err := c.Validate(); err != nil {
			t.Errorf("%s with every TLS setting: %v", url, err)
		}
	}
	// The default min_version is no TLS setting: the defaults stay valid.
	if err := config.Defaults().Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

func TestHTTPUIIsOnForLoopbackByDefaultAndTakesABooleanOrAuto(t *testing.T) {
	isolate(t)
	for _, c := range []struct {
		file, listen string
		want         bool
	}{
		{"", "127.0.0.1:8080", true},
		{"", "[::1]:8080", true},
		{"", "10.0.0.5:8080", false},
		{"http:\n  ui: false\n", "127.0.0.1:8080", false},
		{"http:\n  ui: true\n", "10.0.0.5:8080", true},
		{"http:\n  ui: auto\n", "10.0.0.5:8080", false},
	} {
		writeFile(t, "config.yaml", c.file)
		cfg, err := config.Load(flags(t))
		if err != nil {
			t.Fatalf("%q: %v", c.file, err)
		}
		cfg.HTTP.Listen = c.listen
		if got := cfg.HTTP.ServesUI(); got != c.want {
			t.Errorf("%q on %s: ServesUI %v, want %v", c.file, c.listen, got, c.want)
		}
	}
	writeFile(t, "config.yaml", "transport: http\nhttp:\n  ui: sometimes\n")
	cfg, err := config.Load(flags(t))
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "http.ui") {
		t.Errorf("http.ui sometimes: %v, want a problem naming http.ui", err)
	}
}

// problemsOf loads a configuration that must be invalid and returns its
// problems as lines.
func problemsOf(t *testing.T) []string {
	t.Helper()
	ie := invalid(t, nil)
	out := make([]string, len(ie.Problems))
	for i, p := range ie.Problems {
		out[i] = p.Error()
	}
	return out
}

func TestAMisspeltVariableIsReportedWithTheSettingItWasMeantToBe(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "redis:\n  colour: blue\n")
	t.Setenv("MCP_REDIS_REDIS_URLL", "redis://typo:6379")
	t.Setenv("MCP_REDIS_LOG_LEVL", "debug")
	t.Setenv("MCP_REDIS_Http_Listen", "127.0.0.1:9090")
	t.Setenv("MCP_REDIS_NOTHING_LIKE_ANY_SETTING", "x")
	got := problemsOf(t)
	for _, want := range []string{
		"redis.colour: unknown key",
		"MCP_REDIS_REDIS_URLL: not a setting; did you mean MCP_REDIS_REDIS_URL?",
		"MCP_REDIS_LOG_LEVL: not a setting; did you mean MCP_REDIS_LOG_LEVEL?",
		"MCP_REDIS_Http_Listen: not a setting; did you mean MCP_REDIS_HTTP_LISTEN?",
		"MCP_REDIS_NOTHING_LIKE_ANY_SETTING: not a setting: a key is set by MCP_REDIS_ and the key in upper case with dots as underscores, as redis.url by MCP_REDIS_REDIS_URL",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("problems do not include %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 5 {
		t.Errorf("got %d problems; want 5 (the file's and the environment's together):\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestAnEmptyMisspeltVariableIsIgnoredLikeAnEmptySetting(t *testing.T) {
	// viper treats an empty variable as unset: it changes nothing either way.
	isolate(t)
	t.Setenv("MCP_REDIS_REDIS_URLL", "")
	_ = load(t, nil)
}

func TestTheProjectsOwnTestVariablesAreNotSettingsAndNoError(t *testing.T) {
	isolate(t)
	for _, name := range config.NotSettings {
		t.Setenv(name, "x")
	}
	t.Setenv("REDIS_URL", "redis://plain:6379")
	t.Setenv("MCP_REDIS_HTTP_AUTH_TOKENS", "ci=0123456789abcdef0123")
	c := load(t, nil)
	if c.Redis.URL != "redis://plain:6379" || c.HTTP.AuthTokens["ci"] != "0123456789abcdef0123" {
		t.Errorf("redis.url = %q, http.auth_tokens = %v", c.Redis.URL, c.HTTP.AuthTokens)
	}
	for _, name := range []string{"MCP_REDIS_TEST_URL", "MCP_REDIS_TOKEN", "MCP_REDIS_E2E_BIN", "MCP_REDIS_SCREENSHOTS"} {
		if !slices.Contains(config.NotSettings, name) {
			t.Errorf("%s is not in NotSettings", name)
		}
	}
}

// envRead matches where the repository's code and scripts read an
// MCP_REDIS_* variable.
var envRead = regexp.MustCompile(`(?:Getenv|LookupEnv)\("(MCP_REDIS_[A-Z0-9_]+)"|process\.env\.(MCP_REDIS_[A-Z0-9_]+)|\$\{(MCP_REDIS_[A-Z0-9_]+)`)

func TestEveryVariableTheRepositoryReadsIsASettingOrANotSetting(t *testing.T) {
	// A test variable added without NotSettings would make every server
	// the tests start refuse to run.
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".mjs", ".js", ".sh", ".yml", ".yaml":
		default:
			if filepath.Base(path) != "Makefile" {
				return nil
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range envRead.FindAllStringSubmatch(string(b), -1) {
			found[m[1]+m[2]+m[3]] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(found) == 0 {
		t.Fatal("found no MCP_REDIS_* variable read anywhere; is the pattern right?")
	}
	t.Logf("read: %v", slices.Sorted(maps.Keys(found)))
	isolate(t)
	for name := range found {
		t.Setenv(name, "x")
	}
	_, err = config.Load(nil)
	for name, path := range found {
		if err != nil && strings.Contains(err.Error(), name+": not a setting") {
			t.Errorf("%s (read in %s) is reported as not a setting; add it to config.NotSettings", name, path)
		}
	}
}

func TestARatePolicyGivenOnlyInTheEnvironmentIsUsed(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_RATE_POLICIES_STRICT_API_LIMIT", "5")
	t.Setenv("MCP_REDIS_RATE_POLICIES_STRICT_API_WINDOW", "10s")
	t.Setenv("MCP_REDIS_RATE_POLICIES_DEFAULT_LIMIT", "70")
	got := load(t, nil).Rate.Policies
	want := map[string]config.RatePolicy{
		"strict_api": {Limit: 5, Window: 10 * time.Second},
		"default":    {Limit: 70, Window: time.Minute},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rate.policies = %+v; want %+v", got, want)
	}
}

func TestAnEnvironmentPolicyFillsInAndOverridesAFilePolicy(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "rate:\n  policies:\n    strict-api:\n      limit: 1\n    bulk:\n      limit: 100\n      window: 1s\n")
	// STRICT_API, since a shell cannot export STRICT-API.
	t.Setenv("MCP_REDIS_RATE_POLICIES_STRICT_API_WINDOW", "2s")
	t.Setenv("MCP_REDIS_RATE_POLICIES_BULK_LIMIT", "200")
	got := load(t, nil).Rate.Policies
	want := map[string]config.RatePolicy{
		"strict-api": {Limit: 1, Window: 2 * time.Second},
		"bulk":       {Limit: 200, Window: time.Second},
		"default":    {Limit: 60, Window: time.Minute},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rate.policies = %+v; want %+v", got, want)
	}
}

func TestAnEnvironmentPolicyThatCannotWorkIsReported(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_RATE_POLICIES_HALF_LIMIT", "5")
	t.Setenv("MCP_REDIS_RATE_POLICIES_BURSTY_LIMIT", "5")
	t.Setenv("MCP_REDIS_RATE_POLICIES_BURSTY_WINDOW", "1s")
	t.Setenv("MCP_REDIS_RATE_POLICIES_BURSTY_BURST", "9")
	t.Setenv("MCP_REDIS_RATE_POLICIES_TYPO_LIMT", "5")
	t.Setenv("MCP_REDIS_RATE_POLICIES_A:B_LIMIT", "5")
	got := problemsOf(t)
	for _, want := range []string{
		"rate.policies.half.window: 0 or not set: a policy needs a window (10ms to 24h) and a limit",
		"MCP_REDIS_RATE_POLICIES_BURSTY_BURST: not supported: the limiter is an exact sliding window, which never allows more than limit in any window; " +
			"set MCP_REDIS_RATE_POLICIES_BURSTY_LIMIT and MCP_REDIS_RATE_POLICIES_BURSTY_WINDOW",
		"MCP_REDIS_RATE_POLICIES_TYPO_LIMT: not a setting; did you mean MCP_REDIS_RATE_POLICIES_TYPO_LIMIT?",
		"MCP_REDIS_RATE_POLICIES_A:B_LIMIT: policy names are 1 to 64 of a-z, 0-9, _ and - (the variable's name in lower case)",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("problems do not include %q:\n%s", want, strings.Join(got, "\n"))
		}
	}
	if len(got) != 4 {
		t.Errorf("got %d problems; want 4:\n%s", len(got), strings.Join(got, "\n"))
	}
}

func TestATokenVariableWorksForATokenTheFileNamesAndIsExplainedOtherwise(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "http:\n  auth_tokens:\n    ci: aaaaaaaaaaaaaaaaaaaa\n")
	t.Setenv("MCP_REDIS_HTTP_AUTH_TOKENS_CI", "bbbbbbbbbbbbbbbbbbbb")
	if got := load(t, nil).HTTP.AuthTokens; got["ci"] != "bbbbbbbbbbbbbbbbbbbb" {
		t.Errorf("http.auth_tokens = %v; want ci from MCP_REDIS_HTTP_AUTH_TOKENS_CI", got)
	}
	t.Setenv("MCP_REDIS_HTTP_AUTH_TOKENS_ALICE", "cccccccccccccccccccc")
	want := "MCP_REDIS_HTTP_AUTH_TOKENS_ALICE: not a setting: tokens are given as MCP_REDIS_HTTP_AUTH_TOKENS=name=token,… or under http.auth_tokens in the file"
	if got := problemsOf(t); !slices.Contains(got, want) || len(got) != 1 {
		t.Errorf("problems = %q; want only %q", got, want)
	}
}

// The HTTP settings' values are checked over stdio too; only what depends
// on serving HTTP (a non-loopback listen needs a token) waits for it.
func TestHTTPSettingsAreCheckedWhateverTheTransport(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", "http:\n  max_body_bytes: 10\n  read_timeout: 1ns\n  auth_tokens:\n    ci: short\n")
	ie := invalid(t, flags(t, "--transport", "stdio"))
	msg := ie.Error()
	for _, want := range []string{"http.max_body_bytes: 10 is out of range", "http.read_timeout: 1ns is out of range", "http.auth_tokens.ci: the token is shorter"} {
		if !strings.Contains(msg, want) {
			t.Errorf("over stdio the error does not say %q:\n%s", want, msg)
		}
	}

	isolate(t)
	writeFile(t, "config.yaml", "http:\n  listen: 0.0.0.0:8080\n")
	if c := load(t, flags(t, "--transport", "stdio")); c.HTTP.Listen != "0.0.0.0:8080" {
		t.Errorf("listen %q", c.HTTP.Listen)
	}
	if msg := invalid(t, flags(t, "--transport", "http")).Error(); !strings.Contains(msg, "is not a loopback address, and no bearer token is set") {
		t.Errorf("over http a public listen without tokens: %s", msg)
	}
}

// Every key with a valid range states it in config.yaml's comment above the
// key, in the words the error uses: each key is set out of range, and the
// range its error gives must be in that comment.
func TestConfigYAMLStatesEveryKeysValidRange(t *testing.T) {
	bad := map[string]string{
		"redis.timeout": "1ns", "redis.wait_replicas": "99", "limits.max_entry_bytes": "1",
		"streams.max_block": "1h", "groups.reclaim_idle": "1ms", "groups.max_deliveries": "0",
		"stdio.max_message_bytes": "1", "locks.max_ttl": "1ns", "locks.max_wait": "1h",
		"audit.max_clock_skew": "1ns", "audit.checkpoint_every": "0", "audit.checkpoint_interval": "1ns",
		"idempotency.ttl": "1ms", "streams.audit_log_stream.maxlen": "0",
		"rate.policies.default.limit": "99999", "rate.policies.default.window": "1ns",
		"http.max_body_bytes": "1", "http.read_header_timeout": "1ns", "http.read_timeout": "1ns",
		"http.write_timeout": "100h", "http.idle_timeout": "1ns", "http.shutdown_timeout": "1ns",
		"http.session_idle_timeout": "1ns", "http.max_connections": "1", "http.max_sessions": "0",
		"http.oauth.clock_skew": "1h", "http.oauth.jwks_refresh_interval": "1s",
	}
	yamlText, err := os.ReadFile(filepath.Join("..", "..", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	comments := keyComments(string(yamlText))
	rangeOf := regexp.MustCompile(`\(([^()]* to [^()]*)\)|(at least \S+)`)
	for key, value := range bad {
		isolate(t)
		var file strings.Builder
		parts := strings.Split(key, ".")
		for i, p := range parts {
			file.WriteString(strings.Repeat("  ", i) + p + ":")
			if i == len(parts)-1 {
				file.WriteString(" " + value)
			}
			file.WriteString("\n")
		}
		writeFile(t, "config.yaml", file.String())
		ie := invalid(t, flags(t))
		var found bool
		for _, p := range ie.Problems {
			msg := p.Error()
			if !strings.HasPrefix(msg, key+": ") {
				continue
			}
			m := rangeOf.FindStringSubmatch(msg)
			if m == nil {
				continue
			}
			found = true
			want := m[1] + m[2]
			if !strings.Contains(comments[key], want) {
				t.Errorf("config.yaml's comment on %s does not state its range %q (the error: %s); the comment: %q", key, want, msg, comments[key])
			}
		}
		if !found {
			t.Errorf("%s: %s gave no range error: %v", key, value, ie)
		}
	}
}

// keyComments maps each key of a YAML text to the comment lines directly
// above it (and any comment on its own line), by indentation; the comment
// on a map key also covers the keys under it.
func keyComments(text string) map[string]string {
	out := map[string]string{}
	var path []string
	var indents []int
	var comment []string
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			comment = append(comment, strings.TrimSpace(strings.TrimPrefix(trimmed, "#")))
			continue
		}
		name, _, ok := strings.Cut(trimmed, ":")
		if trimmed == "" || !ok || strings.HasPrefix(trimmed, "-") {
			comment = nil
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		for len(indents) > 0 && indents[len(indents)-1] >= indent {
			indents, path = indents[:len(indents)-1], path[:len(path)-1]
		}
		parent := strings.Join(path, ".")
		path, indents = append(path, name), append(indents, indent)
		key := strings.Join(path, ".")
		out[key] = out[parent] + " " + strings.Join(comment, " ")
		if _, c, ok := strings.Cut(trimmed, " #"); ok {
			out[key] += " " + c
		}
		comment = nil
	}
	return out
}

// Token scopes come from the file or, as name=scopes pairs, from the
// environment; a scope that is no scope, and a name that is no token, are
// errors naming the key.
func TestTokenScopesAreReadAndChecked(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_HTTP_AUTH_TOKENS", "ci=0123456789abcdef0123,bob=abcdef0123456789abcd")
	t.Setenv("MCP_REDIS_HTTP_TOKEN_SCOPES", "ci=streams:read locks")
	c := load(t, nil)
	if got := c.HTTP.TokenScopes["ci"]; got != "streams:read locks" {
		t.Errorf("http.token_scopes.ci = %q", got)
	}
	if s, err := config.ParseScopes(c.HTTP.TokenScopes["ci"]); err != nil || !slices.Equal(s, []string{"locks", "streams:read"}) {
		t.Errorf("ParseScopes = %v, %v", s, err)
	}
	t.Setenv("MCP_REDIS_HTTP_TOKEN_SCOPES", "ci=streams:raed,eve=admin,bob=")
	msg := invalid(t, nil).Error()
	for _, want := range []string{
		`http.token_scopes.ci: "streams:raed" is not a scope (streams:read, streams:write, streams:consume, locks, rate, admin); did you mean streams:read?`,
		"http.token_scopes.eve: names no token of http.auth_tokens",
		"http.token_scopes.bob: no scopes",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s\nlacks %q", msg, want)
		}
	}
}

// tools.read_only comes from --read-only, tools.enabled and
// tools.disabled from the file or comma-separated variables.
func TestToolsSettingsReachTheStruct(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_TOOLS_ENABLED", "read_stream,get_context")
	t.Setenv("MCP_REDIS_TOOLS_DISABLED", "get_context")
	c := load(t, flags(t, "--read-only"))
	if !c.Tools.ReadOnly || !slices.Equal(c.Tools.Enabled, []string{"read_stream", "get_context"}) || !slices.Equal(c.Tools.Disabled, []string{"get_context"}) {
		t.Errorf("tools = %+v", c.Tools)
	}
}

func TestOAuthIsReadFromTheFileKeepingEachScopeAsWritten(t *testing.T) {
	dir := isolate(t)
	jwks := writeFile(t, filepath.Join(dir, "jwks.json"), `{"keys":[{"kty":"EC","crv":"P-256","x":"a","y":"b"}]}`)
	writeFile(t, "config.yaml", `transport: http
http:
  listen: 0.0.0.0:8080
  oauth:
    issuer: https://auth.example.com
    resource: https://mcp.example.com/mcp
    jwks_file: `+jwks+`
    scopes:
      MCP.Read: [streams:read]
      https://api.example.com/write: [streams:write, locks]
`)
	c := load(t, flags(t))
	o := c.HTTP.OAuth
	want := map[string][]string{"MCP.Read": {"streams:read"}, "https://api.example.com/write": {"streams:write", "locks"}}
	if !o.Enabled() || !reflect.DeepEqual(o.Scopes, want) || !reflect.DeepEqual(o.Servers(), []string{"https://auth.example.com"}) ||
		!reflect.DeepEqual(o.Algorithms, []string{"RS256", "ES256"}) || o.ClockSkew != time.Minute || o.NameClaim != "sub" {
		t.Errorf("%+v", o)
	}
}

func TestOAuthFromTheEnvironmentNeedsNoStaticTokenBeyondLoopback(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_HTTP_OAUTH_ISSUER", "https://auth.example.com")
	t.Setenv("MCP_REDIS_HTTP_OAUTH_RESOURCE", "https://mcp.example.com/mcp")
	t.Setenv("MCP_REDIS_HTTP_OAUTH_JWKS_URL", "https://auth.example.com/jwks")
	t.Setenv("MCP_REDIS_HTTP_OAUTH_ALGORITHMS", "ES256,EdDSA")
	t.Setenv("MCP_REDIS_HTTP_OAUTH_SCOPES", "mcp:read=streams:read,mcp:write=streams:write locks")
	c := load(t, flags(t, "--transport", "http", "--listen", "0.0.0.0:8080"))
	o := c.HTTP.OAuth
	if o.JWKSURL != "https://auth.example.com/jwks" || !reflect.DeepEqual(o.Algorithms, []string{"ES256", "EdDSA"}) ||
		!reflect.DeepEqual(o.Scopes, map[string][]string{"mcp:read": {"streams:read"}, "mcp:write": {"streams:write", "locks"}}) {
		t.Errorf("%+v", o)
	}
	if got := (config.OAuth{}).GrantedScopes(); len(got) != len(config.Scopes) || !reflect.DeepEqual(got["locks"], []string{"locks"}) {
		t.Errorf("the default mapping: %v", got)
	}
}

func TestOAuthProblemsAreReportedAllAtOnce(t *testing.T) {
	isolate(t)
	writeFile(t, "config.yaml", `http:
  oauth:
    issuer: http://auth.example.com
    resource: https://mcp.example.com/mcp#frag
    jwks_url: https://auth.example.com/jwks
    jwks_file: /nonexistent
    algorithms: [none, HS256, RS256, XX1]
    scopes:
      "mcp read": [streams:raed]
      empty: []
    name_claim: "a b"
`)
	ie := invalid(t, flags(t))
	msg := ie.Error()
	for _, want := range []string{
		`http.oauth.issuer: "http://auth.example.com" is not https`,
		"http.oauth.resource: \"https://mcp.example.com/mcp#frag\" has a fragment",
		"http.oauth.jwks_file: set with http.oauth.jwks_url",
		"http.oauth.algorithms: none is refused",
		"http.oauth.algorithms: HS256 is refused",
		`http.oauth.algorithms: "XX1" is not one of`,
		`http.oauth.scopes: "mcp read" is not an OAuth scope`,
		"did you mean streams:read?",
		"http.oauth.scopes.empty: grants nothing",
		`http.oauth.name_claim: "a b" is not a claim name`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestOAuthKeysWithoutAnIssuerAreRefusedNamingIt(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_HTTP_OAUTH_RESOURCE", "https://mcp.example.com/mcp")
	ie := invalid(t, flags(t))
	if !strings.Contains(ie.Error(), "http.oauth.resource: set, but http.oauth.issuer is empty") {
		t.Error(ie)
	}
	isolate(t)
	t.Setenv("MCP_REDIS_HTTP_OAUTH_ISSUER", "https://auth.example.com")
	ie = invalid(t, flags(t))
	for _, want := range []string{"http.oauth.resource: needed", "http.oauth.jwks_url: needed"} {
		if !strings.Contains(ie.Error(), want) {
			t.Errorf("missing %q in %v", want, ie)
		}
	}
}

// Token namespaces come from the file or the environment; a namespace
// that is not a name, one that makes a prefix Redis keys cannot carry,
// and a name that is no token are errors naming the key.
func TestTokenNamespacesAreReadAndChecked(t *testing.T) {
	isolate(t)
	t.Setenv("MCP_REDIS_HTTP_AUTH_TOKENS", "ci=0123456789abcdef0123,bob=abcdef0123456789abcd")
	t.Setenv("MCP_REDIS_HTTP_TOKEN_NAMESPACES", "ci=teamA,bob=teamA")
	c := load(t, nil)
	if got := c.HTTP.Namespaces(); !slices.Equal(got, []string{"teamA"}) {
		t.Errorf("namespaces = %v", got)
	}
	t.Setenv("MCP_REDIS_HTTP_TOKEN_NAMESPACES", "ci=team a,eve=x")
	msg := invalid(t, nil).Error()
	for _, want := range []string{
		`http.token_namespaces.ci: "team a": a namespace is 1 to 32 of A-Z, a-z, 0-9, _ and -`,
		"http.token_namespaces.eve: names no token of http.auth_tokens",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s\nlacks %q", msg, want)
		}
	}
	t.Setenv("MCP_REDIS_HTTP_TOKEN_NAMESPACES", "ci="+strings.Repeat("n", 32))
	t.Setenv("MCP_REDIS_REDIS_PREFIX", strings.Repeat("p", 40)+":")
	if msg := invalid(t, nil).Error(); !strings.Contains(msg, "http.token_namespaces: the namespace "+strings.Repeat("n", 32)+" makes the prefix") {
		t.Errorf("a prefix too long for its namespace: %s", msg)
	}
}

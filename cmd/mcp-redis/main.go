// Command mcp-redis is an MCP server that gives LLM agents typed, validated,
// audited Redis primitives for coordinating their work.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/audit"
	"github.com/mcp-redis/mcp-redis/internal/config"
	"github.com/mcp-redis/mcp-redis/internal/keyspace"
)

func main() {
	if err := root().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mcp-redis:", err)
		os.Exit(1)
	}
}

func root() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp-redis",
		Short: "MCP server: Redis streams, pub/sub, workflow context, locks and rate limits for LLM agents",
		Long: `mcp-redis serves the Model Context Protocol over stdio or HTTP. Its tools
append to and read Redis streams (audit trail, context-window deltas,
feedback, workflow events) and announce every write on pub/sub, keep each
workflow's current context, take and give back distributed locks with
fencing tokens, and make rate-limit decisions under configured policies.
Every entry is stamped with who wrote it, and the audit trail is a hash
chain with signed checkpoints that "mcp-redis audit verify" checks.

Configuration: defaults < config.yaml (--config PATH, else ./config.yaml when
present) < MCP_REDIS_* environment (redis.url is MCP_REDIS_REDIS_URL; a plain
REDIS_URL is used when that is unset) < flags. With no configuration the
server runs on an in-process Redis that keeps nothing.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.AddCommand(serveCmd(), schemasCmd(), auditCmd(), migrateCmd(), tailCmd(), versionCmd())
	return cmd
}

func serveCmd() *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve MCP over stdio (the default) or HTTP",
		Long: `Serve MCP over stdio: a host (Claude Desktop and the like) spawns the
process and speaks JSON-RPC on its stdin and stdout. Logs go to stderr.
Started in a terminal, it says so on stderr and waits for a message.

With --transport http, serve on one listener (--listen, default
127.0.0.1:8080): Streamable HTTP at /mcp, the legacy HTTP+SSE transport at
/sse (messages to /message), /healthz, /readyz (Redis answers PING),
/metrics (Prometheus) and the live dashboard at /ui (read-only; on by
default on loopback, http.ui). Beyond loopback the server needs bearer tokens
(http.auth_tokens, or MCP_REDIS_HTTP_AUTH_TOKENS="name=token,…").
SIGINT/SIGTERM drain calls in flight, then exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			log := newLogger(cfg.Log.Level)
			a, err := app.New(cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := a.CheckRights(ctx); err != nil {
				return err
			}
			log.Info("serving", "transport", cfg.Transport, "version", app.Version, "prefix", cfg.Redis.Prefix)
			if cfg.Transport == "http" {
				return a.ServeHTTP(ctx, nil)
			}
			if term.IsTerminal(int(os.Stdin.Fd())) {
				fmt.Fprint(os.Stderr, terminalHint)
			}
			in, restoreIn := pollable(os.Stdin)
			defer restoreIn()
			out, restoreOut := pollable(os.Stdout)
			defer restoreOut()
			return a.ServeStdio(ctx, in, out)
		},
	}
	config.AddFlags(cmd.Flags())
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile (go tool pprof) of the whole run to this file, at exit")
	return cmd
}

// startCPUProfile profiles the process's CPU into a new file at path until
// the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}, nil
}

// terminalHint is said on stderr when serve's stdin is a terminal: a
// person, not a host, started it, and it seems to hang.
const terminalHint = `mcp-redis serve: stdin is a terminal. This command speaks MCP (JSON-RPC,
one message per line) on stdin and stdout, for a host that starts it
(Claude Desktop, an IDE, an agent); it is waiting for one now. To try it
by hand, paste a message such as
  {"jsonrpc":"2.0","id":1,"method":"ping"}
To serve over the network instead: mcp-redis serve --transport http
Ctrl-D (end of input) stops it.
`

func schemasCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "schemas",
		Short: "Write every tool's JSON Schema files into a directory",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files, err := app.WriteSchemas(out)
			if err != nil {
				return err
			}
			slices.Sort(files)
			for _, f := range files {
				fmt.Fprintln(cmd.OutOrStdout(), f)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "schemas", "directory to write the schema files into")
	return cmd
}

func auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Verify the audit hash chain; print the checkpoint signing key",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(auditVerifyCmd(), auditPublicKeyCmd())
	return cmd
}

func auditVerifyCmd() *cobra.Command {
	var o app.VerifyOptions
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Walk a chained stream and its signed checkpoints; exit 1 naming the first broken entry",
		Long: `Walk the hash chain of a chained stream (audit.chain; audit_log_stream by
default) from its oldest entry (or --from), recompute every entry's hash,
check every prev_hash against the entry before, the chain head against the
last entry, and every checkpoint signed by the trusted key (--public-key,
else the public half of audit.signing_key_file) against the entry it names.
Redis is found as by serve (config.yaml, MCP_REDIS_*, --redis-url).

Exit 0 with a summary when the chain is intact; exit 1 naming the first
entry that was modified, deleted, inserted or reordered, or the checkpoint
that shows a rewrite.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Redis.URL == config.Embedded {
				return fmt.Errorf("redis.url is embedded: the embedded Redis lives in the serving process; point --redis-url at the Redis to verify")
			}
			if o.Stream == "" {
				o.Stream = keyspace.AuditLog
			}
			if !slices.Contains(keyspace.Streams, o.Stream) {
				return fmt.Errorf("--stream %q is not one of %s", o.Stream, strings.Join(keyspace.Streams, ", "))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			start := time.Now()
			r, trusted, err := app.Verify(ctx, cfg, o, newLogger(cfg.Log.Level))
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			secs := time.Since(start).Seconds()
			fmt.Fprintf(out, "stream %s: %d entries checked in %.1fs (%.0f entries/s)", r.Key, r.Checked, secs, float64(r.Checked)/max(secs, 1e-9))
			if r.Checked > 0 {
				fmt.Fprintf(out, ", %s to %s", r.First, r.Last)
				if r.FromGenesis {
					fmt.Fprint(out, " (from the genesis)")
				} else {
					fmt.Fprint(out, " (the first entry's predecessor is trimmed or before --from)")
				}
			}
			fmt.Fprintln(out)
			if r.Unchained > 0 {
				fmt.Fprintf(out, "%d entries before the chain began were skipped\n", r.Unchained)
			}
			switch {
			case !trusted:
				fmt.Fprintln(out, "checkpoints: not checked (no public key: pass --public-key)")
			case r.Checkpoint != nil:
				c := r.Checkpoint
				fmt.Fprintf(out, "checkpoints: %d matched; last signed checkpoint: entry %s, hash %s, signed %s by key %s\n", r.Checkpoints, c.EntryID, c.Hash, c.Time, c.KeyID)
			default:
				fmt.Fprintf(out, "checkpoints: none signed by the trusted key in the range checked\n")
			}
			if r.OtherKeys > 0 {
				fmt.Fprintf(out, "%d checkpoints signed by other keys were not checked\n", r.OtherKeys)
			}
			if p := r.Problem; p != nil {
				return fmt.Errorf("the chain is broken at entry %s (%s): %s", p.EntryID, p.Kind, p.Reason)
			}
			fmt.Fprintln(out, "ok: the chain is intact")
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Stream, "stream", keyspace.AuditLog, "chained stream to verify, by name without the prefix")
	cmd.Flags().StringVar(&o.From, "from", "", "entry id to start at (default: the oldest entry kept)")
	cmd.Flags().StringVar(&o.PublicKeyFile, "public-key", "", "PEM public key that signs the checkpoints (default: from audit.signing_key_file)")
	config.AddFlags(cmd.Flags())
	return cmd
}

func auditPublicKeyCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "public-key",
		Short: "Print the public key that checks the audit checkpoints (PEM), generating the signing key when absent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			pub, path, err := app.PublicKey(cfg)
			if err != nil {
				return err
			}
			pem := audit.MarshalPublicKey(pub)
			if out != "" {
				if err := os.WriteFile(out, pem, 0o644); err != nil {
					return fmt.Errorf("write the public key: %w", err)
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "key %s (key id %s)\n", path, audit.KeyID(pub))
			_, err = cmd.OutOrStdout().Write(pem)
			return err
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "also write the public key to this file")
	config.AddFlags(cmd.Flags())
	return cmd
}

func migrateCmd() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Carry keys of the earlier layout ({mcp:…}:<kind>) over to their current names under the prefix",
		Long: `Earlier releases named their helper keys "{mcp:<main key>}:<kind>…", outside
redis.prefix. This command finds them (SCAN) and carries each over to its
current name, "mcp:<kind>:{mcp:<main key>}…", in the same cluster slot:

  fencing counters        the larger of the earlier and the current value is
                          kept (fencing tokens never go backwards); the
                          earlier key is deleted
  contexts, chain heads,  renamed when the current key does not exist; else
  checkpoints             left in place and reported (exit 1)
  idempotency records,    renamed with their remaining TTL when the current
  lock owner labels       key does not exist; else left to expire

Run it once when upgrading, best with the earlier servers stopped and before
the new ones start. Running it again changes nothing. --dry-run reports what
it would do and writes nothing. Redis is found as by serve.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			if cfg.Redis.URL == config.Embedded {
				return fmt.Errorf("redis.url is embedded: the embedded Redis keeps nothing to migrate; point --redis-url at the Redis to migrate")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.OutOrStdout()
			would := ""
			if dryRun {
				would = "would be "
			}
			var n, left int
			err = app.Migrate(ctx, cfg, dryRun, newLogger(cfg.Log.Level), func(m app.Move) {
				n++
				fmt.Fprintf(out, "%s%s %s -> %s", would, m.Done, m.Old, m.New)
				if m.Detail != "" {
					fmt.Fprintf(out, " (%s)", m.Detail)
				}
				fmt.Fprintln(out)
				if m.Durable() {
					left++
				}
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "%d keys of the earlier layout under prefix %s\n", n, cfg.Redis.Prefix)
			if left > 0 {
				return fmt.Errorf("%d contexts, chain heads or checkpoint streams were left under their earlier names because the current key exists; compare them and delete the one not wanted", left)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report what would be carried over; write nothing")
	config.AddFlags(cmd.Flags())
	return cmd
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the semantic version and the commit built",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "mcp-redis %s (commit %s)\n", app.Version, app.Commit)
		},
	}
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// Command mcp-redis is an MCP server that gives LLM agents typed, validated,
// audited Redis primitives for coordinating their work.
package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
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

Configuration: defaults < config.yaml (--config PATH, else ./config.yaml when
present) < MCP_REDIS_* environment (redis.url is MCP_REDIS_REDIS_URL; a plain
REDIS_URL is used when that is unset) < flags. With no configuration the
server runs on an in-process Redis that keeps nothing.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.CompletionOptions.DisableDefaultCmd = true
	cmd.AddCommand(serveCmd(), schemasCmd(), versionCmd())
	return cmd
}

func serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve MCP over stdio (the default) or HTTP",
		Long: `Serve MCP over stdio: a host (Claude Desktop and the like) spawns the
process and speaks JSON-RPC on its stdin and stdout. Logs go to stderr.

With --transport http, serve on one listener (--listen, default
127.0.0.1:8080): Streamable HTTP at /mcp, the legacy HTTP+SSE transport at
/sse (messages to /message), /healthz, /readyz (Redis answers PING) and
/metrics (Prometheus). Beyond loopback the server needs bearer tokens
(http.auth_tokens, or MCP_REDIS_HTTP_AUTH_TOKENS="name=token,…").
SIGINT/SIGTERM drain calls in flight, then exit 0.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			log := newLogger(cfg.Log.Level)
			a, err := app.New(cfg, log)
			if err != nil {
				return err
			}
			defer a.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log.Info("serving", "transport", cfg.Transport, "version", app.Version, "prefix", cfg.Redis.Prefix)
			if cfg.Transport == "http" {
				return a.ServeHTTP(ctx, nil)
			}
			return a.ServeStdio(ctx, os.Stdin, os.Stdout)
		},
	}
	config.AddFlags(cmd.Flags())
	return cmd
}

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

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "mcp-redis", app.Version)
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

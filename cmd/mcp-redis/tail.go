package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mcp-redis/mcp-redis/internal/app"
	"github.com/mcp-redis/mcp-redis/internal/config"
)

func tailCmd() *cobra.Command {
	var o app.TailOptions
	cmd := &cobra.Command{
		Use:   "tail [STREAM…]",
		Short: "Print the entries of the streams, merged in time order; --follow keeps printing new ones",
		Long: `Print the entries of the server's streams, read straight from Redis, merged
in id (time) order: audit_log_stream, ccwj_update_stream, user_feedback and
workflow_events, named without the prefix (none: all four). Redis is found
as by serve (config.yaml, MCP_REDIS_*, --redis-url, --prefix).

Without --from: the last 10 entries of each stream (that match the filters).
--from starts at an entry id (1767323045678-0; - for the oldest kept), an
RFC 3339 time (2026-01-02T03:04:05Z) or a negative duration (-10m: ten
minutes ago, by Redis's clock, which the entry ids follow).

--filter field=value (repeatable) keeps the entries whose field equals the
value as Redis holds it (status=error, workflow_id=wf-1); a field given twice
matches either value, different fields must all match. A field no chosen
stream has is an error.

--follow keeps printing the entries appended (XREAD BLOCK) until Ctrl-C
(SIGINT or SIGTERM), then exits 0.

Each entry is one line: its time (its timestamp, else its id's), stream, id,
the key fields of its pub/sub notice and a short rest; in colour when stdout
is a terminal and NO_COLOR is not set. --json prints one JSON object per
line instead: {"stream":…,"id":…,"fields":{…}}, the fields decoded as
read_stream decodes them.

The embedded Redis (redis.url embedded, the default) lives inside the
serving process: the running server logs how to reach it,
  embedded redis: inspect it with redis-cli … command="redis-cli -u redis://:<password>@127.0.0.1:<port>"
and tail reads it with that URL:
  mcp-redis tail --redis-url redis://:<password>@127.0.0.1:<port>`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(cmd.Flags())
			if err != nil {
				return err
			}
			o.Streams = args
			out := cmd.OutOrStdout()
			f, _ := out.(*os.File)
			o.Color = !o.JSON && colorful(f)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return app.Tail(ctx, cfg, o, out, newLogger(cfg.Log.Level))
		},
	}
	cmd.Flags().BoolVarP(&o.Follow, "follow", "f", false, "keep printing the entries appended, until Ctrl-C")
	cmd.Flags().StringVar(&o.From, "from", "", "start at an entry id, an RFC 3339 time or a negative duration (-10m) (default: the last 10 entries of each stream)")
	cmd.Flags().StringArrayVar(&o.Filters, "filter", nil, "only entries whose field equals value: field=value (repeatable)")
	cmd.Flags().BoolVar(&o.JSON, "json", false, `one JSON object per line: {"stream","id","fields"}`)
	config.AddFlags(cmd.Flags())
	return cmd
}

// colorful reports whether f is a terminal that takes colour: not when
// NO_COLOR is set (no-color.org) or TERM is dumb.
func colorful(f *os.File) bool {
	if f == nil || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

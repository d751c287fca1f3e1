#!/bin/sh
# The bundle's command on Linux: an MCPB host picks a command per operating
# system only (platform_overrides is keyed by Node's process.platform, with
# no key for the CPU), and Linux has no universal binaries, so this picks
# the binary of the machine's architecture and becomes it (exec: the host's
# stdin, stdout and signals reach the server itself).
dir=$(dirname "$0")
case $(uname -m) in
x86_64 | amd64) arch=amd64 ;;
aarch64 | arm64) arch=arm64 ;;
*)
	echo "mcp-redis: this bundle has no binary for $(uname -s) $(uname -m); build one with make build" >&2
	exit 1
	;;
esac
exec "$dir/mcp-redis-linux-$arch" "$@"

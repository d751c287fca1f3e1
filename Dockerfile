# syntax=docker/dockerfile:1
#
# mcp-redis: a static binary in a distroless, non-root image.
#
# Build:
#   docker build -t mcp-redis --build-arg VERSION=$(git describe --tags --match 'v[0-9]*' --dirty) \
#     --build-arg COMMIT=$(git rev-parse --short=12 HEAD) .
# `make docker-build-local` runs the same go build command without Docker
# (deploy/deploy_test.go checks that the two keep the same flags).
#
# Run over stdio (the default), for an MCP host that starts the container:
#   docker run -i --rm -e MCP_REDIS_REDIS_URL=redis://host:6379/0 mcp-redis
#
# Run over HTTP (Streamable HTTP at /mcp, SSE at /sse, /healthz, /readyz,
# /metrics). Inside a container the server must listen on 0.0.0.0, and a
# non-loopback listen refuses to start without a bearer token (16+ bytes):
#   docker run --rm -p 127.0.0.1:8080:8080 \
#     -e MCP_REDIS_REDIS_URL=redis://host:6379/0 \
#     -e MCP_REDIS_TRANSPORT=http \
#     -e MCP_REDIS_HTTP_LISTEN=0.0.0.0:8080 \
#     -e MCP_REDIS_HTTP_AUTH_TOKENS="me=$(openssl rand -hex 24)" \
#     mcp-redis
# (or the same with `serve --transport http --listen 0.0.0.0:8080` as the
# command). The environment overrides /etc/mcp-redis/config.yaml.
# docker-compose.yml runs it this way, next to Redis.
#
# No HEALTHCHECK: distroless has no shell, curl or wget to probe /healthz,
# and the binary has no probe command; a HEALTHCHECK would always fail. In
# HTTP mode the orchestrator should probe GET /healthz (liveness) and
# GET /readyz (Redis answers PING); compose gates start-up on the Redis
# healthcheck instead. Over stdio there is nothing to probe.

# The go line of go.mod (1.26.x) must not be newer than the image's Go: the
# golang images set GOTOOLCHAIN=local. Pull a fresh golang:1.26 image if the
# build says go.mod requires a newer go.
ARG GO_VERSION=1.26

# The build runs on the build machine's platform and cross-compiles to the
# target platform (docker buildx build --platform linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=v0.0.0-dev
ARG COMMIT=unknown
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/mcp-redis/mcp-redis/internal/app.Version=${VERSION} -X github.com/mcp-redis/mcp-redis/internal/app.Commit=${COMMIT}" \
      -o /out/mcp-redis ./cmd/mcp-redis

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcp-redis /usr/local/bin/mcp-redis
COPY config.yaml /etc/mcp-redis/config.yaml
# nonroot is uid/gid 65532 in distroless.
USER nonroot:nonroot
# The HTTP port, when MCP_REDIS_TRANSPORT=http and MCP_REDIS_HTTP_LISTEN=0.0.0.0:8080.
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mcp-redis"]
CMD ["serve", "--config", "/etc/mcp-redis/config.yaml"]

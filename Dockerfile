# syntax=docker/dockerfile:1
# Build: docker build -t mcp-redis --build-arg VERSION=$(git describe --tags --always) .
# Run over stdio (the default): docker run -i --rm -e MCP_REDIS_REDIS_URL=redis://host:6379 mcp-redis

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/mcp-redis/mcp-redis/internal/app.Version=${VERSION}" \
      -o /out/mcp-redis ./cmd/mcp-redis

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mcp-redis /usr/local/bin/mcp-redis
COPY config.yaml /etc/mcp-redis/config.yaml
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/mcp-redis"]
CMD ["serve", "--config", "/etc/mcp-redis/config.yaml"]

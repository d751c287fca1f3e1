# The map of the project: `make help` lists the targets.
GO      ?= go
# VERSION is the semantic version of the nearest v* tag (git describe:
# v1.2.0, or v1.2.0-3-g<commit> past it, -dirty with local changes), or
# v0.0.0-dev without one; COMMIT is the commit built.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/mcp-redis/mcp-redis/internal/app.Version=$(VERSION) -X github.com/mcp-redis/mcp-redis/internal/app.Commit=$(COMMIT)

.PHONY: help build docker-build-local node-deps test test-race test-short attack conformance bench schemas run lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build a static binary into bin/mcp-redis
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mcp-redis ./cmd/mcp-redis

# The Dockerfile's build stage, without Docker; deploy/deploy_test.go checks
# that the two keep the same flags. GOOS/GOARCH stand for the image's platform.
IMAGE_GOOS   ?= linux
IMAGE_GOARCH ?= amd64

docker-build-local: ## the Dockerfile's go build without Docker: bin/mcp-redis-linux-amd64 (IMAGE_GOOS, IMAGE_GOARCH)
	CGO_ENABLED=0 GOOS=$(IMAGE_GOOS) GOARCH=$(IMAGE_GOARCH) $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mcp-redis-$(IMAGE_GOOS)-$(IMAGE_GOARCH) ./cmd/mcp-redis

node-deps: ## install the pinned TypeScript SDK and conformance suite (e2e/node) and the Node worker's client (examples/node-worker), from their lock files
	npm ci --prefix e2e/node --no-audit --no-fund
	npm ci --prefix examples/node-worker --no-audit --no-fund

conformance: ## run the official MCP conformance suite against the HTTP server
	bash e2e/node/conformance.sh

test: node-deps ## run every test: Go (needs Redis on 127.0.0.1:6379 and redis-server), the TypeScript SDK client, the conformance suite
	$(GO) test ./...
	bash e2e/node/conformance.sh

test-race: node-deps ## the same with the race detector, as CI does
	$(GO) test -race ./...
	bash e2e/node/conformance.sh

test-short: ## the quick tier: no process started, only the Redis on 127.0.0.1:6379 (under 20 s)
	$(GO) test -short ./...

attack: ## the hostile-client cases alone (slow bodies, floods, stalled streams, foreign sessions, leaks, stdio stalls), bounded in count and time
	$(GO) test -race -count=1 -run 'Attack|EdgeStdio' ./cmd/mcp-redis/

bench: ## print the in-process benchmarks (lock, rate, stream vs raw go-redis), then the binary's end-to-end figures, against Redis on 127.0.0.1:6379
	$(GO) test -run XXX -bench . -benchtime=1x ./internal/lock/ ./internal/ratelimit/ ./internal/stream/
	$(GO) run ./cmd/mcp-redis-bench

schemas: ## rewrite schemas/ from the tools' Go structs
	$(GO) run ./cmd/mcp-redis schemas --out schemas

run: ## serve over stdio on the embedded Redis
	$(GO) run ./cmd/mcp-redis serve

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint: ## gofmt, go vet and staticcheck (fetched through the Go module proxy)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

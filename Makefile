# The map of the project: `make help` lists the targets.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/mcp-redis/mcp-redis/internal/app.Version=$(VERSION)

.PHONY: help build test test-race bench schemas run lint

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build a static binary into bin/mcp-redis
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/mcp-redis ./cmd/mcp-redis

test: ## run the tests (needs Redis on 127.0.0.1:6379)
	$(GO) test ./...

test-race: ## run the tests with the race detector, as CI does
	$(GO) test -race ./...

bench: ## print throughput, latency, cold start and memory figures against Redis on 127.0.0.1:6379
	$(GO) run ./cmd/mcp-redis-bench

schemas: ## rewrite schemas/ from the tools' Go structs
	$(GO) run ./cmd/mcp-redis schemas --out schemas

run: ## serve over stdio on the embedded Redis
	$(GO) run ./cmd/mcp-redis serve

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# The map of the project: `make help` lists the targets.
GO      ?= go
# VERSION is the semantic version of the nearest v* tag (git describe:
# v1.2.0, or v1.2.0-3-g<commit> past it, -dirty with local changes), or
# v0.0.0-dev without one; COMMIT is the commit built.
VERSION ?= $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/mcp-redis/mcp-redis/internal/app.Version=$(VERSION) -X github.com/mcp-redis/mcp-redis/internal/app.Commit=$(COMMIT)

.PHONY: help build docker-build-local mcpb node-deps test test-race test-short attack conformance bench schemas run lint

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

# The MCP Bundle Claude Desktop installs in one click. A bundle names its
# command per OS alone (the manifest's platform_overrides is keyed by Node's
# process.platform; MCPB has no key for the CPU), so darwin gets one
# universal binary (packaging/mcpb/universal joins the two), linux runs
# packaging/mcpb/mcp-redis.sh, which execs the binary of `uname -m`, and
# win32 the amd64 binary (Windows 11 on Arm runs it emulated; the arm64 one
# is in the bundle for a hand-written config). The manifest's version is
# VERSION without its v. MCPB_DIR and MCPB_FILE move the output elsewhere.
MCPB_DIR  ?= bin/mcpb
MCPB_FILE ?= bin/mcp-redis-$(patsubst v%,%,$(VERSION)).mcpb
MCPB      := packaging/mcpb/node_modules/.bin/mcpb

mcpb: packaging/mcpb/node_modules/.package-lock.json ## the Claude Desktop bundle bin/mcp-redis-<version>.mcpb: linux, darwin, windows on amd64 and arm64, checked by mcpb validate
	rm -rf $(MCPB_DIR) && mkdir -p $(MCPB_DIR)/server
	for p in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64; do \
	  os=$${p%/*}; arch=$${p#*/}; ext=; if [ $$os = windows ]; then ext=.exe; fi; \
	  CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(MCPB_DIR)/server/mcp-redis-$$os-$$arch$$ext ./cmd/mcp-redis || exit 1; \
	done
	cd packaging/mcpb/universal && $(GO) run . -o $(abspath $(MCPB_DIR))/server/mcp-redis-darwin $(abspath $(MCPB_DIR))/server/mcp-redis-darwin-amd64 $(abspath $(MCPB_DIR))/server/mcp-redis-darwin-arm64
	rm $(MCPB_DIR)/server/mcp-redis-darwin-amd64 $(MCPB_DIR)/server/mcp-redis-darwin-arm64
	cp packaging/mcpb/mcp-redis.sh $(MCPB_DIR)/server/ && cp LICENSE $(MCPB_DIR)/
	chmod 0755 $(MCPB_DIR)/server/* && chmod 0644 $(MCPB_DIR)/LICENSE
	node packaging/mcpb/manifest.mjs $(patsubst v%,%,$(VERSION)) schemas $(MCPB_DIR)/manifest.json
	$(MCPB) validate $(MCPB_DIR)/manifest.json
	$(MCPB) pack $(MCPB_DIR) $(MCPB_FILE)

# The pinned @anthropic-ai/mcpb, from its lock file; again when that changes.
packaging/mcpb/node_modules/.package-lock.json: packaging/mcpb/package-lock.json
	npm ci --prefix packaging/mcpb --no-audit --no-fund

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

# Every routine command of Online Mart. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help run build test bench bench-quick check lint generate generate-check compose contracts contracts-test tools playground playground-check clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: build ## run the whole system in one process (needs Postgres; Kafka is embedded)
	MART_ADMIN_EMAIL=$${MART_ADMIN_EMAIL:-admin@mart.local} MART_ADMIN_PASSWORD=$${MART_ADMIN_PASSWORD:-change-me-admin} ./bin/mart serve

build: ## build bin/mart
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/mart ./cmd/mart

test: ## run all tests (real Postgres at DATABASE_URL, in-process Kafka)
	$(GO) test -count=1 -timeout 15m $(PKGS)

# Benchmarks (bench/, against the same Postgres as `make test`; results and
# how to read them in docs/benchmarks.md). -run '^$$' runs no tests; each
# benchmark starts the whole system in-process. BenchmarkSaga counts orders
# (-benchtime=Nx), BenchmarkProductsStockSQL requests.
BENCH := $(GO) test -count=1 -run '^$$' -timeout 30m ./bench

bench: ## run the benchmarks (saga throughput and latency, N+1 check; ~4 min)
	$(BENCH) -bench 'Saga' -benchtime=1000x
	$(BENCH) -bench 'ProductsStockSQL' -benchtime=2s

bench-quick: ## a short run of the benchmarks (< 2 min; no cost breakdown)
	$(BENCH) -short -bench 'Saga' -benchtime=150x
	$(BENCH) -short -bench 'ProductsStockSQL' -benchtime=100x

check: lint generate-check playground-check contracts test ## vet, format, generated code current, contracts, tests

lint: ## go vet and gofmt
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

generate: ## regenerate protobuf, gqlgen code and the supergraph
	$(GO) generate ./proto/... ./subgraphs/...
	$(GO) run ./cmd/mart compose

generate-check: generate ## fail when committed generated code is stale
	@git diff --exit-code -- proto subgraphs schema || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto subgraphs schema)" || { git status --porcelain -- proto subgraphs schema; echo "generated files are not committed"; exit 1; }

compose: ## write schema/supergraph.graphql from supergraph.yaml
	$(GO) run ./cmd/mart compose

# Contract checks (tools/contracts.sh): composition, breaking supergraph
# changes against HEAD~1, buf lint and buf breaking (WIRE_JSON) of proto/
# against HEAD~1; then the checks' own tests on tools/testdata. Needs Node
# (npm ci of tools/package-lock.json) and builds buf from tools/go.mod; `make
# test` needs neither.
CONTRACTS_TEST := node --test tools/test/

contracts: tools ## contract checks: composition, breaking GraphQL and protobuf changes vs HEAD~1
	tools/contracts.sh
	$(CONTRACTS_TEST)

contracts-test: tools ## only the tests of the contract checks (fixtures in tools/testdata)
	$(CONTRACTS_TEST)

tools: tools/node_modules/.package-lock.json ## install the pinned contract tools (npm ci in tools/)

tools/node_modules/.package-lock.json: tools/package.json tools/package-lock.json
	cd tools && npm ci --no-audit --no-fund
	@touch $@

# The GraphiQL playground the router serves at / (MART_PLAYGROUND): GraphiQL
# 5 bundled by esbuild from playground/ (pinned by playground/package-lock.json)
# into router/playground/dist, which is embedded in the binary and committed
# like other generated code. The build is reproducible, so playground-check
# can tell whether the committed bundle matches its sources. Needs Node and
# npm; `make test` does not (it needs Chromium for e2e's playground test:
# apt-get install chromium).
playground: ## rebuild the playground bundle (npm ci + esbuild in playground/ → router/playground/dist)
	cd playground && npm ci --no-audit --no-fund
	cd playground && node build.mjs

playground-check: playground ## fail when the committed playground bundle is stale
	@git diff --exit-code -- router/playground/dist || { echo "playground bundle is stale: run make playground and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- router/playground/dist)" || { git status --porcelain -- router/playground/dist; echo "playground bundle is not committed"; exit 1; }

clean: ## remove build output
	rm -rf bin

# Every routine command of Online Mart. `make help` lists them.
SHELL := /bin/bash
GO    ?= go
PKGS  := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: help run build test bench bench-quick scale-test chaos fuzz helm-check check lint generate generate-check compose contracts contracts-test tools playground playground-check clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

run: build ## run the whole system in one process (needs Postgres; Kafka is embedded)
	MART_ADMIN_EMAIL=$${MART_ADMIN_EMAIL:-admin@mart.local} MART_ADMIN_PASSWORD=$${MART_ADMIN_PASSWORD:-change-me-admin} \
	MART_KAFKA_EMBEDDED_DATA_DIR=$${MART_KAFKA_EMBEDDED_DATA_DIR-tmp/kafka} ./bin/mart serve

build: ## build bin/mart
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/mart ./cmd/mart

test: ## run all tests (real Postgres at DATABASE_URL, in-process Kafka)
	$(GO) test -count=1 -timeout 15m $(PKGS)

# Benchmarks (bench/, against the same Postgres as `make test`; how to read
# them in bench/README.md). -run '^$$' runs no tests. Each benchmark saves
# its tables in $(BENCH_RESULTS); bench/report prints them with the
# machine's description and (make bench) writes them into docs/benchmarks.md.
# BenchmarkSaga counts orders (-benchtime=Nx), BenchmarkProductsStockSQL
# requests; Gateways and Fanout run once whatever -benchtime says.
BENCH := $(GO) test -count=1 -run '^$$' -timeout 60m ./bench
BENCH_RESULTS ?= $(CURDIR)/tmp/bench

# A failing benchmark (a lost message, say) does not stop the others: its
# table is still written, and make bench fails at the end.
bench: ## run every benchmark (~20 min) and write docs/benchmarks.md
	rm -rf $(BENCH_RESULTS); export MART_BENCH_RESULTS=$(BENCH_RESULTS); failed=0; \
	$(BENCH) -bench 'Saga' -benchtime=1000x || failed=1; \
	$(BENCH) -bench 'Gateways' || failed=1; \
	$(BENCH) -bench 'Fanout' -benchtime=1x || failed=1; \
	$(BENCH) -bench 'ProductsStockSQL' -benchtime=2s || failed=1; \
	$(BENCH) -bench 'Attacks' -benchtime=1x || failed=1; \
	$(GO) run ./bench/report -results $(BENCH_RESULTS) -out docs/benchmarks.md && exit $$failed

bench-quick: ## a short run of the benchmarks (~2 min; prints the tables, writes no docs)
	rm -rf $(BENCH_RESULTS)-quick
	MART_BENCH_RESULTS=$(BENCH_RESULTS)-quick $(BENCH) -short -bench 'Saga|Fanout|Gateways|Attacks' -benchtime=100x
	$(GO) run ./bench/report -results $(BENCH_RESULTS)-quick

check: lint generate-check playground-check contracts helm-check test ## vet, format, generated code current, contracts, tests

# golangci-lint (settings in .golangci.yml) is pinned in tools/go.mod like
# buf and helm and built from it on first use (a minute or two; cached by Go
# after).
GOLANGCI_LINT := $(GO) tool -modfile=tools/go.mod golangci-lint

lint: ## go vet, gofmt and golangci-lint (.golangci.yml)
	$(GO) vet $(PKGS)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GOLANGCI_LINT) run $(PKGS)

generate: ## regenerate protobuf, gqlgen code, the supergraph and the event-flow map
	$(GO) generate ./proto/... ./subgraphs/... ./internal/gqlserver/...
	$(GO) run ./cmd/mart compose
	$(GO) run ./cmd/mart events > docs/event-flow.md.tmp && mv docs/event-flow.md.tmp docs/event-flow.md

generate-check: generate ## fail when committed generated code is stale
	@git diff --exit-code -- proto subgraphs internal/gqlserver/internal schema docs/event-flow.md || { echo "generated code is stale: run make generate and commit"; exit 1; }
	@test -z "$$(git status --porcelain -- proto subgraphs internal/gqlserver/internal schema docs/event-flow.md)" || { git status --porcelain -- proto subgraphs internal/gqlserver/internal schema docs/event-flow.md; echo "generated files are not committed"; exit 1; }

compose: ## write schema/supergraph.graphql from supergraph.yaml
	$(GO) run ./cmd/mart compose

# Contract checks (tools/contracts.sh): composition and buf lint of HEAD;
# breaking supergraph changes and buf breaking (WIRE_JSON) of proto/ in every
# commit after the baseline in tools/contracts-baseline, each against its
# first parent (BASE=<commit> overrides the baseline); then the checks' own
# tests on tools/testdata. Needs Node (npm ci of tools/package-lock.json) and
# builds buf from tools/go.mod; `make test` needs neither.
CONTRACTS_TEST := node --test tools/test/

contracts: tools ## contract checks: composition, breaking GraphQL/protobuf changes in each commit since tools/contracts-baseline
	tools/contracts.sh
	$(CONTRACTS_TEST)

contracts-test: tools ## only the tests of the contract checks (fixtures in tools/testdata)
	$(CONTRACTS_TEST)

# The replica test (scale/, figures in docs/reliability.md): every service as
# 2 processes and 2 routers behind haproxy, one Kafka broker, one Postgres.
# Fault injection (chaos/, figures in docs/reliability.md): every target its
# own process over a private Postgres and a persistent broker, under load,
# while processes, Postgres and the broker are killed and restarted and
# events arrive late and twice; then the books. `make test` runs a short
# round of the same test.
chaos: ## fault injection under load, then the books (~7 min)
	MART_CHAOS=1 $(GO) test -count=1 -timeout 30m -v -run Chaos ./chaos

scale-test: ## replicas under load: kills, relay failovers, the books (~4 min; installs haproxy)
	@command -v haproxy >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }
	MART_SCALE_TEST=1 $(GO) test -count=1 -timeout 20m -v ./scale

# Fuzzing: every target for $(FUZZTIME) (make test runs their seeds only).
FUZZTIME ?= 20s
FUZZ_TARGETS := internal/events:FuzzDecode internal/events:FuzzDecodeHeaders \
  internal/page:FuzzDecode internal/page:FuzzParse internal/auth:FuzzVerify \
  router:FuzzReadRequest router:FuzzServeHTTP router:FuzzMeasureOperation internal/gqlserver:FuzzServeHTTP \
  subgraphs/product/core:FuzzCreateInput subgraphs/product/core:FuzzUpdateInput subgraphs/product/core:FuzzFilter \
  subgraphs/order/core:FuzzPlaceInput subgraphs/order/core:FuzzOrderIDInput \
  subgraphs/user/core:FuzzRegisterInput subgraphs/user/core:FuzzUpdateProfileInput \
  subgraphs/user/core:FuzzChangePasswordInput subgraphs/user/core:FuzzSetRoleInput \
  subgraphs/inventory/core:FuzzAdjustInput subgraphs/notification/core:FuzzRender \
  subgraphs/notification/core:FuzzPreferencesInput subgraphs/notification/core:FuzzResendInput \
  subgraphs/notification/core:FuzzFormatMoney
fuzz: ## run every fuzz target for $(FUZZTIME) (~12 min at 20s)
	@set -e; for t in $(FUZZ_TARGETS); do echo "== $$t"; \
	  $(GO) test -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) ./$${t%%:*}; done

# Helm chart (deploy/helm/mart): helm lint + helm template with the default
# and ci/ values, checked by deploy/helm_test.go. Builds helm from
# tools/go.mod on first use (minutes; cached by Go after).
helm-check: ## lint and render the Helm chart, check the manifests
	$(GO) tool -modfile=tools/go.mod helm version
	$(GO) test -count=1 -run 'Helm' ./deploy

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

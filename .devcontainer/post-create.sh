#!/usr/bin/env bash
# Runs once after the dev container is created (postCreateCommand): makes
# sure the tools are there and warms the caches, so `make run`, `make test`
# and `make check` work straight away.
set -euo pipefail
cd "$(dirname "$0")/.."

# protoc is in the image; install it if an older image lacks it.
if ! command -v protoc >/dev/null; then
	sudo apt-get update -qq
	sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler
fi

go mod download
go build -o /dev/null ./...        # warm the build cache
go tool -n protoc-gen-go >/dev/null # the generator `make generate` runs

# The pinned contract tools (make contracts); not needed by make run/test.
make tools || echo "post-create: npm ci in tools/ failed; make contracts will retry" >&2

pg_isready -h postgres -p 5432 || echo "post-create: Postgres is not up yet; make test needs it" >&2
echo "Ready: make run (router on http://127.0.0.1:4000/graphql), make test, make check."

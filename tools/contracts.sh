#!/usr/bin/env bash
# Contract checks of the repository in the current directory (make contracts):
#
#   1. composition   the subgraphs of supergraph.yaml compose (mart compose),
#                    and the result is the committed schema/supergraph.graphql;
#   2. supergraph    no breaking change against schema/supergraph.graphql of
#                    the previous commit (HEAD~1), unless accepted: HEAD's
#                    commit message contains BREAKING-CHANGE-ACCEPTED, or the
#                    change adds or modifies schema/accepted-breaking-changes.md;
#   3. proto lint    buf lint of proto/ (rules in proto/buf.yaml);
#   4. proto compat  buf breaking (WIRE_JSON) of proto/ against HEAD~1's proto/.
#
# Every check runs; the summary lists what failed and the exit status is 1
# when anything did. Without a previous commit, or without a supergraph or
# proto/ in it, checks 2 and 4 pass with a note.
#
# A shell script, not a Go command: it only glues git, mart compose, buf and
# the GraphQL diff (tools/schema-diff.mjs) together, and keeping it outside
# the main module keeps buf and npm out of `go test ./...`.
#
# Environment (for the tests in tools/test; the defaults are for the repo):
#   MART    how to run mart, e.g. a built binary; default `go run ./cmd/mart`;
#           `none` skips composition and checks the committed supergraph
#   BUF     a buf binary; default the one pinned in tools/go.mod
#   BASE    the commit to compare with; default HEAD~1
set -uo pipefail

TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git rev-parse --show-toplevel) || exit 2
cd "$ROOT" || exit 2
BASE=${BASE:-HEAD~1}
ACCEPT_MARKER=BREAKING-CHANGE-ACCEPTED
ACCEPT_FILE=schema/accepted-breaking-changes.md
SUPERGRAPH=schema/supergraph.graphql

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()
section() { printf '\n== %s\n' "$*"; }
fail() {
	failed+=("$1")
	printf 'FAIL: %s\n' "$2"
}

if [[ -z ${BUF:-} ]]; then
	# Builds buf on first use (cached by Go afterwards).
	BUF=$(cd "$TOOLS" && go tool -n buf) || {
		echo "cannot build buf from tools/go.mod" >&2
		exit 2
	}
fi

base=""
if base=$(git rev-parse --verify -q "$BASE^{commit}"); then
	base_desc="$BASE ($(git log -1 --format=%h "$base"))"
else
	base=""
	base_desc=""
fi

# --- 1. composition -------------------------------------------------------
section "composition (supergraph.yaml → $SUPERGRAPH)"
new_supergraph=$SUPERGRAPH
if [[ ${MART:-} == none ]]; then
	echo "skipped (MART=none): checking the committed $SUPERGRAPH"
else
	read -r -a mart <<<"${MART:-go run ./cmd/mart}"
	if "${mart[@]}" compose --config supergraph.yaml --out "$tmp/supergraph.graphql" 2>"$tmp/compose.log"; then
		new_supergraph=$tmp/supergraph.graphql
		if ! cmp -s "$tmp/supergraph.graphql" "$SUPERGRAPH"; then
			fail composition "$SUPERGRAPH is not what the subgraphs compose to now: run make generate and commit it"
			diff -u "$SUPERGRAPH" "$tmp/supergraph.graphql" | head -40
		else
			echo "ok: the subgraphs compose and $SUPERGRAPH is current"
		fi
	else
		cat "$tmp/compose.log"
		fail composition "the subgraphs of supergraph.yaml do not compose (errors above name the subgraph and type/field)"
	fi
fi

# --- 2. supergraph breaking changes ---------------------------------------
section "supergraph changes against ${base_desc:-$BASE}"
accepted=""
if [[ -n $base ]]; then
	if git log -1 --format=%B HEAD 2>/dev/null | grep -qF "$ACCEPT_MARKER"; then
		accepted="the commit message of HEAD contains $ACCEPT_MARKER"
	elif [[ -n $(git diff --name-only --diff-filter=AM "$base" -- "$ACCEPT_FILE") ||
		-n $(git ls-files --others --exclude-standard -- "$ACCEPT_FILE") ]]; then
		accepted="this change adds or modifies $ACCEPT_FILE"
	fi
fi
if [[ -z $base ]]; then
	echo "ok: no previous commit ($BASE) to compare with"
elif ! git cat-file -e "$base:$SUPERGRAPH" 2>/dev/null; then
	echo "ok: $BASE has no $SUPERGRAPH"
elif [[ ! -f $new_supergraph ]]; then
	fail supergraph "$SUPERGRAPH is missing"
else
	git show "$base:$SUPERGRAPH" >"$tmp/old.graphql"
	node "$TOOLS/schema-diff.mjs" "$tmp/old.graphql" "$new_supergraph"
	case $? in
	0) echo "ok: nothing breaking" ;;
	1)
		if [[ -n $accepted ]]; then
			echo "ok: breaking changes accepted: $accepted"
		else
			fail supergraph "breaking changes to the supergraph (listed above). Make the change additive (see README, Changing contracts safely), or accept it: put $ACCEPT_MARKER in the commit message or explain it in $ACCEPT_FILE"
		fi
		;;
	*) fail supergraph "could not compare the supergraphs (see above)" ;;
	esac
fi

# --- 3. proto lint --------------------------------------------------------
section "proto lint (buf lint proto, rules in proto/buf.yaml)"
if [[ ! -d proto ]]; then
	echo "ok: no proto/"
elif "$BUF" lint proto --error-format=text >"$tmp/lint.log" 2>&1; then
	echo "ok"
else
	cat "$tmp/lint.log"
	fail proto-lint "proto/ breaks lint rules (file:line:column: rule above)"
fi

# --- 4. proto wire/JSON compatibility -------------------------------------
section "proto compatibility (buf breaking, WIRE_JSON) against ${base_desc:-$BASE}"
if [[ ! -d proto ]]; then
	echo "ok: no proto/"
elif [[ -z $base ]]; then
	echo "ok: no previous commit ($BASE) to compare with"
elif ! git cat-file -e "$base:proto" 2>/dev/null; then
	echo "ok: $BASE has no proto/"
else
	git archive "$base" proto | tar -x -C "$tmp"
	# Read the old files with today's module layout (buf.yaml), so that the
	# comparison is of the files' contents, not of a configuration change.
	[[ -f proto/buf.yaml ]] && cp proto/buf.yaml "$tmp/proto/buf.yaml"
	if "$BUF" breaking proto --against "$tmp/proto" --error-format=text >"$tmp/breaking.log" 2>&1; then
		echo "ok: old consumers still read new events (binary and JSON)"
	else
		cat "$tmp/breaking.log"
		fail proto-breaking "event contracts are not wire/JSON compatible with $BASE (above). Never renumber or retype a field; reserve the number and name of a removed one"
	fi
fi

section summary
if ((${#failed[@]})); then
	echo "contract checks failed: ${failed[*]}"
	exit 1
fi
echo "contract checks passed"

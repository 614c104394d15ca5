#!/usr/bin/env bash
# Contract checks of the repository in the current directory (make contracts).
#
# Of HEAD, as submitted:
#   1. composition   the subgraphs of supergraph.yaml compose (mart compose),
#                    and the result is the committed schema/supergraph.graphql;
#   2. proto lint    buf lint of proto/ (rules in proto/buf.yaml).
# Of every commit after the baseline (git rev-list --reverse BASELINE..HEAD),
# each against its first parent (merges too), and only when the commit
# changes the path concerned (no other commit can break it):
#   3. supergraph    no breaking change to schema/supergraph.graphql, unless
#                    accepted in that commit: its message contains
#                    BREAKING-CHANGE-ACCEPTED, or it adds or modifies
#                    schema/accepted-breaking-changes.md;
#   4. proto compat  buf breaking (WIRE_JSON) of proto/.
# Uncommitted changes to those paths are checked the same way against HEAD.
#
# The baseline: tools/contracts-baseline (as committed in HEAD) holds the full
# id of the last commit that passed these checks; without the file, every
# commit from the root is checked. The checked commits cannot move it: a
# commit in the range that adds, changes or removes the file fails
# (contracts-baseline) unless its message contains CONTRACTS-BASELINE-MOVED,
# and the baseline is then read from the file as it was before the oldest
# such commit, so the commits the move skipped are checked after all
# (repeated, as that value may come from an unaccepted move too, until the
# oldest one stays the same). A baseline that is not an ancestor of HEAD
# fails the checks at once.
#
# Otherwise every check runs; failures name the check and the commit (short
# hash and subject), the summary lists them and the exit status is 1 when
# anything failed (2 when the checks cannot run: no buf, no HEAD, bad BASE).
#
# A shell script, not a Go command: it only glues git, mart compose, buf and
# the GraphQL diff (tools/schema-diff.mjs) together, and keeping it outside
# the main module keeps buf and npm out of `go test ./...`.
#
# Environment (for the tests in tools/test; the defaults are for the repo):
#   MART    how to run mart, e.g. a built binary; default `go run ./cmd/mart`;
#           `none` skips composition and checks the committed supergraph
#   BUF     a buf binary; default the one pinned in tools/go.mod
#   BASE    the baseline instead of tools/contracts-baseline's (commits that
#           move the file still fail without the marker); BASE=HEAD~1 checks
#           HEAD alone
set -uo pipefail

TOOLS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(git rev-parse --show-toplevel) || exit 2
cd "$ROOT" || exit 2
ACCEPT_MARKER=BREAKING-CHANGE-ACCEPTED
ACCEPT_FILE=schema/accepted-breaking-changes.md
SUPERGRAPH=schema/supergraph.graphql
BASELINE_FILE=tools/contracts-baseline
BASELINE_MARKER=CONTRACTS-BASELINE-MOVED

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

failed=()   # check@commit, for the summary line
failures=() # one line each, for the summary
section() { printf '\n== %s\n' "$*"; }
# fail CHECK MESSAGE [COMMIT-NAME]
fail() {
	failed+=("$1${3:+@${3%% *}}")
	failures+=("$1${3:+ in $3}")
	printf 'FAIL: %s%s\n' "${3:+$3: }" "$2"
}
die() {
	printf 'contract checks cannot run: %s\n' "$*" >&2
	exit 2
}

if [[ -z ${BUF:-} ]]; then
	# Builds buf on first use (cached by Go afterwards).
	BUF=$(cd "$TOOLS" && go tool -n buf) || die "cannot build buf from tools/go.mod"
fi
head_id=$(git rev-parse -q --verify HEAD) || die "no commit (HEAD) to check"

# name REV: its short hash and subject, e.g. 1a2b3c4 "Remove Product.sku".
name() { git log -1 --format='%h "%s"' "$1"; }
# says REV MARKER: REV's commit message contains MARKER.
says() { [[ $(git log -1 --format=%B "$1") == *"$2"* ]]; }
# parent REV: its first parent, nothing for a root commit.
parent() { git rev-parse -q --verify "$1^1" || true; }
# changes_of[REV]: status and path of what REV changes against its first
# parent among the paths these checks read (all added for a root commit);
# one git diff-tree per commit.
declare -A changes_of
changes() {
	[[ -n ${changes_of[$1]+set} ]] && return
	local p
	p=$(parent "$1")
	if [[ -n $p ]]; then
		changes_of[$1]=$(git diff-tree -r --name-status --no-commit-id "$p" "$1" -- \
			"$SUPERGRAPH" "$ACCEPT_FILE" proto "$BASELINE_FILE")
	else
		changes_of[$1]=$(git ls-tree -r --name-only "$1" -- \
			"$SUPERGRAPH" "$ACCEPT_FILE" proto "$BASELINE_FILE" | sed 's/^/A\t/')
	fi
}
# touches REV PATH-PATTERN [STATUS-PATTERN]: REV changes a path matching it.
touches() {
	changes "$1"
	[[ $'\n'${changes_of[$1]}$'\n' == *$'\n'${3:-?}$'\t'$2$'\n'* ]]
}
# moved REV: REV adds, changes or removes the baseline file without the marker.
moved() { touches "$1" "$BASELINE_FILE" && ! says "$1" "$BASELINE_MARKER"; }

# recorded REV: the baseline that REV's tools/contracts-baseline holds (empty
# when the file or REV is absent: from the root); fails when it is not one
# full commit id.
recorded() {
	local id
	[[ -n $1 ]] && git cat-file -e "$1:$BASELINE_FILE" 2>/dev/null || return 0
	id=$(git show "$1:$BASELINE_FILE" | tr -d '[:space:]')
	echo "$id"
	[[ $id =~ ^[0-9a-f]{40}([0-9a-f]{24})?$ ]]
}
# usable ID WHERE: the baseline ID (read from WHERE) is a commit HEAD
# contains; if not, nothing can be checked from it: the checks fail here.
usable() {
	local why=""
	[[ -z $1 ]] && return
	if ! git cat-file -e "$1^{commit}" 2>/dev/null; then
		why="is not in this repository (a shallow clone? git fetch --unshallow)"
	elif ! git merge-base --is-ancestor "$1" HEAD; then
		why="is not an ancestor of HEAD: rebase onto it"
	else
		return 0
	fi
	stop "the baseline $1 ($2) $why"
}
# stop MESSAGE: the baseline cannot be used, so nothing can be checked.
stop() {
	fail contracts-baseline "$1. $BASELINE_FILE was last changed by $(git log -1 --format='%h "%s"' -- "$BASELINE_FILE")"
	section summary
	echo "contract checks failed: ${failed[*]}"
	exit 1
}
range() { git rev-list --reverse "${1:+$1..}HEAD"; }

# --- the commits to check ---------------------------------------------------
if [[ -n ${BASE:-} ]]; then
	baseline=$(git rev-parse -q --verify "$BASE^{commit}") || die "BASE=$BASE is not a commit"
	baseline_desc="BASE=$BASE"
	usable "$baseline" "$baseline_desc"
else
	baseline=$(recorded HEAD) || stop "$BASELINE_FILE of HEAD holds '$baseline', not one full commit id"
	baseline_desc="$BASELINE_FILE of HEAD"
	usable "$baseline" "$baseline_desc"
	# Undo the moves that lack the marker (the rule above).
	seen=" $baseline "
	while :; do
		mover=""
		for c in $(range "$baseline"); do
			if moved "$c"; then mover=$c && break; fi
		done
		[[ -z $mover ]] && break
		before=$(recorded "$(parent "$mover")") || stop "$BASELINE_FILE before $(name "$mover") holds '$before', not one full commit id"
		[[ $seen == *" $before "* ]] && break
		seen+="$before "
		baseline=$before
		baseline_desc="$BASELINE_FILE before $(name "$mover")"
		usable "$baseline" "$baseline_desc"
	done
fi
mapfile -t commits < <(range "$baseline")
if [[ -n $baseline ]]; then
	section "commits to check: ${#commits[@]}, after the baseline $(name "$baseline") ($baseline_desc)"
else
	section "commits to check: ${#commits[@]}, all from the root (HEAD has no $BASELINE_FILE)"
fi
for c in "${commits[@]}"; do
	touches "$c" "$BASELINE_FILE" || continue
	if says "$c" "$BASELINE_MARKER"; then
		echo "ok: $(name "$c") moves the baseline ($BASELINE_MARKER)"
	else
		fail contracts-baseline "changes $BASELINE_FILE without $BASELINE_MARKER in its message: the commits it skips are checked from the baseline before it" "$(name "$c")"
	fi
done

# --- 1. composition -------------------------------------------------------
section "composition (supergraph.yaml → $SUPERGRAPH)"
if [[ ${MART:-} == none ]]; then
	echo "skipped (MART=none): checking the committed $SUPERGRAPH"
else
	read -r -a mart <<<"${MART:-go run ./cmd/mart}"
	if "${mart[@]}" compose --config supergraph.yaml --out "$tmp/supergraph.graphql" 2>"$tmp/compose.log"; then
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

# --- 2. proto lint --------------------------------------------------------
section "proto lint (buf lint proto, rules in proto/buf.yaml)"
if [[ ! -d proto ]]; then
	echo "ok: no proto/"
elif "$BUF" lint proto --error-format=text >"$tmp/lint.log" 2>&1; then
	echo "ok"
else
	cat "$tmp/lint.log"
	fail proto-lint "proto/ breaks lint rules (file:line:column: rule above)"
fi

# --- 3. and 4., commit by commit ------------------------------------------

# check_supergraph WHO OLD NEW ACCEPTED: no breaking change from the
# supergraph of OLD (a commit, empty for none) to the file NEW, unless
# ACCEPTED says why.
check_supergraph() {
	local who=$1 old=$2 new=$3 accepted=$4
	section "supergraph changes in $who"
	if [[ -z $old ]]; then
		echo "ok: no previous commit to compare with"
		return
	elif ! git cat-file -e "$old:$SUPERGRAPH" 2>/dev/null; then
		echo "ok: the previous commit has no $SUPERGRAPH"
		return
	elif [[ ! -f $new ]]; then
		fail supergraph "removes $SUPERGRAPH" "$who"
		return
	fi
	git show "$old:$SUPERGRAPH" >"$tmp/old.graphql"
	node "$TOOLS/schema-diff.mjs" "$tmp/old.graphql" "$new"
	case $? in
	0) echo "ok: nothing breaking" ;;
	1)
		if [[ -n $accepted ]]; then
			echo "ok: breaking changes accepted: $accepted"
		else
			fail supergraph "breaking changes to the supergraph (listed above). Make the change additive (see README, Changing contracts safely), or accept it: put $ACCEPT_MARKER in the commit message or explain it in $ACCEPT_FILE" "$who"
		fi
		;;
	*) fail supergraph "could not compare the supergraphs (see above)" "$who" ;;
	esac
}

# check_proto WHO OLD DIR: buf breaking of DIR/proto against OLD's proto/.
check_proto() {
	local who=$1 old=$2 dir=$3
	section "proto compatibility (buf breaking, WIRE_JSON) of $who"
	if [[ ! -d $dir/proto ]]; then
		echo "ok: no proto/"
		return
	elif [[ -z $old ]]; then
		echo "ok: no previous commit to compare with"
		return
	elif ! git cat-file -e "$old:proto" 2>/dev/null; then
		echo "ok: the previous commit has no proto/"
		return
	fi
	rm -rf "$tmp/old" && mkdir "$tmp/old"
	git archive "$old" proto | tar -x -C "$tmp/old"
	# Read the old files with the new module layout (buf.yaml), so that the
	# comparison is of the files' contents, not of a configuration change.
	[[ -f $dir/proto/buf.yaml ]] && cp "$dir/proto/buf.yaml" "$tmp/old/proto/buf.yaml"
	if (cd "$dir" && "$BUF" breaking proto --against "$tmp/old/proto" --error-format=text) >"$tmp/breaking.log" 2>&1; then
		echo "ok: old consumers still read new events (binary and JSON)"
	else
		cat "$tmp/breaking.log"
		fail proto-breaking "event contracts are not wire/JSON compatible with the previous commit (above). Never renumber or retype a field; reserve the number and name of a removed one" "$who"
	fi
}

compared=0
for c in "${commits[@]}"; do
	touches "$c" "$SUPERGRAPH" || touches "$c" 'proto/*' || continue
	compared=$((compared + 1))
	who=$(name "$c")
	p=$(parent "$c")
	if touches "$c" "$SUPERGRAPH"; then
		accepted=""
		if says "$c" "$ACCEPT_MARKER"; then
			ref=${who%% *}
			[[ $c == "$head_id" ]] && ref=HEAD
			accepted="the commit message of $ref contains $ACCEPT_MARKER"
		elif touches "$c" "$ACCEPT_FILE" '[AM]'; then
			accepted="this change adds or modifies $ACCEPT_FILE"
		fi
		rm -f "$tmp/new.graphql"
		git cat-file -e "$c:$SUPERGRAPH" 2>/dev/null && git show "$c:$SUPERGRAPH" >"$tmp/new.graphql"
		check_supergraph "$who" "$p" "$tmp/new.graphql" "$accepted"
	fi
	if touches "$c" 'proto/*'; then
		rm -rf "$tmp/new" && mkdir "$tmp/new"
		git cat-file -e "$c:proto" 2>/dev/null && git archive "$c" proto | tar -x -C "$tmp/new"
		check_proto "$who" "$p" "$tmp/new"
	fi
done

# Uncommitted changes (a local run before committing) against HEAD.
if [[ -n $(git status --porcelain -- "$SUPERGRAPH" proto) ]]; then
	accepted=""
	[[ -n $(git status --porcelain -- "$ACCEPT_FILE") && -f $ACCEPT_FILE ]] &&
		accepted="this change adds or modifies $ACCEPT_FILE"
	[[ -n $(git status --porcelain -- "$SUPERGRAPH") ]] &&
		check_supergraph "uncommitted changes" HEAD "$SUPERGRAPH" "$accepted"
	[[ -n $(git status --porcelain -- proto) ]] &&
		check_proto "uncommitted changes" HEAD "$ROOT"
fi

section summary
echo "commits checked: ${#commits[@]}, of which $compared change $SUPERGRAPH or proto/"
if ((${#failed[@]})); then
	echo "contract checks failed: ${failed[*]}"
	printf '  %s\n' "${failures[@]}"
	exit 1
fi
echo "contract checks passed"

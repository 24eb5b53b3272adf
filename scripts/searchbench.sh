#!/usr/bin/env bash
# Measures key search and the state filters of GET /v1/keys over a million
# keys, on SQLite and PostgreSQL: by hand, never in CI.
#
#   ./scripts/searchbench.sh
#   BEFORE=/path/to/old/apikey ./scripts/searchbench.sh   # before/after
#
# For each backend: seeds KEYS keys with `apikey seed` (names seed-N,
# owners owner-K) into a temporary SQLite file, or a fresh schema
# apikey_searchbench of $APIKEY_TEST_POSTGRES_DSN (dropped at the end),
# creates an admin key, starts `apikey serve` on a free loopback port and
# runs scripts/searchbench: N sequential requests of each kind of query
# (an id fragment, a whole name, ~1,100 names, an owner's 1 %, every key,
# absent text, 2 characters, state=revoked after revoking 100 keys,
# state=expired, owner + state=active), printing p50/p90/p99/max in ms.
# The target: p50 <= 20 ms, p99 <= 100 ms over all of them.
#
# With BEFORE set to an apikey binary built from an earlier commit, the
# keys are seeded and measured with it first; then the current binary
# migrates the same database (building the indexes over the million keys,
# timed) and is measured: before and after on the same data.
#
# Environment: KEYS (1000000), N (100 per kind), BACKENDS ("sqlite
# postgres"), BEFORE (none), SKIP_BEFORE (0; 1 seeds with BEFORE, which is
# faster on SQLite, without measuring it), APIKEY_TEST_POSTGRES_DSN (for
# postgres).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEYS=${KEYS:-1000000}
N=${N:-100}
BACKENDS=${BACKENDS:-sqlite postgres}
BEFORE=${BEFORE:-}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
die() { printf 'searchbench.sh: %s\n' "$*" >&2; exit 1; }

work=$(mktemp -d)
pid=
schema=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [[ -n $schema ]]; then
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> go build ./cmd/apikey ./scripts/searchbench"
go build -o "$work/apikey" ./cmd/apikey
go build -o "$work/searchbench" ./scripts/searchbench
unset APIKEY_PEPPER APIKEY_PREFIX

# measure LABEL BINARY: serve with BINARY and run the queries.
measure() {
	local label=$1 bin=$2 url=
	"$bin" serve --addr 127.0.0.1:0 2>"$work/serve.log" &
	pid=$!
	for _ in $(seq 600); do
		url=$(sed -n 's|^apikey: listening on \(http://127\.0\.0\.1:[0-9]*\)$|\1|p' "$work/serve.log" | head -n 1)
		[[ -n $url ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "apikey serve exited"; }
		sleep 0.1
	done
	[[ -n $url ]] || die "apikey serve did not log its address"
	echo "==> $label: $KEYS keys, $N requests per kind"
	APIKEY_BENCH_KEY=$admin "$work/searchbench" -url "$url" -keys "$KEYS" -n "$N"
	kill -TERM "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
}

for backend in $BACKENDS; do
	case $backend in
	sqlite) export APIKEY_DB="sqlite:$work/search.db" ;;
	postgres)
		[[ -n ${APIKEY_TEST_POSTGRES_DSN:-} ]] || die "APIKEY_TEST_POSTGRES_DSN is not set"
		schema=apikey_searchbench
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
		sep='?'
		[[ $APIKEY_TEST_POSTGRES_DSN == *\?* ]] && sep='&'
		export APIKEY_DB="$APIKEY_TEST_POSTGRES_DSN${sep}search_path=$schema"
		;;
	*) die "unknown backend $backend" ;;
	esac
	first=${BEFORE:-$work/apikey}
	echo "==> $backend: seeding $KEYS keys with $first"
	start=$(date +%s.%N)
	"$first" seed "$KEYS" >/dev/null
	echo "seeded in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
	admin=$("$first" create --name searchbench-admin --scope apikey:admin 2>/dev/null)
	if [[ $backend == postgres ]]; then
		# Planner statistics, as autovacuum would gather them after a load.
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc "ANALYZE $schema.apikey_keys"
	fi
	if [[ -n $BEFORE ]]; then
		[[ ${SKIP_BEFORE:-0} == 1 ]] || measure "$backend, before" "$BEFORE"
		start=$(date +%s.%N)
		"$work/apikey" migrate >/dev/null
		echo "==> $backend: migrate (the search indexes over $KEYS keys) took $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
		if [[ $backend == postgres ]]; then
			psql "$APIKEY_TEST_POSTGRES_DSN" -qc "ANALYZE $schema.apikey_keys"
		fi
	fi
	measure "$backend, after" "$work/apikey"
	if [[ $backend == postgres ]]; then
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1
		schema=
	fi
done

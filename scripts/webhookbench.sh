#!/usr/bin/env bash
# Measures webhook delivery: N (10,000) key.created events queued while no
# instance sends, then one `apikey serve` delivers them to a real local
# receiver that verifies every signature (scripts/webhookbench). By hand,
# never in CI. The target: at least 1,000 events per second.
#
#   ./scripts/webhookbench.sh
#   N=10000 BACKENDS=postgres SERVE_FLAGS="--webhook-concurrency 100" ./scripts/webhookbench.sh
#
# Environment: N (10000), BACKENDS ("sqlite postgres"), SERVE_FLAGS (more
# flags of the sending serve), APIKEY_TEST_POSTGRES_DSN (for postgres: a
# fresh schema apikey_webhookbench, dropped at the end).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
N=${N:-10000}
BACKENDS=${BACKENDS:-sqlite postgres}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
work=$(mktemp -d)
cleanup() {
	if [[ -n "${APIKEY_TEST_POSTGRES_DSN:-}" ]]; then
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc 'DROP SCHEMA IF EXISTS apikey_webhookbench CASCADE' >/dev/null 2>&1 || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> go build ./cmd/apikey ./scripts/webhookbench"
go build -o "$work/apikey" ./cmd/apikey
go build -o "$work/webhookbench" ./scripts/webhookbench

for backend in $BACKENDS; do
	case $backend in
	sqlite) db="sqlite:$work/bench.db" ;;
	postgres)
		[[ -n "${APIKEY_TEST_POSTGRES_DSN:-}" ]] || { echo "postgres: APIKEY_TEST_POSTGRES_DSN is not set; skipped"; continue; }
		psql "$APIKEY_TEST_POSTGRES_DSN" -qc 'DROP SCHEMA IF EXISTS apikey_webhookbench CASCADE; CREATE SCHEMA apikey_webhookbench' >/dev/null
		sep='?'; [[ $APIKEY_TEST_POSTGRES_DSN == *\?* ]] && sep='&'
		db="${APIKEY_TEST_POSTGRES_DSN}${sep}search_path=apikey_webhookbench"
		;;
	*) echo "unknown backend $backend" >&2; exit 2 ;;
	esac
	echo "==> $backend: $N events"
	"$work/webhookbench" -apikey "$work/apikey" -db "$db" -n "$N" -serve-flags "${SERVE_FLAGS:-}"
done

#!/usr/bin/env bash
# Measures how `apikey serve` behaves under faults: by hand, never in CI.
#
#   ./scripts/chaos.sh [-variant notify|redis|both] [-bound 2s] [-phase 5s] [-faults LIST] ...
#
# Builds apikey and the harness (scripts/chaos), then runs the harness in a
# temporary directory. The harness starts a PostgreSQL cluster of its own
# (initdb, 127.0.0.1:15432) and, for the redis variant, its own
# redis-server (127.0.0.1:16379); it never touches the machine's shared
# PostgreSQL or Redis. Two instances of `apikey serve` run on that
# database, A behind TCP proxies that can freeze its connections; load
# workers and CPU burners keep both busy while probes revoke keys on B and
# poll A. The faults (none, freeze-pg, freeze-redis, stop-pg, stop-redis,
# kill-a) run one after the other, each with a phase before and after.
#
# Prints progress on standard error and a Markdown table on standard output
# (see docs/reliability.md for how to read it). Flags are passed to the
# harness; `./scripts/chaos.sh -h` lists them. Everything started is stopped
# by PID on exit, whatever happens; KEEP=1 keeps the directory (logs of
# the instances, PostgreSQL and Redis). Run it as root (PostgreSQL then
# runs as the user postgres) or as a user that may run initdb.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
command -v redis-server >/dev/null || { echo "chaos.sh: redis-server is not installed" >&2; exit 1; }
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || { echo "chaos.sh: no PostgreSQL server under /usr/lib/postgresql" >&2; exit 1; }

tmp=$(mktemp -d)
harness=
cleanup() {
	# The harness stops what it started on SIGTERM; the PID files and the
	# postmaster's catch what a harness that died left behind.
	if [[ -n $harness ]] && kill -0 "$harness" 2>/dev/null; then
		kill -TERM "$harness" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$harness" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$harness" 2>/dev/null || true
	fi
	local f pid
	for f in "$tmp"/pids/*.pid; do
		[[ -e $f ]] || continue
		pid=$(<"$f")
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ -f $tmp/pg/postmaster.pid ]]; then
		pid=$(head -n 1 "$tmp/pg/postmaster.pid")
		kill -QUIT "$pid" 2>/dev/null || true # immediate shutdown
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	if [[ ${KEEP:-} == 1 ]]; then
		echo "chaos.sh: kept $tmp" >&2
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "chaos.sh: go build ./cmd/apikey ./scripts/chaos" >&2
go build -o "$tmp/apikey" ./cmd/apikey
go build -o "$tmp/chaos" ./scripts/chaos

"$tmp/chaos" -apikey "$tmp/apikey" -dir "$tmp" "$@" &
harness=$!
status=0
wait "$harness" || status=$?
harness=
exit "$status"

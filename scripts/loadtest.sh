#!/usr/bin/env bash
# Load test of `apikey serve` with wrk, on 127.0.0.1 only.
#
#   ./scripts/loadtest.sh
#
# Builds the binary, starts `apikey serve` on a free loopback port over a
# temporary SQLite database, creates a verify-scoped key, then runs wrk
# against three endpoints of the same process, one after the other:
#
#   POST /v1/verify   protected; verifies the caller's key, then the key in
#                     the body (two verifications, a JSON round trip)
#   GET  /v1/whoami   protected; one verification
#   GET  /healthz     unprotected
#
# and prints requests/s, latency percentiles and the protected/unprotected
# ratios. The server is stopped by its PID at the end, whatever happens.
# wrk is installed with apt-get when missing. The server logs one line per
# request, as in production, to a file in the temporary directory.
#
# The server runs as deployed by default: verification cache on (30s TTL),
# Prometheus metrics, usage counted and flushed every 10s. SERVE_ARGS are
# added to its command line, e.g. SERVE_ARGS=--no-cache to measure every
# verification against the store. The target is protected throughput at
# least 90% of unprotected (whoami/healthz >= 0.90) with the cache on.
#
# Environment: DURATION (default 10s), THREADS (2), CONNECTIONS (32),
# SERVE_ARGS (none).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
SERVE_ARGS=${SERVE_ARGS:-}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

die() { printf 'loadtest.sh: %s\n' "$*" >&2; exit 1; }
as_root() {
	if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

if ! command -v wrk >/dev/null; then
	echo "==> installing wrk"
	export DEBIAN_FRONTEND=noninteractive
	as_root apt-get update -qq </dev/null
	as_root apt-get install -y -qq --no-install-recommends wrk </dev/null
fi

work=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> go build ./cmd/apikey"
go build -o "$work/apikey" ./cmd/apikey

# Only the database and the defaults: no pepper or prefix from the caller's
# environment.
unset APIKEY_PEPPER APIKEY_PREFIX
export APIKEY_DB="sqlite:$work/apikey.db"
key=$("$work/apikey" create --name loadtest --scope apikey:verify 2>/dev/null)
target=$("$work/apikey" create --name loadtest-target 2>/dev/null)

# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
"$work/apikey" serve --addr 127.0.0.1:0 $SERVE_ARGS 2>"$work/serve.log" &
pid=$!
url=
for _ in $(seq 300); do
	url=$(sed -n 's|^apikey: listening on \(http://127\.0\.0\.1:[0-9]*\)$|\1|p' "$work/serve.log" | head -n 1)
	[[ -n $url ]] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log" >&2; die "apikey serve exited"; }
	sleep 0.1
done
[[ -n $url ]] || die "apikey serve did not log its address"
echo "==> apikey serve (pid $pid) on $url"

cat >"$work/verify.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"key":"$target"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Api-Key $key"
LUA

# Sanity check: each endpoint answers 200 before it is measured.
check() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
	[[ $code == 200 ]] || die "$* answered $code"
}
check "$url/healthz"
check -H "Authorization: Api-Key $key" "$url/v1/whoami"
check -X POST -H "Authorization: Api-Key $key" -H 'Content-Type: application/json' -d "{\"key\":\"$target\"}" "$url/v1/verify"

declare -A rps p50 p90 p99 errs
run() {
	local name=$1
	shift
	echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency ($name; the key is not shown)"
	local out
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
	printf '%s\n' "$out"
	rps[$name]=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	p50[$name]=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p90[$name]=$(awk '$1 == "90%" {print $2}' <<<"$out")
	p99[$name]=$(awk '$1 == "99%" {print $2}' <<<"$out")
	errs[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $5} /Socket errors:/ {print "socket:" $0}' <<<"$out" | tr '\n' ' ')
}
run verify -s "$work/verify.lua" "$url/v1/verify"
run whoami -H "Authorization: Api-Key $key" "$url/v1/whoami"
run healthz "$url/healthz"

echo
echo "==> summary ($THREADS threads, $CONNECTIONS connections, $DURATION each, $(nproc) CPUs, serve ${SERVE_ARGS:-with the cache})"
printf '%-22s %12s %10s %10s %10s  %s\n' endpoint requests/s p50 p90 p99 errors
for name in verify whoami healthz; do
	case $name in
	verify) label="POST /v1/verify" ;;
	whoami) label="GET /v1/whoami" ;;
	healthz) label="GET /healthz" ;;
	esac
	printf '%-22s %12s %10s %10s %10s  %s\n' "$label" "${rps[$name]}" "${p50[$name]}" "${p90[$name]}" "${p99[$name]}" "${errs[$name]:-none}"
done
awk -v v="${rps[verify]}" -v w="${rps[whoami]}" -v h="${rps[healthz]}" 'BEGIN {
	printf "throughput ratio verify/healthz: %.3f\n", v / h
	printf "throughput ratio whoami/healthz: %.3f\n", w / h
	printf "target (protected >= 0.90 of unprotected): whoami %s, verify %s\n", (w / h >= 0.9 ? "met" : "not met"), (v / h >= 0.9 ? "met" : "not met")
}'

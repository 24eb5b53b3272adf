#!/usr/bin/env bash
# Load test of `apikey serve` with wrk, on 127.0.0.1 only, against a bare
# net/http baseline measured in the same run.
#
#   ./scripts/loadtest.sh
#   BURN=1 ./scripts/loadtest.sh     # the same with a CPU burner running
#
# Builds the binary and scripts/bare, starts `apikey serve` on a free
# loopback port over a temporary SQLite database and creates a
# verify-scoped key, then starts scripts/bare (a net/http handler that
# writes constant JSON with the same headers) beside it. It measures, in
# pairs, the baseline then the subject, for ROUNDS rounds (interleaved, so
# that noise from other processes hits both alike):
#
#   GET /healthz            (unprotected) vs bare GET /hello (same body)
#   GET /v1/whoami          (one verification, cached) vs bare GET /sized,
#                           a body of the same size as whoami's
#   GET /v1/whoami with Connection: close vs bare /sized with it
#   POST /v1/verify         (two verifications + a JSON body), reported
#                           against /healthz as before
#
# and prints requests/s (the sum over rounds), latency percentiles (of the
# last round) and the ratios subject/baseline with their targets:
# healthz >= 0.95 of bare, whoami >= 0.85 of bare (keep-alive),
# whoami with Connection: close >= 0.90 of bare close.
# Every process started is stopped by its PID at the end, whatever happens.
# wrk is installed with apt-get when missing. The server logs one line per
# request, as in production, to a file in the temporary directory.
#
# The server runs as deployed by default: verification cache on (30s TTL),
# Prometheus metrics, usage counted and flushed every 10s. SERVE_ARGS are
# added to its command line, e.g. SERVE_ARGS=--no-cache to measure every
# verification against the store.
#
# Environment: DURATION (per measurement, default 5s), ROUNDS (2),
# THREADS (1), CONNECTIONS (8), SERVE_ARGS (none), BURN (0; 1 runs a busy
# loop on one CPU for the whole test, to measure with both cores busy),
# PROFILE (empty; a path: a 5s CPU profile of serve under whoami load is
# written there, through serve --pprof on loopback).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-8}
SERVE_ARGS=${SERVE_ARGS:-}
BURN=${BURN:-0}
PROFILE=${PROFILE:-}
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
pids=()
stop() {
	local p=$1
	if kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	fi
}
cleanup() {
	for p in "${pids[@]}"; do stop "$p"; done
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> go build ./cmd/apikey ./scripts/bare"
go build -o "$work/apikey" ./cmd/apikey
go build -o "$work/bare" ./scripts/bare

# Only the database and the defaults: no pepper or prefix from the caller's
# environment.
unset APIKEY_PEPPER APIKEY_PREFIX
export APIKEY_DB="sqlite:$work/apikey.db"
key=$("$work/apikey" create --name loadtest --scope apikey:verify 2>/dev/null)
target=$("$work/apikey" create --name loadtest-target 2>/dev/null)

# addr_of LOG PID PATTERN waits until the process logs its address.
addr_of() {
	local log=$1 p=$2 re=$3 u=
	for _ in $(seq 300); do
		u=$(sed -n "s|^$re \(http://127\.0\.0\.1:[0-9]*\)[^ ]*\$|\1|p" "$log" | head -n 1)
		[[ -n $u ]] && break
		kill -0 "$p" 2>/dev/null || { cat "$log" >&2; die "$p exited"; }
		sleep 0.1
	done
	[[ -n $u ]] || die "no address in $log"
	printf '%s\n' "$u"
}

pprof_args=
[[ -n $PROFILE ]] && pprof_args="--pprof 127.0.0.1:0"
# shellcheck disable=SC2086 # SERVE_ARGS is a list of words
"$work/apikey" serve --addr 127.0.0.1:0 $pprof_args $SERVE_ARGS 2>"$work/serve.log" &
pids+=($!)
url=$(addr_of "$work/serve.log" "${pids[-1]}" 'apikey: listening on')
echo "==> apikey serve (pid ${pids[-1]}) on $url"

# Sanity check: each endpoint answers 200 before it is measured.
check() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
	[[ $code == 200 ]] || die "$* answered $code"
}
check "$url/healthz"
check -H "Authorization: Api-Key $key" "$url/v1/whoami"
check -X POST -H "Authorization: Api-Key $key" -H 'Content-Type: application/json' -d "{\"key\":\"$target\"}" "$url/v1/verify"
size=$(curl -s -H "Authorization: Api-Key $key" "$url/v1/whoami" | wc -c)

"$work/bare" -addr 127.0.0.1:0 -size "$size" 2>"$work/bare.log" &
pids+=($!)
bare=$(addr_of "$work/bare.log" "${pids[-1]}" 'bare: listening on')
echo "==> bare net/http (pid ${pids[-1]}) on $bare, /sized answers $size bytes like /v1/whoami"
check "$bare/hello"
[[ $(curl -s "$bare/sized" | wc -c) == "$size" ]] || die "bare /sized is not $size bytes"

if [[ $BURN == 1 ]]; then
	bash -c 'while :; do :; done' &
	pids+=($!)
	echo "==> CPU burner (pid ${pids[-1]}) running for the whole test"
fi

cat >"$work/verify.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"key":"$target"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Api-Key $key"
LUA

declare -A rps p50 p90 p99 errs
run() {
	local name=$1
	shift
	echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency ($name; the key is not shown)"
	local out r
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
	printf '%s\n' "$out" | sed -n '/Latency Distribution/,$p' | grep -E '^ +(50|99)%|Requests/sec|Non-2xx|Socket'
	r=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
	rps[$name]=$(awk -v a="${rps[$name]:-0}" -v b="$r" 'BEGIN {printf "%.2f", a + b}')
	p50[$name]=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p90[$name]=$(awk '$1 == "90%" {print $2}' <<<"$out")
	p99[$name]=$(awk '$1 == "99%" {print $2}' <<<"$out")
	errs[$name]+=$(awk '/Non-2xx or 3xx responses:/ {print "non-2xx:" $5} /Socket errors:/ {print "socket:" $4 $5 $6 $7 $8 $9}' <<<"$out" | tr '\n' ' ')
}
auth=(-H "Authorization: Api-Key $key")
close=(-H "Connection: close")
for round in $(seq "$ROUNDS"); do
	echo "==> round $round of $ROUNDS"
	run bare_hello "$bare/hello"
	run healthz "$url/healthz"
	run bare_sized "${auth[@]}" "$bare/sized" # the same request bytes as whoami's
	run whoami "${auth[@]}" "$url/v1/whoami"
	run bare_close "${close[@]}" "${auth[@]}" "$bare/sized"
	run whoami_close "${close[@]}" "${auth[@]}" "$url/v1/whoami"
	run verify -s "$work/verify.lua" "$url/v1/verify"
done

echo
echo "==> summary ($THREADS wrk thread, $CONNECTIONS connections, $ROUNDS rounds of $DURATION each, $(nproc) CPUs, $([[ $BURN == 1 ]] && echo 'one CPU burnt' || echo 'no burner'), serve ${SERVE_ARGS:-with the cache})"
printf '%-34s %12s %10s %10s %10s  %s\n' endpoint requests/s p50 p90 p99 errors
for name in bare_hello healthz bare_sized whoami bare_close whoami_close verify; do
	case $name in
	bare_hello) label="bare GET /hello" ;;
	healthz) label="GET /healthz" ;;
	bare_sized) label="bare GET /sized" ;;
	whoami) label="GET /v1/whoami" ;;
	bare_close) label="bare GET /sized, close" ;;
	whoami_close) label="GET /v1/whoami, close" ;;
	verify) label="POST /v1/verify" ;;
	esac
	printf '%-34s %12s %10s %10s %10s  %s\n' "$label" "$(awk -v a="${rps[$name]}" -v n="$ROUNDS" 'BEGIN {printf "%.0f", a / n}')" "${p50[$name]}" "${p90[$name]}" "${p99[$name]}" "${errs[$name]:-none}"
done
awk -v bh="${rps[bare_hello]}" -v h="${rps[healthz]}" -v bs="${rps[bare_sized]}" -v w="${rps[whoami]}" \
	-v bc="${rps[bare_close]}" -v wc="${rps[whoami_close]}" -v v="${rps[verify]}" 'BEGIN {
	printf "ratio healthz/bare hello:             %.3f  (target >= 0.95: %s)\n", h / bh, (h / bh >= 0.95 ? "met" : "not met")
	printf "ratio whoami/bare sized, keep-alive:  %.3f  (target >= 0.85: %s)\n", w / bs, (w / bs >= 0.85 ? "met" : "not met")
	printf "ratio whoami/bare sized, close:       %.3f  (target >= 0.90: %s)\n", wc / bc, (wc / bc >= 0.90 ? "met" : "not met")
	printf "ratio whoami/healthz:                 %.3f\n", w / h
	printf "ratio verify/healthz:                 %.3f\n", v / h
}'

if [[ -n $PROFILE ]]; then
	purl=$(addr_of "$work/serve.log" "${pids[0]}" 'apikey: pprof on') || die "serve logged no pprof address"
	echo "==> CPU profile of serve under whoami load -> $PROFILE"
	wrk -t"$THREADS" -c"$CONNECTIONS" -d7s "${auth[@]}" "$url/v1/whoami" >/dev/null &
	wpid=$!
	sleep 1
	curl -s -o "$PROFILE" "$purl/debug/pprof/profile?seconds=5"
	wait "$wpid"
fi

#!/usr/bin/env bash
# Load test of rate limits and credits in `apikey serve`, with wrk, on
# 127.0.0.1 only. Run by hand:
#
#   ./scripts/limits-load.sh             # idle machine
#   BUSY=1 ./scripts/limits-load.sh      # with every core kept busy
#
# Builds the binary, starts `apikey serve --redis` (limits in Redis) on a
# free loopback port over a temporary SQLite database, or over
# $APIKEY_LOAD_DB (a postgres:// URL) when set, makes a caller key
# (apikey:verify) and target keys, then measures with wrk, one run after
# the other, in the same process:
#
#   verify-plain     POST /v1/verify of a key without limits or credits
#   verify-limited   the same for a key with a rate limit (never reached)
#   verify-credits   the same, with the limit, spending 1 credit a request,
#                    all on one key (from leases of up to --credit-lease
#                    credits; SERVE_ARGS="--credit-lease 0" makes each a
#                    store transaction)
#   verify-credits-keys  the same over KEYS (32) such keys in turn
#   whoami-plain     GET /v1/whoami with a caller key without limits
#   whoami-limited   GET /v1/whoami with a caller key whose "requests"
#                    limit (never reached) applies to the route
#
# and prints requests/s, latency percentiles and the ratios to the plain
# runs (target: >= 0.70). Then exactness: wrk drives a key limited to 100
# requests an hour holding 1000 credits, and a key holding 300 credits
# without a limit, and the script compares the 2xx answers with the limit
# and the balance left with the spends.
#
# The six throughput runs are repeated ROUNDS times, one after the other
# in each round (plain, limited, credits, ...), and each figure is the
# requests of all its rounds over their time: on a machine shared with
# other work, whose load changes from one second to the next, a ratio
# then compares runs spread over the same minutes rather than two runs
# that each met a different load.
#
# BUSY=1 starts one `yes >/dev/null` per CPU for the duration (stopped by
# PID). REDIS=none runs the in-process limiter instead. Environment:
# DURATION (default 10s a run), ROUNDS (3), THREADS (2), CONNECTIONS (32),
# KEYS (32), REDIS (127.0.0.1:6379), SERVE_ARGS (none), APIKEY_LOAD_DB,
# KEEP_LOG (a path: the server's log is copied there at the end).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
REDIS=${REDIS:-127.0.0.1:6379}
SERVE_ARGS=${SERVE_ARGS:-}
BUSY=${BUSY:-0}
KEYS=${KEYS:-32}
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

die() { printf 'limits-load.sh: %s\n' "$*" >&2; exit 1; }
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
command -v curl >/dev/null || die "curl is not installed"
if [[ $REDIS != none ]]; then
	[[ $(redis-cli -u "redis://$REDIS" ping 2>/dev/null) == PONG ]] || die "no Redis at $REDIS (set REDIS=HOST:PORT, or none)"
	SERVE_ARGS="--redis $REDIS $SERVE_ARGS"
fi

work=$(mktemp -d)
pid=
busy=()
cleanup() {
	for b in "${busy[@]}"; do kill "$b" 2>/dev/null || true; done
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	if [[ -n ${KEEP_LOG:-} && -f $work/serve.log ]]; then cp "$work/serve.log" "$KEEP_LOG"; fi
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> go build ./cmd/apikey"
go build -o "$work/apikey" ./cmd/apikey

unset APIKEY_PEPPER APIKEY_PREFIX APIKEY_REDIS_ADDR
export APIKEY_DB=${APIKEY_LOAD_DB:-"sqlite:$work/apikey.db"}
ak() { "$work/apikey" "$@" 2>/dev/null; }
caller=$(ak create --name load-caller --scope apikey:verify)
caller_limited=$(ak create --name load-caller-limited --scope apikey:verify --ratelimit requests=100000000/1s)
plain=$(ak create --name load-plain)
limited=$(ak create --name load-limited --ratelimit requests=100000000/1s)
metered=$(ak create --name load-metered --ratelimit requests=100000000/1s --credits 1000000000000)
# KEYS keys with a limit and credits, which verify-credits-keys spreads
# its requests over: one hot key serialises every spend on one row.
spread=()
for i in $(seq "$KEYS"); do
	spread+=("$(ak create --name "load-metered-$i" --ratelimit requests=100000000/1s --credits 1000000000000)")
done
exact_limit=$(ak create --name exact-limit --ratelimit requests=100/1h --credits 1000)
exact_credits=$(ak create --name exact-credits --credits 300)
id_of() { local t=${1#*_}; echo "${t%%_*}"; }

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
echo "==> apikey serve $SERVE_ARGS (pid $pid) on $url, database ${APIKEY_DB%%:*}"

verify_lua() { # name target extra-json
	cat >"$work/$1.lua" <<-LUA
		wrk.method = "POST"
		wrk.body = '{"key":"$2"$3}'
		wrk.headers["Content-Type"] = "application/json"
		wrk.headers["Authorization"] = "Api-Key $caller"
	LUA
}
verify_lua verify-plain "$plain" ""
verify_lua verify-limited "$limited" ""
verify_lua verify-credits "$metered" ',"credits":1'
{
	echo 'local keys = {'
	for k in "${spread[@]}"; do echo "  \"$k\","; done
	echo '}'
	cat <<-LUA
		local i = 0
		wrk.method = "POST"
		wrk.headers["Content-Type"] = "application/json"
		wrk.headers["Authorization"] = "Api-Key $caller"
		request = function()
		  i = i + 1
		  return wrk.format(nil, nil, nil, '{"key":"' .. keys[(i % #keys) + 1] .. '","credits":1}')
		end
	LUA
} >"$work/verify-credits-keys.lua"
verify_lua exact-limit "$exact_limit" ',"credits":1'
verify_lua exact-credits "$exact_credits" ',"credits":1'

check() {
	local code
	code=$(curl -s -o /dev/null -w '%{http_code}' "$@")
	[[ $code == 200 ]] || die "$* answered $code"
}
check -H "Authorization: Api-Key $caller_limited" "$url/v1/whoami"
check -X POST -H "Authorization: Api-Key $caller" -H 'Content-Type: application/json' -d "{\"key\":\"$metered\",\"credits\":1}" "$url/v1/verify"

if [[ $BUSY == 1 ]]; then
	for _ in $(seq "$(nproc)"); do
		yes >/dev/null &
		busy+=($!)
	done
	echo "==> $(nproc) busy loops running (pids ${busy[*]})"
fi

declare -A rps p50 p99 total non2xx reqs secs
run() {
	local name=$1
	shift
	echo "==> wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency ($name)"
	local out
	out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
	printf '%s\n' "$out" | grep -E 'Requests/sec|requests in|Non-2xx|Socket| 50%| 99%'
	p50[$name]=$(awk '$1 == "50%" {print $2}' <<<"$out")
	p99[$name]=$(awk '$1 == "99%" {print $2}' <<<"$out")
	total[$name]=$(awk '/requests in/ {print $1}' <<<"$out")
	non2xx[$name]=$(awk '/Non-2xx or 3xx responses:/ {print $5}' <<<"$out")
	non2xx[$name]=${non2xx[$name]:-0}
	# Sums over the rounds: requests, and seconds (wrk writes "in 6.08s").
	reqs[$name]=$((${reqs[$name]:-0} + ${total[$name]}))
	secs[$name]=$(awk -v a="${secs[$name]:-0}" '/requests in/ {t = $4; sub(/s,?$/, "", t); print a + t}' <<<"$out")
	rps[$name]=$(awk -v r="${reqs[$name]}" -v t="${secs[$name]}" 'BEGIN {printf "%.2f", r / t}')
}
# Warm up (not measured): caches, connections, the Redis script.
DURATION=2s run warmup -s "$work/verify-limited.lua" "$url/v1/verify" >/dev/null
credits_total=0
for round in $(seq "$ROUNDS"); do
	echo "==> round $round of $ROUNDS"
	run verify-plain -s "$work/verify-plain.lua" "$url/v1/verify"
	run verify-limited -s "$work/verify-limited.lua" "$url/v1/verify"
	run verify-credits -s "$work/verify-credits.lua" "$url/v1/verify"
	credits_total=$((credits_total + ${total[verify-credits]} - ${non2xx[verify-credits]}))
	run verify-credits-keys -s "$work/verify-credits-keys.lua" "$url/v1/verify"
	run whoami-plain -H "Authorization: Api-Key $caller" "$url/v1/whoami"
	run whoami-limited -H "Authorization: Api-Key $caller_limited" "$url/v1/whoami"
done
DURATION=3s run exact-limit -s "$work/exact-limit.lua" "$url/v1/verify"
DURATION=3s run exact-credits -s "$work/exact-credits.lua" "$url/v1/verify"

balance() { # key id -> remaining credits
	"$work/apikey" show "$1" --json 2>/dev/null | awk -F'[:,]' '/"remaining"/ {gsub(/ /, "", $2); print $2; exit}'
}
for b in "${busy[@]}"; do kill "$b" 2>/dev/null || true; done
busy=()
# The server leases credits (--credit-lease): what it holds goes back to
# the database within its TTL (1s) and a sweep (250ms).
sleep 1.5

echo
echo "==> summary ($THREADS threads, $CONNECTIONS connections, $ROUNDS rounds of $DURATION each, $(nproc) CPUs, $([[ $BUSY == 1 ]] && echo "every core busy" || echo idle), limiter $([[ $REDIS == none ]] && echo in-process || echo "Redis $REDIS"), ${APIKEY_DB%%:*})"
printf '%-16s %12s %10s %10s %10s\n' run requests/s p50 p99 non-2xx
for name in verify-plain verify-limited verify-credits verify-credits-keys whoami-plain whoami-limited; do
	printf '%-16s %12s %10s %10s %10s\n' "$name" "${rps[$name]}" "${p50[$name]}" "${p99[$name]}" "${non2xx[$name]}"
done
awk -v p="${rps[verify-plain]}" -v l="${rps[verify-limited]}" -v c="${rps[verify-credits]}" -v ck="${rps[verify-credits-keys]}" -v wp="${rps[whoami-plain]}" -v wl="${rps[whoami-limited]}" 'BEGIN {
	printf "ratio verify-limited/verify-plain: %.3f (target >= 0.70: %s)\n", l / p, (l / p >= 0.7 ? "met" : "not met")
	printf "ratio verify-credits/verify-plain: %.3f (one key; target >= 0.70: %s)\n", c / p, (c / p >= 0.7 ? "met" : "not met")
	printf "ratio verify-credits-keys/verify-plain: %.3f (%d keys; target >= 0.70: %s)\n", ck / p, '"$KEYS"', (ck / p >= 0.7 ? "met" : "not met")
	printf "ratio whoami-limited/whoami-plain: %.3f (target >= 0.70: %s)\n", wl / wp, (wl / wp >= 0.7 ? "met" : "not met")
}'
spent=$((credits_total + 1)) # +1: the check above
left=$(balance "$(id_of "$metered")")
taken=$((1000000000000 - left))
echo "verify-credits: $spent answered 200, $taken credits spent; the difference, $((taken - spent)), is the requests in flight when wrk stopped (at most $CONNECTIONS a round), spent but not counted by wrk"
echo "server answers: $(grep -o 'status=[0-9]*' "$work/serve.log" | sort | uniq -c | tr '\n' ' ')"
grep 'status=5' "$work/serve.log" | head -n 3 || true
# What the 5xx answers said, counted (a request whose client went away
# when wrk stopped ends with "context canceled").
grep 'status=5' "$work/serve.log" | grep -o 'error="[^"]*"' | sort | uniq -c | sort -rn | head -n 5 || true
grep -i 'level=error' "$work/serve.log" | grep -v 'status=' | head -n 3 || true
ok=$((${total[exact-limit]} - ${non2xx[exact-limit]}))
left=$(balance "$(id_of "$exact_limit")")
echo "exact-limit (100/h, 1000 credits): ${total[exact-limit]} requests, $ok answered 200 (want 100), balance $left (want $((1000 - ok)))"
ok=$((${total[exact-credits]} - ${non2xx[exact-credits]}))
left=$(balance "$(id_of "$exact_credits")")
echo "exact-credits (300 credits): ${total[exact-credits]} requests, $ok answered 200 (want 300), balance $left (want 0)"

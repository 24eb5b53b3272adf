#!/usr/bin/env bash
# Runs the whole test suite of github.com/go-apikey/apikey, setting up what
# it needs first: PostgreSQL and Redis are installed (Debian packages) and
# started when they are missing or down; services already running are used
# as they are.
#
#   ./scripts/test.sh        (CI runs it through .ci/run)
#
# Checks: gofmt, that the root module needs only the standard library, go
# vet and go test -race of every package of every module in go.work, and
# short fuzz runs of the key parser and the HTTP API.
# Environment it sets unless already set:
#   APIKEY_TEST_POSTGRES_DSN  postgres://postgres@127.0.0.1:5432/test?sslmode=disable
#   APIKEY_TEST_REDIS_ADDR    127.0.0.1:6379
#   APIKEY_TEST_DRF_SRC       ../shared/peers/djangorestframework-api-key-3.1.0/src,
#                             when that folder exists: the import test makes keys
#                             with DRF API Key itself, on Debian's Django (the
#                             python3-django and python3-djangorestframework
#                             packages, installed when missing, with psycopg2,
#                             argon2 and bcrypt for Debian's /usr/bin/python3)
# FUZZTIME sets the length of each fuzz run. By default each runs a count
# of inputs (300000x for the key parser, 40000x for the HTTP API: about 20 s
# each on this machine), not a duration: with a duration, Go 1.26's fuzz
# coordinator may report "context deadline exceeded" as a failure when a
# worker is mid-input as the time runs out on a loaded machine
# (go.dev/issue/75804, fixed in Go 1.27); a count has no deadline to race.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi

log() { printf '\n==> %s\n' "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# as_root runs a command as root (directly, or through sudo when not root).
as_root() {
	if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi
}

# ---------------------------------------------------------------- setup --

apt_updated=no
apt_install() {
	if [[ $apt_updated == no ]]; then
		log "apt-get update"
		as_root apt-get update -qq </dev/null
		apt_updated=yes
	fi
	log "apt-get install $*"
	as_root apt-get install -y -qq --no-install-recommends "$@" </dev/null
}

command -v go >/dev/null || die "go is not installed (expected on PATH or at /usr/local/go/bin)"
need=()
if ! command -v pg_ctlcluster >/dev/null || ! compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null; then
	need+=(postgresql)
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || need+=(redis-server)
[[ -x /usr/bin/chromium ]] || need+=(chromium) # browser tests (internal/browsertest)
if ((${#need[@]})); then
	apt_install "${need[@]}"
fi

# DRF API Key 3.1.0, as released, beside the checkout: the import test
# (cmd/apikey TestDRFImportRealThing) builds a throw-away Django project with
# it. Debian's python3-* packages import under /usr/bin/python3, which need
# not be the python3 first on PATH.
drf_src="$(cd .. && pwd)/shared/peers/djangorestframework-api-key-3.1.0/src"
if [[ -z ${APIKEY_TEST_DRF_SRC:-} && -d $drf_src ]]; then
	export APIKEY_TEST_DRF_SRC="$drf_src"
fi
if [[ -n ${APIKEY_TEST_DRF_SRC:-} ]]; then
	py=()
	for pair in django:python3-django rest_framework:python3-djangorestframework psycopg2:python3-psycopg2 \
		argon2:python3-argon2 bcrypt:python3-bcrypt; do
		/usr/bin/python3 -c "import ${pair%%:*}" >/dev/null 2>&1 || py+=("${pair#*:}")
	done
	if ((${#py[@]})); then
		apt_install "${py[@]}"
	fi
fi

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2; }
pg_tcp() { PGCONNECT_TIMEOUT=5 psql -X -q -w -h 127.0.0.1 -p 5432 -U postgres "$@" </dev/null; }
pg_local() { as_root runuser -u postgres -- psql -X -q "$@" </dev/null; }

if ! pg_up; then
	ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
	if [[ -z $ver ]]; then
		ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
		log "creating PostgreSQL $ver cluster main"
		as_root pg_createcluster "$ver" main
	fi
	log "starting PostgreSQL $ver"
	as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
	for _ in $(seq 60); do pg_up && break; sleep 0.5; done
	pg_up || die "PostgreSQL $ver did not start accepting connections on 127.0.0.1:5432"
fi
# A fresh Debian cluster asks for a password over TCP: trust local TCP
# connections, as the tests expect, and reload.
if ! pg_tcp -d postgres -c 'SELECT 1' >/dev/null 2>&1; then
	hba=$(pg_local -tA -c 'SHOW hba_file')
	log "trusting 127.0.0.1 and ::1 in $hba"
	as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
	pg_local -c 'SELECT pg_reload_conf()' >/dev/null
	sleep 1
	pg_tcp -d postgres -c 'SELECT 1' >/dev/null || die "cannot log in to PostgreSQL as postgres over 127.0.0.1"
fi
if [[ $(pg_tcp -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = 'test'") != 1 ]]; then
	log "creating database test"
	pg_tcp -d postgres -c 'CREATE DATABASE test' >/dev/null
fi

redis_up() { [[ $(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null) == PONG ]]; }
if ! redis_up; then
	log "starting Redis"
	as_root mkdir -p /var/lib/redis /var/log/redis
	as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
		--dir /var/lib/redis --logfile /var/log/redis/ci.log
	for _ in $(seq 40); do redis_up && break; sleep 0.25; done
	redis_up || die "Redis did not start on 127.0.0.1:6379"
fi

export APIKEY_TEST_POSTGRES_DSN="${APIKEY_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export APIKEY_TEST_REDIS_ADDR="${APIKEY_TEST_REDIS_ADDR:-127.0.0.1:6379}"

# --------------------------------------------------------------- checks --

results=()
failed=0
# check NAME CMD...: runs one check, records its result and time, and goes
# on to the next one even if it failed.
check() {
	local name=$1 start=$SECONDS status=PASS
	shift
	log "$name"
	if ! "$@"; then
		status=FAIL
		failed=1
	fi
	results+=("$(printf '%-4s %4ss  %s' "$status" $((SECONDS - start)) "$name")")
}

gofmt_clean() {
	local files
	files=$(gofmt -l .)
	if [[ -n $files ]]; then
		echo "these files need gofmt -w:"
		echo "$files"
		return 1
	fi
}

# The repository is a workspace of modules (go.work): the root module needs
# only the standard library; each dependency's package, the service and the
# router adapters are modules of their own. Every check covers every module.
mapfile -t modules < <(go list -m -f '{{.Dir}}')
patterns=()
for m in "${modules[@]}"; do patterns+=("$m/..."); done

# lean_root checks that the root module pulls in nothing, as a user sees it:
# a scratch module that imports apikey and apikeyhttp must have no other
# module in its graph and no non-standard package in its build.
lean_root() {
	local dir out root=$PWD
	dir=$(mktemp -d)
	cat >"$dir/go.mod" <<-EOF
		module scratch

		go 1.26.0

		require github.com/go-apikey/apikey v0.0.0

		replace github.com/go-apikey/apikey => $root
	EOF
	cat >"$dir/main.go" <<-EOF
		package main

		import (
			"github.com/go-apikey/apikey"
			"github.com/go-apikey/apikey/apikeyhttp"
		)

		func main() { _ = apikeyhttp.Config{}; _ = apikey.Config{} }
	EOF
	out=$(cd "$dir" && GOWORK=off go list -m all && GOWORK=off go list -deps -f '{{if not .Standard}}{{.ImportPath}}{{end}}' . &&
		cd "$root" && GOWORK=off go list -deps -test -f '{{if not .Standard}}{{.ImportPath}}{{end}}' ./...) || { rm -rf "$dir"; return 1; }
	rm -rf "$dir"
	out=$(grep -v -e '^scratch$' -e '^github.com/go-apikey/apikey v0.0.0 => ' \
		-e '^github.com/go-apikey/apikey[^ ]*\( \[github.com/go-apikey/apikey[^ ]*\]\)\?$' <<<"$out" || true)
	if [[ -n $out ]]; then
		echo "a module that imports only github.com/go-apikey/apikey gets more than the standard library:"
		echo "$out"
		return 1
	fi
}

go version
check "gofmt -l ." gofmt_clean
check "root module: standard library only" lean_root
check "go vet (${#modules[@]} modules)" go vet "${patterns[@]}"
check "go test -race (${#modules[@]} modules)" go test -race -count=1 "${patterns[@]}"
check "fuzz ParseToken for ${FUZZTIME:-300000x}" go test -run '^$' -fuzz '^FuzzParseToken$' -fuzztime "${FUZZTIME:-300000x}" .
check "fuzz the HTTP API for ${FUZZTIME:-40000x}" go test -run '^$' -fuzz '^FuzzAPI$' -fuzztime "${FUZZTIME:-40000x}" ./cmd/apikey/internal/server

printf '\n==> summary (%d modules)\n' "${#modules[@]}"
printf '%s\n' "${results[@]}"
if ((failed)); then
	echo "FAILED"
	exit 1
fi
echo "all checks passed in ${SECONDS}s"

#!/usr/bin/env bash
# Measures `apikey scan` over 1 GB of mixed text: by hand, never in CI.
#
#   ./scripts/scanbench.sh [SIZE]      # SIZE defaults to 1G (K, M, G suffixes)
#
# Writes the text once to /tmp/apikey-scan-$SIZE.txt (scripts/mixedtext:
# prose, code, JSON, base64 and base64url, hex, random base62, near misses of
# a token's shape, and a real token about every megabyte), then times
# `apikey scan --offline` over it three times (the file is in the page cache
# after the first) and prints the throughput of each run and the keys found,
# which must equal the tokens written. Then runs the Go benchmarks of the
# scanner (BenchmarkFindTokens, BenchmarkScan: in memory, no disk).
# Delete the file afterwards if you need the space.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then
	export PATH="/usr/local/go/bin:$PATH"
fi
size="${1:-1G}"
file="/tmp/apikey-scan-$size.txt"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

go build -o "$tmp/apikey" ./cmd/apikey
if [[ ! -s "$file" ]]; then
	echo "scanbench: writing $file" >&2
	go run ./scripts/mixedtext -size "$size" -o "$file"
fi
bytes=$(stat -c %s "$file")
echo "scanbench: $file: $bytes bytes" >&2

for run in 1 2 3; do
	start=$(date +%s.%N)
	set +e
	"$tmp/apikey" scan --offline --json "$file" >"$tmp/out.json" 2>"$tmp/err.txt"
	code=$?
	set -e
	end=$(date +%s.%N)
	if [[ $code -ne 1 ]]; then
		echo "scanbench: apikey scan exited $code, want 1 (keys found):" >&2
		cat "$tmp/err.txt" >&2
		exit 1
	fi
	found=$(grep -c '"key_id"' "$tmp/out.json")
	awk -v b="$bytes" -v s="$start" -v e="$end" -v f="$found" -v r="$run" \
		'BEGIN { t = e - s; printf "run %d: %.2f s, %.0f MB/s, %d keys found\n", r, t, b / t / 1e6, f }'
done

echo "scanbench: Go benchmarks (in memory)" >&2
go test -run '^$' -bench 'BenchmarkFindTokens' -benchtime 10x . | grep -E '^Benchmark'
(cd cmd/apikey && go test -run '^$' -bench 'BenchmarkScan$' -benchtime 10x . | grep -E '^Benchmark')

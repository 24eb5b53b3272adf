#!/usr/bin/env bash
# What a network allowlist of 10 ranges costs a cached verification, against
# the same path before allowlists existed. Run by hand:
#
#   ./scripts/allowlist-bench.sh           # machine as it is
#   BUSY=1 ./scripts/allowlist-bench.sh    # plus one busy loop per core
#
# Builds two test binaries of package bench: this checkout's, whose
# BenchmarkAllowlistPaired checks keys without and with 10 ranges
# (VerifyShared, then Key.Permits), interleaved in batches of 128, in CPU
# time; and one of commit $BEFORE (default e5af528, the commit before
# allowlists), in a temporary worktree, given the same loop over two sets of
# plain keys made one after the other (the second stands for the fenced
# set, made second here too). It runs them alternately ROUNDS times
# (default 12) and prints the medians, the ratio of the sums and of the
# medians, and the same-run ratio. Environment: ROUNDS, BENCHTIME (1s),
# BEFORE, BUSY.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROUNDS=${ROUNDS:-12}
BENCHTIME=${BENCHTIME:-1s}
BEFORE=${BEFORE:-e5af528}
BUSY=${BUSY:-0}

work=$(mktemp -d)
busy=()
cleanup() {
	for b in "${busy[@]}"; do kill "$b" 2>/dev/null || true; done
	git worktree remove --force "$work/before" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

echo "==> building bench of $(git rev-parse --short HEAD) and of $BEFORE"
(cd bench && go test -c -o "$work/after.test" .)
git worktree add -q --detach "$work/before" "$BEFORE"
cat >"$work/before/bench/allowlist_before_test.go" <<'GO'
package bench_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
)

// BenchmarkAllowlistPaired, as before allowlists: two sets of plain keys.
func BenchmarkAllowlistPaired(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	store, _ := newSQLite(b)
	creator := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	mk := func() []string {
		out := make([]string, cachedTokens)
		for i := range out {
			_, t, err := creator.Create(context.Background(), apikey.CreateParams{Name: fmt.Sprintf("k %d", i), Owner: "bench",
				Scopes: []string{"read", "write"}, Metadata: map[string]string{"n": fmt.Sprint(i)}})
			if err != nil {
				b.Fatal(err)
			}
			out[i] = t
		}
		return out
	}
	sets := [][]string{mk(), mk()}
	cache, err := ottercache.New(ottercache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	m := newManager(b, store, apikey.Config{Cache: cache})
	ctx := context.Background()
	for _, s := range sets {
		for _, t := range s {
			if _, err := m.Verify(ctx, t); err != nil {
				b.Fatal(err)
			}
		}
	}
	order := randomOrder(cachedTokens)
	var cpu [2]time.Duration
	n, i := 0, 0
	const batch = 128
	for b.Loop() {
		for si, s := range sets {
			st := threadCPU()
			for j := 0; j < batch; j++ {
				if _, err := m.VerifyShared(ctx, s[order[(i+j)&(orderLen-1)]]); err != nil {
					b.Fatal(err)
				}
			}
			cpu[si] += threadCPU() - st
		}
		i += batch
		n += batch
	}
	b.ReportMetric(float64(cpu[0])/float64(n), "cpu-ns/plain")
	b.ReportMetric(float64(cpu[1])/float64(n), "cpu-ns/allowlist10")
}
GO
(cd "$work/before/bench" && go test -c -o "$work/before.test" .)

if [[ $BUSY == 1 ]]; then
	for _ in $(seq "$(nproc)"); do
		yes >/dev/null &
		busy+=($!)
	done
	echo "==> $(nproc) busy loops running (pids ${busy[*]})"
fi
metric() { # file name
	awk -v m="$2" '{for (i = 2; i <= NF; i++) if ($i == m) print $(i-1)}' "$1"
}
for r in $(seq "$ROUNDS"); do
	for v in before after; do
		"$work/$v.test" -test.run x -test.bench '^BenchmarkAllowlistPaired$' -test.benchtime "$BENCHTIME" |
			grep '^BenchmarkAllowlistPaired' >>"$work/$v.txt"
	done
	echo "round $r of $ROUNDS: before $(metric "$work/before.txt" cpu-ns/allowlist10 | tail -1) ns, after $(metric "$work/after.txt" cpu-ns/allowlist10 | tail -1) ns (keys made second, cpu-ns per verification)"
done
stats() { sort -g | awk '{a[NR] = $1; s += $1} END {m = (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%s %s\n", m, s}'; }
read -r bm bs < <(metric "$work/before.txt" cpu-ns/allowlist10 | stats)
read -r am as < <(metric "$work/after.txt" cpu-ns/allowlist10 | stats)
read -r pm ps < <(metric "$work/after.txt" cpu-ns/plain | stats)
read -r rm _ < <(metric "$work/after.txt" ratio | stats)
echo "==> summary ($ROUNDS rounds of $BENCHTIME, $(nproc) CPUs, $([[ $BUSY == 1 ]] && echo "every core busy" || echo "machine as it is"), load $(cut -d' ' -f1-3 /proc/loadavg))"
printf 'before allowlists (second set of plain keys): median %.0f ns\n' "$bm"
printf 'now, keys with 10 ranges:                     median %.0f ns (keys without: %.0f ns)\n' "$am" "$pm"
awk -v a="$am" -v b="$bm" -v as="$as" -v bs="$bs" -v r="$rm" 'BEGIN {
	printf "ratio of medians %.3f, ratio of sums %.3f (target <= 1.10); same-run ratio, median %.3f\n", a / b, as / bs, r }'

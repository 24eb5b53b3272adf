package bench_test

import (
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
)

// BenchmarkAllowlistPaired measures what a network allowlist of 10 ranges
// adds to the cached verification path of apikeyhttp (VerifyShared, then
// Key.Permits with the client's address): keys without an allowlist and
// keys with one, interleaved in batches of 128 within one loop so that the
// load of a shared machine weighs on both alike, timed in CPU time of the
// benchmark's thread. The client's address, IPv6, lies in the last range
// of the stored (sorted) list. It reports "cpu-ns/plain",
// "cpu-ns/allowlist10" and their "ratio".
func BenchmarkAllowlistPaired(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	store, _ := newSQLite(b)
	creator := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	var ranges []netip.Prefix
	for i := range 9 {
		ranges = append(ranges, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	ranges = append(ranges, netip.MustParsePrefix("2001:db8::/32"))
	clientAddr := netip.MustParseAddr("2001:db8::7")
	mk := func(cidrs []netip.Prefix) []string {
		out := make([]string, cachedTokens)
		for i := range out {
			_, t, err := creator.Create(context.Background(), apikey.CreateParams{Name: fmt.Sprintf("k %d", i), Owner: "bench", Scopes: []string{"read", "write"}, Metadata: map[string]string{"n": fmt.Sprint(i)}, AllowedCIDRs: cidrs})
			if err != nil {
				b.Fatal(err)
			}
			out[i] = t
		}
		return out
	}
	plain, fenced := mk(nil), mk(ranges)
	cache, _ := ottercache.New(ottercache.Config{})
	b.Cleanup(cache.Close)
	m := newManager(b, store, apikey.Config{Cache: cache})
	ctx := context.Background()
	for _, s := range [][]string{plain, fenced} {
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
		for si, s := range [][]string{plain, fenced} {
			st := threadCPU()
			for j := 0; j < batch; j++ {
				k, err := m.VerifyShared(ctx, s[order[(i+j)&(orderLen-1)]])
				if err != nil {
					b.Fatal(err)
				}
				if err := k.Permits("", clientAddr); err != nil {
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
	b.ReportMetric(float64(cpu[1])/float64(cpu[0]), "ratio")
}

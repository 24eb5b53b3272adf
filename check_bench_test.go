package apikey_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// BenchmarkCheckPaired measures, interleaved in batches of 128 within one
// loop so that a shared machine's load weighs on all alike, a cached
// Verify and a Check of keys without limits, then a Verify and a Check of
// keys with a "requests" limit (the default MemoryLimiter), over memstore
// with a map cache: the cost of the limiter itself, without a cache
// library. Each Check runs on the keys the Verify before it has just read,
// so that both Checks find their keys equally warm in the CPU's caches.
// It reports ns per call of each, what each Check adds to its Verify, and
// "ns-limit": what the limit adds to a Check.
func BenchmarkCheckPaired(b *testing.B) {
	ctx := context.Background()
	m, err := apikey.NewManager(openStore(b), apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, UsageFlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close(ctx)
	high := []apikey.RateLimit{{Name: "requests", Limit: 1e12, Period: time.Second}}
	sets := make([][]string, 2)
	for s, limits := range [][]apikey.RateLimit{nil, high} {
		for i := 0; i < 1000; i++ {
			_, tok, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("bench ", i), Owner: "bench", RateLimits: limits})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); err != nil { // warm
				b.Fatal(err)
			}
			sets[s] = append(sets[s], tok)
		}
	}
	verify := func(t string) error { _, err := m.Verify(ctx, t); return err }
	check := func(t string) error { _, err := m.Check(ctx, t, apikey.CheckOptions{}); return err }
	calls := []struct {
		name string
		fn   func(string) error
		toks []string
	}{
		{"verify", verify, sets[0]},
		{"check-nolimit", check, sets[0]},
		{"verify-limited", verify, sets[1]},
		{"check-limit", check, sets[1]},
	}
	const batch = 128
	total := make([]time.Duration, len(calls))
	n, i := 0, 0
	for b.Loop() {
		for c := range calls {
			start := time.Now()
			for j := 0; j < batch; j++ {
				if err := calls[c].fn(calls[c].toks[(i+j*7)%1000]); err != nil {
					b.Fatal(err)
				}
			}
			total[c] += time.Since(start)
		}
		i += batch
		n += batch
	}
	per := func(c int) float64 { return float64(total[c]) / float64(n) }
	for c, call := range calls {
		b.ReportMetric(per(c), "ns/"+call.name)
		if c%2 == 1 {
			b.ReportMetric(per(c)-per(c-1), "ns-added/"+call.name)
		}
	}
	b.ReportMetric(per(3)-per(1), "ns-limit")
}

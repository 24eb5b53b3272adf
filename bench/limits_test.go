package bench_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkCachedCheck measures, in one run, what the in-process rate
// limiter adds to a cached verification: Manager.Verify, Manager.Check of
// keys without limits, of keys with a "requests" limit (the MemoryLimiter,
// one bucket per key), and of keys whose owner has a limit too. The limits
// are high enough never to refuse. Report the ratio of Check/limit to
// Verify from the same run.
func BenchmarkCachedCheck(b *testing.B) {
	m, sets := checkSetup(b)
	plain, limited, both := sets[0], sets[1], sets[2]
	order := randomOrder(cachedTokens)
	ctx := context.Background()
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.Verify(ctx, plain[order[i&(orderLen-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	for _, tc := range []struct {
		name   string
		tokens []string
	}{{"Check/nolimit", plain}, {"Check/limit", limited}, {"Check/limit+owner", both}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.Check(ctx, tc.tokens[order[i&(orderLen-1)]], apikey.CheckOptions{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// verifyOnly hides the LimitMetrics of a Metrics: the Manager then
// counts verifications but no limit decisions.
type verifyOnly struct{ apikey.Metrics }

// BenchmarkCachedCheckMetrics measures what the Prometheus metrics
// (apikeyprom) add to a cached Check of a key with a limit, and of one
// whose owner has a limit too (two limit decisions a call): the same calls
// on three Managers, without metrics ("plain"), with the verification
// metrics only ("verify-metrics", as before the limit counters) and with
// all of them ("metrics"), their sub-benchmarks alternated. Report the
// ratios of the rows of one run; all must show 1 allocation (the
// Result's).
func BenchmarkCachedCheckMetrics(b *testing.B) {
	metrics, err := apikeyprom.New(prometheus.NewRegistry(), "")
	if err != nil {
		b.Fatal(err)
	}
	verifyMetrics, err := apikeyprom.New(prometheus.NewRegistry(), "")
	if err != nil {
		b.Fatal(err)
	}
	plainM, plainSets := checkSetupMetrics(b, nil)
	verifyM, verifySets := checkSetupMetrics(b, verifyOnly{verifyMetrics})
	metricsM, metricsSets := checkSetupMetrics(b, metrics)
	order := randomOrder(cachedTokens)
	ctx := context.Background()
	for round := range 3 {
		for _, tc := range []struct {
			name string
			m    *apikey.Manager
			sets [3][]string
		}{{"plain", plainM, plainSets}, {"verify-metrics", verifyM, verifySets}, {"metrics", metricsM, metricsSets}} {
			for _, set := range []struct {
				name   string
				tokens []string
			}{{"limit", tc.sets[1]}, {"limit+owner", tc.sets[2]}} {
				b.Run(fmt.Sprintf("%s/%s/%d", set.name, tc.name, round), func(b *testing.B) {
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if _, err := tc.m.Check(ctx, set.tokens[order[i&(orderLen-1)]], apikey.CheckOptions{}); err != nil {
							b.Fatal(err)
						}
						i++
					}
				})
			}
		}
	}
}

// checkSetup returns a Manager with a warm ottercache over SQLite, and
// three sets of cachedTokens keys: without limits, with a "requests"
// limit, and with one whose owner has a limit too. Usage tracking is off,
// so that no flush to the database runs during the measurement.
func checkSetup(b *testing.B) (*apikey.Manager, [3][]string) {
	return checkSetupMetrics(b, nil)
}

// checkSetupMetrics is checkSetup with metrics, when not nil, on the
// Manager it returns.
func checkSetupMetrics(b *testing.B, metrics apikey.Metrics) (*apikey.Manager, [3][]string) {
	store, _ := newSQLite(b)
	seed := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	high := []apikey.RateLimit{{Name: "requests", Limit: 1e12, Period: time.Second}}
	make := func(owner string, limits []apikey.RateLimit) []string {
		tokens := make([]string, cachedTokens)
		for i := range tokens {
			_, t, err := seed.Create(context.Background(), apikey.CreateParams{
				Name: fmt.Sprintf("bench %d", i), Owner: owner, Scopes: []string{"read", "write"}, RateLimits: limits,
			})
			if err != nil {
				b.Fatal(err)
			}
			tokens[i] = t
		}
		return tokens
	}
	plain := make("bench", nil)
	limited := make("bench", high)
	if _, err := seed.SetOwner(context.Background(), "bench-org", apikey.OwnerUpdate{RateLimits: &high}); err != nil {
		b.Fatal(err)
	}
	both := make("bench-org", high)

	// A TTL longer than any run, so that no entry is re-read meanwhile.
	cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	m := newManager(b, store, apikey.Config{Cache: cache, UsageFlushInterval: -1, Metrics: metrics})
	ctx := context.Background()
	for _, set := range [][]string{plain, limited, both} { // warm
		for _, t := range set {
			if _, err := m.Check(ctx, t, apikey.CheckOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return m, [3][]string{plain, limited, both}
}

// BenchmarkCachedCheckPaired measures the same calls as
// BenchmarkCachedCheck, interleaved in batches of 128 within one loop, so
// that the load of a shared machine weighs on all of them alike. Each
// Check runs on the keys a Verify has just read, in the same order: every
// Check finds its keys equally warm in the CPU's caches (a Check that came
// after calls on other keys paid for cache misses that had nothing to do
// with limits, which made an earlier version of this benchmark put 500 ns
// on the limiter). It reports, per call of each, the wall time
// ("ns/verify", ...) and the CPU time of the benchmark's thread
// ("cpu-ns/verify", ...: the time spent waiting for a CPU left out), and
// what each Check adds to the Verify before it ("ns-added/...",
// "cpu-ns-added/..."). "cpu-ns-limit" (and "ns-limit", in wall time) is
// what the limit costs: check-limit less check-nolimit, and
// "cpu-ns-owner-limit" what an owner's limit costs on top of it. Its ns/op is that of one
// batch of each.
func BenchmarkCachedCheckPaired(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	m, sets := checkSetup(b)
	ctx := context.Background()
	order := randomOrder(cachedTokens)
	verify := func(t string) error { _, err := m.Verify(ctx, t); return err }
	check := func(t string) error { _, err := m.Check(ctx, t, apikey.CheckOptions{}); return err }
	calls := []struct {
		name string
		fn   func(token string) error
		toks []string
	}{
		{"verify", verify, sets[0]},
		{"check-nolimit", check, sets[0]},
		{"verify-limited", verify, sets[1]},
		{"check-limit", check, sets[1]},
		{"verify-limited+owner", verify, sets[2]},
		{"check-limit+owner", check, sets[2]},
	}
	const batch = 128
	wall := make([]time.Duration, len(calls))
	cpu := make([]time.Duration, len(calls))
	n, i := 0, 0
	for b.Loop() {
		for c := range calls {
			start, startCPU := time.Now(), threadCPU()
			for j := 0; j < batch; j++ {
				if err := calls[c].fn(calls[c].toks[order[(i+j)&(orderLen-1)]]); err != nil {
					b.Fatal(err)
				}
			}
			cpu[c] += threadCPU() - startCPU
			wall[c] += time.Since(start)
		}
		i += batch
		n += batch
	}
	per := func(d []time.Duration, c int) float64 { return float64(d[c]) / float64(n) }
	for c, call := range calls {
		b.ReportMetric(per(wall, c), "ns/"+call.name)
		b.ReportMetric(per(cpu, c), "cpu-ns/"+call.name)
		if c%2 == 1 { // a Check, after the Verify of its keys
			b.ReportMetric(per(wall, c)-per(wall, c-1), "ns-added/"+call.name)
			b.ReportMetric(per(cpu, c)-per(cpu, c-1), "cpu-ns-added/"+call.name)
		}
	}
	b.ReportMetric(per(cpu, 3)-per(cpu, 1), "cpu-ns-limit")
	b.ReportMetric(per(cpu, 5)-per(cpu, 3), "cpu-ns-owner-limit")
	b.ReportMetric(per(wall, 3)-per(wall, 1), "ns-limit")
}

// BenchmarkSpendCredits measures one spend of credits, an exact
// transaction in the store, on SQLite and, when APIKEY_TEST_POSTGRES_DSN
// is set, on PostgreSQL, with and without an idempotency key, beside the
// cached Check without credits of the same run.
func BenchmarkSpendCredits(b *testing.B) {
	type backend struct {
		name  string
		store apikey.Store
	}
	sq, _ := newSQLite(b)
	backends := []backend{{"sqlite", sq}}
	if dsn := os.Getenv("APIKEY_TEST_POSTGRES_DSN"); dsn != "" {
		backends = append(backends, backend{"postgres", newPostgres(b, dsn)})
	} else {
		b.Log("PostgreSQL skipped: set APIKEY_TEST_POSTGRES_DSN")
	}
	for _, be := range backends {
		cache, err := ottercache.New(ottercache.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cache.Close)
		m := newManager(b, be.store, apikey.Config{Cache: cache})
		ctx := context.Background()
		_, tok, err := m.Create(ctx, apikey.CreateParams{Name: "bench", Owner: "bench", Credits: &apikey.Credits{Remaining: 1 << 60}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(be.name+"/Check", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/Spend", func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(be.name+"/SpendParallel", func(b *testing.B) {
			b.SetParallelism(16) // 32 clients on 2 cores, as a loaded service has
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		b.Run(be.name+"/SpendIdempotent", func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1, IdempotencyKey: fmt.Sprint("req-", i)}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkLimitPaired splits what a rate limit adds to a cached Check
// into its parts. Four sets of cachedTokens keys are checked, interleaved
// in batches of 128 within one loop and timed in CPU time of the
// benchmark's thread (as BenchmarkCachedCheckPaired): keys without limits
// (made first and last, "plain" and "plain2", so that the order in which
// keys were made and cached shows as their difference), keys with a
// "requests" limit, which every Check applies, and keys with a limit of
// another name, which a Check that names no limit skips: their records
// are as large as the limited keys', their limiter is never consulted. It
// reports each set's "cpu-ns/...", "cpu-ns-limit" (requests less the mean
// of the plain sets: what a limit costs in all) and "cpu-ns-limiter"
// (requests less other: the limiter's own work).
func BenchmarkLimitPaired(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	store, _ := newSQLite(b)
	seed := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	mk := func(limits []apikey.RateLimit) []string {
		tokens := make([]string, cachedTokens)
		for i := range tokens {
			_, t, err := seed.Create(context.Background(), apikey.CreateParams{
				Name: fmt.Sprintf("bench %d", i), Owner: "bench", Scopes: []string{"read", "write"}, RateLimits: limits,
			})
			if err != nil {
				b.Fatal(err)
			}
			tokens[i] = t
		}
		return tokens
	}
	limit := func(name string) []apikey.RateLimit {
		return []apikey.RateLimit{{Name: name, Limit: 1e12, Period: time.Second}}
	}
	names := []string{"plain", "requests", "other", "plain2"}
	sets := [][]string{mk(nil), mk(limit("requests")), mk(limit("search")), mk(nil)}
	cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	m := newManager(b, store, apikey.Config{Cache: cache, UsageFlushInterval: -1})
	ctx := context.Background()
	for _, set := range sets { // warm
		for _, t := range set {
			if _, err := m.Check(ctx, t, apikey.CheckOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	order := randomOrder(cachedTokens)
	const batch = 128
	cpu := make([]time.Duration, len(sets))
	n, i := 0, 0
	for b.Loop() {
		for s, set := range sets {
			start := threadCPU()
			for j := 0; j < batch; j++ {
				if _, err := m.Check(ctx, set[order[(i+j)&(orderLen-1)]], apikey.CheckOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			cpu[s] += threadCPU() - start
		}
		i += batch
		n += batch
	}
	per := func(s int) float64 { return float64(cpu[s]) / float64(n) }
	for s, name := range names {
		b.ReportMetric(per(s), "cpu-ns/"+name)
	}
	b.ReportMetric(per(1)-(per(0)+per(3))/2, "cpu-ns-limit")
	b.ReportMetric(per(1)-per(2), "cpu-ns-limiter")
}

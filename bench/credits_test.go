package bench_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
)

// BenchmarkCreditSpend measures the spend of one credit on a cached key
// over SQLite, against a cached Check that spends nothing, in one run:
// "check" (no credits), "lease" (a Manager with Config.CreditLease 100:
// most spends take from the lease in memory) and "store" (CreditLease 0:
// every spend is a transaction, batched when concurrent), one goroutine
// and in parallel. The balances are large enough never to run out, so
// that leases take their full size. Report the ratios of lease and store
// to check from the same run.
func BenchmarkCreditSpend(b *testing.B) {
	store, _ := newSQLite(b)
	seed := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	tokens := make([]string, cachedTokens)
	for i := range tokens {
		_, t, err := seed.Create(context.Background(), apikey.CreateParams{
			Name: fmt.Sprintf("bench %d", i), Credits: &apikey.Credits{Remaining: 1 << 50},
		})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	manager := func(lease int64) *apikey.Manager {
		cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cache.Close)
		m := newManager(b, store, apikey.Config{Cache: cache, UsageFlushInterval: -1, CreditLease: lease, CreditLeaseTTL: time.Hour})
		for _, t := range tokens { // warm the cache
			if _, err := m.Check(context.Background(), t, apikey.CheckOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		return m
	}
	leased, direct := manager(100), manager(0)
	order := randomOrder(cachedTokens)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		m    *apikey.Manager
		opts apikey.CheckOptions
	}{
		{"check", leased, apikey.CheckOptions{}},
		{"lease", leased, apikey.CheckOptions{Credits: 1}},
		{"store", direct, apikey.CheckOptions{Credits: 1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := tc.m.Check(ctx, tokens[order[i&(orderLen-1)]], tc.opts); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(tc.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := tc.m.Check(ctx, tokens[order[i&(orderLen-1)]], tc.opts); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

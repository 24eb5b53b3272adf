package bench_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/sqlite"
	"github.com/prometheus/client_golang/prometheus"
)

const cachedTokens = 1000

// order is a fixed random sequence of token indexes, so that picking the
// next token costs an increment and a mask.
const orderLen = 1 << 14

func randomOrder(n int) []int {
	r := rand.New(rand.NewPCG(1, 2))
	o := make([]int, orderLen)
	for i := range o {
		o[i] = r.IntN(n)
	}
	return o
}

// newSQLite returns a migrated SQLite store in a fresh directory.
func newSQLite(b *testing.B) (*sqlite.Store, string) {
	b.Helper()
	ctx := context.Background()
	path := filepath.Join(b.TempDir(), "keys.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	return s, path
}

func newManager(b *testing.B, s apikey.Store, cfg apikey.Config) *apikey.Manager {
	b.Helper()
	m, err := apikey.NewManager(s, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func createTokens(b *testing.B, m *apikey.Manager, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range tokens {
		_, t, err := m.Create(context.Background(), apikey.CreateParams{
			Name: fmt.Sprintf("bench %d", i), Owner: "bench", Scopes: []string{"read", "write"},
			Metadata: map[string]string{"n": fmt.Sprint(i)},
		})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t
	}
	return tokens
}

// BenchmarkCachedVerify compares, in one run, Manager.Verify with a warm
// cache (with and without Prometheus metrics) and without a cache against
// the floor: one SHA-256 of a key-sized input. Usage tracking is on, as by
// default.
func BenchmarkCachedVerify(b *testing.B) {
	store, _ := newSQLite(b)
	creator := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	tokens := createTokens(b, creator, cachedTokens)
	// The same keys with a network allowlist of 10 ranges; the client's
	// address lies in the last.
	var ranges []netip.Prefix
	for i := range 9 {
		ranges = append(ranges, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	ranges = append(ranges, netip.MustParsePrefix("2001:db8::/32"))
	clientAddr := netip.MustParseAddr("2001:db8::7")
	fenced := make([]string, cachedTokens)
	for i := range fenced {
		_, t, err := creator.Create(context.Background(), apikey.CreateParams{
			Name: fmt.Sprintf("fenced %d", i), Owner: "bench", Scopes: []string{"read", "write"},
			Metadata: map[string]string{"n": fmt.Sprint(i)}, AllowedCIDRs: ranges,
		})
		if err != nil {
			b.Fatal(err)
		}
		fenced[i] = t
	}
	order := randomOrder(len(tokens))

	newCached := func(withMetrics bool) *apikey.Manager {
		cache, err := ottercache.New(ottercache.Config{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(cache.Close)
		cfg := apikey.Config{Cache: cache}
		if withMetrics {
			if cfg.Metrics, err = apikeyprom.New(prometheus.NewRegistry(), ""); err != nil {
				b.Fatal(err)
			}
		}
		m := newManager(b, store, cfg)
		for _, t := range append(slices.Clone(tokens), fenced...) { // warm
			if _, err := m.Verify(context.Background(), t); err != nil {
				b.Fatal(err)
			}
		}
		return m
	}
	managers := []struct {
		name string
		m    *apikey.Manager
	}{
		{"cached", newCached(false)},
		{"cached+metrics", newCached(true)},
		{"uncached", newManager(b, store, apikey.Config{})},
	}

	b.Run("SHA256", func(b *testing.B) {
		in := []byte(tokens[0])
		if len(in) != 54 {
			b.Fatalf("token length %d, want 54", len(in))
		}
		b.ReportAllocs()
		for b.Loop() {
			sha256.Sum256(in)
		}
	})
	for _, mm := range managers {
		b.Run("Verify/"+mm.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := mm.m.Verify(ctx, tokens[order[i&(orderLen-1)]]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	// The path of apikeyhttp: a cached verification, then the key's
	// network allowlist held against the client's address (Key.Permits),
	// for keys without an allowlist and with one of 10 ranges.
	for _, set := range []struct {
		name   string
		tokens []string
	}{{"cached", tokens}, {"cached+allowlist10", fenced}} {
		b.Run("VerifyPermits/"+set.name, func(b *testing.B) {
			ctx := context.Background()
			m := managers[0].m
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k, err := m.VerifyShared(ctx, set.tokens[order[i&(orderLen-1)]])
				if err != nil {
					b.Fatal(err)
				}
				if err := k.Permits("", clientAddr); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
	b.Run("VerifyShared/cached", func(b *testing.B) {
		ctx := context.Background()
		m := managers[0].m
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := m.VerifyShared(ctx, tokens[order[i&(orderLen-1)]]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("VerifySharedParallel/cached", func(b *testing.B) {
		ctx := context.Background()
		m := managers[0].m
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(orderLen)
			for pb.Next() {
				if _, err := m.VerifyShared(ctx, tokens[order[i&(orderLen-1)]]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	for _, mm := range managers[:2] {
		b.Run("VerifyParallel/"+mm.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := rand.IntN(orderLen)
				for pb.Next() {
					if _, err := mm.m.Verify(ctx, tokens[order[i&(orderLen-1)]]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
	b.Run("SHA256Parallel", func(b *testing.B) {
		in := []byte(tokens[0])
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sha256.Sum256(in)
			}
		})
	})
}

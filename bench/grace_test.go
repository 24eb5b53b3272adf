package bench_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
)

// BenchmarkGraceVerify measures cached verifications of keys in the
// grace window of a roll, against keys never rolled, in one run: the
// current secret of a plain key, the new secret of a rolled key, and its
// previous secret (one more digest comparison, after the current one
// failed).
func BenchmarkGraceVerify(b *testing.B) {
	store, _ := newSQLite(b)
	setup := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	plain := createTokens(b, setup, cachedTokens)
	old := createTokens(b, setup, cachedTokens)
	fresh := make([]string, len(old))
	for i, t := range old {
		k, err := setup.Verify(context.Background(), t)
		if err != nil {
			b.Fatal(err)
		}
		if _, fresh[i], err = setup.Roll(context.Background(), k.ID,
			apikey.RollOptions{Grace: 24 * time.Hour, GraceStarts: apikey.GraceNow}); err != nil {
			b.Fatal(err)
		}
	}
	cache, err := ottercache.New(ottercache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	m := newManager(b, store, apikey.Config{Cache: cache})
	order := randomOrder(cachedTokens)
	for _, set := range []struct {
		name   string
		tokens []string
	}{{"plain", plain}, {"rolled/new", fresh}, {"rolled/previous", old}} {
		for _, t := range set.tokens { // warm
			if _, err := m.VerifyShared(context.Background(), t); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("VerifyShared/"+set.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := m.VerifyShared(ctx, set.tokens[order[i&(orderLen-1)]]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

package apikey_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// frozenHashes is a Store whose SetHash writes nothing: every verification
// of a legacy key is then a first use.
type frozenHashes struct{ *memstore.Store }

func (frozenHashes) SetHash(context.Context, string, string, string, *apikey.Event) error { return nil }

// BenchmarkVerifyDRF measures Manager.Verify, over a memstore with and
// without a cache, of a native key, of a key imported from DRF API Key
// with its sha512$$ digest, and of an imported key with a Django
// pbkdf2_sha256 digest at Django's default costs (260,000 iterations in
// Django 3.2, 1,000,000 in Django 5.2) on its first use, before the
// upgrade replaces it with the native form.
func BenchmarkVerifyDRF(b *testing.B) {
	ctx := context.Background()
	for _, cached := range []bool{false, true} {
		cfg := apikey.Config{UsageFlushInterval: -1}
		name := "Uncached"
		if cached {
			cfg.Cache, name = &mapCache{m: map[string]*apikey.CacheEntry{}}, "Cached"
		}
		st := openStore(b)
		m, err := apikey.NewManager(st, cfg)
		if err != nil {
			b.Fatal(err)
		}
		_, native, err := m.Create(ctx, apikey.CreateParams{Name: "native"})
		if err != nil {
			b.Fatal(err)
		}
		key := "AbCd1234." + drfSecret
		importBench(b, m, apikey.DRFKey{Prefix: "AbCd1234", HashedKey: sha512Digest(key), Name: "drf", Created: time.Now()})
		for _, tc := range []struct{ name, token string }{{"Native", native}, {"ImportedSHA512", key}} {
			b.Run(name+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := m.Verify(ctx, tc.token); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, iter := range []int{260_000, 1_000_000} {
		m, err := apikey.NewManager(frozenHashes{openStore(b)}, apikey.Config{UsageFlushInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		key := "Legacy12." + drfSecret
		importBench(b, m, apikey.DRFKey{Prefix: "Legacy12", HashedKey: djangoPBKDF2(b, "pbkdf2_sha256", sha256.New, key, "4rTdKwUBVPQv684tfOvX1z", iter), Name: "legacy", Created: time.Now()})
		b.Run(fmt.Sprintf("LegacyPBKDF2FirstUse/%d", iter), func(b *testing.B) {
			for b.Loop() {
				if _, err := m.Verify(ctx, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func importBench(b *testing.B, m *apikey.Manager, k apikey.DRFKey) {
	b.Helper()
	rec, err := m.NewDRFRecord(k)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := m.Import(context.Background(), []*apikey.Record{rec}); err != nil {
		b.Fatal(err)
	}
}

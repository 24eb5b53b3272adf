package postgres_test

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	mathrand "math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
)

// BenchmarkVerify measures verification against a table of 10,000 keys,
// next to its baseline in the same run:
//
//   - PgxPointQuery: one plain pgx point query by primary key, the floor for
//     any verification that reaches PostgreSQL;
//   - Lookup: Store.Lookup, the one statement behind Verify;
//   - Verify: Manager.Verify of a valid token, picked at random among 1,000.
//
// The target is Verify ≤ 1.2 × PgxPointQuery.
func BenchmarkVerify(b *testing.B) {
	const total, valid = 10_000, 1_000
	s := newStore(b)
	ctx := context.Background()
	pool := s.Pool()
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		b.Fatal(err)
	}

	// Keys with known tokens, through the Manager.
	ids := make([]string, valid)
	tokens := make([]string, valid)
	for i := range valid {
		k, token, err := m.Create(ctx, apikey.CreateParams{
			Name: fmt.Sprint("bench ", i), Owner: fmt.Sprint("org_", i%100),
			Scopes: []string{"read", "write"}, Metadata: map[string]string{"env": "bench"},
		})
		if err != nil {
			b.Fatalf("Create: %v", err)
		}
		ids[i], tokens[i] = k.ID, token
	}
	// The rest as filler, copied in bulk.
	now := time.Now().UTC().Truncate(time.Microsecond)
	rows := make([][]any, 0, total-valid)
	for i := range total - valid {
		rec, _, err := m.NewRecord(apikey.CreateParams{Name: fmt.Sprint("filler ", i), Owner: fmt.Sprint("org_", i%100),
			Scopes: []string{"read"}, Metadata: map[string]string{"n": fmt.Sprint(i)}})
		if err != nil {
			b.Fatalf("NewRecord: %v", err)
		}
		rows = append(rows, []any{rec.ID, rec.Prefix, rec.Name, rec.Owner, rec.Scopes, rec.Metadata, rec.Hash,
			now.Add(-time.Duration(i) * time.Second)})
	}
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"apikey_keys"},
		[]string{"id", "prefix", "name", "owner", "scopes", "metadata", "hash", "created_at"},
		pgx.CopyFromRows(rows)); err != nil {
		b.Fatalf("CopyFrom: %v", err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE apikey_keys"); err != nil {
		b.Fatalf("ANALYZE: %v", err)
	}

	b.Run("PgxPointQuery", func(b *testing.B) {
		rnd := mathrand.New(mathrand.NewPCG(1, 2))
		var id, hash string
		for b.Loop() {
			if err := pool.QueryRow(ctx, "SELECT id, hash FROM apikey_keys WHERE id = $1", ids[rnd.IntN(valid)]).Scan(&id, &hash); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		rnd := mathrand.New(mathrand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := s.Lookup(ctx, ids[rnd.IntN(valid)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		rnd := mathrand.New(mathrand.NewPCG(1, 2))
		for b.Loop() {
			if _, err := m.Verify(ctx, tokens[rnd.IntN(valid)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The machine is shared and noisy: Interleaved alternates one point
	// query and one Verify per iteration, so that both see the same load,
	// and reports their ratio.
	b.Run("Interleaved", func(b *testing.B) {
		rnd := mathrand.New(mathrand.NewPCG(1, 2))
		var point, verify time.Duration
		var id, hash string
		for b.Loop() {
			i := rnd.IntN(valid)
			t0 := time.Now()
			if err := pool.QueryRow(ctx, "SELECT id, hash FROM apikey_keys WHERE id = $1", ids[i]).Scan(&id, &hash); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := m.Verify(ctx, tokens[(i+1)%valid]); err != nil {
				b.Fatal(err)
			}
			point += t1.Sub(t0)
			verify += time.Since(t1)
		}
		b.ReportMetric(float64(point.Nanoseconds())/float64(b.N), "point-ns/op")
		b.ReportMetric(float64(verify.Nanoseconds())/float64(b.N), "verify-ns/op")
		b.ReportMetric(float64(verify)/float64(point), "verify/point")
	})
}

// BenchmarkVerifyImported compares, without a cache, the verification of
// keys imported from DRF API Key (sha512$$ digests, dotted form) with that
// of native keys on PostgreSQL, 1,000 of each. Interleaved alternates one
// of each per iteration and reports their ratio (target: ≤ 1.5).
func BenchmarkVerifyImported(b *testing.B) {
	const n = 1_000
	s := newStore(b)
	ctx := context.Background()
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		b.Fatal(err)
	}
	native := make([]string, n)
	imported := make([]string, n)
	recs := make([]*apikey.Record, n)
	for i := range n {
		if _, native[i], err = m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("native ", i)}); err != nil {
			b.Fatal(err)
		}
		prefix := fmt.Sprintf("B%07d", i)
		imported[i] = prefix + ".0123456789abcdefghijABCDEFGHIJ01"
		sum := sha512.Sum512([]byte(imported[i]))
		if recs[i], err = m.NewDRFRecord(apikey.DRFKey{Prefix: prefix, HashedKey: "sha512$$" + hex.EncodeToString(sum[:]),
			Name: fmt.Sprint("imported ", i), Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := m.Import(ctx, recs); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tokens []string
	}{{"Native", native}, {"ImportedSHA512", imported}} {
		b.Run(tc.name, func(b *testing.B) {
			rnd := mathrand.New(mathrand.NewPCG(1, 2))
			for b.Loop() {
				if _, err := m.Verify(ctx, tc.tokens[rnd.IntN(n)]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("Interleaved", func(b *testing.B) {
		rnd := mathrand.New(mathrand.NewPCG(1, 2))
		var nat, imp time.Duration
		for b.Loop() {
			i := rnd.IntN(n)
			t0 := time.Now()
			if _, err := m.Verify(ctx, native[i]); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := m.Verify(ctx, imported[i]); err != nil {
				b.Fatal(err)
			}
			nat += t1.Sub(t0)
			imp += time.Since(t1)
		}
		b.ReportMetric(float64(nat.Nanoseconds())/float64(b.N), "native-ns/op")
		b.ReportMetric(float64(imp.Nanoseconds())/float64(b.N), "imported-ns/op")
		b.ReportMetric(float64(imp)/float64(nat), "imported/native")
	})
}

package bench_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/go-apikey/apikey/memstore"
	"github.com/go-apikey/apikey/postgres/pgtest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// realKeys are created through a Manager, so that they verify; the rest of
// a store is filler rows with random ids and digests.
const realKeys = 1000

func coldSizes() []int {
	if os.Getenv("APIKEY_BENCH_MILLION") == "1" {
		return []int{1_000, 1_000_000}
	}
	return []int{1_000}
}

// filler returns the ids and digests of n keys made as a Manager makes
// them (Manager.NewRecord), whose tokens are thrown away.
func filler(b *testing.B, n int) (ids, hashes []string) {
	m := newManager(b, memstore.New(), apikey.Config{UsageFlushInterval: -1})
	ids, hashes = make([]string, n), make([]string, n)
	for i := range n {
		rec, _, err := m.NewRecord(apikey.CreateParams{Name: "filler"})
		if err != nil {
			b.Fatal(err)
		}
		ids[i], hashes[i] = rec.ID, rec.Hash
	}
	return ids, hashes
}

// BenchmarkColdVerify measures Manager.Verify without a cache (one store
// lookup each) as the store grows from 1,000 keys to 1,000,000 (with
// APIKEY_BENCH_MILLION=1), on SQLite and, when APIKEY_TEST_POSTGRES_DSN is
// set, on PostgreSQL.
func BenchmarkColdVerify(b *testing.B) {
	for _, n := range coldSizes() {
		b.Run(fmt.Sprintf("SQLite/keys=%d", n), func(b *testing.B) {
			store, path := newSQLite(b)
			tokens := createTokens(b, newManager(b, store, apikey.Config{UsageFlushInterval: -1}), realKeys)
			seedSQLite(b, path, n-realKeys)
			// Both sizes start from a checkpointed WAL: the Creates above
			// leave a thousand commits in it.
			if _, err := store.DB().Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			runCold(b, store, tokens)
		})
	}
	dsn := os.Getenv("APIKEY_TEST_POSTGRES_DSN")
	if dsn == "" {
		b.Log("PostgreSQL skipped: set APIKEY_TEST_POSTGRES_DSN")
		return
	}
	for _, n := range coldSizes() {
		b.Run(fmt.Sprintf("PostgreSQL/keys=%d", n), func(b *testing.B) {
			store := newPostgres(b, dsn)
			tokens := createTokens(b, newManager(b, store, apikey.Config{UsageFlushInterval: -1}), realKeys)
			seedPostgres(b, store.Pool(), n-realKeys)
			runCold(b, store, tokens)
		})
	}
}

func runCold(b *testing.B, store apikey.Store, tokens []string) {
	m := newManager(b, store, apikey.Config{UsageFlushInterval: -1})
	order := randomOrder(len(tokens))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := m.Verify(ctx, tokens[order[i&(orderLen-1)]]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// seedSQLite inserts n filler rows with one prepared statement in large
// transactions, on a connection of its own with synchronous=OFF (a
// fixture needs no durability).
func seedSQLite(b *testing.B, path string, n int) {
	if n <= 0 {
		return
	}
	start := time.Now()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(OFF)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	ids, hashes := filler(b, n)
	slices.Sort(ids) // appending in key order keeps the B-tree inserts cheap
	created := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	const batch = 100_000
	for lo := 0; lo < n; lo += batch {
		tx, err := db.Begin()
		if err != nil {
			b.Fatal(err)
		}
		st, err := tx.Prepare(`INSERT INTO apikey_keys (id, prefix, name, owner, hash, created_at) VALUES (?, 'ak', 'filler', 'filler', ?, ?)`)
		if err != nil {
			b.Fatal(err)
		}
		for i := lo; i < min(lo+batch, n); i++ {
			if _, err := st.Exec(ids[i], hashes[i], created); err != nil {
				b.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := db.Exec(`ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d SQLite rows in %v", n, time.Since(start).Round(time.Millisecond))
}

// newPostgres returns a store in a fresh schema, dropped after the
// benchmark.
func newPostgres(b *testing.B, dsn string) *postgres.Store {
	b.Helper()
	return pgtest.NewStore(b)
}

// seedPostgres loads n filler rows with COPY.
func seedPostgres(b *testing.B, pool *pgxpool.Pool, n int) {
	if n <= 0 {
		return
	}
	start := time.Now()
	ids, hashes := filler(b, n)
	created := time.Now().UTC()
	empty := json.RawMessage("{}")
	rows := pgx.CopyFromSlice(n, func(i int) ([]any, error) {
		return []any{ids[i], "ak", "filler", "filler", []string{}, empty, hashes[i], created}, nil
	})
	ctx := context.Background()
	if _, err := pool.CopyFrom(ctx, pgx.Identifier{"apikey_keys"},
		[]string{"id", "prefix", "name", "owner", "scopes", "metadata", "hash", "created_at"}, rows); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, "ANALYZE apikey_keys"); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d PostgreSQL rows in %v", n, time.Since(start).Round(time.Millisecond))
}

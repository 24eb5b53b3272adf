package sqlite_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

const (
	benchKeys   = 10_000
	benchTokens = 1_000
)

var bench struct {
	once   sync.Once
	dir    string
	path   string
	tokens []string // valid tokens of benchTokens of the keys
	ids    []string
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bench.dir != "" {
		os.RemoveAll(bench.dir)
	}
	os.Exit(code)
}

// benchDB builds, once per test binary, a migrated database of benchKeys
// keys spread over 100 owners, and keeps benchTokens of their tokens.
func benchDB(b *testing.B) (path string, tokens, ids []string) {
	b.Helper()
	bench.once.Do(func() {
		bench.err = func() error {
			dir, err := os.MkdirTemp("", "apikey-bench")
			if err != nil {
				return err
			}
			bench.dir = dir
			bench.path = filepath.Join(dir, "bench.db")
			// Building with synchronous=OFF on one connection: durability does
			// not matter for a fixture, and it keeps the setup to a second.
			db, err := sql.Open("sqlite", bench.path+"?_txlock=immediate&_pragma=journal_mode(WAL)&_pragma=synchronous(OFF)")
			if err != nil {
				return err
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			ctx := context.Background()
			s := sqlite.New(db)
			if err := s.Migrate(ctx); err != nil {
				return err
			}
			m, err := apikey.NewManager(s, apikey.Config{})
			if err != nil {
				return err
			}
			for i := range benchKeys {
				k, token, err := m.Create(ctx, apikey.CreateParams{
					Name:     fmt.Sprintf("bench key %d", i),
					Owner:    fmt.Sprintf("owner-%d", i%100),
					Scopes:   []string{"read", "write"},
					Metadata: map[string]string{"n": fmt.Sprint(i)},
				})
				if err != nil {
					return err
				}
				if i%(benchKeys/benchTokens) == 0 {
					bench.tokens = append(bench.tokens, token)
					bench.ids = append(bench.ids, k.ID)
				}
			}
			_, err = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			return err
		}()
	})
	if bench.err != nil {
		b.Fatalf("building the benchmark database: %v", bench.err)
	}
	return bench.path, bench.tokens, bench.ids
}

// BenchmarkVerify measures Manager.Verify against a 10,000-key database,
// with its parts and the SHA-256 baseline in the same run.
func BenchmarkVerify(b *testing.B) {
	path, tokens, ids := benchDB(b)
	ctx := context.Background()
	store, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	m, err := apikey.NewManager(store, apikey.Config{})
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))

	b.Run("SHA256", func(b *testing.B) {
		in := []byte(tokens[0])
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			sha256.Sum256(in)
		}
	})
	b.Run("Parse", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := apikey.ParseToken(tokens[rng.IntN(len(tokens))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Lookup", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := store.Lookup(ctx, ids[rng.IntN(len(ids))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := m.Verify(ctx, tokens[rng.IntN(len(tokens))]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("VerifyParallel", func(b *testing.B) {
		b.ReportAllocs()
		var seed sync.Mutex
		b.RunParallel(func(pb *testing.PB) {
			seed.Lock()
			r := rand.New(rand.NewPCG(rng.Uint64(), 3))
			seed.Unlock()
			for pb.Next() {
				if _, err := m.Verify(ctx, tokens[r.IntN(len(tokens))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

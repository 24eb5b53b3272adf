package sqlite_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/sqlite"
)

// openTemp opens and migrates a store in a fresh temporary directory and
// returns it with the database path.
// newManager returns a Manager over s without usage tracking, closed
// when the test ends.
func newManager(t testing.TB, s apikey.Store) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func openTemp(t testing.TB) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apikey.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return s, path
}

func TestStore(t *testing.T) { apikeytest.TestStore(t, newHarness) }

// TestChangeFeed runs the change feed and instance registry suite.
func TestChangeFeed(t *testing.T) { apikeytest.TestChangeFeed(t, newHarness) }

// newHarness opens a fresh, migrated database for one subtest of a suite.
func newHarness(t *testing.T) apikeytest.Harness {
	s, path := openTemp(t)
	return apikeytest.Harness{
		Store: s,
		Exec: func(ctx context.Context, query string) error {
			_, err := s.DB().ExecContext(ctx, query)
			return err
		},
		Dump: func(ctx context.Context) ([]byte, error) {
			// Everything on disk: the main file, and the WAL with its
			// frames (old row versions included) before any checkpoint.
			var all []byte
			for _, p := range []string{path, path + "-wal", path + "-journal"} {
				b, err := os.ReadFile(p)
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err != nil {
					return nil, err
				}
				all = append(all, b...)
			}
			return all, nil
		},
	}
}

func TestOpenImpossiblePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plain-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		filepath.Join(dir, "missing", "dir", "apikey.db"),
		filepath.Join(file, "apikey.db"),
		dir, // a directory, not a database file
		"",
		filepath.Join(dir, "what?.db"),
	} {
		s, err := sqlite.Open(t.Context(), path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
			continue
		}
		if !strings.Contains(err.Error(), "sqlite:") || (path != "" && !strings.Contains(err.Error(), path)) {
			t.Errorf("Open(%q) error %q does not name the path", path, err)
		}
	}
}

func TestMigrateTwiceAndConcurrently(t *testing.T) {
	s, path := openTemp(t)
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	// Several stores on the same fresh file migrating at once.
	fresh := filepath.Join(filepath.Dir(path), "fresh.db")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := sqlite.Open(t.Context(), fresh)
			if err != nil {
				errs <- err
				return
			}
			defer s.Close()
			errs <- s.Migrate(t.Context())
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	for _, p := range []string{path, fresh} {
		s2, err := sqlite.Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s2.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM apikey_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if want := len(migrationFiles(t)); n != want {
			t.Errorf("%s: apikey_migrations has %d rows, want %d (one per embedded migration)", filepath.Base(p), n, want)
		}
		s2.Close()
	}
}

// migrationFiles returns the names of the package's migration files.
func migrationFiles(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(names) == 0 {
		t.Fatalf("migration files: %v, %v", names, err)
	}
	return names
}

func TestPragmas(t *testing.T) {
	s, _ := openTemp(t)
	// Every pooled connection gets the pragmas: hold several at once.
	var conns []interface{ Close() error }
	for range 3 {
		c, err := s.DB().Conn(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		var mode string
		var timeout, fk int
		if err := c.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(t.Context(), `PRAGMA busy_timeout`).Scan(&timeout); err != nil {
			t.Fatal(err)
		}
		if err := c.QueryRowContext(t.Context(), `PRAGMA foreign_keys`).Scan(&fk); err != nil {
			t.Fatal(err)
		}
		if mode != "wal" || timeout != int(sqlite.BusyTimeout.Milliseconds()) || fk != 1 {
			t.Errorf("connection pragmas: journal_mode %q, busy_timeout %d, foreign_keys %d; want wal, %d, 1",
				mode, timeout, fk, sqlite.BusyTimeout.Milliseconds())
		}
	}
	for _, c := range conns {
		c.Close()
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

// TestRevokedRowFrozen checks the SQLite-specific triggers beyond the
// conformance suite: a revoked row's fields cannot change through SQL, and
// INSERT OR REPLACE cannot swap it for an unrevoked one.
func TestRevokedRowFrozen(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "frozen", Scopes: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE apikey_keys SET name = 'thawed' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET scopes = '["*"]' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET metadata = '{"a":"b"}' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET expires_at = '2999-01-01T00:00:00.000000Z' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET owner = 'someone' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET id = 'NewId0000000' WHERE id = '` + k.ID + `'`,
		`UPDATE apikey_keys SET revoked_at = '2000-01-01T00:00:00.000000Z' WHERE id = '` + k.ID + `'`,
		`INSERT OR REPLACE INTO apikey_keys (id, prefix, name, owner, scopes, metadata, hash, created_at)
			SELECT id, prefix, name, owner, scopes, metadata, hash, created_at FROM apikey_keys WHERE id = '` + k.ID + `'`,
		`INSERT INTO apikey_keys (id, prefix, name, owner, scopes, metadata, hash, created_at)
			SELECT id, prefix, name, owner, scopes, metadata, hash, created_at FROM apikey_keys WHERE id = '` + k.ID + `'
			ON CONFLICT (id) DO UPDATE SET revoked_at = NULL`,
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err == nil {
			t.Errorf("Exec(%s) succeeded on a revoked key, want it refused", stmt)
		} else if !strings.Contains(err.Error(), "apikey: ") {
			t.Errorf("Exec(%s): err = %v, want a trigger's apikey: message", stmt, err)
		}
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify after SQL attempts: err = %v, want %v", err, apikey.ErrRevoked)
	}
}

// TestStoredTimeFormat checks the on-disk time format, which makes text
// order time order.
func TestStoredTimeFormat(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "t"})
	if err != nil {
		t.Fatal(err)
	}
	var created string
	if err := s.DB().QueryRowContext(ctx, `SELECT created_at FROM apikey_keys WHERE id = ?`, k.ID).Scan(&created); err != nil {
		t.Fatal(err)
	}
	if want := k.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"); created != want {
		t.Errorf("stored created_at = %q, want %q", created, want)
	}
	// A malformed time is refused by the schema.
	_, err = s.DB().ExecContext(ctx, `UPDATE apikey_keys SET expires_at = '2030-01-01 00:00:00' WHERE id = ?`, k.ID)
	if err == nil {
		t.Error("the schema accepted a malformed expires_at")
	}
}

// TestCredits runs the owners and credits suite on real SQLite.
func TestCredits(t *testing.T) { apikeytest.TestCredits(t, newHarness) }

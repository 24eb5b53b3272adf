package postgres_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/postgres"
)

func tombstoned(t *testing.T, s *postgres.Store, id string) bool {
	t.Helper()
	var ok bool
	if err := s.Pool().QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = $1)", id).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

const reinsert = "INSERT INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ($1, 'ak', 'back', $2, now())"

// TestRevokedIDBypasses tries the PostgreSQL ways around the tombstones:
// TRUNCATE, a temporary table shadowing apikey_revoked_ids, and a session
// whose search_path does not hold the store's schema.
func TestRevokedIDBypasses(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	s := openStore(t, dsn, schema)
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var revoked []*apikey.Record
	var tokens []string
	for range 3 {
		k, token, err := m.Create(ctx, apikey.CreateParams{Name: "revoked"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		rec, err := s.Lookup(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		revoked, tokens = append(revoked, rec), append(tokens, token)
	}

	for _, stmt := range []string{"TRUNCATE apikey_revoked_ids", "DELETE FROM apikey_revoked_ids", "UPDATE apikey_revoked_ids SET id = 'x'"} {
		if _, err := s.Pool().Exec(ctx, stmt); err == nil {
			t.Errorf("%s succeeded, want it refused", stmt)
		}
	}

	// TRUNCATE of the keys fires no row trigger; the ids were tombstoned at
	// revocation.
	if _, err := s.Pool().Exec(ctx, "TRUNCATE apikey_keys"); err != nil {
		t.Fatalf("TRUNCATE apikey_keys: %v", err)
	}
	if _, err := s.Pool().Exec(ctx, reinsert, revoked[0].ID, revoked[0].Hash); err == nil {
		t.Error("re-inserting a revoked id after TRUNCATE succeeded, want it refused")
	}

	// A temporary table of the same name comes first in the session's
	// search_path, but the trigger functions do not look there.
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE apikey_revoked_ids (id text PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, reinsert, revoked[1].ID, revoked[1].Hash); err == nil {
		t.Error("re-inserting a revoked id past a shadowing temporary table succeeded, want it refused")
	}
	if _, err := conn.Exec(ctx, "DROP TABLE pg_temp.apikey_revoked_ids"); err != nil {
		t.Fatal(err)
	}

	// Another search_path, with qualified names: revoking and deleting still
	// tombstone, and inserting still checks.
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	q := pgx.Identifier{schema, "apikey_keys"}.Sanitize()
	if _, err := other.Exec(ctx, "INSERT INTO "+q+" (id, prefix, name, hash, created_at) VALUES ('OtherPath001', 'ak', 'n', 'sha256$00', now())"); err != nil {
		t.Fatalf("insert from another search_path: %v", err)
	}
	if _, err := other.Exec(ctx, "UPDATE "+q+" SET revoked_at = now() WHERE id = 'OtherPath001'"); err != nil {
		t.Fatalf("revoke from another search_path: %v", err)
	}
	if _, err := other.Exec(ctx, "DELETE FROM "+q+" WHERE id = 'OtherPath001'"); err != nil {
		t.Fatalf("delete from another search_path: %v", err)
	}
	if _, err := other.Exec(ctx, "INSERT INTO "+q+" (id, prefix, name, hash, created_at) VALUES ('OtherPath001', 'ak', 'n', 'sha256$00', now())"); err == nil {
		t.Error("re-inserting a revoked id from another search_path succeeded, want it refused")
	}
	if _, err := other.Exec(ctx, "INSERT INTO "+q+" (id, prefix, name, hash, created_at) VALUES ($1, 'ak', 'n', $2, now())", revoked[2].ID, revoked[2].Hash); err == nil {
		t.Error("re-inserting a revoked id from another search_path succeeded, want it refused")
	}
	for i, token := range tokens {
		if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("Verify of revoked token %d: err = %v, want %v", i, err, apikey.ErrInvalidKey)
		}
	}
	if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "still works"}); err != nil {
		t.Errorf("Create after the attempts: %v", err)
	}
}

// TestTombstoneMigrationBackfills migrates a schema holding revoked keys
// from version 3: the keys revoked before the migration are tombstoned too.
func TestTombstoneMigrationBackfills(t *testing.T) {
	ctx := t.Context()
	dsn := testDSN(t)
	s := openStore(t, dsn, newSchema(t, dsn))
	pool := s.Pool()
	if _, err := pool.Exec(ctx, "CREATE TABLE apikey_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	names, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		base := filepath.Base(name)
		if base >= "0004" {
			break
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", base, err)
		}
		if _, err := pool.Exec(ctx, "INSERT INTO apikey_migrations (version) VALUES ($1::text::integer)", base[:4]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO apikey_keys (id, prefix, name, hash, created_at, revoked_at) VALUES
		('OldRevoked01', 'ak', 'old', 'sha256$00', now(), now()),
		('OldActive001', 'ak', 'old', 'sha256$00', now(), NULL)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 3: %v", err)
	}
	if !tombstoned(t, s, "OldRevoked01") || tombstoned(t, s, "OldActive001") {
		t.Errorf("after migrating: tombstones revoked %v, active %v; want true, false",
			tombstoned(t, s, "OldRevoked01"), tombstoned(t, s, "OldActive001"))
	}
	if _, err := pool.Exec(ctx, "DELETE FROM apikey_keys WHERE id = 'OldRevoked01'"); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, reinsert, "OldRevoked01", "sha256$00"); err == nil {
		t.Error("re-inserting a key revoked before the migration succeeded, want it refused")
	}
}

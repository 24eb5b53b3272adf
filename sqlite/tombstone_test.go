package sqlite_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/sqlite"
)

// tombstoned reports whether id is in apikey_revoked_ids.
func tombstoned(t *testing.T, s *sqlite.Store, id string) bool {
	t.Helper()
	var n int
	if err := s.DB().QueryRowContext(t.Context(), `SELECT count(*) FROM apikey_revoked_ids WHERE id = ?`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestRevokedIDReplacePaths checks the SQLite paths that remove a row
// without firing its delete triggers: the conflict deletes of REPLACE, which
// fire them only with recursive_triggers on. A revoked id is tombstoned when
// the key is revoked, so such a delete cannot free it, and ids are immutable,
// so UPDATE OR REPLACE cannot move another row onto it.
func TestRevokedIDReplacePaths(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	var recursive int
	if err := s.DB().QueryRowContext(ctx, `PRAGMA recursive_triggers`).Scan(&recursive); err != nil || recursive != 0 {
		t.Fatalf("PRAGMA recursive_triggers = %d, %v; this test expects it off (the default)", recursive, err)
	}
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) (*apikey.Key, string) {
		t.Helper()
		k, token, err := m.Create(ctx, apikey.CreateParams{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		return k, token
	}
	k, token := create("revoked")
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if !tombstoned(t, s, k.ID) {
		t.Fatalf("revoking %s left no tombstone", k.ID)
	}
	rec, err := s.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	b, bToken := create("active")

	// UPDATE OR REPLACE of another row onto the revoked id, with its hash:
	// refused by the id immutability trigger.
	for _, stmt := range []string{
		`UPDATE OR REPLACE apikey_keys SET id = '` + k.ID + `', hash = '` + rec.Hash + `' WHERE id = '` + b.ID + `'`,
		`UPDATE OR REPLACE apikey_keys SET id = '` + k.ID + `' WHERE id = '` + b.ID + `'`,
		`UPDATE apikey_keys SET id = 'Renamed00000' WHERE id = '` + b.ID + `'`,
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err == nil {
			t.Errorf("Exec(%s) succeeded, want it refused", stmt)
		} else if !strings.Contains(err.Error(), "apikey: a key id cannot be changed") {
			t.Errorf("Exec(%s): err = %v, want the id immutability trigger", stmt, err)
		}
	}
	if got, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify of the revoked token after UPDATE OR REPLACE attempts: %v, %v; want %v", got, err, apikey.ErrRevoked)
	}
	if got, err := m.Verify(ctx, bToken); err != nil || got.ID != b.ID {
		t.Errorf("Verify of the bystander: %v, %v", got, err)
	}

	// A REPLACE conflict on the rowid deletes the revoked row without firing
	// its delete trigger (recursive_triggers is off) ...
	var rowid int64
	if err := s.DB().QueryRowContext(ctx, `SELECT rowid FROM apikey_keys WHERE id = ?`, k.ID).Scan(&rowid); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE OR REPLACE apikey_keys SET rowid = ? WHERE id = ?`, rowid, b.ID); err != nil {
		t.Fatalf("UPDATE OR REPLACE of the rowid: %v", err)
	}
	if _, err := s.Lookup(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("after a REPLACE conflict on its rowid, Lookup of the revoked key: %v, want %v", err, apikey.ErrNotFound)
	}
	// ... but the id was tombstoned when it was revoked: it stays taken,
	// whatever the conflict clause of the insert.
	for _, verb := range []string{"INSERT", "INSERT OR IGNORE", "INSERT OR REPLACE", "INSERT OR FAIL", "REPLACE"} {
		stmt := verb + ` INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ('` + k.ID + `', 'ak', 'back', '` +
			rec.Hash + `', '` + rec.CreatedAt.Format("2006-01-02T15:04:05.000000Z") + `')`
		if _, err := s.DB().ExecContext(ctx, stmt); err == nil {
			t.Errorf("%s of the revoked id after its row vanished succeeded, want it refused", verb)
		} else if !strings.Contains(err.Error(), "apikey: revoked key ids cannot be reused") {
			t.Errorf("%s of the revoked id: err = %v, want the tombstone trigger", verb, err)
		}
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify of the revoked token after the re-insert attempts: err = %v, want %v", err, apikey.ErrInvalidKey)
	}

	// INSERT OR REPLACE into the tombstones writes the same id back: still
	// there. The conflict clause of the outer statement does not make the
	// triggers' own inserts fail (they test NOT EXISTS).
	if _, err := s.DB().ExecContext(ctx, `INSERT OR REPLACE INTO apikey_revoked_ids (id) VALUES (?)`, k.ID); err != nil {
		t.Errorf("INSERT OR REPLACE of an existing tombstone: %v", err)
	}
	if !tombstoned(t, s, k.ID) {
		t.Errorf("the tombstone of %s is gone", k.ID)
	}
	c, _ := create("revoked twice over")
	for _, stmt := range []string{
		`UPDATE OR FAIL apikey_keys SET revoked_at = created_at WHERE id = '` + c.ID + `'`,
		`UPDATE OR FAIL apikey_keys SET revoked_at = revoked_at WHERE id = '` + c.ID + `'`,
		`UPDATE OR ROLLBACK apikey_keys SET revoked_at = revoked_at WHERE id = '` + c.ID + `'`,
		`DELETE FROM apikey_keys WHERE id = '` + c.ID + `'`,
	} {
		if _, err := s.DB().ExecContext(ctx, stmt); err != nil {
			t.Errorf("Exec(%s): %v", stmt, err)
		}
	}
	if !tombstoned(t, s, c.ID) {
		t.Errorf("revoking and deleting %s left no tombstone", c.ID)
	}
}

// TestTombstoneMigrationBackfills migrates a database holding revoked keys
// from version 3: the keys revoked before the migration are tombstoned too.
func TestTombstoneMigrationBackfills(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "old.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	if _, err := db.ExecContext(ctx, `CREATE TABLE apikey_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, name := range migrationFiles(t) {
		if strings.HasPrefix(filepath.Base(name), "0004") {
			break
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, string(b)); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO apikey_migrations VALUES (?, '2030-01-01T00:00:00.000000Z')`, filepath.Base(name)[:4]); err != nil {
			t.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO apikey_keys (id, prefix, name, hash, created_at, revoked_at) VALUES ('OldRevoked01', 'ak', 'old', 'sha256$00', '2030-01-01T00:00:00.000000Z', '2030-01-02T00:00:00.000000Z')`,
		`INSERT INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ('OldActive001', 'ak', 'old', 'sha256$00', '2030-01-01T00:00:00.000000Z')`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate from version 3: %v", err)
	}
	if !tombstoned(t, s, "OldRevoked01") || tombstoned(t, s, "OldActive001") {
		t.Errorf("after migrating: tombstones revoked %v, active %v; want true, false",
			tombstoned(t, s, "OldRevoked01"), tombstoned(t, s, "OldActive001"))
	}
	if _, err := db.ExecContext(ctx, `DELETE FROM apikey_keys WHERE id = 'OldRevoked01'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ('OldRevoked01', 'ak', 'old', 'sha256$00', '2030-01-01T00:00:00.000000Z')`); err == nil {
		t.Error("re-inserting a key revoked before the migration succeeded, want it refused")
	}
}

// apikeyTime is a fixed instant at microsecond precision.
func apikeyTime() time.Time { return time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC) }

// TestIDImmutabilityIsNeeded shows, on a database without the id
// immutability trigger, the path that trigger closes: UPDATE OR REPLACE
// moves an active row onto a revoked id, and the conflict delete of the
// revoked row fires no trigger, so the revoked token verifies again.
func TestIDImmutabilityIsNeeded(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	if _, err := s.DB().ExecContext(ctx, `DROP TRIGGER apikey_keys_id_immutable`); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(s, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
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
	b, _, err := m.Create(ctx, apikey.CreateParams{Name: "active"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE OR REPLACE apikey_keys SET id = ?, hash = ? WHERE id = ?`, k.ID, rec.Hash, b.ID); err != nil {
		t.Fatalf("UPDATE OR REPLACE without the id trigger: %v", err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("without the id immutability trigger, Verify of the revoked token = %v; "+
			"expected it to verify (REPLACE's conflict delete bypassed the triggers), which is what the trigger prevents", err)
	}
}

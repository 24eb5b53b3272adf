package admin_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin/admintest"
	"github.com/go-apikey/apikey/postgres/pgtest"
	"github.com/go-apikey/apikey/sqlite"
)

// TestSQLiteAdminStore runs the admin store suite against SQLite.
func TestSQLiteAdminStore(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	admintest.TestStore(t, s.Admin())
}

// TestSQLiteAdminSessionColumns checks the stored columns: the session
// table holds what the caller hashed, never more.
func TestSQLiteAdminSessionColumns(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "admin.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	rows, err := s.DB().QueryContext(t.Context(), `SELECT name FROM pragma_table_info('apikey_admin_sessions') ORDER BY cid`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var cols []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		cols = append(cols, c)
	}
	if got, want := strings.Join(cols, ","), "id_hash,email,created_at,last_seen_at,expires_at"; got != want {
		t.Errorf("columns %s, want %s", got, want)
	}
}

// TestPostgresAdminStore runs the admin store suite against PostgreSQL.
func TestPostgresAdminStore(t *testing.T) {
	admintest.TestStore(t, pgtest.NewStore(t).Admin())
}

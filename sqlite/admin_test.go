package sqlite_test

import (
	"strings"
	"testing"

	"github.com/go-apikey/apikey/internal/admin/admintest"
)

func TestAdminStore(t *testing.T) {
	s, _ := openTemp(t)
	admintest.TestStore(t, s)
}

// TestAdminSessionColumns checks the stored columns: the session
// table holds what the caller hashed, never more.
func TestAdminSessionColumns(t *testing.T) {
	s, _ := openTemp(t)
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

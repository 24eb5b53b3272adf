package sqlite_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/sqlite"
)

func TestCheckIntegrityFresh(t *testing.T) {
	s, _ := openTemp(t)
	if err := s.CheckIntegrity(t.Context()); err != nil {
		t.Fatalf("CheckIntegrity of a freshly migrated database: %v", err)
	}
	// The reference schema is built once; a second check gives the same answer.
	if err := s.CheckIntegrity(t.Context()); err != nil {
		t.Fatalf("CheckIntegrity again: %v", err)
	}
}

func TestCheckIntegrityNotMigrated(t *testing.T) {
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "empty.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	err = s.CheckIntegrity(t.Context())
	if !errors.Is(err, sqlite.ErrIntegrity) || !strings.Contains(err.Error(), "apikey migrate") {
		t.Errorf("CheckIntegrity before Migrate: %v, want ErrIntegrity telling to migrate", err)
	}
}

// TestCheckIntegrityDetects tampers with a fresh database in the ways the
// check knows, one per subtest, and wants a loud error naming the damage.
func TestCheckIntegrityDetects(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tamper []string
		want   []string
	}{
		{"revocation trigger dropped", []string{"DROP TRIGGER apikey_keys_revocation_final"},
			[]string{"trigger apikey_keys_revocation_final is missing"}},
		{"tombstone trigger dropped", []string{"DROP TRIGGER apikey_keys_tombstone_on_delete"},
			[]string{"trigger apikey_keys_tombstone_on_delete is missing"}},
		{"audit trigger narrowed", []string{"DROP TRIGGER apikey_events_no_delete",
			"CREATE TRIGGER apikey_events_no_delete BEFORE DELETE ON apikey_events WHEN OLD.actor = 'nobody' BEGIN SELECT RAISE(ABORT, 'no'); END"},
			[]string{"trigger apikey_events_no_delete was changed"}},
		{"extra trigger", []string{"CREATE TRIGGER sneaky AFTER UPDATE ON apikey_keys BEGIN SELECT 1; END"},
			[]string{"unexpected trigger sneaky on apikey_keys"}},
		{"tombstones dropped", []string{"DROP TABLE apikey_revoked_ids"},
			[]string{"table apikey_revoked_ids is missing", "trigger apikey_revoked_ids_no_delete is missing"}},
		{"migration forgotten", []string{"DELETE FROM apikey_migrations WHERE version = 4"},
			[]string{"migration 0004_revocation_tombstones.sql is not applied"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			ctx := t.Context()
			for _, q := range tt.tamper {
				if _, err := s.DB().ExecContext(ctx, q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			err := s.CheckIntegrity(ctx)
			if !errors.Is(err, sqlite.ErrIntegrity) {
				t.Fatalf("CheckIntegrity after %q: err = %v, want %v", tt.tamper, err, sqlite.ErrIntegrity)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("CheckIntegrity after %q: %v\nwant it to say %q", tt.tamper, err, want)
				}
			}
		})
	}
}

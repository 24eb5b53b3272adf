package sqlite_test

import (
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
)

// TestNetEnvSchema: a change of the allowlist or inactivity expiry made
// with plain SQL, naming no other column, reaches the change feed; the
// environment of a key cannot be changed, nor the new fields of a revoked
// key, whatever code writes.
func TestNetEnvSchema(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{
		`UPDATE apikey_keys SET allowed_cidrs = '["10.0.0.0/8"]' WHERE id = ?`,
		`UPDATE apikey_keys SET inactivity_expiry = 3600000000 WHERE id = ?`,
	} {
		before, err := s.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().ExecContext(ctx, stmt, k.ID); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
		cs, err := s.ChangesAfter(ctx, before, 10)
		if err != nil || len(cs) != 1 || cs[0].KeyID != k.ID {
			t.Errorf("%s: changes %v, %v; want one update of %s", stmt, cs, err, k.ID)
		}
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE apikey_keys SET environment = 'test' WHERE id = ?`, k.ID); err == nil || !strings.Contains(err.Error(), "environment cannot be changed") {
		t.Errorf("changing the environment: %v", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().ExecContext(ctx, `UPDATE apikey_keys SET allowed_cidrs = '[]' WHERE id = ?`, k.ID); err == nil || !strings.Contains(err.Error(), "revoked key cannot be changed") {
		t.Errorf("changing a revoked key's allowlist: %v", err)
	}
}

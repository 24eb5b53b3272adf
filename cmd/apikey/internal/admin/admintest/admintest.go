// Package admintest holds the conformance suite of admin.Store, run by the
// tests of every backend (sqlite, postgres).
package admintest

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
)

// TestStore checks every behaviour the admin site needs from a store. Each
// backend's tests call it with a fresh, migrated, empty store.
func TestStore(t *testing.T, s admin.Store) {
	ctx := t.Context()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

	if _, err := s.PasswordHash(ctx, "alice@example.com"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
	if err := s.CreateUser(ctx, "Alice@Example.com", "$argon2id$hash", t0); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.CreateUser(ctx, "ALICE@example.COM", "$argon2id$other", t0); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Fatalf("duplicate user (other case): %v, want ErrDuplicateID", err)
	}
	for _, email := range []string{"alice@example.com", "ALICE@EXAMPLE.COM"} {
		if h, err := s.PasswordHash(ctx, email); err != nil || h != "$argon2id$hash" {
			t.Errorf("PasswordHash(%q) = %q, %v", email, h, err)
		}
	}

	if _, _, _, _, err := s.Session(ctx, "nope"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.CreateSession(ctx, "h1", "ALICE@example.com", t0, t0.Add(12*time.Hour)); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	if err := s.CreateSession(ctx, "h1", "alice@example.com", t0, t0.Add(time.Hour)); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Errorf("duplicate session: %v, want ErrDuplicateID", err)
	}
	if err := s.CreateSession(ctx, "h9", "nobody@example.com", t0, t0.Add(time.Hour)); err == nil {
		t.Errorf("a session of an unknown user was stored")
	}
	email, created, lastSeen, expires, err := s.Session(ctx, "h1")
	if err != nil || email != "alice@example.com" || !created.Equal(t0) || !lastSeen.Equal(t0) || !expires.Equal(t0.Add(12*time.Hour)) {
		t.Fatalf("AdminSession = %q %v %v %v, %v", email, created, lastSeen, expires, err)
	}
	if created.Location() != time.UTC {
		t.Errorf("times are in %v, want UTC", created.Location())
	}
	t1 := t0.Add(10 * time.Minute)
	if err := s.TouchSession(ctx, "h1", t1); err != nil {
		t.Fatalf("TouchSession: %v", err)
	}
	if _, _, lastSeen, _, _ := s.Session(ctx, "h1"); !lastSeen.Equal(t1) {
		t.Errorf("last seen %v after touch, want %v", lastSeen, t1)
	}
	if err := s.TouchSession(ctx, "nope", t1); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("touch unknown session: %v, want ErrNotFound", err)
	}

	// Expiry clean-up: h2 has ended, h3 is idle, h1 and h4 stay.
	for _, c := range []struct {
		id               string
		created, expires time.Time
	}{
		{"h2", t0.Add(-13 * time.Hour), t0.Add(-time.Hour)},
		{"h3", t0.Add(-2 * time.Hour), t0.Add(10 * time.Hour)},
		{"h4", t1, t1.Add(12 * time.Hour)},
	} {
		if err := s.CreateSession(ctx, c.id, "alice@example.com", c.created, c.expires); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteExpiredSessions(ctx, t1, t1.Add(-30*time.Minute)); err != nil {
		t.Fatalf("DeleteExpiredSessions: %v", err)
	}
	for id, want := range map[string]bool{"h1": true, "h2": false, "h3": false, "h4": true} {
		_, _, _, _, err := s.Session(ctx, id)
		if got := err == nil; got != want {
			t.Errorf("session %s kept = %v, want %v (%v)", id, got, want, err)
		}
	}

	if err := s.DeleteSession(ctx, "h1"); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	if _, _, _, _, err := s.Session(ctx, "h1"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("deleted session: %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, "h1"); err != nil {
		t.Errorf("deleting a missing session: %v", err)
	}
}

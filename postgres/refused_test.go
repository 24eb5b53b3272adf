package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// A value PostgreSQL refuses (SQLSTATE class 22, data exception, here text
// with NUL or invalid UTF-8) is bad input (apikey.ErrInvalidInput), never
// reported as a store failure: retrying cannot help.
func TestRefusedValueIsInvalidInput(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for name, rec := range map[string]*apikey.Record{
		"NUL in name":          {Key: apikey.Key{ID: "Refused00001", Prefix: "ak", Name: "a\x00b", CreatedAt: now}, Hash: "sha256$00"},
		"invalid UTF-8 owner":  {Key: apikey.Key{ID: "Refused00002", Prefix: "ak", Name: "n", Owner: "\xff", CreatedAt: now}, Hash: "sha256$00"},
		"NUL in metadata":      {Key: apikey.Key{ID: "Refused00003", Prefix: "ak", Name: "n", Metadata: map[string]string{"k": "\x00"}, CreatedAt: now}, Hash: "sha256$00"},
		"NUL in the audit log": {Key: apikey.Key{ID: "Refused00004", Prefix: "ak", Name: "n", CreatedAt: now}, Hash: "sha256$00"},
	} {
		ev := &apikey.Event{Type: apikey.EventCreated, At: now, KeyID: rec.ID}
		if name == "NUL in the audit log" {
			ev.Actor = "admin:\x00"
		}
		if err := s.Insert(ctx, rec, 0, ev); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("%s: Insert: err = %v, want %v", name, err, apikey.ErrInvalidInput)
		}
		if _, err := s.Lookup(ctx, rec.ID); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("%s: Lookup after the refused Insert: err = %v, want %v", name, err, apikey.ErrNotFound)
		}
	}
	if _, err := s.List(ctx, apikey.Query{Search: "\x00", Limit: 1, Now: now}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("List with NUL in the search: err = %v, want %v", err, apikey.ErrInvalidInput)
	}
	if _, err := s.Admin().PasswordHash(ctx, "a\x00@example.com"); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Admin().PasswordHash with NUL in the email: err = %v, want %v", err, apikey.ErrInvalidInput)
	}
}

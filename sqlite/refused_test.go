package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// A value the schema refuses is bad input (apikey.ErrInvalidInput), never
// reported as a store failure: a year past 9999 breaks the CHECK on the
// time columns.
func TestRefusedValueIsInvalidInput(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	rec := &apikey.Record{Key: apikey.Key{ID: "Refused00001", Prefix: "ak", Name: "far", CreatedAt: time.Now().UTC(), ExpiresAt: &far}, Hash: "sha256$00"}
	err := s.Insert(ctx, rec, 0, &apikey.Event{Type: apikey.EventCreated, At: time.Now(), KeyID: rec.ID})
	if !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Insert with an expiry in the year 10000: err = %v, want %v", err, apikey.ErrInvalidInput)
	}
	if _, err := s.Lookup(ctx, rec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup after the refused Insert: err = %v, want %v", err, apikey.ErrNotFound)
	}
	// Through the Manager, the refusal stays bad input, not unavailability.
	m, err := apikey.NewManager(&farStore{s}, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "x"}); !errors.Is(err, apikey.ErrInvalidInput) || errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Manager.Create over a refusing store: err = %v, want %v and not %v", err, apikey.ErrInvalidInput, apikey.ErrUnavailable)
	}
}

// farStore moves the expiry of every inserted key past year 9999, which
// the Manager itself would refuse, to reach the schema's check.
type farStore struct{ apikey.Store }

func (s *farStore) Insert(ctx context.Context, rec *apikey.Record, limit int, ev *apikey.Event) error {
	far := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	rec.ExpiresAt = &far
	return s.Store.Insert(ctx, rec, limit, ev)
}

package sqlite_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestAuditFailureRollsBack checks that a mutation whose audit entry cannot
// be written (here an entry without a type, which the schema refuses) changes
// nothing.
func TestAuditFailureRollsBack(t *testing.T) {
	ctx := t.Context()
	s, _ := openTemp(t)
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "kept", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := s.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	bad := func() *apikey.Event { return &apikey.Event{At: time.Now(), KeyID: k.ID} }
	n := func() int {
		evs, err := s.ListEvents(ctx, apikey.EventQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	events := n()
	fresh := &apikey.Record{Key: apikey.Key{ID: "Fresh0000001", Prefix: "ak", Name: "never", CreatedAt: time.Now()}, Hash: "sha256$00"}
	for name, call := range map[string]func() error{
		"Insert":            func() error { return s.Insert(ctx, fresh, 0, &apikey.Event{At: time.Now(), KeyID: fresh.ID}) },
		"Insert with limit": func() error { return s.Insert(ctx, fresh, 5, &apikey.Event{At: time.Now(), KeyID: fresh.ID}) },
		"Update": func() error {
			_, err := s.Update(ctx, k.ID, apikey.KeyUpdate{Name: new(string)}, bad())
			return err
		},
		"Revoke":  func() error { _, err := s.Revoke(ctx, k.ID, time.Now(), bad()); return err },
		"Delete":  func() error { return s.Delete(ctx, k.ID, bad()) },
		"SetHash": func() error { return s.SetHash(ctx, k.ID, "sha256$11", bad()) },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s with an audit entry the schema refuses succeeded", name)
		} else if errors.Is(err, apikey.ErrNotFound) || errors.Is(err, apikey.ErrRevoked) || errors.Is(err, apikey.ErrDuplicateID) {
			t.Errorf("%s with an audit entry the schema refuses: err = %v, want a store failure", name, err)
		}
	}
	after, err := s.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatalf("Lookup after failed mutations: %v", err)
	}
	if after.Name != before.Name || after.Hash != before.Hash || after.RevokedAt != nil {
		t.Errorf("failed mutations changed the key: %+v, was %+v", after, before)
	}
	if _, err := s.Lookup(ctx, fresh.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Lookup of a failed Insert: err = %v, want %v", err, apikey.ErrNotFound)
	}
	if got := n(); got != events {
		t.Errorf("failed mutations left %d audit entries, want %d", got, events)
	}
}

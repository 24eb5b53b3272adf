package apikeytest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// reinsertSQL returns a portable INSERT of rec's id, prefix, name, hash and
// creation time, unrevoked, every other column left to its default: what a
// DELETE followed by this INSERT would need to bring a revoked key back.
func reinsertSQL(rec *apikey.Record) string {
	return fmt.Sprintf("INSERT INTO apikey_keys (id, prefix, name, hash, created_at) VALUES ('%s', '%s', 'resurrected', '%s', '%s')",
		rec.ID, rec.Prefix, rec.Hash, rec.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z"))
}

// testRevocationSurvivesDelete checks that a revoked key cannot come back
// through SQL by deleting its row and inserting it again unrevoked, however
// it was revoked and deleted, and that key ids cannot change.
func testRevocationSurvivesDelete(t *testing.T, h Harness) {
	needExec(t, h)
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})

	// Sanity: the same DELETE and INSERT bring back a key that was never
	// revoked, so the refusals below are the rule, not a broken statement.
	a, aToken := create(t, m, apikey.CreateParams{Name: "never revoked"})
	aRec := lookup(t, h, a.ID)
	if err := h.Exec(ctx, "DELETE FROM apikey_keys WHERE id = '"+a.ID+"'"); err != nil {
		t.Fatalf("Exec DELETE of an active key: %v", err)
	}
	if err := h.Exec(ctx, reinsertSQL(aRec)); err != nil {
		t.Fatalf("Exec INSERT of a deleted active key: %v (the statement must work for ids never revoked)", err)
	}
	if got, err := m.Verify(ctx, aToken); err != nil || got.ID != a.ID {
		t.Fatalf("Verify of a re-inserted active key: %v, %v", got, err)
	}

	resurrect := func(label string, rec *apikey.Record, token string) {
		t.Helper()
		if err := h.Exec(ctx, reinsertSQL(rec)); err == nil {
			t.Errorf("%s: Exec INSERT of the revoked id %s succeeded, want it refused", label, rec.ID)
		}
		if got, err := h.Store.Lookup(ctx, rec.ID); err == nil && got.RevokedAt == nil {
			t.Errorf("%s: the revoked id %s is back, unrevoked", label, rec.ID)
		}
		if k, err := m.Verify(ctx, token); err == nil {
			t.Errorf("%s: the revoked token verifies again (key %v)", label, k)
		}
		again := *rec
		again.RevokedAt = nil
		wantErr(t, label+": Store.Insert of the revoked id", h.Store.Insert(ctx, &again, 0, nil), apikey.ErrDuplicateID)
	}

	// Revoked by the Manager, deleted through SQL.
	clk.Add(time.Minute)
	k, token := create(t, m, apikey.CreateParams{Name: "revoked, deleted by SQL"})
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	rec := lookup(t, h, k.ID)
	if err := h.Exec(ctx, "DELETE FROM apikey_keys WHERE id = '"+k.ID+"'"); err != nil {
		t.Fatalf("Exec DELETE of a revoked key: %v (deleting a revoked key is allowed)", err)
	}
	resurrect("revoked, deleted by SQL", rec, token)

	// Revoked and deleted by the Manager.
	k2, token2 := create(t, m, apikey.CreateParams{Name: "revoked, deleted by the Manager"})
	if _, err := m.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	rec2 := lookup(t, h, k2.ID)
	if err := m.Delete(ctx, k2.ID); err != nil {
		t.Fatalf("Manager.Delete of a revoked key: %v", err)
	}
	resurrect("revoked, deleted by the Manager", rec2, token2)

	// Revoked through SQL, deleted through SQL.
	k3, token3 := create(t, m, apikey.CreateParams{Name: "revoked by SQL"})
	if err := h.Exec(ctx, "UPDATE apikey_keys SET revoked_at = created_at WHERE id = '"+k3.ID+"'"); err != nil {
		t.Fatalf("Exec revoke: %v", err)
	}
	rec3 := lookup(t, h, k3.ID)
	if err := h.Exec(ctx, "DELETE FROM apikey_keys WHERE id = '"+k3.ID+"'"); err != nil {
		t.Fatalf("Exec DELETE of a revoked key: %v", err)
	}
	resurrect("revoked and deleted by SQL", rec3, token3)

	// Inserted revoked, deleted by the Store.
	rec4 := record(testID("Tomb", 4), "", "inserted revoked", base)
	rec4.RevokedAt = ptr(us(base))
	insert(t, h, rec4)
	if err := h.Store.Delete(ctx, rec4.ID, nil); err != nil {
		t.Fatalf("Store.Delete of a revoked key: %v", err)
	}
	if err := h.Exec(ctx, reinsertSQL(rec4)); err == nil {
		t.Errorf("Exec INSERT of the id of a key inserted revoked and deleted succeeded, want it refused")
	}
	wantErr(t, "Store.Insert of the id of a key inserted revoked and deleted", h.Store.Insert(ctx, rec4, 0, nil), apikey.ErrDuplicateID)

	// The ids of revoked keys are kept for good.
	for _, stmt := range []string{
		"DELETE FROM apikey_revoked_ids",
		"DELETE FROM apikey_revoked_ids WHERE id = '" + k.ID + "'",
		"UPDATE apikey_revoked_ids SET id = 'Elsewhere000' WHERE id = '" + k2.ID + "'",
	} {
		if err := h.Exec(ctx, stmt); err == nil {
			t.Errorf("Exec(%q) succeeded, want the database to refuse it", stmt)
		}
	}
	resurrect("after attempts on apikey_revoked_ids", rec, token)

	// Ids never change: neither an active key's, nor onto a revoked id.
	b, bToken := create(t, m, apikey.CreateParams{Name: "active"})
	for _, stmt := range []string{
		"UPDATE apikey_keys SET id = 'Renamed00000' WHERE id = '" + b.ID + "'",
		"UPDATE apikey_keys SET id = '" + k.ID + "' WHERE id = '" + b.ID + "'",
		"UPDATE apikey_keys SET id = '" + k.ID + "', hash = '" + rec.Hash + "' WHERE id = '" + b.ID + "'",
	} {
		if err := h.Exec(ctx, stmt); err == nil {
			t.Errorf("Exec(%q) succeeded, want the database to refuse a change of id", stmt)
		}
	}
	if got, err := m.Verify(ctx, bToken); err != nil || got.ID != b.ID {
		t.Errorf("Verify of the key whose id SQL tried to change: %v, %v", got, err)
	}
	if _, err := m.Verify(ctx, token); err == nil {
		t.Errorf("the revoked token verifies after an id change attempt")
	}

	// New keys are still created; a revoked key that was not deleted still
	// reads as revoked.
	k5, token5 := create(t, m, apikey.CreateParams{Name: "later"})
	if _, err := m.Revoke(ctx, k5.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if _, err := m.Verify(ctx, token5); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify of a revoked key: err = %v, want %v", err, apikey.ErrRevoked)
	}
}

// testRevokedIDsStayTaken checks the tombstones of revoked ids through the
// Store and the Manager alone, so that it holds every backend to them,
// including one without Exec: once a key has been revoked, deleting it does
// not free its id, however it was revoked and deleted, while the id of a
// deleted key that was never revoked can be used again.
func testRevokedIDsStayTaken(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})

	// Sanity: the id of a deleted key that was never revoked is free, so
	// the refusals below are the rule, not a stale row.
	a, aToken := create(t, m, apikey.CreateParams{Name: "never revoked"})
	aRec := lookup(t, h, a.ID)
	if err := m.Delete(ctx, a.ID); err != nil {
		t.Fatalf("Delete of an active key: %v", err)
	}
	if err := h.Store.Insert(ctx, aRec, 0, nil); err != nil {
		t.Fatalf("Store.Insert of the id of a deleted active key: %v, want it stored (no tombstone)", err)
	}
	if got, err := m.Verify(ctx, aToken); err != nil || got.ID != a.ID {
		t.Fatalf("Verify of a re-inserted active key: %v, %v", got, err)
	}

	stayTaken := func(label string, rec *apikey.Record, token string) {
		t.Helper()
		events := len(listEvents(t, h, apikey.EventQuery{KeyID: rec.ID}))
		again := *rec
		again.RevokedAt = nil
		wantErr(t, label+": Store.Insert of the revoked id", h.Store.Insert(ctx, &again, 0, nil), apikey.ErrDuplicateID)
		wantErr(t, label+": Store.Insert of the revoked id with a limit and an event",
			h.Store.Insert(ctx, &again, 10, &apikey.Event{Type: apikey.EventCreated, At: us(base), KeyID: rec.ID}), apikey.ErrDuplicateID)
		wantErr(t, label+": Store.Insert of the revoked id, still revoked", h.Store.Insert(ctx, rec, 0, nil), apikey.ErrDuplicateID)
		if got := len(listEvents(t, h, apikey.EventQuery{KeyID: rec.ID})); got != events {
			t.Errorf("%s: refused inserts wrote %d audit entries, want none", label, got-events)
		}
		// The tombstone is no key: the id stays unknown to every call.
		_, err := h.Store.Lookup(ctx, rec.ID)
		wantErr(t, label+": Lookup", err, apikey.ErrNotFound)
		_, err = h.Store.Revoke(ctx, rec.ID, us(base), nil)
		wantErr(t, label+": Store.Revoke", err, apikey.ErrNotFound)
		_, err = h.Store.Update(ctx, rec.ID, apikey.KeyUpdate{Name: ptr("back")}, nil)
		wantErr(t, label+": Store.Update", err, apikey.ErrNotFound)
		wantErr(t, label+": Store.SetHash", h.Store.SetHash(ctx, rec.ID, "", rec.Hash, nil), apikey.ErrNotFound)
		wantErr(t, label+": Store.Delete", h.Store.Delete(ctx, rec.ID, nil), apikey.ErrNotFound)
		if token != "" {
			if k, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
				t.Errorf("%s: Verify of the revoked token = %v, %v; want %v", label, k, err, apikey.ErrInvalidKey)
			}
		}
	}

	// Revoked and deleted by the Manager.
	clk.Add(time.Minute)
	k1, token1 := create(t, m, apikey.CreateParams{Name: "revoked, deleted by the Manager", Owner: "o"})
	if _, err := m.Revoke(ctx, k1.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	rec1 := lookup(t, h, k1.ID)
	if err := m.Delete(ctx, k1.ID); err != nil {
		t.Fatalf("Manager.Delete of a revoked key: %v", err)
	}
	stayTaken("revoked and deleted by the Manager", rec1, token1)

	// Revoked and deleted through the Store, without events.
	k2, token2 := create(t, m, apikey.CreateParams{Name: "revoked, deleted by the Store"})
	if _, err := h.Store.Revoke(ctx, k2.ID, us(base.Add(time.Hour)), nil); err != nil {
		t.Fatalf("Store.Revoke: %v", err)
	}
	rec2 := lookup(t, h, k2.ID)
	if err := h.Store.Delete(ctx, k2.ID, nil); err != nil {
		t.Fatalf("Store.Delete of a revoked key: %v", err)
	}
	stayTaken("revoked and deleted by the Store", rec2, token2)

	// Inserted revoked, deleted by the Store.
	rec3 := record(testID("Taken", 3), "o", "inserted revoked", base)
	rec3.RevokedAt = ptr(us(base))
	insert(t, h, rec3)
	if err := h.Store.Delete(ctx, rec3.ID, nil); err != nil {
		t.Fatalf("Store.Delete of a key inserted revoked: %v", err)
	}
	stayTaken("inserted revoked and deleted", rec3, "")

	// Other keys are unaffected.
	if got, err := m.Verify(ctx, aToken); err != nil || got.ID != a.ID {
		t.Errorf("Verify of the bystander: %v, %v", got, err)
	}
}

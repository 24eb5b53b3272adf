package apikeytest

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestImporter runs the conformance suite of apikey.Importer. newHarness
// is called once per subtest and must return a harness over a fresh, empty,
// migrated database whose Store implements apikey.Importer; Exec may be
// nil.
//
// The suite checks what an import relies on: records round-trip; each
// imported key gets its key.imported entry, and a revoked one its
// key.revoked entry after it, in the same batch, leaving the key revoked at
// the given instant; an id held by a key, a tombstone or an audit entry,
// or given twice, is skipped and left as it is; Taken agrees with Import;
// a batch that fails stores nothing; batches larger than a store's own
// chunks work.
func TestImporter(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness, apikey.Importer)
	}{
		{"RoundTrip", testImportRoundTrip},
		{"SkipsTaken", testImportSkipsTaken},
		{"AllOrNothing", testImportAllOrNothing},
		{"Large", testImportLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			imp, ok := h.Store.(apikey.Importer)
			if !ok {
				t.Fatalf("%T is not an apikey.Importer", h.Store)
			}
			tt.run(t, h, imp)
		})
	}
}

// importRecord returns a record as Manager.NewDRFRecord makes them, for
// the DRF API Key prefix p.
func importRecord(t *testing.T, p string, created time.Time) *apikey.Record {
	t.Helper()
	id, ok := apikey.DRFKeyID(p)
	if !ok {
		t.Fatalf("DRFKeyID(%q) refused", p)
	}
	sum := sha512.Sum512([]byte(p + ".secret"))
	return &apikey.Record{
		Key: apikey.Key{
			ID: id, Prefix: apikey.DRFIssuer, Name: "imported " + p,
			Scopes: []string{}, Metadata: map[string]string{}, CreatedAt: us(created),
		},
		Hash: "sha512$$" + hex.EncodeToString(sum[:]),
	}
}

// entry returns the ImportEntry of rec with its events, by actor "cli".
func entry(rec *apikey.Record, at time.Time) apikey.ImportEntry {
	e := apikey.ImportEntry{Record: rec, Imported: &apikey.Event{Type: apikey.EventImported, At: at, Actor: "cli", KeyID: rec.ID}}
	if rec.RevokedAt != nil {
		e.Revoked = &apikey.Event{Type: apikey.EventRevoked, At: *rec.RevokedAt, Actor: "cli", KeyID: rec.ID}
	}
	return e
}

func testImportRoundTrip(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 789012000, time.UTC)
	at := created.Add(1000 * time.Hour)
	full := importRecord(t, "Full1234", created)
	full.Owner, full.Scopes, full.Metadata = "org-7", []string{"read", "write"}, map[string]string{"organization_id": "7"}
	full.ExpiresAt = ptr(created.Add(24 * time.Hour))
	revoked := importRecord(t, "Rev", created)
	revoked.RevokedAt = ptr(at.Add(time.Second))
	batch := []apikey.ImportEntry{entry(full, at), entry(revoked, at)}
	if err := imp.Import(ctx, nil); err != nil {
		t.Fatalf("Import of an empty batch: %v", err)
	}
	if err := imp.Import(ctx, batch); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, want := range []*apikey.Record{full, revoked} {
		got := lookup(t, h, want.ID)
		checkKey(t, "Lookup "+want.ID, &got.Key, &want.Key)
		if got.Hash != want.Hash {
			t.Errorf("Lookup %s: Hash = %q, want %q", want.ID, got.Hash, want.Hash)
		}
	}
	e := batch[0]
	if e.Imported.ID <= 0 || e.Revoked != nil {
		t.Errorf("imported key: Imported.ID = %d, want > 0", e.Imported.ID)
	}
	r := batch[1]
	if r.Imported.ID <= e.Imported.ID || r.Revoked.ID <= r.Imported.ID {
		t.Errorf("event ids = %d, %d, %d; want them in the order written", e.Imported.ID, r.Imported.ID, r.Revoked.ID)
	}

	evs := listEvents(t, h, apikey.EventQuery{KeyID: full.ID, Limit: 10})
	if len(evs) != 1 {
		t.Fatalf("audit log of %s: %d entries, want 1", full.ID, len(evs))
	}
	checkEvent(t, "key.imported", evs[0], apikey.EventImported, "cli", full.ID, "org-7", at, map[string]apikey.Change{
		"name":       {After: full.Name},
		"owner":      {After: "org-7"},
		"scopes":     {After: []string{"read", "write"}},
		"metadata":   {After: map[string]string{"organization_id": "7"}},
		"expires_at": {After: rfc(*full.ExpiresAt)},
	})
	evs = listEvents(t, h, apikey.EventQuery{KeyID: revoked.ID, Limit: 10})
	if len(evs) != 2 {
		t.Fatalf("audit log of %s: %d entries, want 2", revoked.ID, len(evs))
	}
	checkEvent(t, "key.revoked", evs[0], apikey.EventRevoked, "cli", revoked.ID, "", *revoked.RevokedAt, map[string]apikey.Change{
		"revoked_at": {After: rfc(*revoked.RevokedAt)},
	})
	checkEvent(t, "key.imported of a revoked key", evs[1], apikey.EventImported, "cli", revoked.ID, "", at, map[string]apikey.Change{
		"name": {After: revoked.Name},
	})
	if evs[0].ID != r.Revoked.ID || evs[1].ID != r.Imported.ID {
		t.Errorf("ListEvents ids = %d, %d; Import set %d, %d", evs[0].ID, evs[1].ID, r.Revoked.ID, r.Imported.ID)
	}

	// A store with a change feed records the insertions and the
	// revocation, so that other processes' caches learn of them.
	if cf, ok := h.Store.(apikey.ChangeFeed); ok {
		changes, err := cf.ChangesAfter(ctx, 0, 100)
		if err != nil {
			t.Fatalf("ChangesAfter: %v", err)
		}
		seen := map[string][]apikey.ChangeOp{}
		for _, c := range changes {
			seen[c.KeyID] = append(seen[c.KeyID], c.Op)
		}
		if ops := seen[full.ID]; len(ops) != 1 || ops[0] != apikey.ChangeInsert {
			t.Errorf("change feed of %s: %v, want [insert]", full.ID, ops)
		}
		if ops := seen[revoked.ID]; len(ops) != 2 || ops[0] != apikey.ChangeInsert || ops[1] != apikey.ChangeUpdate {
			t.Errorf("change feed of %s: %v, want [insert update]", revoked.ID, ops)
		}
	}

	// The revocation left its tombstone: once deleted, the id stays taken.
	if err := h.Store.Delete(ctx, revoked.ID, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.Insert(ctx, importRecord(t, "Rev", created), 0, nil); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Errorf("Insert under the id of a deleted revoked import: %v, want %v", err, apikey.ErrDuplicateID)
	}
}

func testImportSkipsTaken(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	at := created.Add(time.Hour)
	live := importRecord(t, "Live", created)
	if err := h.Store.Insert(ctx, live, 0, nil); err != nil {
		t.Fatal(err)
	}
	gone := importRecord(t, "Gone", created) // deleted, active: only its audit entries remain
	if err := h.Store.Insert(ctx, gone, 0, &apikey.Event{Type: apikey.EventImported, At: at, KeyID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.Delete(ctx, gone.ID, &apikey.Event{Type: apikey.EventDeleted, At: at, KeyID: gone.ID}); err != nil {
		t.Fatal(err)
	}
	dead := importRecord(t, "Dead", created) // revoked, deleted: its tombstone remains
	if err := h.Store.Insert(ctx, dead, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Store.Revoke(ctx, dead.ID, at, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.Store.Delete(ctx, dead.ID, nil); err != nil {
		t.Fatal(err)
	}

	again := func(r *apikey.Record) *apikey.Record {
		c := *r
		c.Name = "changed"
		return &c
	}
	fresh := importRecord(t, "Fresh", created)
	twice := *fresh
	twice.Name = "second copy"
	ids := []string{live.ID, gone.ID, dead.ID, fresh.ID}
	taken, err := imp.Taken(ctx, ids)
	if err != nil || len(taken) != 4 || !taken[0] || !taken[1] || !taken[2] || taken[3] {
		t.Fatalf("Taken(%v) = %v, %v; want [true true true false]", ids, taken, err)
	}
	batch := []apikey.ImportEntry{entry(again(live), at), entry(again(gone), at), entry(again(dead), at), entry(fresh, at), entry(&twice, at)}
	if err := imp.Import(ctx, batch); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for i, want := range []bool{false, false, false, true, false} {
		if got := batch[i].Imported.ID != 0; got != want {
			t.Errorf("entry %d (%s): imported = %v, want %v", i, batch[i].Record.ID, got, want)
		}
	}
	if got := lookup(t, h, live.ID); got.Name != live.Name {
		t.Errorf("a skipped entry changed the existing key: name %q, want %q", got.Name, live.Name)
	}
	if got := lookup(t, h, fresh.ID); got.Name != fresh.Name {
		t.Errorf("the second copy in the batch replaced the first: name %q", got.Name)
	}
	for _, id := range []string{gone.ID, dead.ID} {
		if _, err := h.Store.Lookup(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Lookup of %s, deleted before the import: %v, want ErrNotFound", id, err)
		}
	}
	if n := len(listEvents(t, h, apikey.EventQuery{KeyID: fresh.ID, Limit: 10})); n != 1 {
		t.Errorf("audit entries of %s: %d, want 1", fresh.ID, n)
	}
	if taken, err := imp.Taken(ctx, []string{fresh.ID}); err != nil || !taken[0] {
		t.Errorf("Taken after the import = %v, %v", taken, err)
	}
}

func testImportAllOrNothing(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	ok := importRecord(t, "Okay", created)
	bad := importRecord(t, "Bad", created)
	batch := []apikey.ImportEntry{entry(ok, created), entry(bad, created)}
	batch[1].Imported.Type = "" // the audit log refuses it
	if err := imp.Import(ctx, batch); err == nil {
		t.Fatal("Import of a batch with an incomplete event succeeded")
	}
	taken, err := imp.Taken(ctx, []string{ok.ID, bad.ID})
	if err != nil || taken[0] || taken[1] {
		t.Errorf("after a failed batch, Taken = %v, %v; want nothing stored", taken, err)
	}
}

func testImportLarge(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC)
	const n = 5000
	batch := make([]apikey.ImportEntry, n)
	ids := make([]string, n)
	for i := range batch {
		rec := importRecord(t, fmt.Sprintf("L%07d", i), created)
		if i%10 == 0 {
			rec.RevokedAt = ptr(created.Add(time.Minute))
		}
		batch[i], ids[i] = entry(rec, created), rec.ID
	}
	if err := imp.Import(ctx, batch); err != nil {
		t.Fatalf("Import of %d records: %v", n, err)
	}
	for i, e := range batch {
		if e.Imported.ID == 0 || (e.Revoked != nil && e.Revoked.ID == 0) {
			t.Fatalf("entry %d was not imported", i)
		}
	}
	taken, err := imp.Taken(ctx, ids)
	if err != nil || len(taken) != n {
		t.Fatalf("Taken: %d answers, %v", len(taken), err)
	}
	for i := range taken {
		if !taken[i] {
			t.Fatalf("Taken[%d] = false after the import", i)
		}
	}
	if got := lookup(t, h, ids[10]); got.RevokedAt == nil {
		t.Errorf("record 10 was imported unrevoked")
	}
}

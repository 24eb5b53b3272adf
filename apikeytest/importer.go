package apikeytest

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
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
// chunks work. A record keeps every lifecycle field (DisabledAt,
// LastUsedAt, Environment, AllowedCIDRs, InactivityExpiry, RateLimits,
// Credits), and one that carries a previous secret is refused with
// apikey.ErrInvalidInput, storing nothing (see apikey.Importer).
func TestImporter(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness, apikey.Importer)
	}{
		{"RoundTrip", testImportRoundTrip},
		{"Lifecycle", testImportLifecycle},
		{"PreviousSecretRefused", testImportPreviousSecret},
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

// lifecycleRecord returns a record for the DRF API Key prefix p with every
// lifecycle field set: disabled, used, a test key with an allowlist, its
// own inactivity expiry, rate limits and credits with a refill.
func lifecycleRecord(t *testing.T, p string, created time.Time) *apikey.Record {
	t.Helper()
	rec := importRecord(t, p, created)
	rec.DisabledAt = ptr(created.Add(time.Minute))
	rec.LastUsedAt = ptr(created.Add(2 * time.Minute))
	rec.Environment = apikey.EnvTest
	rec.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	rec.InactivityExpiry = apikey.Inactivity(30 * 24 * time.Hour)
	rec.RateLimits = []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20, FailOpen: true}}
	rec.Credits = &apikey.Credits{Remaining: 500, Refill: &apikey.Refill{Interval: "monthly", Amount: 1000, Day: 1},
		NextRefillAt: ptr(created.AddDate(0, 1, 0))}
	return rec
}

// checkLifecycle checks the fields of want that checkKey does not.
func checkLifecycle(t *testing.T, label string, got, want *apikey.Key) {
	t.Helper()
	checkKey(t, label, got, want)
	if !reflect.DeepEqual(got.RateLimits, want.RateLimits) {
		t.Errorf("%s: RateLimits = %+v, want %+v", label, got.RateLimits, want.RateLimits)
	}
	if !reflect.DeepEqual(got.Credits, want.Credits) {
		t.Errorf("%s: Credits = %s, want %s", label, creditsText(got.Credits), creditsText(want.Credits))
	}
	if got.PreviousSecret != nil {
		t.Errorf("%s: PreviousSecret = %+v, want none", label, got.PreviousSecret)
	}
}

func creditsText(c *apikey.Credits) string {
	if c == nil {
		return "nil"
	}
	s := fmt.Sprintf("{Remaining:%d", c.Remaining)
	if c.Refill != nil {
		s += fmt.Sprintf(" Refill:%+v", *c.Refill)
	}
	if c.NextRefillAt != nil {
		s += " NextRefillAt:" + c.NextRefillAt.Format(time.RFC3339Nano)
	}
	return s + "}"
}

// testImportLifecycle imports a key with every lifecycle field set, and the
// same revoked: both keep them all.
func testImportLifecycle(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 789012000, time.UTC)
	at := created.Add(1000 * time.Hour)
	life := lifecycleRecord(t, "Life1234", created)
	revoked := lifecycleRecord(t, "LifeRev", created)
	revoked.RevokedAt = ptr(at.Add(time.Second))
	batch := []apikey.ImportEntry{entry(life, at), entry(revoked, at)}
	if err := imp.Import(ctx, batch); err != nil {
		t.Fatalf("Import: %v", err)
	}
	for _, want := range []*apikey.Record{life, revoked} {
		got := lookup(t, h, want.ID)
		checkLifecycle(t, "Lookup "+want.ID, &got.Key, &want.Key)
		if got.Hash != want.Hash || got.PreviousHash != "" {
			t.Errorf("Lookup %s: Hash = %q, PreviousHash %q; want %q and none", want.ID, got.Hash, got.PreviousHash, want.Hash)
		}
	}
	if batch[0].Imported.ID <= 0 || batch[1].Revoked == nil || batch[1].Revoked.ID <= 0 {
		t.Errorf("events not written: %+v %+v", batch[0].Imported, batch[1].Revoked)
	}
}

// testImportPreviousSecret checks that a record with a previous secret, or
// only its digest, fails the whole batch with apikey.ErrInvalidInput.
func testImportPreviousSecret(t *testing.T, h Harness, imp apikey.Importer) {
	ctx := t.Context()
	created := time.Date(2024, 2, 3, 4, 5, 6, 789012000, time.UTC)
	at := created.Add(time.Hour)
	sum := sha512.Sum512([]byte("old secret"))
	for _, tc := range []struct {
		name string
		set  func(*apikey.Record)
	}{
		{"secret and digest", func(r *apikey.Record) {
			r.PreviousHash = "sha512$$" + hex.EncodeToString(sum[:])
			r.PreviousSecret = &apikey.PreviousSecret{RolledAt: created, Grace: time.Hour, GraceStarts: apikey.GraceNow, ExpiresAt: created.Add(time.Hour)}
		}},
		{"digest only", func(r *apikey.Record) { r.PreviousHash = "sha512$$" + hex.EncodeToString(sum[:]) }},
		{"secret only", func(r *apikey.Record) {
			r.PreviousSecret = &apikey.PreviousSecret{RolledAt: created, Grace: time.Hour, GraceStarts: apikey.GraceNow, ExpiresAt: created.Add(time.Hour)}
		}},
	} {
		fine := importRecord(t, "PrevOk", created)
		prev := importRecord(t, "Prev", created)
		tc.set(prev)
		err := imp.Import(ctx, []apikey.ImportEntry{entry(fine, at), entry(prev, at)})
		if !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("%s: Import = %v, want %v", tc.name, err, apikey.ErrInvalidInput)
		}
		for _, id := range []string{fine.ID, prev.ID} {
			if _, err := h.Store.Lookup(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
				t.Errorf("%s: a refused batch left %s behind: %v", tc.name, id, err)
			}
		}
	}
}

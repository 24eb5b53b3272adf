package apikeytest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// bulkRecords returns n distinct records, the first with every optional
// field set.
func bulkRecords(n int, tag string) []*apikey.Record {
	created := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	expires := created.Add(time.Hour)
	recs := make([]*apikey.Record, n)
	for i := range recs {
		recs[i] = &apikey.Record{
			Key:  apikey.Key{ID: fmt.Sprintf("bulk%s%06d", tag, i), Prefix: "ak", Name: fmt.Sprintf("seed-%d", i), Owner: fmt.Sprintf("owner-%d", i%3), CreatedAt: created},
			Hash: fmt.Sprintf("sha256$%064x", i),
		}
	}
	recs[0].Scopes = []string{"read", "write"}
	recs[0].Metadata = map[string]string{"env": "test"}
	recs[0].ExpiresAt = &expires
	if n > 1 {
		recs[1].Environment = apikey.EnvTest
		recs[1].AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
		recs[1].InactivityExpiry = apikey.Inactivity(90 * 24 * time.Hour)
		recs[1].RateLimits = []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20, FailOpen: true}}
		next := created.AddDate(0, 1, 0)
		recs[1].Credits = &apikey.Credits{Remaining: 500, Refill: &apikey.Refill{Interval: "monthly", Amount: 1000, Day: 1}, NextRefillAt: &next}
		used := created.Add(2 * time.Minute)
		recs[1].LastUsedAt = &used
	}
	if n > 2 {
		disabled := created.Add(time.Minute)
		recs[2].DisabledAt = &disabled
	}
	return recs
}

// BulkStore is a Store that can also load records in bulk, without owner
// limits or audit entries (for seeding); sqlite.Store and postgres.Store are
// BulkStores.
type BulkStore interface {
	apikey.Store
	BulkInsert(ctx context.Context, recs []*apikey.Record) error
}

// TestBulkInsert checks BulkInsert on a fresh, migrated, empty store: every
// field round-trips, nothing reaches the audit log, and a duplicate id fails
// the whole batch.
func TestBulkInsert(t *testing.T, s BulkStore) {
	ctx := t.Context()
	if err := s.BulkInsert(ctx, nil); err != nil {
		t.Fatalf("empty batch: %v", err)
	}
	recs := bulkRecords(250, "aa")
	if err := s.BulkInsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, want := range recs {
		got, err := s.Lookup(ctx, want.ID)
		if err != nil {
			t.Fatalf("Lookup %s: %v", want.ID, err)
		}
		if want.Scopes == nil {
			want.Scopes = []string{}
		}
		if want.Metadata == nil {
			want.Metadata = map[string]string{}
		}
		want.Environment = want.Env() // the stores' default
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Lookup %s:\n got %+v\nwant %+v", want.ID, got, want)
		}
	}
	evs, err := s.ListEvents(ctx, apikey.EventQuery{Limit: 10})
	if err != nil || len(evs) != 0 {
		t.Errorf("a bulk insert wrote audit entries: %v %v", evs, err)
	}

	// A duplicate id fails the whole batch.
	again := bulkRecords(3, "bb")
	again[2].ID = recs[7].ID
	if err := s.BulkInsert(ctx, again); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Fatalf("duplicate: %v, want ErrDuplicateID", err)
	}
	if _, err := s.Lookup(ctx, again[0].ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("a failed batch left %s behind: %v", again[0].ID, err)
	}
	testBulkRevoked(t, s)
	testBulkPreviousSecret(t, s)
}

// testBulkPreviousSecret checks that a record with a previous secret, or
// only its digest, fails the whole batch with apikey.ErrInvalidInput:
// only Roll makes one (see the stores' BulkInsert).
func testBulkPreviousSecret(t *testing.T, s BulkStore) {
	ctx := t.Context()
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	for i, set := range []func(*apikey.Record){
		func(r *apikey.Record) {
			r.PreviousHash = "sha256$" + strings.Repeat("e", 64)
			r.PreviousSecret = &apikey.PreviousSecret{RolledAt: at, Grace: time.Hour, GraceStarts: apikey.GraceNow, ExpiresAt: at.Add(time.Hour)}
		},
		func(r *apikey.Record) { r.PreviousHash = "sha256$" + strings.Repeat("e", 64) },
		func(r *apikey.Record) {
			r.PreviousSecret = &apikey.PreviousSecret{RolledAt: at, Grace: time.Hour, GraceStarts: apikey.GraceNow, ExpiresAt: at.Add(time.Hour)}
		},
	} {
		fine := &apikey.Record{Key: apikey.Key{ID: fmt.Sprintf("BulkPrevOk%02d", i), Prefix: "ak", Name: "fine", CreatedAt: at}, Hash: "sha256$" + strings.Repeat("d", 64)}
		prev := &apikey.Record{Key: apikey.Key{ID: fmt.Sprintf("BulkPrevXx%02d", i), Prefix: "ak", Name: "prev", CreatedAt: at}, Hash: "sha256$" + strings.Repeat("d", 64)}
		set(prev)
		if err := s.BulkInsert(ctx, []*apikey.Record{fine, prev}); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("BulkInsert of a record with a previous secret (case %d): %v, want %v", i, err, apikey.ErrInvalidInput)
		}
		for _, id := range []string{fine.ID, prev.ID} {
			if _, err := s.Lookup(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
				t.Errorf("case %d: a refused batch left %s behind: %v", i, id, err)
			}
		}
	}
}

// testBulkRevoked checks that a record bulk-loaded already revoked leaves
// a tombstone like any revocation: once deleted, its id cannot be loaded
// again (the whole batch fails with apikey.ErrDuplicateID), while the id of
// a deleted active key can.
func testBulkRevoked(t *testing.T, s BulkStore) {
	ctx := t.Context()
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	recs := []*apikey.Record{
		{Key: apikey.Key{ID: "BulkRevoked1", Prefix: "ak", Name: "revoked", CreatedAt: at, RevokedAt: &at}, Hash: "sha256$" + strings.Repeat("a", 64)},
		{Key: apikey.Key{ID: "BulkActive01", Prefix: "ak", Name: "active", CreatedAt: at}, Hash: "sha256$" + strings.Repeat("b", 64)},
	}
	if err := s.BulkInsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := s.Delete(ctx, r.ID, nil); err != nil {
			t.Fatalf("Delete of %s: %v", r.ID, err)
		}
	}
	active := *recs[1]
	if err := s.BulkInsert(ctx, []*apikey.Record{&active}); err != nil {
		t.Errorf("BulkInsert of a deleted active key's id: %v, want it to load (no tombstone)", err)
	}
	again := *recs[0]
	again.RevokedAt = nil
	fresh := &apikey.Record{Key: apikey.Key{ID: "BulkFresh001", Prefix: "ak", Name: "fresh", CreatedAt: at}, Hash: "sha256$" + strings.Repeat("c", 64)}
	if err := s.BulkInsert(ctx, []*apikey.Record{fresh, &again}); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Errorf("BulkInsert of a revoked id: err = %v, want %v", err, apikey.ErrDuplicateID)
	}
	if _, err := s.Lookup(ctx, fresh.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("a refused batch left %s behind: %v", fresh.ID, err)
	}
}

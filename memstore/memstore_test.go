package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/memstore"
	"github.com/go-apikey/apikey/outbox"
)

// TestStore runs the Store conformance suite. A memstore has no database
// below its API, so Exec stays nil and the subtests that check rules with
// raw SQL skip; Dump encodes everything the store holds.
func TestStore(t *testing.T) {
	apikeytest.TestStore(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{
			Store: s,
			Dump:  func(context.Context) ([]byte, error) { return memstore.Dump(s) },
		}
	})
}

func TestBulkInsert(t *testing.T) {
	apikeytest.TestBulkInsert(t, memstore.New())
}

func TestImporter(t *testing.T) {
	apikeytest.TestImporter(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}
	})
}

var at = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func newRecord(id, owner string) *apikey.Record {
	exp := at.Add(time.Hour)
	return &apikey.Record{
		Key: apikey.Key{
			ID: id, Prefix: "ak", Name: "name of " + id, Owner: owner,
			Scopes: []string{"read"}, Metadata: map[string]string{"env": "test"},
			CreatedAt: at, ExpiresAt: &exp,
		},
		Hash: "sha256$" + id,
	}
}

// scribble changes every field of k that a caller could reach into.
func scribble(k *apikey.Key) {
	k.Name = "scribbled"
	if len(k.Scopes) > 0 {
		k.Scopes[0] = "admin"
	}
	k.Scopes = append(k.Scopes, "admin")
	if k.Metadata != nil {
		k.Metadata["env"] = "scribbled"
		k.Metadata["new"] = "x"
	}
	for _, p := range []*time.Time{k.ExpiresAt, k.RevokedAt, k.LastUsedAt} {
		if p != nil {
			*p = p.Add(100 * time.Hour)
		}
	}
	k.CreatedAt = k.CreatedAt.Add(-100 * time.Hour)
}

// TestCopies checks that neither what a caller passes in nor what it gets
// back shares memory with what the store holds.
func TestCopies(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	rec := newRecord("Copies000001", "o")
	if err := s.Insert(ctx, rec, 0, &apikey.Event{Type: apikey.EventCreated, At: at, KeyID: rec.ID}); err != nil {
		t.Fatal(err)
	}
	want, err := s.Lookup(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	want = &apikey.Record{Key: *want.Key.Clone(), Hash: want.Hash}
	check := func(label string) {
		t.Helper()
		got, err := s.Lookup(ctx, rec.ID)
		if err != nil {
			t.Fatalf("%s: Lookup: %v", label, err)
		}
		if got.Name != want.Name || !slices.Equal(got.Scopes, want.Scopes) || fmt.Sprint(got.Metadata) != fmt.Sprint(want.Metadata) ||
			!got.CreatedAt.Equal(want.CreatedAt) || !got.ExpiresAt.Equal(*want.ExpiresAt) || (got.RevokedAt == nil) != (want.RevokedAt == nil) ||
			got.RevokedAt != nil && !got.RevokedAt.Equal(*want.RevokedAt) || got.Hash != want.Hash {
			t.Errorf("%s: the stored key changed:\n got %+v\nwant %+v", label, got, want)
		}
	}

	// The record given to Insert.
	scribble(&rec.Key)
	rec.Hash = "scribbled"
	check("after changing the inserted record")

	// Values handed out.
	got, _ := s.Lookup(ctx, rec.ID)
	scribble(&got.Key)
	got.Hash = "scribbled"
	check("after changing a looked-up record")
	keys, err := s.List(ctx, apikey.Query{Now: at, Limit: 10})
	if err != nil || len(keys) != 1 {
		t.Fatalf("List: %v, %v", keys, err)
	}
	scribble(keys[0])
	check("after changing a listed key")

	name, scopes, metadata := "renamed", []string{"a", "b"}, map[string]string{"env": "prod"}
	exp := at.Add(2 * time.Hour)
	updated, err := s.Update(ctx, rec.ID, apikey.KeyUpdate{Name: &name, Scopes: &scopes, Metadata: &metadata, ExpiresAt: &exp}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantExp := exp
	want.Name, want.Scopes, want.Metadata, want.ExpiresAt = "renamed", []string{"a", "b"}, map[string]string{"env": "prod"}, &wantExp
	scribble(updated)
	scopes[0], metadata["env"], exp = "admin", "scribbled", exp.Add(time.Hour)
	check("after changing an updated key and the patch")

	ev := &apikey.Event{Type: apikey.EventRevoked, At: at, KeyID: rec.ID}
	revoked, err := s.Revoke(ctx, rec.ID, at.Add(time.Minute), ev)
	if err != nil {
		t.Fatal(err)
	}
	revokedAt := *revoked.RevokedAt
	want.RevokedAt = &revokedAt
	scribble(revoked)
	check("after changing a revoked key")
	again, _ := s.Revoke(ctx, rec.ID, at, nil)
	scribble(again)
	check("after changing the key of a repeated revoke")

	// Events: the one given to a mutation, and those listed.
	ev.Changes["revoked_at"] = apikey.Change{Before: "scribbled", After: nil}
	ev.Owner = "scribbled"
	evs, err := s.ListEvents(ctx, apikey.EventQuery{Limit: 10})
	if err != nil || len(evs) != 2 {
		t.Fatalf("ListEvents: %v, %v", evs, err)
	}
	if c := evs[0].Changes["revoked_at"]; c.Before != nil || evs[0].Owner != "o" {
		t.Errorf("after changing the event given to Revoke: logged changes %v, owner %q", evs[0].Changes, evs[0].Owner)
	}
	evs[1].Changes["name"] = apikey.Change{After: "scribbled"}
	evs[1].Changes["scopes"].After.([]any)[0] = "scribbled"
	evs, _ = s.ListEvents(ctx, apikey.EventQuery{Limit: 10})
	if c := evs[1].Changes; c["name"].After != "name of "+rec.ID || c["scopes"].After.([]any)[0] != "read" {
		t.Errorf("after changing listed events: logged changes %v", c)
	}
}

// TestTimesNormalized checks that every stored time comes back in UTC,
// truncated to the microsecond as the SQL stores keep it.
func TestTimesNormalized(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	zone := time.FixedZone("UTC-7", -7*3600)
	created := time.Date(2030, 1, 2, 3, 4, 5, 123456789, zone)
	rec := newRecord("Times0000001", "")
	rec.CreatedAt = created
	rec.ExpiresAt = &[]time.Time{created.Add(time.Hour)}[0]
	if err := s.Insert(ctx, rec, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordUsage(ctx, []apikey.UsageCount{{KeyID: rec.ID, Bucket: created, Outcome: "valid", Count: 1}},
		map[string]time.Time{rec.ID: created.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	k, err := s.Revoke(ctx, rec.ID, created.Add(2*time.Minute), &apikey.Event{Type: apikey.EventRevoked, At: created, KeyID: rec.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := func(d time.Duration) time.Time { return created.Add(d).UTC().Truncate(time.Microsecond) }
	for _, c := range []struct {
		name      string
		got, want time.Time
	}{
		{"CreatedAt", k.CreatedAt, want(0)},
		{"ExpiresAt", *k.ExpiresAt, want(time.Hour)},
		{"LastUsedAt", *k.LastUsedAt, want(time.Minute)},
		{"RevokedAt", *k.RevokedAt, want(2 * time.Minute)},
	} {
		if !c.got.Equal(c.want) || c.got.Location() != time.UTC || c.got.Nanosecond()%1000 != 0 {
			t.Errorf("%s = %s, want %s", c.name, c.got.Format(time.RFC3339Nano), c.want.Format(time.RFC3339Nano))
		}
	}
	evs, _ := s.ListEvents(ctx, apikey.EventQuery{Limit: 1})
	if len(evs) != 1 || !evs[0].At.Equal(want(0)) || evs[0].At.Location() != time.UTC {
		t.Errorf("ListEvents = %+v, want one entry at %s", evs, want(0))
	}
	rows, _ := s.Usage(ctx, rec.ID, created.Add(-time.Minute), created.Add(time.Minute))
	if len(rows) != 1 || !rows[0].Bucket.Equal(want(0)) || rows[0].Bucket.Location() != time.UTC {
		t.Errorf("Usage = %+v, want one counter at %s", rows, want(0))
	}
}

// TestBulkInsertDuplicateInBatch checks that an id given twice in one batch
// fails the whole batch.
func TestBulkInsertDuplicateInBatch(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	a, b := newRecord("BatchDup0001", ""), newRecord("BatchDup0002", "")
	if err := s.BulkInsert(ctx, []*apikey.Record{a, b, a}); !errors.Is(err, apikey.ErrDuplicateID) {
		t.Errorf("BulkInsert with an id twice: err = %v, want %v", err, apikey.ErrDuplicateID)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := s.Lookup(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("a refused batch left %s behind: %v", id, err)
		}
	}
}

// TestRecordUsageRefusesBadCounters checks that a counter the SQL schemas
// refuse (no outcome, a negative count) fails the whole call.
func TestRecordUsageRefusesBadCounters(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	rec := newRecord("Counter00001", "")
	if err := s.Insert(ctx, rec, 0, nil); err != nil {
		t.Fatal(err)
	}
	good := apikey.UsageCount{KeyID: rec.ID, Bucket: at, Outcome: "valid", Count: 1}
	for _, bad := range []apikey.UsageCount{
		{KeyID: rec.ID, Bucket: at, Outcome: "", Count: 1},
		{KeyID: rec.ID, Bucket: at, Outcome: "valid", Count: -1},
	} {
		err := s.RecordUsage(ctx, []apikey.UsageCount{good, bad}, map[string]time.Time{rec.ID: at})
		if err == nil || errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("RecordUsage with %+v: err = %v, want a failure", bad, err)
		}
	}
	rows, err := s.Usage(ctx, rec.ID, at.Add(-time.Hour), at.Add(time.Hour))
	if err != nil || len(rows) != 0 {
		t.Errorf("Usage after refused calls = %v, %v; want none", rows, err)
	}
	if got, _ := s.Lookup(ctx, rec.ID); got.LastUsedAt != nil {
		t.Errorf("refused calls set LastUsedAt to %s", got.LastUsedAt)
	}
}

func TestPing(t *testing.T) {
	s := memstore.New()
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Ping(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping with a cancelled context: err = %v, want %v", err, context.Canceled)
	}
}

// TestConcurrentUse runs every method at once through a Manager and
// directly, for the race detector, and checks that the owner limit held.
func TestConcurrentUse(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	m, err := apikey.NewManager(s, apikey.Config{MaxKeysPerOwner: 20, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 30 {
				k, token, err := m.Create(ctx, apikey.CreateParams{Name: fmt.Sprint("worker ", w, " key ", i), Owner: "shared"})
				if errors.Is(err, apikey.ErrTooManyKeys) {
					continue
				}
				if err != nil {
					t.Errorf("Create: %v", err)
					return
				}
				if _, err := m.Verify(ctx, token); err != nil {
					t.Errorf("Verify: %v", err)
				}
				name := fmt.Sprint("renamed ", i)
				if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name}); err != nil {
					t.Errorf("Update: %v", err)
				}
				if _, err := s.List(ctx, apikey.Query{Owner: "shared", Now: time.Now(), Search: "renamed", Limit: 5}); err != nil {
					t.Errorf("List: %v", err)
				}
				if err := s.RecordUsage(ctx, []apikey.UsageCount{{KeyID: k.ID, Bucket: at, Outcome: "valid", Count: 1}}, map[string]time.Time{k.ID: at}); err != nil {
					t.Errorf("RecordUsage: %v", err)
				}
				if _, err := s.Usage(ctx, k.ID, at, at.Add(time.Minute)); err != nil {
					t.Errorf("Usage: %v", err)
				}
				if _, err := m.Events(ctx, apikey.EventFilter{KeyID: k.ID}); err != nil {
					t.Errorf("Events: %v", err)
				}
				switch i % 3 {
				case 0:
					if _, err := m.Revoke(ctx, k.ID); err != nil {
						t.Errorf("Revoke: %v", err)
					}
				case 1:
					if err := m.Delete(ctx, k.ID); err != nil {
						t.Errorf("Delete: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	active, err := s.List(ctx, apikey.Query{Owner: "shared", State: apikey.StateActive, Now: time.Now(), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(active) > 20 {
		t.Errorf("%d active keys for owner shared, limit 20", len(active))
	}
}

// TestClosed checks that every call after Close fails, so that callers can
// be tested against a store that is down.
func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Lookup(ctx, "0123456789ab"); !errors.Is(err, memstore.ErrClosed) {
		t.Errorf("Lookup after Close: %v, want ErrClosed", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, memstore.ErrClosed) {
		t.Errorf("Ping after Close: %v, want ErrClosed", err)
	}
	m, err := apikey.NewManager(s, apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "x"}); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("Create on a closed store: %v, want ErrUnavailable", err)
	}
}

func TestChangeFeed(t *testing.T) {
	apikeytest.TestChangeFeed(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}
	})
}

// TestStrictRevocation runs the strict revocation suite with two Managers
// over one Store, as two parts of one process would share it.
func TestStrictRevocation(t *testing.T) {
	apikeytest.TestStrictRevocation(t, func(t *testing.T) (apikey.Store, apikey.Store) {
		s := memstore.New()
		return s, s
	})
}

func TestLeakStore(t *testing.T) {
	apikeytest.TestLeakStore(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{
			Store: s,
			Dump:  func(context.Context) ([]byte, error) { return memstore.Dump(s) },
		}
	})
}

func TestCredits(t *testing.T) {
	apikeytest.TestCredits(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}
	})
}

func TestOccurrences(t *testing.T) {
	apikeytest.TestOccurrences(t, func(t *testing.T) apikeytest.Harness {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}
	})
}

func TestOutbox(t *testing.T) {
	apikeytest.TestOutbox(t, func(t *testing.T) (apikeytest.Harness, outbox.Store) {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}, s.Webhooks()
	})
}

func TestWorker(t *testing.T) {
	apikeytest.TestWorker(t, func(t *testing.T) (apikeytest.Harness, outbox.Store) {
		s := memstore.New()
		return apikeytest.Harness{Store: s, Dump: func(context.Context) ([]byte, error) { return memstore.Dump(s) }}, s.Webhooks()
	})
}

package apikeytest

import (
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestOccurrences runs the conformance suite of apikey.OccurrenceStore and
// of the Scheduler over it: each occurrence is written to the audit log
// once, even when several schedulers record it at the same time.
// newHarness is called as by TestStore; its Store must be an
// apikey.OccurrenceStore.
func TestOccurrences(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness, apikey.OccurrenceStore)
	}{
		{"Once", testOccurrenceOnce},
		{"NewDueIsNew", testOccurrenceNewDue},
		{"UnknownKey", testOccurrenceUnknownKey},
		{"SchedulerRules", testSchedulerRules},
		{"ConcurrentSchedulers", testSchedulerConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			os, ok := h.Store.(apikey.OccurrenceStore)
			if !ok {
				t.Fatalf("the store %T is not an apikey.OccurrenceStore", h.Store)
			}
			tc.run(t, h, os)
		})
	}
}

func occurrence(typ apikey.EventType, keyID string, due time.Time) apikey.Occurrence {
	return apikey.Occurrence{Event: &apikey.Event{Type: typ, At: us(base), Actor: "scheduler", KeyID: keyID}, Due: us(due)}
}

func countEvents(t *testing.T, h Harness, keyID string, typ apikey.EventType) int {
	t.Helper()
	evs, err := h.Store.ListEvents(t.Context(), apikey.EventQuery{KeyID: keyID, Type: typ, Limit: 1000})
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	return len(evs)
}

func testOccurrenceOnce(t *testing.T, h Harness, os apikey.OccurrenceStore) {
	id := testID("occ", 1)
	insert(t, h, record(id, "acme", "k", base))
	due := base.Add(time.Hour)
	o := occurrence(apikey.EventExpiring, id, due)
	if err := os.RecordOccurrences(t.Context(), []apikey.Occurrence{o}); err != nil {
		t.Fatal(err)
	}
	if o.Event.ID == 0 || o.Event.Owner != "acme" {
		t.Errorf("first record: ID %d, Owner %q; want an ID and acme", o.Event.ID, o.Event.Owner)
	}
	again := occurrence(apikey.EventExpiring, id, due)
	if err := os.RecordOccurrences(t.Context(), []apikey.Occurrence{again}); err != nil {
		t.Fatal(err)
	}
	if again.Event.ID != 0 {
		t.Errorf("second record of the same occurrence: ID %d, want 0", again.Event.ID)
	}
	// Another type for the same key and instant is another occurrence.
	other := occurrence(apikey.EventExpired, id, due)
	if err := os.RecordOccurrences(t.Context(), []apikey.Occurrence{other}); err != nil {
		t.Fatal(err)
	}
	if other.Event.ID == 0 {
		t.Error("key.expired after key.expiring of the same instant was not recorded")
	}
	if n := countEvents(t, h, id, apikey.EventExpiring); n != 1 {
		t.Errorf("%d key.expiring entries, want 1", n)
	}
	evs, _ := h.Store.ListEvents(t.Context(), apikey.EventQuery{KeyID: id, Type: apikey.EventExpiring, Limit: 10})
	if len(evs) == 1 && (evs[0].Actor != "scheduler" || evs[0].Owner != "acme" || !evs[0].At.Equal(us(base))) {
		t.Errorf("stored event %+v, want actor scheduler, owner acme, at %s", evs[0], us(base))
	}
}

func testOccurrenceNewDue(t *testing.T, h Harness, os apikey.OccurrenceStore) {
	id := testID("occ", 2)
	insert(t, h, record(id, "acme", "k", base))
	batch := []apikey.Occurrence{
		occurrence(apikey.EventExpiring, id, base.Add(time.Hour)),
		occurrence(apikey.EventExpiring, id, base.Add(2*time.Hour)),
		occurrence(apikey.EventExpiring, id, base.Add(2*time.Hour)), // twice in one batch
	}
	if err := os.RecordOccurrences(t.Context(), batch); err != nil {
		t.Fatal(err)
	}
	if batch[0].Event.ID == 0 || batch[1].Event.ID == 0 || batch[2].Event.ID != 0 {
		t.Errorf("IDs %d %d %d; want two set, the repeated one 0", batch[0].Event.ID, batch[1].Event.ID, batch[2].Event.ID)
	}
	if n := countEvents(t, h, id, apikey.EventExpiring); n != 2 {
		t.Errorf("%d entries, want 2 (one per due instant)", n)
	}
}

func testOccurrenceUnknownKey(t *testing.T, h Harness, os apikey.OccurrenceStore) {
	o := occurrence(apikey.EventExpired, testID("occ", 3), base)
	if err := os.RecordOccurrences(t.Context(), []apikey.Occurrence{o}); err != nil {
		t.Fatal(err)
	}
	if o.Event.ID != 0 {
		t.Errorf("occurrence of an unknown key recorded as %d", o.Event.ID)
	}
}

// schedulerKeys inserts keys in every situation the built-in rules look at
// and returns a Scheduler at base over them.
func schedulerKeys(t *testing.T, h Harness, os apikey.OccurrenceStore) *apikey.Scheduler {
	t.Helper()
	now := us(base)
	mk := func(n int, expires *time.Time, revoked bool) {
		rec := record(testID("sch", n), "acme", "k", now.Add(-48*time.Hour))
		rec.ExpiresAt = expires
		insert(t, h, rec)
		if revoked {
			if _, err := h.Store.Revoke(t.Context(), rec.ID, now.Add(-time.Hour), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk(1, ptr(now.Add(2*time.Hour)), false)     // expiring
	mk(2, ptr(now.Add(10*24*time.Hour)), false) // far away
	mk(3, ptr(now.Add(-time.Minute)), false)    // expired
	mk(4, nil, false)                           // never expires
	mk(5, ptr(now.Add(time.Hour)), true)        // revoked
	for i := 6; i < 20; i++ {                   // more than a page
		mk(i, ptr(now.Add(time.Duration(i)*time.Minute)), false)
	}
	inactive := func(k *apikey.Key) (time.Time, bool) {
		if k.ID == testID("sch", 4) {
			return now.Add(time.Hour), true
		}
		return time.Time{}, false
	}
	return &apikey.Scheduler{Store: h.Store, Occurrences: os, Now: func() time.Time { return now }, PageSize: 7,
		Rules: []apikey.Rule{apikey.ExpiringRule(24 * time.Hour), apikey.ExpiredRule(), apikey.InactiveWarningRule(inactive, 24*time.Hour)}}
}

func testSchedulerRules(t *testing.T, h Harness, os apikey.OccurrenceStore) {
	s := schedulerKeys(t, h, os)
	n, err := s.Tick(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// 1 and 6..19 expiring, 3 expired, 4 inactive.
	if want := 1 + 14 + 1 + 1; n != want {
		t.Errorf("first Tick recorded %d, want %d", n, want)
	}
	for _, c := range []struct {
		n    int
		typ  apikey.EventType
		want int
	}{
		{1, apikey.EventExpiring, 1}, {2, apikey.EventExpiring, 0}, {3, apikey.EventExpired, 1}, {3, apikey.EventExpiring, 0},
		{4, apikey.EventInactiveWarning, 1}, {5, apikey.EventExpiring, 0}, {5, apikey.EventExpired, 0}, {19, apikey.EventExpiring, 1},
	} {
		if got := countEvents(t, h, testID("sch", c.n), c.typ); got != c.want {
			t.Errorf("key %d: %d %s entries, want %d", c.n, got, c.typ, c.want)
		}
	}
	if n, err := s.Tick(t.Context()); err != nil || n != 0 {
		t.Errorf("second Tick = %d, %v; want 0, nil", n, err)
	}
}

func testSchedulerConcurrent(t *testing.T, h Harness, os apikey.OccurrenceStore) {
	s := schedulerKeys(t, h, os)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := *s
			n, err := sc.Tick(t.Context())
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if want := 17; total != want {
		t.Errorf("4 concurrent Ticks recorded %d in all, want %d", total, want)
	}
	if got := countEvents(t, h, testID("sch", 1), apikey.EventExpiring); got != 1 {
		t.Errorf("%d key.expiring entries for key 1, want 1", got)
	}
}

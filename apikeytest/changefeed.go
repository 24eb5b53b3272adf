package apikeytest

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// feedStore is a store that keeps a change feed and an instance registry.
type feedStore interface {
	apikey.Store
	apikey.ChangeFeed
	apikey.InstanceRegistry
}

func asFeed(t *testing.T, s apikey.Store) feedStore {
	t.Helper()
	f, ok := s.(feedStore)
	if !ok {
		t.Fatalf("%T is not an apikey.ChangeFeed and an apikey.InstanceRegistry", s)
	}
	return f
}

// TestChangeFeed runs the conformance suite of apikey.ChangeFeed and
// apikey.InstanceRegistry, which Harness.Store must both implement.
// newHarness is called once per subtest, as for TestStore.
//
// The suite checks that every change of a key is recorded under a higher
// sequence number (insert, update, revocation, roll, delete, and with
// Harness.Exec the same made with plain SQL), that writes of the last use
// alone are not, that ChangesAfter pages in sequence order and never
// skips a change committed by concurrent writers, that pruning keeps the
// last change, and that the registry records heartbeats, acknowledged
// sequence numbers and liveness by its own clock.
func TestChangeFeed(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"Empty", testFeedEmpty},
		{"EveryChange", testFeedEveryChange},
		{"NetEnvChanges", testFeedNetEnvChanges},
		{"LastUsedIsNoChange", testFeedLastUsed},
		{"DirectSQL", testFeedDirectSQL},
		{"ConcurrentWriters", testFeedConcurrentWriters},
		{"Prune", testFeedPrune},
		{"Instances", testRegistryInstances},
		{"InstanceExpiry", testRegistryExpiry},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newHarness(t)) })
	}
}

// changes returns every change after seq, reading pages of limit.
func changes(t *testing.T, f apikey.ChangeFeed, seq int64, limit int) []apikey.KeyChange {
	t.Helper()
	var out []apikey.KeyChange
	for {
		page, err := f.ChangesAfter(t.Context(), seq, limit)
		if err != nil {
			t.Fatalf("ChangesAfter(%d, %d): %v", seq, limit, err)
		}
		if len(page) > limit {
			t.Fatalf("ChangesAfter(%d, %d) returned %d changes", seq, limit, len(page))
		}
		for _, c := range page {
			if c.Seq <= seq {
				t.Fatalf("ChangesAfter: change %d after %d: not in increasing order", c.Seq, seq)
			}
			seq = c.Seq
		}
		out = append(out, page...)
		if len(page) < limit {
			return out
		}
	}
}

func lastChange(t *testing.T, f apikey.ChangeFeed) int64 {
	t.Helper()
	seq, err := f.LastChange(t.Context())
	if err != nil {
		t.Fatalf("LastChange: %v", err)
	}
	return seq
}

// keyIDs renders changes as "op id".
func keyIDs(cs []apikey.KeyChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c.Op) + " " + c.KeyID
	}
	return out
}

func testFeedEmpty(t *testing.T, h Harness) {
	f := asFeed(t, h.Store)
	if seq := lastChange(t, f); seq != 0 {
		t.Errorf("LastChange of an empty store = %d, want 0", seq)
	}
	if cs := changes(t, f, 0, 10); len(cs) != 0 {
		t.Errorf("ChangesAfter(0) of an empty store = %v, want none", cs)
	}
	ins, err := f.Instances(t.Context())
	if err != nil || len(ins) != 0 {
		t.Errorf("Instances of an empty store = %v, %v; want none", ins, err)
	}
}

// testFeedNetEnvChanges: a change of a key's allowlist or inactivity
// expiry alone is in the feed (once, or twice where the statement also
// names other columns: each is an eviction of the key).
func testFeedNetEnvChanges(t *testing.T, h Harness) {
	ctx := t.Context()
	f := asFeed(t, h.Store)
	m := newManager(t, h, apikey.Config{UsageFlushInterval: -1})
	k, _ := create(t, m, apikey.CreateParams{Name: "k"})
	for _, u := range []apikey.KeyUpdate{
		{AllowedCIDRs: &[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}},
		{InactivityExpiry: ptr(48 * time.Hour)},
	} {
		before := lastChange(t, f)
		if _, err := m.Update(ctx, k.ID, u); err != nil {
			t.Fatal(err)
		}
		cs := changes(t, f, before, 10)
		if len(cs) == 0 || len(cs) > 2 {
			t.Errorf("changes after %+v = %v, want the key's update once or twice", u, keyIDs(cs))
		}
		for _, c := range cs {
			if c.Op != apikey.ChangeUpdate || c.KeyID != k.ID {
				t.Errorf("change %v, want update %s", c, k.ID)
			}
		}
	}
}

func testFeedEveryChange(t *testing.T, h Harness) {
	ctx := t.Context()
	f := asFeed(t, h.Store)
	m := newManager(t, h, apikey.Config{UsageFlushInterval: -1})
	start := time.Now()
	a, _ := create(t, m, apikey.CreateParams{Name: "a"})
	b, _ := create(t, m, apikey.CreateParams{Name: "b"})
	if _, err := m.Update(ctx, a.ID, apikey.KeyUpdate{Name: ptr("a2")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Roll(ctx, b.ID, apikey.RollOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, a.ID); err != nil { // changes nothing
		t.Fatal(err)
	}
	if err := m.Delete(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{"insert " + a.ID, "insert " + b.ID, "update " + a.ID, "update " + b.ID, "update " + a.ID, "delete " + b.ID}
	all := changes(t, f, 0, 100)
	if got := keyIDs(all); !slices.Equal(got, want) {
		t.Fatalf("changes = %v, want %v (create a, create b, update a, roll b, revoke a, delete b)", got, want)
	}
	for _, c := range all {
		if c.At.Location() != time.UTC || c.At.Before(start.Add(-time.Minute)) || c.At.After(time.Now().Add(time.Minute)) {
			t.Errorf("change %d recorded at %v, want about now, in UTC", c.Seq, c.At)
		}
	}
	if last := lastChange(t, f); last != all[len(all)-1].Seq {
		t.Errorf("LastChange = %d, want %d, the last change's", last, all[len(all)-1].Seq)
	}
	// Pages of two, and from the middle.
	if got := changes(t, f, 0, 2); !slices.Equal(keyIDs(got), want) {
		t.Errorf("changes in pages of 2 = %v, want %v", keyIDs(got), want)
	}
	if got := changes(t, f, all[2].Seq, 100); !slices.Equal(keyIDs(got), want[3:]) {
		t.Errorf("changes after the third = %v, want %v", keyIDs(got), want[3:])
	}
	if got := changes(t, f, all[len(all)-1].Seq, 100); len(got) != 0 {
		t.Errorf("changes after the last = %v, want none", got)
	}
}

func testFeedLastUsed(t *testing.T, h Harness) {
	f := asFeed(t, h.Store)
	m := newManager(t, h, apikey.Config{UsageFlushInterval: time.Hour})
	_, token := create(t, m, apikey.CreateParams{Name: "used"})
	last := lastChange(t, f)
	if _, err := m.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if err := m.FlushUsage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cs := changes(t, f, last, 10); len(cs) != 0 {
		t.Errorf("recording usage (last used) made changes %v, want none", cs)
	}
}

func testFeedDirectSQL(t *testing.T, h Harness) {
	needExec(t, h)
	ctx := t.Context()
	f := asFeed(t, h.Store)
	rec := record(testID("sql", 1), "", "direct", base)
	exec := func(q string) {
		t.Helper()
		if err := h.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(reinsertSQL(rec))
	exec("UPDATE apikey_keys SET name = 'renamed' WHERE id = '" + rec.ID + "'")
	exec("UPDATE apikey_keys SET last_used_at = NULL WHERE id = '" + rec.ID + "'") // not a change
	exec("DELETE FROM apikey_keys WHERE id = '" + rec.ID + "'")
	want := []string{"insert " + rec.ID, "update " + rec.ID, "delete " + rec.ID}
	if got := keyIDs(changes(t, f, 0, 10)); !slices.Equal(got, want) {
		t.Errorf("changes made with SQL = %v, want %v (insert, update of the name, delete)", got, want)
	}
}

// testFeedConcurrentWriters reads the feed while writers insert keys
// concurrently: a reader that follows the feed with a cursor must see every
// change, which fails if numbers are taken in one order and committed in
// another.
func testFeedConcurrentWriters(t *testing.T, h Harness) {
	const writers, each = 8, 30
	ctx := t.Context()
	f := asFeed(t, h.Store)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				rec := record(testID(fmt.Sprintf("c%d", w), i), "", "concurrent", base)
				if err := h.Store.Insert(ctx, rec, 0, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[string]bool{}
	var cursor int64
	read := func() {
		page, err := f.ChangesAfter(ctx, cursor, 7)
		if err != nil {
			t.Fatalf("ChangesAfter: %v", err)
		}
		for _, c := range page {
			if c.Seq <= cursor {
				t.Fatalf("change %d after %d", c.Seq, cursor)
			}
			cursor = c.Seq
			if c.Op != apikey.ChangeInsert {
				t.Errorf("change %d of an insert: op %q, want insert", c.Seq, c.Op)
			}
			seen[c.KeyID] = true
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			read()
		}
	}
	close(errs)
	for err := range errs {
		t.Fatalf("Insert: %v", err)
	}
	for range writers * each { // drain what is left
		read()
	}
	var missed []string
	for w := range writers {
		for i := range each {
			if id := testID(fmt.Sprintf("c%d", w), i); !seen[id] {
				missed = append(missed, id)
			}
		}
	}
	if len(missed) > 0 {
		t.Errorf("a reader following the feed missed %d of %d inserts, e.g. %v", len(missed), writers*each, missed[:min(5, len(missed))])
	}
}

func testFeedPrune(t *testing.T, h Harness) {
	ctx := t.Context()
	f := asFeed(t, h.Store)
	for i := range 3 {
		insert(t, h, record(testID("prune", i), "", "p", base))
	}
	last := lastChange(t, f)
	if err := f.PruneChanges(ctx, time.Hour); err != nil {
		t.Fatalf("PruneChanges(1h): %v", err)
	}
	if n := len(changes(t, f, 0, 10)); n != 3 {
		t.Errorf("after pruning changes older than an hour, %d changes left, want 3", n)
	}
	time.Sleep(20 * time.Millisecond)
	if err := f.PruneChanges(ctx, 0); err != nil {
		t.Fatalf("PruneChanges(0): %v", err)
	}
	cs := changes(t, f, 0, 10)
	if len(cs) != 1 || cs[0].Seq != last {
		t.Errorf("after pruning every change, %v left, want the last one (%d)", cs, last)
	}
	if got := lastChange(t, f); got != last {
		t.Errorf("LastChange after pruning = %d, want %d", got, last)
	}
	insert(t, h, record(testID("prune", 9), "", "p", base))
	if cs := changes(t, f, last, 10); len(cs) != 1 || cs[0].Seq <= last {
		t.Errorf("the change after pruning = %v, want one numbered above %d", cs, last)
	}
}

func findInstance(ins []apikey.Instance, id string) (apikey.Instance, bool) {
	for _, in := range ins {
		if in.ID == id {
			return in, true
		}
	}
	return apikey.Instance{}, false
}

func instances(t *testing.T, r apikey.InstanceRegistry) []apikey.Instance {
	t.Helper()
	ins, err := r.Instances(t.Context())
	if err != nil {
		t.Fatalf("Instances: %v", err)
	}
	return ins
}

func testRegistryInstances(t *testing.T, h Harness) {
	ctx := t.Context()
	r := asFeed(t, h.Store)
	before := time.Now()
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-b", Name: "beta", AckedSeq: 7}, time.Minute); err != nil {
		t.Fatalf("PutInstance: %v", err)
	}
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-a", Name: "alpha", AckedSeq: 3}, time.Minute); err != nil {
		t.Fatalf("PutInstance: %v", err)
	}
	ins := instances(t, r)
	var names []string
	for _, in := range ins {
		names = append(names, in.Name)
	}
	if !slices.Equal(names, []string{"alpha", "beta"}) {
		t.Fatalf("Instances = %v, want alpha then beta", names)
	}
	b, _ := findInstance(ins, "i-b")
	if b.AckedSeq != 7 || b.HeartbeatAt.Location() != time.UTC || !b.StartedAt.Equal(b.HeartbeatAt) {
		t.Errorf("first put of beta = %+v, want AckedSeq 7, StartedAt = HeartbeatAt, in UTC", b)
	}
	if d := b.LiveUntil.Sub(b.HeartbeatAt); d < time.Minute-time.Millisecond || d > time.Minute+time.Millisecond {
		t.Errorf("beta LiveUntil - HeartbeatAt = %v, want the ttl, 1m", d)
	}
	if b.HeartbeatAt.Before(before.Add(-time.Minute)) || b.HeartbeatAt.After(time.Now().Add(time.Minute)) {
		t.Errorf("beta HeartbeatAt = %v, want about now", b.HeartbeatAt)
	}
	time.Sleep(5 * time.Millisecond)
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-b", Name: "beta", AckedSeq: 9}, time.Minute); err != nil {
		t.Fatalf("PutInstance: %v", err)
	}
	b2, ok := findInstance(instances(t, r), "i-b")
	if !ok || b2.AckedSeq != 9 || !b2.StartedAt.Equal(b.StartedAt) || !b2.HeartbeatAt.After(b.HeartbeatAt) {
		t.Errorf("second put of beta = %+v, want AckedSeq 9, StartedAt kept (%v), a later HeartbeatAt than %v", b2, b.StartedAt, b.HeartbeatAt)
	}
	if err := r.RemoveInstance(ctx, "i-b"); err != nil {
		t.Fatalf("RemoveInstance: %v", err)
	}
	if err := r.RemoveInstance(ctx, "i-unknown"); err != nil {
		t.Errorf("RemoveInstance of an unknown id: %v, want nil", err)
	}
	if ins := instances(t, r); len(ins) != 1 || ins[0].ID != "i-a" {
		t.Errorf("Instances after removing beta = %+v, want alpha alone", ins)
	}
}

func testRegistryExpiry(t *testing.T, h Harness) {
	ctx := t.Context()
	r := asFeed(t, h.Store)
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-short", Name: "short"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-long", Name: "long"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := findInstance(instances(t, r), "i-short"); !ok {
		t.Fatal("an instance is not live right after its heartbeat")
	}
	time.Sleep(150 * time.Millisecond)
	ins := instances(t, r)
	if _, ok := findInstance(ins, "i-short"); ok {
		t.Error("an instance is still live 150ms after a heartbeat with a ttl of 50ms")
	}
	if _, ok := findInstance(ins, "i-long"); !ok {
		t.Error("an instance with a ttl of 1m is no longer live")
	}
	// A heartbeat brings an expired instance back.
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-short", Name: "short"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, ok := findInstance(instances(t, r), "i-short"); !ok {
		t.Error("an expired instance is not live after a new heartbeat")
	}
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-short", Name: "short"}, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if err := r.PruneInstances(ctx, time.Hour); err != nil {
		t.Fatalf("PruneInstances: %v", err)
	}
	if err := r.PruneInstances(ctx, 0); err != nil {
		t.Fatalf("PruneInstances: %v", err)
	}
	if err := r.PutInstance(ctx, apikey.Instance{ID: "i-short", Name: "short", AckedSeq: 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if in, _ := findInstance(instances(t, r), "i-short"); !in.StartedAt.Equal(in.HeartbeatAt) {
		t.Errorf("after pruning, a new heartbeat of the pruned instance = %+v, want a fresh StartedAt (the row was pruned)", in)
	}
	if _, ok := findInstance(instances(t, r), "i-long"); !ok {
		t.Error("pruning removed a live instance")
	}
}

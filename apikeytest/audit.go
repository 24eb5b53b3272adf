package apikeytest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// listEvents returns every audit entry matching q (Limit 1000 unless set).
func listEvents(t *testing.T, h Harness, q apikey.EventQuery) []*apikey.Event {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	evs, err := h.Store.ListEvents(t.Context(), q)
	if err != nil {
		t.Fatalf("ListEvents(%+v): %v", q, err)
	}
	return evs
}

// jsonNorm returns v as it reads back from JSON into an any: what a store
// returns for values it decoded from its audit log.
func jsonNorm(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// checkChanges reports every difference between got and want, compared as
// JSON values (so []string matches []any of strings).
func checkChanges(t *testing.T, label string, got, want map[string]apikey.Change) {
	t.Helper()
	if g, w := jsonNorm(got), jsonNorm(want); len(got) != len(want) || !reflect.DeepEqual(g, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("%s: Changes = %s, want %s", label, gb, wb)
	}
}

// checkEvent compares a stored event with what the suite expects.
func checkEvent(t *testing.T, label string, got *apikey.Event, typ apikey.EventType, actor, keyID, owner string, at time.Time, changes map[string]apikey.Change) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no event", label)
		return
	}
	if got.ID <= 0 {
		t.Errorf("%s: ID = %d, want > 0", label, got.ID)
	}
	if got.Type != typ || got.Actor != actor || got.KeyID != keyID || got.Owner != owner {
		t.Errorf("%s: (Type, Actor, KeyID, Owner) = (%q, %q, %q, %q), want (%q, %q, %q, %q)",
			label, got.Type, got.Actor, got.KeyID, got.Owner, typ, actor, keyID, owner)
	}
	checkTime(t, label+": At", &got.At, &at)
	checkChanges(t, label, got.Changes, changes)
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func testAuditLog(t *testing.T, h Harness) {
	ctx := apikey.WithActor(t.Context(), "admin:alice@example.com")
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1})
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "old", Owner: "acme", Scopes: []string{"read"}, Metadata: map[string]string{"env": "prod"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	const actor = "admin:alice@example.com"
	evs := listEvents(t, h, apikey.EventQuery{KeyID: k.ID})
	if len(evs) != 1 {
		t.Fatalf("after Create: %d audit entries for the key, want 1", len(evs))
	}
	created := us(base)
	checkEvent(t, "created", evs[0], apikey.EventCreated, actor, k.ID, "acme", created, map[string]apikey.Change{
		"name":     {Before: nil, After: "old"},
		"owner":    {Before: nil, After: "acme"},
		"scopes":   {Before: nil, After: []string{"read"}},
		"metadata": {Before: nil, After: map[string]string{"env": "prod"}},
	})

	at := clk.Add(time.Minute)
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("new")}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkEvent(t, "update of the name", listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Limit: 1})[0],
		apikey.EventUpdated, actor, k.ID, "acme", at, map[string]apikey.Change{"name": {Before: "old", After: "new"}})

	exp := us(base.Add(48 * time.Hour))
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &[]string{"b", "a"}, ExpiresAt: &exp}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	checkEvent(t, "update of scopes and expiry", listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Limit: 1})[0],
		apikey.EventUpdated, actor, k.ID, "acme", at, map[string]apikey.Change{
			"scopes":     {Before: []string{"read"}, After: []string{"a", "b"}},
			"expires_at": {Before: nil, After: rfc(exp)},
		})

	rolled := clk.Add(time.Minute)
	if _, _, err := m.Roll(apikey.WithActor(ctx, "cli"), k.ID, apikey.RollOptions{}); err != nil {
		t.Fatalf("Roll: %v", err)
	}
	checkEvent(t, "roll", listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Limit: 1})[0],
		apikey.EventRolled, "cli", k.ID, "acme", rolled, nil)

	revoked := clk.Add(time.Minute)
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	checkEvent(t, "revoke", listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Limit: 1})[0],
		apikey.EventRevoked, actor, k.ID, "acme", revoked, map[string]apikey.Change{"revoked_at": {Before: nil, After: rfc(revoked)}})

	clk.Add(time.Minute)
	n := len(listEvents(t, h, apikey.EventQuery{}))
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("second Revoke: %v", err)
	}
	if got := len(listEvents(t, h, apikey.EventQuery{})); got != n {
		t.Errorf("a second Revoke wrote %d audit entries, want none (nothing changed)", got-n)
	}

	deleted := clk.Add(time.Minute)
	if err := m.Delete(apikey.WithActor(ctx, "key:"+k.ID), k.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	checkEvent(t, "delete", listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Limit: 1})[0],
		apikey.EventDeleted, "key:"+k.ID, k.ID, "acme", deleted, map[string]apikey.Change{
			"name":       {Before: "new", After: nil},
			"owner":      {Before: "acme", After: nil},
			"scopes":     {Before: []string{"a", "b"}, After: nil},
			"metadata":   {Before: map[string]string{"env": "prod"}, After: nil},
			"expires_at": {Before: rfc(exp), After: nil},
			"revoked_at": {Before: rfc(revoked), After: nil},
		})

	// The history outlives the key, newest first.
	evs = listEvents(t, h, apikey.EventQuery{KeyID: k.ID})
	var types []apikey.EventType
	for i, e := range evs {
		types = append(types, e.Type)
		if i > 0 && e.ID >= evs[i-1].ID {
			t.Errorf("ListEvents: id %d after id %d, want strictly decreasing ids", e.ID, evs[i-1].ID)
		}
	}
	want := []apikey.EventType{apikey.EventDeleted, apikey.EventRevoked, apikey.EventRolled, apikey.EventUpdated, apikey.EventUpdated, apikey.EventCreated}
	if !slices.Equal(types, want) {
		t.Errorf("history of a deleted key = %v, want %v", types, want)
	}

	// Direct Store calls fill Owner, Changes and ID of the event they get.
	rec := record(testID("Direct", 1), "globex", "direct", base)
	ev := &apikey.Event{Type: apikey.EventCreated, At: us(base), Actor: "direct", KeyID: rec.ID}
	if err := h.Store.Insert(ctx, rec, 10, ev); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	if ev.ID <= 0 || ev.Owner != "globex" || ev.Changes["name"].After != "direct" {
		t.Errorf("Insert filled the event with ID %d, Owner %q, Changes %v; want an id, globex, name set", ev.ID, ev.Owner, ev.Changes)
	}
	ev2 := &apikey.Event{Type: apikey.EventUpdated, At: us(base.Add(time.Second)).In(farEast), Actor: "direct", KeyID: rec.ID}
	if _, err := h.Store.Update(ctx, rec.ID, apikey.KeyUpdate{Name: ptr("renamed")}, ev2); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if ev2.ID <= ev.ID || ev2.Owner != "globex" || len(ev2.Changes) != 1 || ev2.Changes["name"] != (apikey.Change{Before: "direct", After: "renamed"}) {
		t.Errorf("Update filled the event with ID %d (insert's %d), Owner %q, Changes %v", ev2.ID, ev.ID, ev2.Owner, ev2.Changes)
	}
	got := listEvents(t, h, apikey.EventQuery{Limit: 1})[0]
	checkEvent(t, "direct update", got, apikey.EventUpdated, "direct", rec.ID, "globex", us(base.Add(time.Second)),
		map[string]apikey.Change{"name": {Before: "direct", After: "renamed"}})
	if got.ID != ev2.ID {
		t.Errorf("newest entry has id %d, the event was given %d", got.ID, ev2.ID)
	}
	ev3 := &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: rec.ID}
	if err := h.Store.SetHash(ctx, rec.ID, "", rec.Hash, ev3); err != nil || ev3.ID <= ev2.ID || ev3.Owner != "globex" || len(ev3.Changes) != 0 {
		t.Errorf("SetHash: %v; event ID %d, Owner %q, Changes %v", err, ev3.ID, ev3.Owner, ev3.Changes)
	}
	// A nil event records nothing.
	n = len(listEvents(t, h, apikey.EventQuery{}))
	if err := h.Store.SetHash(ctx, rec.ID, "", rec.Hash, nil); err != nil {
		t.Fatalf("SetHash: %v", err)
	}
	if _, err := h.Store.Update(ctx, rec.ID, apikey.KeyUpdate{Name: ptr("quiet")}, nil); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if got := len(listEvents(t, h, apikey.EventQuery{})); got != n {
		t.Errorf("calls with a nil event wrote %d audit entries, want none", got-n)
	}
}

func testAuditNotOnFailure(t *testing.T, h Harness) {
	ctx := apikey.WithActor(t.Context(), "admin")
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1, MaxKeysPerOwner: 1})
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "frozen", Owner: "o"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	full, _, err := m.Create(ctx, apikey.CreateParams{Name: "fills the limit", Owner: "o"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	before := listEvents(t, h, apikey.EventQuery{})
	ev := func(typ apikey.EventType, id string) *apikey.Event {
		return &apikey.Event{Type: typ, At: us(base), Actor: "admin", KeyID: id}
	}
	const missing = "NoSuchKey000"
	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("thawed")})
	wantFrozen(t, "Manager.Update of a revoked key", err)
	_, err = h.Store.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("thawed")}, ev(apikey.EventUpdated, k.ID))
	wantFrozen(t, "Store.Update of a revoked key", err)
	_, err = h.Store.Update(ctx, missing, apikey.KeyUpdate{Name: ptr("x")}, ev(apikey.EventUpdated, missing))
	wantErr(t, "Store.Update of an unknown key", err, apikey.ErrNotFound)
	_, err = h.Store.Revoke(ctx, missing, us(base), ev(apikey.EventRevoked, missing))
	wantErr(t, "Store.Revoke of an unknown key", err, apikey.ErrNotFound)
	r, err := h.Store.Revoke(ctx, k.ID, us(base.Add(time.Hour)), ev(apikey.EventRevoked, k.ID))
	if err != nil || r.RevokedAt == nil || !r.RevokedAt.Equal(us(base)) {
		t.Errorf("Store.Revoke of a revoked key = %v, %v; want the key revoked at %s", r, err, us(base))
	}
	wantErr(t, "Store.Delete of an unknown key", h.Store.Delete(ctx, missing, ev(apikey.EventDeleted, missing)), apikey.ErrNotFound)
	wantErr(t, "Store.SetHash of an unknown key", h.Store.SetHash(ctx, missing, "", "sha256$00", ev(apikey.EventRolled, missing)), apikey.ErrNotFound)
	dup := record(full.ID, "o", "duplicate", base)
	wantErr(t, "Store.Insert of an existing id", h.Store.Insert(ctx, dup, 0, ev(apikey.EventCreated, dup.ID)), apikey.ErrDuplicateID)
	over := record(testID("Over", 1), "o", "over", base)
	wantErr(t, "Store.Insert over the limit", h.Store.Insert(ctx, over, 1, ev(apikey.EventCreated, over.ID)), apikey.ErrTooManyKeys)
	_, _, err = m.Create(ctx, apikey.CreateParams{Name: "over", Owner: "o"})
	wantErr(t, "Manager.Create over the limit", err, apikey.ErrTooManyKeys)
	_, _, err = m.Roll(ctx, k.ID, apikey.RollOptions{})
	wantFrozen(t, "Manager.Roll of a revoked key", err)

	after := listEvents(t, h, apikey.EventQuery{})
	if len(after) != len(before) {
		for _, e := range after[:len(after)-len(before)] {
			t.Errorf("a refused or no-op mutation wrote the audit entry %+v", *e)
		}
	}
}

func testAuditAppendOnly(t *testing.T, h Harness) {
	needExec(t, h)
	ctx := apikey.WithActor(t.Context(), "admin")
	m := newManager(t, h, apikey.Config{Now: newClock().Now, UsageFlushInterval: -1})
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "logged"})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	before := listEvents(t, h, apikey.EventQuery{})
	if len(before) != 2 {
		t.Fatalf("%d audit entries, want 2", len(before))
	}
	for _, stmt := range []string{
		"UPDATE apikey_events SET actor = 'x'",
		fmt.Sprintf("UPDATE apikey_events SET changes = '{}' WHERE id = %d", before[0].ID),
		"DELETE FROM apikey_events",
		fmt.Sprintf("DELETE FROM apikey_events WHERE id = %d", before[1].ID),
	} {
		if err := h.Exec(ctx, stmt); err == nil {
			t.Errorf("Exec(%q) succeeded, want the database to refuse it: the audit log is append-only", stmt)
		}
	}
	after := listEvents(t, h, apikey.EventQuery{})
	if len(after) != len(before) {
		t.Fatalf("after refused statements: %d audit entries, want %d", len(after), len(before))
	}
	for i := range after {
		checkEvent(t, "entry after refused statements", after[i], before[i].Type, before[i].Actor, before[i].KeyID, before[i].Owner, before[i].At, before[i].Changes)
	}
}

func testListEvents(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1})
	alice, bob := apikey.WithActor(ctx, "alice"), apikey.WithActor(ctx, "bob")
	k1, _, err1 := m.Create(alice, apikey.CreateParams{Name: "one"})
	k2, _, err2 := m.Create(alice, apikey.CreateParams{Name: "two"})
	_, err3 := m.Update(alice, k1.ID, apikey.KeyUpdate{Name: ptr("one!")})
	k3, _, err4 := m.Create(bob, apikey.CreateParams{Name: "three"})
	_, err5 := m.Revoke(bob, k1.ID)
	_, err6 := m.Update(bob, k3.ID, apikey.KeyUpdate{Scopes: &[]string{"x"}})
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		t.Fatalf("setting up the log: %v", err)
	}
	all := listEvents(t, h, apikey.EventQuery{})
	if len(all) != 6 {
		t.Fatalf("ListEvents: %d entries, want 6", len(all))
	}
	// Entries by their order of writing, e[1] first.
	e := map[int]*apikey.Event{}
	for i, ev := range all {
		e[6-i] = ev
	}
	label := func(evs []*apikey.Event) string {
		var s []string
		for _, ev := range evs {
			s = append(s, fmt.Sprintf("%s/%s/%s", ev.Type, ev.Actor, ev.KeyID))
		}
		return "[" + strings.Join(s, " ") + "]"
	}
	pick := func(n ...int) []*apikey.Event {
		out := []*apikey.Event{}
		for _, i := range n {
			out = append(out, e[i])
		}
		return out
	}
	if got, want := label(all), label([]*apikey.Event{
		{Type: apikey.EventUpdated, Actor: "bob", KeyID: k3.ID}, {Type: apikey.EventRevoked, Actor: "bob", KeyID: k1.ID},
		{Type: apikey.EventCreated, Actor: "bob", KeyID: k3.ID}, {Type: apikey.EventUpdated, Actor: "alice", KeyID: k1.ID},
		{Type: apikey.EventCreated, Actor: "alice", KeyID: k2.ID}, {Type: apikey.EventCreated, Actor: "alice", KeyID: k1.ID},
	}); got != want {
		t.Fatalf("ListEvents = %s, want %s", got, want)
	}
	tests := []struct {
		name string
		q    apikey.EventQuery
		want []*apikey.Event
	}{
		{"key", apikey.EventQuery{KeyID: k1.ID}, pick(5, 3, 1)},
		{"actor", apikey.EventQuery{Actor: "alice"}, pick(3, 2, 1)},
		{"type", apikey.EventQuery{Type: apikey.EventCreated}, pick(4, 2, 1)},
		{"actor and type", apikey.EventQuery{Actor: "bob", Type: apikey.EventUpdated}, pick(6)},
		{"key and actor", apikey.EventQuery{KeyID: k1.ID, Actor: "bob"}, pick(5)},
		{"unknown key", apikey.EventQuery{KeyID: "NoSuchKey000"}, pick()},
		{"unknown actor", apikey.EventQuery{Actor: "carol"}, pick()},
		{"limit", apikey.EventQuery{Limit: 2}, pick(6, 5)},
		{"before", apikey.EventQuery{Before: e[5].ID}, pick(4, 3, 2, 1)},
		{"before and limit", apikey.EventQuery{Before: e[5].ID, Limit: 2}, pick(4, 3)},
		{"before with a filter", apikey.EventQuery{KeyID: k1.ID, Before: e[3].ID}, pick(1)},
		{"before the first", apikey.EventQuery{Before: e[1].ID}, pick()},
	}
	for _, tt := range tests {
		got := listEvents(t, h, tt.q)
		if label(got) != label(tt.want) || len(got) != len(tt.want) {
			t.Errorf("%s: ListEvents = %s, want %s", tt.name, label(got), label(tt.want))
			continue
		}
		for i := range got {
			if got[i].ID != tt.want[i].ID {
				t.Errorf("%s: entry %d has id %d, want %d", tt.name, i, got[i].ID, tt.want[i].ID)
			}
		}
	}

	// The Manager pages with opaque cursors.
	var ids []int64
	f := apikey.EventFilter{Limit: 4}
	var sizes []int
	for {
		page, err := m.Events(ctx, f)
		if err != nil {
			t.Fatalf("Manager.Events: %v", err)
		}
		sizes = append(sizes, len(page.Events))
		for _, ev := range page.Events {
			ids = append(ids, ev.ID)
		}
		if page.NextCursor == "" || len(sizes) > 6 {
			break
		}
		f.Cursor = page.NextCursor
	}
	var want []int64
	for _, ev := range all {
		want = append(want, ev.ID)
	}
	if !slices.Equal(ids, want) || !slices.Equal(sizes, []int{4, 2}) {
		t.Errorf("Manager.Events pages of 4: ids %v in pages %v, want %v in [4 2]", ids, sizes, want)
	}
}

// testAuditFailureRollsBack checks that a mutation whose audit entry cannot
// be written (an entry without a type, which the Store contract refuses)
// changes nothing, and that the refusal is reported as bad input
// (apikey.ErrInvalidInput), not as an outage.
func testAuditFailureRollsBack(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.Store
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
		"SetHash": func() error { return s.SetHash(ctx, k.ID, "", "sha256$11", bad()) },
	} {
		err := call()
		if err == nil {
			t.Errorf("%s with an audit entry the schema refuses succeeded", name)
		} else if errors.Is(err, apikey.ErrNotFound) || errors.Is(err, apikey.ErrFrozen) || errors.Is(err, apikey.ErrRevoked) || errors.Is(err, apikey.ErrDuplicateID) ||
			!errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("%s with an audit entry the schema refuses: err = %v, want a refusal matching %v", name, err, apikey.ErrInvalidInput)
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

package apikeytest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestLeakStore runs the conformance suite of apikey.LeakStore: the store
// rules of RecordLeak and ListLeaks, and Manager.ReportLeak and
// Manager.Leaks on top of them. newHarness is called as by TestStore; its
// Store must be an apikey.LeakStore.
func TestLeakStore(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness, apikey.LeakStore)
	}{
		{"RoundTrip", testLeakRoundTrip},
		{"Repeated", testLeakRepeated},
		{"ListLeaks", testListLeaks},
		{"RefusedEventRollsBack", testLeakRefusedEvent},
		{"ReportRevokes", testReportRevokes},
		{"ReportNotifies", testReportNotifies},
		{"ReportFalsePositives", testReportFalsePositives},
		{"ReportRevokedKey", testReportRevokedKey},
		{"ReportRepeated", testReportRepeated},
		{"ReportConcurrent", testReportConcurrent},
		{"LeaksPaging", testLeaksPaging},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			ls, ok := h.Store.(apikey.LeakStore)
			if !ok {
				t.Fatalf("the store %T is not an apikey.LeakStore", h.Store)
			}
			tc.run(t, h, ls)
		})
	}
}

func listLeaks(t *testing.T, ls apikey.LeakStore, q apikey.LeakQuery) []*apikey.Leak {
	t.Helper()
	if q.Limit == 0 {
		q.Limit = 1000
	}
	leaks, err := ls.ListLeaks(t.Context(), q)
	if err != nil {
		t.Fatalf("ListLeaks(%+v): %v", q, err)
	}
	return leaks
}

// checkLeak compares a stored leak with want, the ID included when want
// has one.
func checkLeak(t *testing.T, label string, got, want *apikey.Leak) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: no leak", label)
		return
	}
	if want.ID != 0 && got.ID != want.ID {
		t.Errorf("%s: ID = %d, want %d", label, got.ID, want.ID)
	}
	if got.KeyID != want.KeyID || got.Owner != want.Owner || got.URL != want.URL || got.Source != want.Source || got.Action != want.Action {
		t.Errorf("%s: (KeyID, Owner, URL, Source, Action) = (%q, %q, %q, %q, %q), want (%q, %q, %q, %q, %q)", label,
			got.KeyID, got.Owner, got.URL, got.Source, got.Action, want.KeyID, want.Owner, want.URL, want.Source, want.Action)
	}
	checkTime(t, label+": ReportedAt", &got.ReportedAt, &want.ReportedAt)
}

func leakEvent(keyID, url string) *apikey.Event {
	return &apikey.Event{Type: apikey.EventLeaked, At: us(base), Actor: "github", KeyID: keyID, URL: url, Reason: "revoke"}
}

func testLeakRoundTrip(t *testing.T, h Harness, ls apikey.LeakStore) {
	ctx := t.Context()
	// The key need not exist: a leak outlives a deleted key, like its audit
	// history.
	id := testID("leak", 1)
	url := "https://github.com/octocat/Hello-World/blob/12345600b9cbe38a219f39a9941c9319b600c002/" + strings.Repeat("é/", 300) + "x.txt"
	l := &apikey.Leak{KeyID: id, Owner: "acme ☃", URL: url, Source: "content", ReportedAt: base.In(farEast), Action: apikey.LeakRevoke}
	ev := leakEvent(id, url)
	if err := ls.RecordLeak(ctx, l, ev); err != nil {
		t.Fatalf("RecordLeak: %v", err)
	}
	if l.ID <= 0 || ev.ID <= 0 {
		t.Errorf("after RecordLeak: leak ID %d, event ID %d, want both > 0", l.ID, ev.ID)
	}
	if ev.Owner != "acme ☃" {
		t.Errorf("event Owner = %q, want the leak's owner", ev.Owner)
	}
	want := &apikey.Leak{ID: l.ID, KeyID: id, Owner: "acme ☃", URL: url, Source: "content", ReportedAt: us(base), Action: apikey.LeakRevoke}
	got := listLeaks(t, ls, apikey.LeakQuery{})
	if len(got) != 1 {
		t.Fatalf("ListLeaks: %d leaks, want 1", len(got))
	}
	checkLeak(t, "stored leak", got[0], want)

	evs := listEvents(t, h, apikey.EventQuery{KeyID: id})
	if len(evs) != 1 {
		t.Fatalf("audit log: %d entries, want 1", len(evs))
	}
	checkEvent(t, "key.leaked entry", evs[0], apikey.EventLeaked, "github", id, "acme ☃", us(base), nil)
	if evs[0].ID != ev.ID || evs[0].URL != url {
		t.Errorf("key.leaked entry: ID %d, URL %q; want ID %d and the leak's URL", evs[0].ID, evs[0].URL, ev.ID)
	}
	if evs[0].Reason != "" {
		t.Errorf("key.leaked entry: Reason %q came back; stores do not keep it", evs[0].Reason)
	}
	if got := listEvents(t, h, apikey.EventQuery{Type: apikey.EventLeaked}); len(got) != 1 {
		t.Errorf("ListEvents(Type: key.leaked): %d entries, want 1", len(got))
	}

	// Without an event, nothing reaches the audit log; empty URL and source
	// are kept as such.
	l2 := &apikey.Leak{KeyID: id, ReportedAt: base.Add(time.Second), Action: apikey.LeakNotify}
	if err := ls.RecordLeak(ctx, l2, nil); err != nil {
		t.Fatalf("RecordLeak without an event: %v", err)
	}
	if l2.ID <= l.ID {
		t.Errorf("second leak ID %d, want above %d", l2.ID, l.ID)
	}
	if got := listEvents(t, h, apikey.EventQuery{KeyID: id}); len(got) != 1 {
		t.Errorf("audit log after RecordLeak(nil event): %d entries, want 1", len(got))
	}
	got = listLeaks(t, ls, apikey.LeakQuery{})
	if len(got) != 2 {
		t.Fatalf("ListLeaks: %d leaks, want 2", len(got))
	}
	checkLeak(t, "newest leak", got[0], &apikey.Leak{ID: l2.ID, KeyID: id, ReportedAt: us(base.Add(time.Second)), Action: apikey.LeakNotify})
}

func testLeakRepeated(t *testing.T, h Harness, ls apikey.LeakStore) {
	ctx := t.Context()
	id := testID("leak", 2)
	first := &apikey.Leak{KeyID: id, URL: "https://example.com/a", Source: "commit", ReportedAt: base, Action: apikey.LeakRevoke}
	if err := ls.RecordLeak(ctx, first, leakEvent(id, first.URL)); err != nil {
		t.Fatal(err)
	}
	// The same key, URL and source: refused, nothing written.
	again := *first
	again.ID, again.ReportedAt, again.Action = 0, base.Add(time.Minute), apikey.LeakNotify
	ev := leakEvent(id, first.URL)
	wantErr(t, "RecordLeak repeated", ls.RecordLeak(ctx, &again, ev), apikey.ErrDuplicateID)
	if ev.ID != 0 {
		t.Errorf("a repeated leak wrote audit entry %d", ev.ID)
	}
	// Another URL, another source, another key: three more leaks.
	for i, l := range []apikey.Leak{
		{KeyID: id, URL: "https://example.com/b", Source: "commit"},
		{KeyID: id, URL: "https://example.com/a", Source: "content"},
		{KeyID: testID("leak", 3), URL: "https://example.com/a", Source: "commit"},
	} {
		l.ReportedAt, l.Action = base, apikey.LeakRevoke
		if err := ls.RecordLeak(ctx, &l, leakEvent(l.KeyID, l.URL)); err != nil {
			t.Errorf("leak %d: %v", i, err)
		}
	}
	// Empty URL and source count as values: a second empty report repeats.
	empty := apikey.Leak{KeyID: id, ReportedAt: base, Action: apikey.LeakRevoke}
	if err := ls.RecordLeak(ctx, &empty, nil); err != nil {
		t.Fatal(err)
	}
	empty2 := apikey.Leak{KeyID: id, ReportedAt: base, Action: apikey.LeakRevoke}
	wantErr(t, "RecordLeak repeated, empty URL", ls.RecordLeak(ctx, &empty2, nil), apikey.ErrDuplicateID)
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 5 {
		t.Errorf("ListLeaks: %d leaks, want 5", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{Type: apikey.EventLeaked}); len(got) != 4 {
		t.Errorf("key.leaked entries: %d, want 4", len(got))
	}
}

func testListLeaks(t *testing.T, h Harness, ls apikey.LeakStore) {
	ctx := t.Context()
	a, b := testID("leaka", 1), testID("leakb", 1)
	var ids []int64
	for i := range 7 {
		id := a
		if i%3 == 2 {
			id = b
		}
		l := &apikey.Leak{KeyID: id, URL: "https://example.com/" + string(rune('a'+i)), ReportedAt: base.Add(time.Duration(i) * time.Second), Action: apikey.LeakNotify}
		if err := ls.RecordLeak(ctx, l, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, l.ID)
	}
	idsOf := func(leaks []*apikey.Leak) []int64 {
		out := []int64{}
		for _, l := range leaks {
			out = append(out, l.ID)
		}
		return out
	}
	check := func(label string, q apikey.LeakQuery, want ...int64) {
		t.Helper()
		got := idsOf(listLeaks(t, ls, q))
		if want == nil {
			want = []int64{}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ListLeaks(%+v) = %v, want %v", label, q, got, want)
		}
	}
	check("all, newest first", apikey.LeakQuery{}, ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0])
	check("limit", apikey.LeakQuery{Limit: 2}, ids[6], ids[5])
	check("before", apikey.LeakQuery{Before: ids[5], Limit: 2}, ids[4], ids[3])
	check("key b", apikey.LeakQuery{KeyID: b}, ids[5], ids[2])
	check("key a before", apikey.LeakQuery{KeyID: a, Before: ids[3]}, ids[1], ids[0])
	check("unknown key", apikey.LeakQuery{KeyID: testID("nope", 1)})
	check("before the first", apikey.LeakQuery{Before: ids[0]})
}

// testLeakRefusedEvent checks that a leak whose audit entry is refused
// (no type) is not stored either.
func testLeakRefusedEvent(t *testing.T, h Harness, ls apikey.LeakStore) {
	id := testID("leak", 4)
	l := &apikey.Leak{KeyID: id, URL: "https://example.com/x", ReportedAt: base, Action: apikey.LeakRevoke}
	err := ls.RecordLeak(t.Context(), l, &apikey.Event{At: base, KeyID: id})
	if err == nil {
		t.Fatal("RecordLeak with an event without a type succeeded")
	}
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 0 {
		t.Errorf("the leak was stored although its audit entry was refused: %+v", got[0])
	}
	// The refused report is not a repeat of anything: it can be recorded.
	if err := ls.RecordLeak(t.Context(), l, leakEvent(id, l.URL)); err != nil {
		t.Errorf("RecordLeak after a refused one: %v", err)
	}
}

// leakManager returns a Manager over h with the suite's clock and an
// OnEvent subscriber, whose events come from the returned function once
// the Manager is closed.
func leakManager(t *testing.T, h Harness) (*apikey.Manager, func() []apikey.Event) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []apikey.Event
	)
	m := newManager(t, h, apikey.Config{Now: newClock().Now, UsageFlushInterval: -1, OnEvent: func(e apikey.Event) {
		mu.Lock()
		got = append(got, e)
		mu.Unlock()
	}})
	closed := false
	t.Cleanup(func() {
		if !closed {
			m.Close(t.Context())
		}
	})
	return m, func() []apikey.Event {
		if !closed {
			closed = true
			if err := m.Close(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return got
	}
}

// eventsOfType returns the events of type typ among evs.
func eventsOfType(evs []apikey.Event, typ apikey.EventType) []apikey.Event {
	var out []apikey.Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func report(token, url string) apikey.LeakReport {
	return apikey.LeakReport{Token: token, URL: url, Source: "content"}
}

func testReportRevokes(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, emitted := leakManager(t, h)
	ctx := apikey.WithActor(t.Context(), "github")
	k, token := create(t, m, apikey.CreateParams{Name: "leaky", Owner: "acme"})
	url := "https://github.com/acme/app/blob/main/.env"
	l, err := m.ReportLeak(ctx, report(token, url), apikey.LeakPolicy{})
	if err != nil {
		t.Fatalf("ReportLeak: %v", err)
	}
	checkLeak(t, "returned leak", l, &apikey.Leak{KeyID: k.ID, Owner: "acme", URL: url, Source: "content", ReportedAt: us(base), Action: apikey.LeakRevoke})
	if l.ID <= 0 {
		t.Errorf("returned leak ID %d, want > 0", l.ID)
	}
	if _, err := m.Verify(t.Context(), token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify after a leak with the revoke policy: %v, want ErrRevoked", err)
	}
	// A report whose text holds the token with more around it (a pattern
	// that took the word before the prefix along) is the same leak.
	k2, token2 := create(t, m, apikey.CreateParams{Name: "glued", Owner: "acme"})
	if l, err := m.ReportLeak(ctx, report("API_KEY_"+token2, url), apikey.LeakPolicy{}); err != nil || l.KeyID != k2.ID {
		t.Errorf("ReportLeak(API_KEY_<token>): %+v, %v; want the leak of %s", l, err, k2.ID)
	}
	if rec := lookup(t, h, k.ID); rec.RevokedAt == nil {
		t.Errorf("the stored key is not revoked")
	}
	evs := listEvents(t, h, apikey.EventQuery{KeyID: k.ID})
	if len(evs) != 3 {
		t.Fatalf("audit log: %d entries, want key.leaked, key.revoked, key.created", len(evs))
	}
	checkEvent(t, "key.leaked", evs[0], apikey.EventLeaked, "github", k.ID, "acme", us(base), nil)
	if evs[0].URL != url {
		t.Errorf("key.leaked URL = %q, want %q", evs[0].URL, url)
	}
	checkEvent(t, "key.revoked", evs[1], apikey.EventRevoked, "github", k.ID, "acme", us(base),
		map[string]apikey.Change{"revoked_at": {Before: nil, After: rfc(us(base))}})
	stored := listLeaks(t, ls, apikey.LeakQuery{KeyID: k.ID})
	if len(stored) != 1 {
		t.Fatalf("ListLeaks: %d, want 1", len(stored))
	}
	checkLeak(t, "stored leak", stored[0], l)

	leaked := eventsOfType(emitted(), apikey.EventLeaked)
	if len(leaked) != 2 || leaked[0].KeyID != k.ID || leaked[0].URL != url || leaked[0].Reason != "revoke" ||
		leaked[0].Owner != "acme" || leaked[0].Actor != "github" || leaked[0].ID != evs[0].ID {
		t.Errorf("OnEvent got key.leaked events %+v, want one for %s with the URL, owner, actor and Reason \"revoke\"", leaked, k.ID)
	}
}

func testReportNotifies(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, emitted := leakManager(t, h)
	ctx := t.Context()
	quiet, quietToken := create(t, m, apikey.CreateParams{Name: "quiet", Owner: "calm-corp"})
	loud, loudToken := create(t, m, apikey.CreateParams{Name: "loud", Owner: "acme"})
	// Notify by default, revoke for acme.
	policy := apikey.LeakPolicy{Default: apikey.LeakNotify, Owners: map[string]apikey.LeakAction{"acme": apikey.LeakRevoke}}
	l, err := m.ReportLeak(ctx, report(quietToken, ""), policy)
	if err != nil || l.Action != apikey.LeakNotify {
		t.Fatalf("ReportLeak(quiet): %+v, %v; want action notify", l, err)
	}
	if _, err := m.Verify(ctx, quietToken); err != nil {
		t.Errorf("Verify after a leak with the notify policy: %v, want the key still valid", err)
	}
	if l, err := m.ReportLeak(ctx, report(loudToken, ""), policy); err != nil || l.Action != apikey.LeakRevoke {
		t.Fatalf("ReportLeak(loud): %+v, %v; want action revoke (the owner's override)", l, err)
	}
	if _, err := m.Verify(ctx, loudToken); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify of acme's leaked key: %v, want ErrRevoked", err)
	}
	if got := listEvents(t, h, apikey.EventQuery{KeyID: quiet.ID, Type: apikey.EventRevoked}); len(got) != 0 {
		t.Errorf("a notify-only leak wrote %d key.revoked entries", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{KeyID: quiet.ID, Type: apikey.EventLeaked}); len(got) != 1 {
		t.Errorf("a notify-only leak wrote %d key.leaked entries, want 1", len(got))
	}
	leaked := eventsOfType(emitted(), apikey.EventLeaked)
	if len(leaked) != 2 || leaked[0].KeyID != quiet.ID || leaked[0].Reason != "notify" || leaked[1].KeyID != loud.ID || leaked[1].Reason != "revoke" {
		t.Errorf("OnEvent got key.leaked %+v, want quiet (notify) then loud (revoke)", leaked)
	}
	// A policy naming an unknown action is refused before anything
	// happens.
	var ve *apikey.ValidationError
	for _, p := range []apikey.LeakPolicy{{Default: "disable"}, {Owners: map[string]apikey.LeakAction{"x": "ignore"}}} {
		if _, err := m.ReportLeak(ctx, report(quietToken, "https://example.com/other"), p); !errors.As(err, &ve) || ve.Field != "leak_policy" {
			t.Errorf("ReportLeak with policy %+v: %v, want a ValidationError for leak_policy", p, err)
		}
	}
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 2 {
		t.Errorf("ListLeaks: %d, want 2", len(got))
	}
}

func testReportFalsePositives(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, emitted := leakManager(t, h)
	ctx := t.Context()
	k, token := create(t, m, apikey.CreateParams{Name: "victim", Owner: "acme"})
	parsed, _ := apikey.ParseToken(token)
	for name, tok := range map[string]string{
		// Key ids are public: a made-up secret under a real id must not get
		// the key revoked.
		"wrong secret":        WrongSecret(token),
		"bad checksum":        BadChecksum(token),
		"unknown id":          ForgeToken(parsed.Prefix, testID("nope", 7), SecretOf(token)),
		"other prefix":        ForgeToken("zz", parsed.ID, SecretOf(token)),
		"not a token":         "NMIfyYncKcRALEXAMPLE",
		"empty":               "",
		"too long":            token + strings.Repeat("a", 300),
		"control bytes":       "ak_\x00\x01",
		"glued, wrong secret": "API_KEY_" + WrongSecret(token),
	} {
		if l, err := m.ReportLeak(ctx, report(tok, "https://example.com/"+name), apikey.LeakPolicy{}); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("%s: ReportLeak = %+v, %v; want ErrInvalidKey", name, l, err)
		}
	}
	var ve *apikey.ValidationError
	for name, r := range map[string]apikey.LeakReport{
		"url too long":       {Token: token, URL: "https://example.com/" + strings.Repeat("a", apikey.MaxLeakURLLength)},
		"url with a newline": {Token: token, URL: "https://example.com/\n"},
		"url not UTF-8":      {Token: token, URL: "https://example.com/\xff"},
		"source too long":    {Token: token, Source: strings.Repeat("s", apikey.MaxLeakSourceLength+1)},
	} {
		if _, err := m.ReportLeak(ctx, r, apikey.LeakPolicy{}); !errors.As(err, &ve) {
			t.Errorf("%s: ReportLeak: %v, want a ValidationError", name, err)
		}
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("the key no longer verifies after false reports: %v", err)
	}
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 0 {
		t.Errorf("false reports stored %d leaks", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{KeyID: k.ID}); len(got) != 1 {
		t.Errorf("false reports wrote audit entries: %d, want only key.created", len(got))
	}
	if got := eventsOfType(emitted(), apikey.EventLeaked); len(got) != 0 {
		t.Errorf("false reports sent %d key.leaked events", len(got))
	}
}

func testReportRevokedKey(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, _ := leakManager(t, h)
	ctx := t.Context()
	k, token := create(t, m, apikey.CreateParams{Name: "gone", Owner: "acme"})
	exp, expToken := create(t, m, apikey.CreateParams{Name: "soon", ExpiresAt: ptr(base.Add(time.Hour))})
	revoked, err := m.Revoke(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	// A revoked key that leaks is still ours: recorded, and not revoked
	// again (its first revocation stands, no second entry).
	l, err := m.ReportLeak(ctx, report(token, "https://example.com/r"), apikey.LeakPolicy{})
	if err != nil || l.ID == 0 || l.Action != apikey.LeakRevoke {
		t.Fatalf("ReportLeak(revoked key): %+v, %v", l, err)
	}
	if got := listEvents(t, h, apikey.EventQuery{KeyID: k.ID, Type: apikey.EventRevoked}); len(got) != 1 {
		t.Errorf("key.revoked entries: %d, want 1", len(got))
	}
	if rec := lookup(t, h, k.ID); !rec.RevokedAt.Equal(*revoked.RevokedAt) {
		t.Errorf("RevokedAt moved from %v to %v", revoked.RevokedAt, rec.RevokedAt)
	}
	// So is an expired one.
	if _, err := m.Identify(ctx, expToken); err != nil {
		t.Fatal(err)
	}
	m2 := newManager(t, h, apikey.Config{Now: func() time.Time { return base.Add(2 * time.Hour) }, UsageFlushInterval: -1})
	defer m2.Close(t.Context())
	got, err := m2.Identify(ctx, expToken)
	if err != nil || got.ID != exp.ID || got.State != apikey.StateExpired {
		t.Errorf("Identify(expired key) = %+v, %v; want the key, expired", got, err)
	}
	if l, err := m2.ReportLeak(ctx, report(expToken, ""), apikey.LeakPolicy{}); err != nil || l.ID == 0 {
		t.Errorf("ReportLeak(expired key): %+v, %v", l, err)
	}
	if rec := lookup(t, h, exp.ID); rec.RevokedAt == nil {
		t.Errorf("the expired leaked key was not revoked (an expiry can be lifted; a revocation cannot)")
	}
}

func testReportRepeated(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, emitted := leakManager(t, h)
	ctx := t.Context()
	k, token := create(t, m, apikey.CreateParams{Name: "leaky"})
	r := report(token, "https://example.com/retried")
	first, err := m.ReportLeak(ctx, r, apikey.LeakPolicy{Default: apikey.LeakNotify})
	if err != nil || first.ID == 0 {
		t.Fatalf("first report: %+v, %v", first, err)
	}
	again, err := m.ReportLeak(ctx, r, apikey.LeakPolicy{Default: apikey.LeakNotify})
	if err != nil || again.ID != 0 || again.KeyID != k.ID {
		t.Errorf("repeated report: %+v, %v; want the leak with ID 0 (nothing recorded)", again, err)
	}
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 1 {
		t.Errorf("ListLeaks: %d, want 1", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{Type: apikey.EventLeaked}); len(got) != 1 {
		t.Errorf("key.leaked entries: %d, want 1", len(got))
	}
	if got := eventsOfType(emitted(), apikey.EventLeaked); len(got) != 1 {
		t.Errorf("key.leaked events sent: %d, want 1", len(got))
	}
}

// testReportConcurrent checks that one report delivered several times at
// once records one leak.
func testReportConcurrent(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, _ := leakManager(t, h)
	_, token := create(t, m, apikey.CreateParams{Name: "raced"})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			_, err := m.ReportLeak(t.Context(), report(token, "https://example.com/race"), apikey.LeakPolicy{})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent report: %v", err)
		}
	}
	if got := listLeaks(t, ls, apikey.LeakQuery{}); len(got) != 1 {
		t.Errorf("ListLeaks: %d, want 1", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{Type: apikey.EventLeaked}); len(got) != 1 {
		t.Errorf("key.leaked entries: %d, want 1", len(got))
	}
	if got := listEvents(t, h, apikey.EventQuery{Type: apikey.EventRevoked}); len(got) != 1 {
		t.Errorf("key.revoked entries: %d, want 1", len(got))
	}
}

func testLeaksPaging(t *testing.T, h Harness, ls apikey.LeakStore) {
	m, _ := leakManager(t, h)
	ctx := t.Context()
	k, token := create(t, m, apikey.CreateParams{Name: "many"})
	_, other := create(t, m, apikey.CreateParams{Name: "other"})
	for i := range 5 {
		if _, err := m.ReportLeak(ctx, report(token, "https://example.com/"+string(rune('a'+i))), apikey.LeakPolicy{Default: apikey.LeakNotify}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.ReportLeak(ctx, report(other, ""), apikey.LeakPolicy{Default: apikey.LeakNotify}); err != nil {
		t.Fatal(err)
	}
	var urls []string
	cursor := ""
	for pages := 0; ; pages++ {
		p, err := m.Leaks(ctx, apikey.LeakFilter{KeyID: k.ID, Cursor: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Leaks {
			urls = append(urls, l.URL)
		}
		if p.NextCursor == "" {
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		cursor = p.NextCursor
	}
	if got, want := strings.Join(urls, " "), "https://example.com/e https://example.com/d https://example.com/c https://example.com/b https://example.com/a"; got != want {
		t.Errorf("paged URLs %q, want %q", got, want)
	}
	p, err := m.Leaks(ctx, apikey.LeakFilter{})
	if err != nil || len(p.Leaks) != 6 || p.NextCursor != "" {
		t.Errorf("Leaks(): %d leaks, cursor %q, %v; want 6 and no cursor", len(p.Leaks), p.NextCursor, err)
	}
	var ve *apikey.ValidationError
	for _, f := range []apikey.LeakFilter{{Limit: -1}, {Limit: apikey.MaxPageSize + 1}, {Cursor: "x"}, {Cursor: "-3"}, {KeyID: "not an id"}} {
		if _, err := m.Leaks(ctx, f); !errors.As(err, &ve) {
			t.Errorf("Leaks(%+v): %v, want a ValidationError", f, err)
		}
	}
}

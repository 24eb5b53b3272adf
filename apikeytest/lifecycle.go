package apikeytest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// The subtests of key lifecycle: rolls with a grace window
// (apikey.RollOptions) and disabling (Manager.Disable, Manager.Enable).

// graceManager returns a Manager without cache nor background usage
// flushes, on clk.
func graceManager(t *testing.T, h Harness, clk *clock) *apikey.Manager {
	t.Helper()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: time.Hour})
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func roll(t *testing.T, m *apikey.Manager, id string, o apikey.RollOptions) (*apikey.Key, string) {
	t.Helper()
	k, tok, err := m.Roll(t.Context(), id, o)
	if err != nil {
		t.Fatalf("Roll(%s, %+v): %v", id, o, err)
	}
	return k, tok
}

func wantVerify(t *testing.T, m *apikey.Manager, label, token string, want error) {
	t.Helper()
	k, err := m.Verify(t.Context(), token)
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: Verify: %v, want the key", label, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: Verify: err = %v (key %v), want %v", label, err, k != nil, want)
	}
}

func testGraceAcceptsBoth(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "grace"})
	rolledAt := clk.Add(time.Minute)
	r, newTok := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	p := r.PreviousSecret
	if p == nil {
		t.Fatalf("Roll with a grace: PreviousSecret = nil")
	}
	if !p.RolledAt.Equal(rolledAt) || p.Grace != time.Hour || p.GraceStarts != apikey.GraceFirstUse ||
		p.GraceStartedAt != nil || !p.ExpiresAt.Equal(rolledAt.Add(apikey.DefaultGraceMax)) || !p.Active {
		t.Errorf("Roll: PreviousSecret = %+v, want rolled at %s, grace 1h from first use, not started, bound +7d, active", p, rolledAt)
	}
	// Before the new secret is used, the old one works as long as the
	// bound allows.
	clk.Add(48 * time.Hour)
	wantVerify(t, m, "old secret before the first use of the new", oldTok, nil)
	first := clk.Add(time.Minute)
	wantVerify(t, m, "new secret", newTok, nil)
	rec := lookup(t, h, k.ID)
	if rec.PreviousSecret == nil || rec.PreviousSecret.GraceStartedAt == nil || !rec.PreviousSecret.GraceStartedAt.Equal(first) {
		t.Fatalf("after the first use of the new secret: PreviousSecret = %+v, want started at %s", rec.PreviousSecret, first)
	}
	for i := range 4 {
		wantVerify(t, m, "old secret in the window", oldTok, nil)
		wantVerify(t, m, "new secret in the window", newTok, nil)
		clk.Add(time.Duration(i+1) * time.Minute)
	}
	clk.Set(first.Add(time.Hour - time.Microsecond))
	wantVerify(t, m, "old secret at the last instant of the window", oldTok, nil)
	clk.Set(first.Add(time.Hour))
	wantVerify(t, m, "old secret at the end of the window", oldTok, apikey.ErrInvalidKey)
	wantVerify(t, m, "new secret after the window", newTok, nil)
	got, err := m.Get(t.Context(), k.ID)
	if err != nil || got.PreviousSecret == nil || got.PreviousSecret.Active {
		t.Errorf("Get after the window: %+v, %v; want a previous secret, not active", got, err)
	}
}

func testGraceStartOnce(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := graceManager(t, h, clk)
	k, _ := create(t, m, apikey.CreateParams{Name: "once"})
	roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	hash := lookup(t, h, k.ID).Hash

	if ok, err := h.Store.StartGrace(ctx, k.ID, "sha256$0000", us(base)); ok || err != nil {
		t.Errorf("StartGrace with another digest = %v, %v; want false, nil", ok, err)
	}
	// Many at once: exactly one records its instant.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []time.Time
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := us(base.Add(time.Duration(i+1) * time.Second))
			ok, err := h.Store.StartGrace(ctx, k.ID, hash, at)
			if err != nil {
				t.Errorf("StartGrace: %v", err)
			}
			if ok {
				mu.Lock()
				wins = append(wins, at)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(wins) != 1 {
		t.Fatalf("8 concurrent StartGrace: %d recorded a start, want 1", len(wins))
	}
	rec := lookup(t, h, k.ID)
	if got := rec.PreviousSecret.GraceStartedAt; got == nil || !got.Equal(wins[0]) {
		t.Errorf("GraceStartedAt = %v, want the winner's %s", got, wins[0])
	}
	if ok, err := h.Store.StartGrace(ctx, k.ID, hash, us(base.Add(time.Hour))); ok || err != nil {
		t.Errorf("StartGrace once started = %v, %v; want false, nil", ok, err)
	}
	if ok, err := h.Store.StartGrace(ctx, testID("nokey", 1), hash, us(base)); ok || (err != nil && !errors.Is(err, apikey.ErrNotFound)) {
		t.Errorf("StartGrace of an unknown key = %v, %v; want false and nil or ErrNotFound", ok, err)
	}
	// A key rolled without a grace has nothing to start.
	k2, _ := create(t, m, apikey.CreateParams{Name: "no grace"})
	roll(t, m, k2.ID, apikey.RollOptions{})
	if ok, err := h.Store.StartGrace(ctx, k2.ID, lookup(t, h, k2.ID).Hash, us(base)); ok || err != nil {
		t.Errorf("StartGrace of a key without a previous secret = %v, %v; want false, nil", ok, err)
	}
}

func testGraceMax(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "bounded"})
	rolledAt := clk.Add(time.Second)
	r, newTok := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour, GraceMax: 2 * time.Hour})
	if !r.PreviousSecret.ExpiresAt.Equal(rolledAt.Add(2 * time.Hour)) {
		t.Errorf("PreviousSecret.ExpiresAt = %s, want %s", r.PreviousSecret.ExpiresAt, rolledAt.Add(2*time.Hour))
	}
	clk.Set(rolledAt.Add(2*time.Hour - time.Microsecond))
	wantVerify(t, m, "old secret just before the bound, new one never used", oldTok, nil)
	clk.Set(rolledAt.Add(2 * time.Hour))
	wantVerify(t, m, "old secret at the bound", oldTok, apikey.ErrInvalidKey)

	// A window that starts late is cut by the bound too.
	k2, old2 := create(t, m, apikey.CreateParams{Name: "late"})
	rolled2 := clk.Add(time.Second)
	_, new2 := roll(t, m, k2.ID, apikey.RollOptions{Grace: time.Hour, GraceMax: 90 * time.Minute})
	clk.Set(rolled2.Add(time.Hour))
	wantVerify(t, m, "new secret first used an hour after the roll", new2, nil)
	clk.Set(rolled2.Add(90*time.Minute - time.Microsecond))
	wantVerify(t, m, "old secret before the bound", old2, nil)
	clk.Set(rolled2.Add(90 * time.Minute))
	wantVerify(t, m, "old secret at the bound, 30 minutes into its window", old2, apikey.ErrInvalidKey)
	wantVerify(t, m, "new secret", newTok, nil)
}

func testGraceStartsNow(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "now"})
	rolledAt := clk.Add(time.Second)
	r, _ := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceNow})
	if p := r.PreviousSecret; p.GraceStartedAt == nil || !p.GraceStartedAt.Equal(rolledAt) {
		t.Errorf("GraceStarts now: GraceStartedAt = %v, want %s", p.GraceStartedAt, rolledAt)
	}
	clk.Set(rolledAt.Add(time.Hour - time.Microsecond))
	wantVerify(t, m, "old secret in the window", oldTok, nil)
	clk.Set(rolledAt.Add(time.Hour))
	wantVerify(t, m, "old secret after the window, new one never used", oldTok, apikey.ErrInvalidKey)
}

func testRerollDropsOlder(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, tok1 := create(t, m, apikey.CreateParams{Name: "twice"})
	clk.Add(time.Second)
	_, tok2 := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	clk.Add(time.Second)
	_, tok3 := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	wantVerify(t, m, "first secret after two rolls", tok1, apikey.ErrInvalidKey)
	wantVerify(t, m, "second secret (the previous one)", tok2, nil)
	wantVerify(t, m, "third secret", tok3, nil)
	clk.Add(time.Second)
	r, tok4 := roll(t, m, k.ID, apikey.RollOptions{})
	if r.PreviousSecret != nil || lookup(t, h, k.ID).PreviousHash != "" {
		t.Errorf("Roll without a grace kept a previous secret: %+v", r.PreviousSecret)
	}
	wantVerify(t, m, "third secret after a roll without grace", tok3, apikey.ErrInvalidKey)
	wantVerify(t, m, "fourth secret", tok4, nil)
}

func testRevokeEndsBoth(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "revoked in grace"})
	_, newTok := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceNow})
	wantVerify(t, m, "old secret", oldTok, nil)
	if _, err := m.Revoke(t.Context(), k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	wantVerify(t, m, "old secret after revocation", oldTok, apikey.ErrRevoked)
	wantVerify(t, m, "new secret after revocation", newTok, apikey.ErrRevoked)
	got, err := m.Get(t.Context(), k.ID)
	if err != nil || got.PreviousSecret == nil || got.PreviousSecret.Active {
		t.Errorf("Get of the revoked key: previous secret %+v, %v; want one, not active", got.PreviousSecret, err)
	}
	_, err = h.Store.Roll(t.Context(), k.ID, apikey.Rollover{Hash: "sha256$00"},
		&apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: k.ID})
	wantFrozen(t, "Store.Roll of a revoked key", err)
}

func testGraceLastUse(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "last use"})
	usedOld := clk.Add(time.Minute)
	wantVerify(t, m, "secret before the roll", oldTok, nil)
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute)
	r, newTok := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	if r.LastUsedAt != nil || r.PreviousSecret.LastUsedAt == nil || !r.PreviousSecret.LastUsedAt.Equal(usedOld) {
		t.Errorf("Roll: LastUsedAt = %v, previous LastUsedAt = %v; want nil and %s (the old secret's)",
			r.LastUsedAt, r.PreviousSecret.LastUsedAt, usedOld)
	}
	usedOld2 := clk.Add(time.Minute)
	wantVerify(t, m, "old secret", oldTok, nil)
	usedNew := clk.Add(time.Minute)
	wantVerify(t, m, "new secret", newTok, nil)
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	rec := lookup(t, h, k.ID)
	checkTime(t, "LastUsedAt", rec.LastUsedAt, &usedNew)
	checkTime(t, "PreviousSecret.LastUsedAt", rec.PreviousSecret.LastUsedAt, &usedOld2)
	counts, err := m.Usage(ctx, k.ID, base, base.Add(24*time.Hour), apikey.ByDay)
	if err != nil {
		t.Fatal(err)
	}
	byOutcome := map[string]int64{}
	for _, c := range counts {
		byOutcome[c.Outcome] += c.Count
	}
	if byOutcome[string(apikey.CodeValidPrevious)] != 1 || byOutcome[string(apikey.CodeValid)] != 2 {
		t.Errorf("usage = %v, want 1 %s and 2 %s", byOutcome, apikey.CodeValidPrevious, apikey.CodeValid)
	}
}

// testGraceCacheInvalidated checks that a Manager with a cache, sharing the
// store with another, learns of a start of the window recorded by the
// other through the store's change feed.
func testGraceCacheInvalidated(t *testing.T, h Harness) {
	if _, ok := h.Store.(apikey.ChangeFeed); !ok {
		t.Skip("the store has no change feed")
	}
	ctx := t.Context()
	a := newManager(t, h, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, UsageFlushInterval: -1, ChangePollInterval: 10 * time.Millisecond})
	b := newManager(t, h, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, UsageFlushInterval: -1, ChangePollInterval: 10 * time.Millisecond})
	t.Cleanup(func() { a.Close(context.Background()); b.Close(context.Background()) })
	k, oldTok := create(t, a, apikey.CreateParams{Name: "two instances"})
	_, newTok := roll(t, a, k.ID, apikey.RollOptions{Grace: 300 * time.Millisecond})
	wantVerify(t, b, "old secret on b", oldTok, nil) // b caches the entry: window not started
	wantVerify(t, a, "new secret on a", newTok, nil) // starts the window
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := b.Verify(ctx, oldTok); errors.Is(err, apikey.ErrInvalidKey) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("b still accepts the old secret 5s after a started a 300ms window")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testDisableEnable(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := graceManager(t, h, clk)
	k, tok := create(t, m, apikey.CreateParams{Name: "pausable", Owner: "o"})
	other, _ := create(t, m, apikey.CreateParams{Name: "other", Owner: "o"})
	at := clk.Add(time.Minute)
	d, err := m.Disable(ctx, k.ID)
	if err != nil {
		t.Fatalf("Disable: %v", err)
	}
	want := k.Clone()
	want.DisabledAt = &at
	checkKey(t, "Disable", d, want)
	if d.State != apikey.StateDisabled {
		t.Errorf("Disable: State = %q, want %q", d.State, apikey.StateDisabled)
	}
	checkKey(t, "Lookup after Disable", &lookup(t, h, k.ID).Key, want)
	wantVerify(t, m, "disabled key", tok, apikey.ErrDisabled)
	if _, err := m.Verify(ctx, tok); apikey.CodeOf(err) != apikey.CodeKeyDisabled {
		t.Errorf("CodeOf(Verify of a disabled key) = %q, want %q", apikey.CodeOf(err), apikey.CodeKeyDisabled)
	}
	clk.Add(time.Minute)
	again, err := m.Disable(ctx, k.ID)
	if err != nil || again.DisabledAt == nil || !again.DisabledAt.Equal(at) {
		t.Errorf("Disable twice: %v, %v; want the first instant %s kept", again.DisabledAt, err, at)
	}
	for _, tc := range []struct {
		state apikey.State
		want  []string
	}{
		{apikey.StateDisabled, []string{k.ID}},
		{apikey.StateActive, []string{other.ID}},
	} {
		got, err := h.Store.List(ctx, apikey.Query{State: tc.state, Now: clk.Now(), Limit: 10})
		if err != nil {
			t.Fatalf("List(%s): %v", tc.state, err)
		}
		var ids []string
		for _, k := range got {
			ids = append(ids, k.ID)
		}
		if len(ids) != len(tc.want) || ids[0] != tc.want[0] {
			t.Errorf("List(state %s) = %v, want %v", tc.state, ids, tc.want)
		}
	}
	e, err := m.Enable(ctx, k.ID)
	if err != nil {
		t.Fatalf("Enable: %v", err)
	}
	checkKey(t, "Enable", e, k)
	if e.State != apikey.StateActive {
		t.Errorf("Enable: State = %q, want active", e.State)
	}
	wantVerify(t, m, "enabled key", tok, nil)
	if _, err := m.Enable(ctx, k.ID); err != nil {
		t.Errorf("Enable twice: %v", err)
	}
	if _, err := m.Disable(ctx, testID("nokey", 2)); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Disable of an unknown key: %v, want ErrNotFound", err)
	}
	// A disabled key may still be rolled: the new secret is refused too.
	if _, err := m.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, rolled := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	wantVerify(t, m, "new secret of a disabled key", rolled, apikey.ErrDisabled)
	wantVerify(t, m, "old secret of a disabled key", tok, apikey.ErrDisabled)
}

func testDisableFrozen(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := graceManager(t, h, clk)
	k, tok := create(t, m, apikey.CreateParams{Name: "revoked"})
	if _, err := m.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	_, err := m.Enable(ctx, k.ID)
	wantFrozen(t, "Enable of a revoked key", err)
	_, err = m.Disable(ctx, k.ID)
	wantFrozen(t, "Disable of a revoked key", err)
	_, err = h.Store.SetDisabled(ctx, k.ID, false, us(base), &apikey.Event{Type: apikey.EventEnabled, At: us(base), KeyID: k.ID})
	wantFrozen(t, "Store.SetDisabled of a revoked key", err)
	wantVerify(t, m, "revoked and disabled key", tok, apikey.ErrRevoked)
	if rec := lookup(t, h, k.ID); rec.DisabledAt == nil {
		t.Errorf("the revoked key lost its DisabledAt")
	}
	if h.Exec != nil {
		if err := h.Exec(ctx, "UPDATE apikey_keys SET disabled_at = NULL WHERE id = '"+k.ID+"'"); err == nil {
			t.Errorf("raw UPDATE of disabled_at of a revoked key succeeded, want a refusal")
		}
	}
}

func testLifecycleAudit(t *testing.T, h Harness) {
	ctx := apikey.WithActor(t.Context(), "cli")
	clk := newClock()
	m := graceManager(t, h, clk)
	k, _ := create(t, m, apikey.CreateParams{Name: "audited"})
	if _, _, err := m.Roll(ctx, k.ID, apikey.RollOptions{Grace: 90 * time.Minute, GraceMax: 48 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Disable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Disable(ctx, k.ID); err != nil { // no change: no entry
		t.Fatal(err)
	}
	if _, err := m.Enable(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	evs, err := m.Events(ctx, apikey.EventFilter{KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	var types []apikey.EventType
	for _, e := range evs.Events {
		types = append(types, e.Type)
	}
	want := []apikey.EventType{apikey.EventEnabled, apikey.EventDisabled, apikey.EventRolled, apikey.EventCreated}
	if len(types) != len(want) {
		t.Fatalf("events = %v, want %v", types, want)
	}
	for i := range want {
		if types[i] != want[i] {
			t.Fatalf("events = %v, want %v", types, want)
		}
	}
	rolled := evs.Events[2]
	ps, ok := rolled.Changes["previous_secret"].After.(map[string]any)
	if rolled.Actor != "cli" || !ok || ps["grace"] != "1h30m0s" || ps["grace_starts"] != "first_use" {
		t.Errorf("key.rolled: actor %q, changes %v; want previous_secret with grace 1h30m0s from first_use", rolled.Actor, rolled.Changes)
	}
	if c, ok := evs.Events[1].Changes["disabled_at"]; !ok || c.Before != nil || c.After == nil {
		t.Errorf("key.disabled: changes %v, want disabled_at from null to a time", evs.Events[1].Changes)
	}
}

// testIdentifyPrevious checks that a leak of the previous secret of a
// roll with a grace window is identified as the key's.
func testIdentifyPrevious(t *testing.T, h Harness) {
	clk := newClock()
	m := graceManager(t, h, clk)
	k, oldTok := create(t, m, apikey.CreateParams{Name: "leaky"})
	_, newTok := roll(t, m, k.ID, apikey.RollOptions{Grace: time.Hour})
	for _, tok := range []string{oldTok, newTok} {
		if got, err := m.Identify(t.Context(), tok); err != nil || got.ID != k.ID {
			t.Errorf("Identify in the grace window: %v, %v", got, err)
		}
	}
	_, newer := roll(t, m, k.ID, apikey.RollOptions{})
	if _, err := m.Identify(t.Context(), oldTok); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Identify of a secret two rolls back: %v, want ErrInvalidKey", err)
	}
	if got, err := m.Identify(t.Context(), newer); err != nil || got.ID != k.ID {
		t.Errorf("Identify of the current secret: %v, %v", got, err)
	}
}

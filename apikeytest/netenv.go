package apikeytest

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// testEnvironments checks environments end to end on the store: a test
// key's token carries the marker and verifies, the record keeps its
// environment, a record written without one reads back live, a Manager
// of one environment refuses the other's keys, a token whose marker
// disagrees with its record is invalid, a roll keeps the marker, and List
// filters by environment.
func testEnvironments(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1})
	live, liveToken := create(t, m, apikey.CreateParams{Name: "live"})
	test, testToken := create(t, m, apikey.CreateParams{Name: "test", Environment: apikey.EnvTest})
	if live.Environment != apikey.EnvLive || test.Environment != apikey.EnvTest {
		t.Errorf("Create: environments %q and %q, want live and test", live.Environment, test.Environment)
	}
	if !strings.HasPrefix(liveToken, "ak_"+live.ID+"_") {
		t.Errorf("live token %s: want ak_<id>_..., unchanged", apikey.Redact(liveToken))
	}
	if !strings.HasPrefix(testToken, "ak_test_"+test.ID+"_") {
		t.Errorf("test token %s: want ak_test_<id>_...", apikey.Redact(testToken))
	}
	if tok, err := apikey.ParseToken(testToken); err != nil || tok.Environment() != apikey.EnvTest || tok.ID != test.ID {
		t.Errorf("ParseToken(test token) = %+v, %v", tok, err)
	}
	for _, c := range []struct {
		token string
		want  apikey.Environment
	}{{liveToken, apikey.EnvLive}, {testToken, apikey.EnvTest}} {
		k, err := m.Verify(ctx, c.token)
		if err != nil || k.Environment != c.want {
			t.Errorf("Verify(%s key) = %v, %v", c.want, k, err)
		}
		if rec := lookup(t, h, k.ID); rec.Environment != c.want {
			t.Errorf("Lookup(%s key).Environment = %q", c.want, rec.Environment)
		}
	}
	_, _, err := m.Create(ctx, apikey.CreateParams{Name: "x", Environment: "staging"})
	wantErr(t, "Create with environment staging", err, apikey.ErrInvalidInput)

	// A record of before environments.
	old := record(testID("envold", 1), "", "old", base)
	insert(t, h, old)
	if got := lookup(t, h, old.ID); got.Environment != apikey.EnvLive {
		t.Errorf("record inserted without an environment reads back %q, want live", got.Environment)
	}

	// A Manager of one environment.
	for _, c := range []struct {
		env       apikey.Environment
		ok, wrong string
	}{{apikey.EnvLive, liveToken, testToken}, {apikey.EnvTest, testToken, liveToken}} {
		only := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1, Environment: c.env})
		if _, err := only.Verify(ctx, c.ok); err != nil {
			t.Errorf("%s-only Manager: Verify(own key) = %v", c.env, err)
		}
		_, err := only.Verify(ctx, c.wrong)
		wantErr(t, string(c.env)+"-only Manager: Verify(other key)", err, apikey.ErrWrongEnvironment)
		if code := apikey.CodeOf(err); code != apikey.CodeWrongEnvironment {
			t.Errorf("code = %q, want wrong_environment", code)
		}
		// The wrong secret is still invalid first: nobody learns a key's
		// environment without its secret.
		_, err = only.Verify(ctx, WrongSecret(c.wrong))
		wantErr(t, string(c.env)+"-only Manager: wrong secret", err, apikey.ErrInvalidKey)
	}
	if _, err := m.Check(ctx, liveToken, apikey.CheckOptions{Environment: apikey.EnvTest}); !errors.Is(err, apikey.ErrWrongEnvironment) {
		t.Errorf("Check(live key, want test) = %v, want ErrWrongEnvironment", err)
	}

	// A marker that disagrees with the record.
	secret := SecretOf(testToken)
	stripped := ForgeToken("ak", test.ID, secret)
	_, err = m.Verify(ctx, stripped)
	wantErr(t, "test key's token without its marker", err, apikey.ErrInvalidKey)
	added := ForgeToken("ak_test", live.ID, SecretOf(liveToken))
	_, err = m.Verify(ctx, added)
	wantErr(t, "live key's token with a test marker", err, apikey.ErrInvalidKey)

	// A roll keeps the environment.
	_, rolled, err := m.Roll(ctx, test.ID, apikey.RollOptions{})
	if err != nil || !strings.HasPrefix(rolled, "ak_test_"+test.ID+"_") {
		t.Fatalf("Roll(test key) = %s, %v", apikey.Redact(rolled), err)
	}
	if k, err := m.Verify(ctx, rolled); err != nil || k.Environment != apikey.EnvTest {
		t.Errorf("Verify(rolled test key) = %v, %v", k, err)
	}

	// List by environment.
	for _, c := range []struct {
		env  apikey.Environment
		want []string
	}{{apikey.EnvTest, []string{test.ID}}, {apikey.EnvLive, []string{live.ID, old.ID}}, {"", []string{live.ID, test.ID, old.ID}}} {
		page, err := m.List(ctx, apikey.KeyFilter{Environment: c.env})
		if err != nil {
			t.Fatalf("List(environment %q): %v", c.env, err)
		}
		got := ids(page.Keys)
		slices.Sort(got)
		want := slices.Clone(c.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(environment %q) = %v, want %v", c.env, got, want)
		}
	}
	_, err = m.List(ctx, apikey.KeyFilter{Environment: "prod"})
	wantErr(t, "List(environment prod)", err, apikey.ErrInvalidInput)
}

// testAllowedCIDRs checks network allowlists on the store: they are
// stored normalised and read back, Check holds the client's address
// against them, and their changes are audited.
func testAllowedCIDRs(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now, UsageFlushInterval: -1})
	cidrs, err := apikey.ParseCIDRs([]string{"10.1.2.3/8", "2001:db8::1", "203.0.113.0/24", "::ffff:198.51.100.0/120", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	k, token := create(t, m, apikey.CreateParams{Name: "fenced", AllowedCIDRs: cidrs})
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::1/128"),
	}
	if !slices.Equal(k.AllowedCIDRs, want) {
		t.Errorf("Create: AllowedCIDRs = %v, want %v", k.AllowedCIDRs, want)
	}
	if got := lookup(t, h, k.ID).AllowedCIDRs; !slices.Equal(got, want) {
		t.Errorf("Lookup: AllowedCIDRs = %v, want %v", got, want)
	}
	open, openToken := create(t, m, apikey.CreateParams{Name: "open"})
	if got := lookup(t, h, open.ID).AllowedCIDRs; len(got) != 0 {
		t.Errorf("Lookup(key without allowlist): AllowedCIDRs = %v", got)
	}
	for _, c := range []struct {
		token, addr string
		ok          bool
	}{
		{token, "10.9.8.7", true},
		{token, "::ffff:10.9.8.7", true},
		{token, "198.51.100.9", true},
		{token, "2001:db8::1", true},
		{token, "2001:db8::2", false},
		{token, "11.0.0.1", false},
		{token, "", false},
		{openToken, "192.0.2.1", true},
		{openToken, "", true},
	} {
		var addr netip.Addr
		if c.addr != "" {
			addr = netip.MustParseAddr(c.addr)
		}
		_, err := m.Check(ctx, c.token, apikey.CheckOptions{ClientAddr: addr})
		if c.ok && err != nil || !c.ok && !errors.Is(err, apikey.ErrIPNotAllowed) {
			t.Errorf("Check from %q: %v, want allowed=%v", c.addr, err, c.ok)
		}
		if !c.ok && apikey.CodeOf(err) != apikey.CodeIPNotAllowed {
			t.Errorf("Check from %q: code %q, want ip_not_allowed", c.addr, apikey.CodeOf(err))
		}
	}
	tooMany := make([]netip.Prefix, apikey.MaxAllowedCIDRs+1)
	for i := range tooMany {
		tooMany[i] = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16)
	}
	_, _, err = m.Create(ctx, apikey.CreateParams{Name: "x", AllowedCIDRs: tooMany})
	wantErr(t, "Create with too many ranges", err, apikey.ErrInvalidInput)
	_, err = m.Update(ctx, k.ID, apikey.KeyUpdate{AllowedCIDRs: &tooMany})
	wantErr(t, "Update with too many ranges", err, apikey.ErrInvalidInput)

	// A change is audited in text form, and reaches the verification.
	ranges := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{AllowedCIDRs: &ranges}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, token, apikey.CheckOptions{ClientAddr: netip.MustParseAddr("10.9.8.7")}); !errors.Is(err, apikey.ErrIPNotAllowed) {
		t.Errorf("Check after the allowlist changed: %v, want ErrIPNotAllowed", err)
	}
	evs, err := m.Events(ctx, apikey.EventFilter{KeyID: k.ID, Type: apikey.EventUpdated})
	if err != nil || len(evs.Events) != 1 {
		t.Fatalf("Events = %v, %v", evs, err)
	}
	ch := evs.Events[0].Changes["allowed_cidrs"]
	if !sameStrings(ch.Before, []string{"10.0.0.0/8", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::1/128"}) ||
		!sameStrings(ch.After, []string{"192.0.2.0/24"}) {
		t.Errorf("audit of the allowlist change: %+v", ch)
	}
}

// sameStrings reports whether v, as a Change value read back from a store
// (a []string, or a []any of strings after JSON), holds want.
func sameStrings(v any, want []string) bool {
	switch x := v.(type) {
	case []string:
		return slices.Equal(x, want)
	case []any:
		if len(x) != len(want) {
			return false
		}
		for i := range x {
			if s, _ := x[i].(string); s != want[i] {
				return false
			}
		}
		return true
	}
	return false
}

// testInactivityExpiry checks inactivity expiry against the store with a
// fake clock: the service default and a key's own policy, "never", the
// state in Get and List, the last use as flushed to the store, and an
// instance whose cached record is older than another instance's use.
func testInactivityExpiry(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	const day = 24 * time.Hour
	cfg := apikey.Config{Now: clk.Now, InactivityExpiry: 30 * day, UsageFlushInterval: time.Hour}
	m := newManager(t, h, cfg)
	t.Cleanup(func() { m.Close(t.Context()) })
	a, aToken := create(t, m, apikey.CreateParams{Name: "default"})
	b, bToken := create(t, m, apikey.CreateParams{Name: "own", InactivityExpiry: 2 * day})
	c, cToken := create(t, m, apikey.CreateParams{Name: "never", InactivityExpiry: apikey.NoInactivityExpiry})
	if got := lookup(t, h, b.ID).InactivityExpiry; got != apikey.Inactivity(2*day) {
		t.Errorf("Lookup: InactivityExpiry = %v, want 48h", got)
	}
	if got := lookup(t, h, c.ID).InactivityExpiry; got != apikey.Inactivity(apikey.NoInactivityExpiry) {
		t.Errorf("Lookup: InactivityExpiry = %v, want never", got)
	}
	_, _, err := m.Create(ctx, apikey.CreateParams{Name: "x", InactivityExpiry: time.Minute})
	wantErr(t, "Create with a 1m inactivity expiry", err, apikey.ErrInvalidInput)

	// A cached second instance, whose record of a stays the one it read
	// now, before any use.
	cache := &mapCache{m: map[string]*apikey.CacheEntry{}}
	other := newManager(t, h, apikey.Config{Now: clk.Now, InactivityExpiry: 30 * day, UsageFlushInterval: time.Hour, Cache: cache, ChangePollInterval: -1})
	t.Cleanup(func() { other.Close(t.Context()) })
	if _, err := other.Verify(ctx, aToken); err != nil {
		t.Fatalf("other.Verify(a): %v", err)
	}

	clk.Add(2*day + 3*time.Hour) // past b's own 2d and its leeway
	_, err = m.Verify(ctx, bToken)
	wantErr(t, "Verify(b) after 2d unused", err, apikey.ErrInactive)
	wantErr(t, "Verify(b) after 2d unused", err, apikey.ErrExpired)
	if code := apikey.CodeOf(err); code != apikey.CodeKeyExpired {
		t.Errorf("code of an inactive key = %q, want key_expired", code)
	}
	if k, err := m.Get(ctx, b.ID); err != nil || k.State != apikey.StateExpired {
		t.Errorf("Get(b).State = %v, %v; want expired", k, err)
	}
	if at, ok := lookup(t, h, b.ID).InactiveAt(30 * day); !ok || !at.Equal(b.CreatedAt.Add(2*day)) {
		t.Errorf("b.InactiveAt = %v, %v; want created + 2d", at, ok)
	}
	for _, tok := range []string{aToken, cToken} {
		if _, err := m.Verify(ctx, tok); err != nil {
			t.Errorf("Verify(a or c) after 2d: %v", err)
		}
	}
	if err := m.FlushUsage(ctx); err != nil { // a's last use reaches the store
		t.Fatal(err)
	}
	clk.Add(29 * day) // 31d after creation, 29d after a's last use
	if _, err := other.Verify(ctx, aToken); err != nil {
		t.Errorf("other instance, whose cached record of a predates its last use: Verify(a) = %v, want granted", err)
	}
	if _, err := m.Verify(ctx, aToken); err != nil {
		t.Errorf("Verify(a) 29d after its last use: %v", err)
	}
	// An unflushed use counts too: it lives in the Manager until the
	// next flush. The store's last use is now 31d old, the Manager's 2d.
	clk.Add(2 * day)
	if _, err := m.Verify(ctx, aToken); err != nil {
		t.Errorf("Verify(a) 31d after its last written use, 2d after one not yet written: %v, want granted", err)
	}
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * day)
	_, err = m.Verify(ctx, aToken)
	wantErr(t, "Verify(a) 31d unused", err, apikey.ErrInactive)
	_, err = other.Verify(ctx, aToken)
	wantErr(t, "other.Verify(a) 31d unused", err, apikey.ErrInactive)
	if _, err := m.Verify(ctx, cToken); err != nil {
		t.Errorf("Verify(c, never) after months: %v", err)
	}

	// List by state applies the default.
	for _, st := range []struct {
		state apikey.State
		want  []string
	}{{apikey.StateExpired, []string{a.ID, b.ID}}, {apikey.StateActive, []string{c.ID}}} {
		page, err := m.List(ctx, apikey.KeyFilter{State: st.state})
		if err != nil {
			t.Fatal(err)
		}
		got := ids(page.Keys)
		slices.Sort(got)
		want := slices.Clone(st.want)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(state %s) = %v, want %v", st.state, got, want)
		}
	}

	// A key's own policy changes are audited.
	if _, err := m.Update(ctx, c.ID, apikey.KeyUpdate{InactivityExpiry: ptr(90 * day)}); err != nil {
		t.Fatal(err)
	}
	evs, err := m.Events(ctx, apikey.EventFilter{KeyID: c.ID, Type: apikey.EventUpdated})
	if err != nil || len(evs.Events) != 1 {
		t.Fatalf("Events = %v, %v", evs, err)
	}
	if ch := evs.Events[0].Changes["inactivity_expiry"]; ch.Before != "never" || ch.After != "90d" {
		t.Errorf("audit of the inactivity change: %+v", ch)
	}
}

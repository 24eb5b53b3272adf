package apikey_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// countingStore counts lookups on a real store, to prove which checks
// happen before any store access.
type countingStore struct {
	apikey.Store
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, id)
}

// openStore returns an empty in-memory store, certified by the same
// conformance suite as the SQL stores.
func openStore(t testing.TB) *memstore.Store {
	t.Helper()
	return memstore.New()
}

func mustManager(t *testing.T, st apikey.Store, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestCreateAndVerify(t *testing.T) {
	ctx := context.Background()
	clk := apikeytest.NewClock(t0)
	m := mustManager(t, openStore(t), apikey.Config{Now: clk.Now})
	exp := t0.Add(time.Hour).In(time.FixedZone("CET", 3600))
	k, token, err := m.Create(ctx, apikey.CreateParams{
		Name: "billing", Owner: "org_1", Scopes: []string{"b", "a", "b"},
		Metadata: map[string]string{"env": "prod"}, ExpiresAt: &exp,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "ak_"+k.ID+"_") || len(token) != len("ak_")+12+1+32+6 {
		t.Errorf("token = %q, want ak_<id>_<32-char secret><6-char checksum>", token)
	}
	if k.State != apikey.StateActive || !k.CreatedAt.Equal(t0) || k.ExpiresAt.Location() != time.UTC {
		t.Errorf("created key = %+v, want active, created at %v, expiry in UTC", k, t0)
	}
	if got := strings.Join(k.Scopes, ","); got != "a,b" {
		t.Errorf("scopes = %q, want sorted and unique %q", got, "a,b")
	}
	got, err := m.Verify(ctx, token)
	if err != nil {
		t.Fatalf("Verify(fresh token) error = %v", err)
	}
	if got.ID != k.ID || got.Name != "billing" || got.Owner != "org_1" || got.Metadata["env"] != "prod" {
		t.Errorf("Verify returned %+v, want the created key %+v", got, k)
	}
}

func TestVerifyRejections(t *testing.T) {
	ctx := context.Background()
	clk := apikeytest.NewClock(t0)
	st := &countingStore{Store: openStore(t)}
	m := mustManager(t, st, apikey.Config{Now: clk.Now})
	exp := t0.Add(time.Hour)
	expiring, expToken, err := m.Create(ctx, apikey.CreateParams{Name: "expiring", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	revoked, revToken, _ := m.Create(ctx, apikey.CreateParams{Name: "revoked"})
	if _, err := m.Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	_, good, _ := m.Create(ctx, apikey.CreateParams{Name: "good"})
	// Same id and prefix, another secret, valid checksum: a forged token.
	forged := withChecksum(expToken[:len("ak_")+13] + strings.Repeat("x", 32))
	unknown := withChecksum("ak_ZZZZZZZZZZZZ_" + strings.Repeat("y", 32))
	otherPrefix := withChecksum("live_" + expiring.ID + expToken[len("ak_")+12:len(expToken)-6])

	tests := []struct {
		name     string
		token    string
		at       time.Time
		want     error
		lookedUp bool
	}{
		{"valid", good, t0, nil, true},
		{"malformed", "not-a-key", t0, apikey.ErrInvalidKey, false},
		{"typo", good[:10] + "x" + good[11:], t0, apikey.ErrInvalidKey, false},
		{"oversized", strings.Repeat("a", 10000), t0, apikey.ErrInvalidKey, false},
		{"unknown id", unknown, t0, apikey.ErrInvalidKey, true},
		{"wrong secret", forged, t0, apikey.ErrInvalidKey, true},
		{"right secret, other prefix", otherPrefix, t0, apikey.ErrInvalidKey, true},
		{"revoked", revToken, t0, apikey.ErrRevoked, true},
		{"just before expiry", expToken, exp.Add(-time.Microsecond), nil, true},
		{"exactly at expiry", expToken, exp, apikey.ErrExpired, true},
		{"after expiry", expToken, exp.Add(time.Hour), apikey.ErrExpired, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Set(tt.at)
			before := st.lookups.Load()
			k, err := m.Verify(ctx, tt.token)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if (err == nil) != (k != nil) {
				t.Errorf("Verify returned key %v with error %v", k, err)
			}
			if looked := st.lookups.Load() > before; looked != tt.lookedUp {
				t.Errorf("store looked up = %v, want %v", looked, tt.lookedUp)
			}
			if errors.Is(err, apikey.ErrInvalidKey) && tt.lookedUp && err.Error() != apikey.ErrInvalidKey.Error() {
				t.Errorf("Verify error = %q: unknown ids and wrong secrets must look the same", err)
			}
		})
	}
}

func TestVerifyUsableHook(t *testing.T) {
	ctx := context.Background()
	inactive := errors.New("organisation suspended")
	m := mustManager(t, openStore(t), apikey.Config{Usable: func(_ context.Context, k *apikey.Key) error {
		switch k.Owner {
		case "suspended":
			return inactive
		case "flaky":
			return apikey.ErrUnavailable
		}
		return nil
	}})
	for owner, want := range map[string]error{"ok": nil, "suspended": apikey.ErrInvalidKey, "flaky": apikey.ErrUnavailable} {
		_, token, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		k, err := m.Verify(ctx, token)
		if !errors.Is(err, want) || (want == nil) != (err == nil) || (err == nil) != (k != nil) {
			t.Errorf("owner %q: Verify = %v, %v; want error %v", owner, k, err, want)
		}
		if owner == "suspended" && !errors.Is(err, inactive) {
			t.Errorf("Verify error = %v, want it to wrap the hook's error", err)
		}
	}
}

func TestStoreFailureNeverGrants(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	m := mustManager(t, st, apikey.Config{})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	got, err := m.Verify(ctx, token)
	if got != nil || !errors.Is(err, apikey.ErrUnavailable) || errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify with the store down = %v, %v; want no key and ErrUnavailable only", got, err)
	}
	for name, call := range map[string]func() error{
		"Get":    func() error { _, err := m.Get(ctx, k.ID); return err },
		"List":   func() error { _, err := m.List(ctx, apikey.KeyFilter{}); return err },
		"Revoke": func() error { _, err := m.Revoke(ctx, k.ID); return err },
		"Delete": func() error { return m.Delete(ctx, k.ID) },
		"Create": func() error { _, _, err := m.Create(ctx, apikey.CreateParams{Name: "x"}); return err },
	} {
		if err := call(); !errors.Is(err, apikey.ErrUnavailable) {
			t.Errorf("%s with the store down: error = %v, want ErrUnavailable", name, err)
		}
	}
}

func TestCreateValidation(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{Now: func() time.Time { return t0 }})
	past, now := t0.Add(-time.Second), t0
	tests := []struct {
		field string
		p     apikey.CreateParams
	}{
		{"name", apikey.CreateParams{}},
		{"name", apikey.CreateParams{Name: "   "}},
		{"name", apikey.CreateParams{Name: "a\x00b"}},
		{"name", apikey.CreateParams{Name: "a\nb"}},
		{"name", apikey.CreateParams{Name: strings.Repeat("n", 201)}},
		{"name", apikey.CreateParams{Name: "\xff\xfe"}},
		{"owner", apikey.CreateParams{Name: "n", Owner: "o\tx"}},
		{"scopes", apikey.CreateParams{Name: "n", Scopes: []string{"has space"}}},
		{"scopes", apikey.CreateParams{Name: "n", Scopes: []string{""}}},
		{"metadata", apikey.CreateParams{Name: "n", Metadata: map[string]string{"": "v"}}},
		{"metadata", apikey.CreateParams{Name: "n", Metadata: map[string]string{"k": strings.Repeat("v", 513)}}},
		{"expires_at", apikey.CreateParams{Name: "n", ExpiresAt: &past}},
		{"expires_at", apikey.CreateParams{Name: "n", ExpiresAt: &now}},
	}
	for _, tt := range tests {
		_, token, err := m.Create(ctx, tt.p)
		var ve *apikey.ValidationError
		if !errors.As(err, &ve) || ve.Field != tt.field || !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("Create(%+v) error = %v, want a ValidationError for %q", tt.p, err, tt.field)
		}
		if token != "" {
			t.Errorf("Create(%+v) returned a token despite the error", tt.p)
		}
	}
	page, err := m.List(ctx, apikey.KeyFilter{})
	if err != nil || len(page.Keys) != 0 {
		t.Errorf("after only invalid creates, List = %v, %v; want no keys", page, err)
	}
}

func TestNewManagerConfig(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		cfg  apikey.Config
		want string
	}{
		{apikey.Config{SecretLength: 21}, "128 bits"},
		{apikey.Config{SecretLength: 129}, "secret length 129"},
		{apikey.Config{Prefix: "AK"}, "prefix"},
		{apikey.Config{Prefix: strings.Repeat("a", 33)}, "prefix"},
		{apikey.Config{MaxKeysPerOwner: -1}, "MaxKeysPerOwner"},
		{apikey.Config{Peppers: []apikey.Pepper{{Version: 1, Secret: []byte("short")}}}, "at least 16"},
	}
	for _, tt := range tests {
		if _, err := apikey.NewManager(st, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewManager(%+v) error = %v, want one mentioning %q", tt.cfg, err, tt.want)
		}
	}
	if _, err := apikey.NewManager(nil, apikey.Config{}); err == nil {
		t.Error("NewManager(nil store) succeeded")
	}
	m := mustManager(t, st, apikey.Config{Prefix: "my_co_live", SecretLength: 22})
	_, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "n"})
	if err != nil || !strings.HasPrefix(token, "my_co_live_") || len(token) != len("my_co_live_")+12+1+22+6 {
		t.Errorf("Create with prefix my_co_live and 22-char secrets = %q, %v", token, err)
	}
	// A later change of prefix does not invalidate earlier keys.
	later := mustManager(t, st, apikey.Config{Prefix: "ak"})
	if _, err := later.Verify(context.Background(), token); err != nil {
		t.Errorf("Verify after a prefix change: %v", err)
	}
}

func TestPepperRotation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	v1 := apikey.Pepper{Version: 1, Secret: []byte("first pepper, 16+ bytes")}
	v2 := apikey.Pepper{Version: 2, Secret: []byte("second pepper, 16+ bytes")}
	old := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v1}})
	k, token, err := old.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := st.Lookup(ctx, k.ID)
	if !strings.HasPrefix(rec.Hash, "hmac-sha256$1$") {
		t.Fatalf("stored hash = %q, want hmac-sha256$1$...", rec.Hash)
	}
	if _, err := mustManager(t, st, apikey.Config{}).Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify without the pepper = %v, want ErrInvalidKey", err)
	}
	if _, err := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v2}}).Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify with only the new pepper before rehash = %v, want ErrInvalidKey", err)
	}
	rotated := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v2, v1}})
	if _, err := rotated.Verify(ctx, token); err != nil {
		t.Fatalf("Verify after adding pepper 2: %v", err)
	}
	rec, _ = st.Lookup(ctx, k.ID)
	if !strings.HasPrefix(rec.Hash, "hmac-sha256$2$") {
		t.Errorf("hash after verifying under pepper 2 = %q, want it upgraded to hmac-sha256$2$", rec.Hash)
	}
	if _, err := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v2}}).Verify(ctx, token); err != nil {
		t.Errorf("Verify with only pepper 2 after the upgrade: %v", err)
	}
}

// recorder keeps the bytes it passes on.
type recorder struct {
	r   io.Reader
	buf bytes.Buffer
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf.Write(p[:n])
	return n, err
}

func TestCreateRetriesOnIDCollision(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	rec := &recorder{r: rand.Reader}
	first, _, err := mustManager(t, st, apikey.Config{Rand: rec}).Create(ctx, apikey.CreateParams{Name: "first"})
	if err != nil {
		t.Fatal(err)
	}
	// Replay the same randomness: the first attempt collides, the retry
	// draws fresh bytes.
	replay := mustManager(t, st, apikey.Config{Rand: io.MultiReader(bytes.NewReader(rec.buf.Bytes()), rand.Reader)})
	second, token, err := replay.Create(ctx, apikey.CreateParams{Name: "second"})
	if err != nil {
		t.Fatalf("Create after a collision: %v", err)
	}
	if second.ID == first.ID {
		t.Fatalf("second key reused id %s", first.ID)
	}
	if _, err := replay.Verify(ctx, token); err != nil {
		t.Errorf("Verify(second token): %v", err)
	}
	failing := mustManager(t, st, apikey.Config{Rand: iotestErrReader{}})
	if _, _, err := failing.Create(ctx, apikey.CreateParams{Name: "x"}); err == nil || !strings.Contains(err.Error(), "randomness") {
		t.Errorf("Create with a failing Rand: error = %v, want one about randomness", err)
	}
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestUpdateRevokeDelete(t *testing.T) {
	ctx := context.Background()
	clk := apikeytest.NewClock(t0)
	m := mustManager(t, openStore(t), apikey.Config{Now: clk.Now})
	k, token, _ := m.Create(ctx, apikey.CreateParams{Name: "n", Scopes: []string{"a"}})
	name, scopes := "renamed", []string{"z", "y"}
	exp := t0.Add(time.Minute)
	u, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name, Scopes: &scopes, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "renamed" || strings.Join(u.Scopes, ",") != "y,z" || !u.ExpiresAt.Equal(exp) {
		t.Errorf("Update = %+v", u)
	}
	bad := ""
	for _, tt := range []struct {
		u    apikey.KeyUpdate
		want error
	}{
		{apikey.KeyUpdate{Name: &bad}, apikey.ErrInvalidInput},
		{apikey.KeyUpdate{ExpiresAt: &t0}, apikey.ErrInvalidInput},
		{apikey.KeyUpdate{ExpiresAt: &exp, ClearExpiry: true}, apikey.ErrInvalidInput},
	} {
		if _, err := m.Update(ctx, k.ID, tt.u); !errors.Is(err, tt.want) {
			t.Errorf("Update(%+v) error = %v, want %v", tt.u, err, tt.want)
		}
	}
	for _, id := range []string{"ZZZZZZZZZZZZ", "bad id", ""} {
		if _, err := m.Update(ctx, id, apikey.KeyUpdate{Name: &name}); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Update(%q) error = %v, want ErrNotFound", id, err)
		}
		if _, err := m.Revoke(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Revoke(%q) error = %v, want ErrNotFound", id, err)
		}
		if err := m.Delete(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Delete(%q) error = %v, want ErrNotFound", id, err)
		}
		if _, err := m.Get(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Get(%q) error = %v, want ErrNotFound", id, err)
		}
	}

	r1, err := m.Revoke(ctx, k.ID)
	if err != nil || r1.State != apikey.StateRevoked || !r1.RevokedAt.Equal(t0) {
		t.Fatalf("Revoke = %+v, %v", r1, err)
	}
	clk.Add(time.Hour)
	r2, err := m.Revoke(ctx, k.ID)
	if err != nil || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Errorf("second Revoke = %+v, %v; want the first revocation time kept", r2, err)
	}
	clear := apikey.KeyUpdate{ClearExpiry: true}
	if _, err := m.Update(ctx, k.ID, clear); !errors.Is(err, apikey.ErrFrozen) {
		t.Errorf("Update of a revoked key error = %v, want ErrFrozen", err)
	}
	if got, _ := m.Get(ctx, k.ID); got.State != apikey.StateRevoked || got.Name != "renamed" {
		t.Errorf("after refused update, Get = %+v, want unchanged and revoked", got)
	}
	if err := m.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify after Delete = %v, want ErrInvalidKey", err)
	}
	if err := m.Delete(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
}

func TestListPaging(t *testing.T) {
	ctx := context.Background()
	clk := apikeytest.NewClock(t0)
	m := mustManager(t, openStore(t), apikey.Config{Now: clk.Now})
	for i := 0; i < 12; i++ {
		if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: []string{"a", "b"}[i%2]}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			clk.Add(time.Second) // some keys share a creation instant
		}
	}
	seen := map[string]bool{}
	f := apikey.KeyFilter{Owner: "a", Limit: 4}
	for pages := 0; ; pages++ {
		page, err := m.List(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			if seen[k.ID] || k.Owner != "a" {
				t.Fatalf("key %s (owner %s) repeated or of another owner", k.ID, k.Owner)
			}
			seen[k.ID] = true
		}
		if page.NextCursor == "" {
			if pages != 1 {
				t.Errorf("6 keys in pages of 4 took %d pages, want 2", pages+1)
			}
			break
		}
		f.Cursor = page.NextCursor
	}
	if len(seen) != 6 {
		t.Errorf("paging saw %d keys of owner a, want 6", len(seen))
	}
	for _, f := range []apikey.KeyFilter{{State: "gone"}, {Limit: -1}, {Limit: apikey.MaxPageSize + 1}, {Cursor: "garbage"}} {
		if _, err := m.List(ctx, f); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("List(%+v) error = %v, want ErrInvalidInput", f, err)
		}
	}
}

func TestConcurrentVerify(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{Peppers: []apikey.Pepper{{Version: 1, Secret: []byte("0123456789abcdef")}}})
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	// A token with its last character changed (the checksum's; when it is
	// already "0", to "1").
	bad := token[:len(token)-1] + "0"
	if bad == token {
		bad = token[:len(token)-1] + "1"
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 50; j++ {
				if _, err := m.Verify(ctx, token); err != nil {
					t.Error(err)
					return
				}
				if _, err := m.Verify(ctx, bad); err == nil {
					t.Error("a bad token verified")
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestRoll(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{})
	k, oldToken, _ := m.Create(ctx, apikey.CreateParams{Name: "n", Scopes: []string{"s"}})
	rolled, newToken, err := m.Roll(ctx, k.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rolled.ID != k.ID || newToken == oldToken || !strings.HasPrefix(newToken, "ak_"+k.ID+"_") {
		t.Fatalf("Roll = %+v, %q; want same id, new token", rolled, newToken)
	}
	if _, err := m.Verify(ctx, oldToken); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("old token after Roll: %v, want ErrInvalidKey", err)
	}
	if got, err := m.Verify(ctx, newToken); err != nil || got.ID != k.ID || !got.HasScope("s") {
		t.Errorf("new token after Roll: %+v, %v", got, err)
	}
	m.Revoke(ctx, k.ID)
	if _, tok, err := m.Roll(ctx, k.ID, apikey.RollOptions{}); !errors.Is(err, apikey.ErrFrozen) || tok != "" {
		t.Errorf("Roll of a revoked key = %q, %v; want ErrFrozen", tok, err)
	}
	if _, _, err := m.Roll(ctx, "ZZZZZZZZZZZZ", apikey.RollOptions{}); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Roll of unknown id: %v, want ErrNotFound", err)
	}
}

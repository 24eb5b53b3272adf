package ottercache_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/sqlite"
)

// countingStore counts Lookups and can slow them down.
type countingStore struct {
	apikey.Store
	lookups atomic.Int64
	delay   time.Duration
}

func (s *countingStore) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	s.lookups.Add(1)
	if s.delay > 0 {
		time.Sleep(s.delay)
	}
	return s.Store.Lookup(ctx, id)
}

func openStore(t *testing.T) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

type fixture struct {
	clk    *apikeytest.Clock
	store  *countingStore
	cached *apikey.Manager // with an ottercache
	plain  *apikey.Manager // same store, no cache
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{clk: newClock(), store: &countingStore{Store: openStore(t)}}
	// The cache runs on its own (real) clock with a long TTL, so that
	// advancing the Manager's clock shows that expiry is checked on hits.
	cache := newCache(t, ottercache.Config{TTL: time.Hour})
	var err error
	f.cached, err = apikey.NewManager(f.store, apikey.Config{Cache: cache, Now: f.clk.Now, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	f.plain, err = apikey.NewManager(f.store, apikey.Config{Now: f.clk.Now, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.cached.Close(context.Background())
		f.plain.Close(context.Background())
	})
	return f
}

func (f *fixture) create(t *testing.T, p apikey.CreateParams) (*apikey.Key, string) {
	t.Helper()
	if p.Name == "" {
		p.Name = "test key"
	}
	k, token, err := f.plain.Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return k, token
}

// verifyCounted verifies token with m and returns how many store lookups
// it made.
func (f *fixture) verifyCounted(m *apikey.Manager, token string) (*apikey.Key, error, int64) {
	before := f.store.lookups.Load()
	k, err := m.Verify(context.Background(), token)
	return k, err, f.store.lookups.Load() - before
}

func sameResult(t *testing.T, what string, gk *apikey.Key, gerr error, wk *apikey.Key, werr error) {
	t.Helper()
	if apikey.CodeOf(gerr) != apikey.CodeOf(werr) || (gerr == nil) != (werr == nil) {
		t.Fatalf("%s: err = %v, want %v", what, gerr, werr)
	}
	if (gk == nil) != (wk == nil) {
		t.Fatalf("%s: key = %v, want %v", what, gk, wk)
	}
	if gk != nil && (gk.ID != wk.ID || gk.Name != wk.Name || !slices.Equal(gk.Scopes, wk.Scopes) || gk.State != wk.State) {
		t.Fatalf("%s: key = %+v, want %+v", what, gk, wk)
	}
}

func TestCachedVerifyMatchesUncached(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	_, valid := f.create(t, apikey.CreateParams{Scopes: []string{"read"}})
	soon := f.clk.Now().Add(time.Hour)
	_, expiring := f.create(t, apikey.CreateParams{ExpiresAt: &soon})
	rk, revoked := f.create(t, apikey.CreateParams{})
	if _, err := f.plain.Revoke(ctx, rk.ID); err != nil {
		t.Fatal(err)
	}
	dk, deleted := f.create(t, apikey.CreateParams{})
	if err := f.plain.Delete(ctx, dk.ID); err != nil {
		t.Fatal(err)
	}
	ok, old := f.create(t, apikey.CreateParams{})
	if _, _, err := f.plain.Roll(ctx, ok.ID, apikey.RollOptions{}); err != nil {
		t.Fatal(err)
	}
	tokens := map[string]string{
		"valid": valid, "expiring": expiring, "revoked": revoked, "deleted": deleted,
		"rolled away": old, "malformed": "ak_nope", "bad checksum": apikeytest.BadChecksum(valid),
	}
	check := func(phase string) {
		for name, token := range tokens {
			for i := range 2 { // a miss, then a hit
				gk, gerr := f.cached.Verify(ctx, token)
				wk, werr := f.plain.Verify(ctx, token)
				sameResult(t, phase+" "+name+" "+[]string{"miss", "hit"}[i], gk, gerr, wk, werr)
			}
		}
	}
	check("now")
	f.clk.Add(2 * time.Hour) // "expiring" expires
	check("later")
	if _, err := f.cached.Verify(ctx, expiring); !errors.Is(err, apikey.ErrExpired) {
		t.Fatalf("expired key: err = %v, want ErrExpired", err)
	}
}

func TestSecondVerifyHitsCache(t *testing.T) {
	f := newFixture(t)
	_, token := f.create(t, apikey.CreateParams{})
	if _, err, n := f.verifyCounted(f.cached, token); err != nil || n != 1 {
		t.Fatalf("first Verify: err = %v, lookups = %d; want nil, 1", err, n)
	}
	for range 3 {
		if _, err, n := f.verifyCounted(f.cached, token); err != nil || n != 0 {
			t.Fatalf("cached Verify: err = %v, lookups = %d; want nil, 0", err, n)
		}
	}
}

func TestLocalChangesInvalidate(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	warm := func(token string) {
		t.Helper()
		if _, err := f.cached.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
		if _, err, n := f.verifyCounted(f.cached, token); err != nil || n != 0 {
			t.Fatalf("warm-up: err = %v, lookups = %d", err, n)
		}
	}

	t.Run("revoke", func(t *testing.T) {
		k, token := f.create(t, apikey.CreateParams{})
		warm(token)
		if _, err := f.cached.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cached.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
			t.Fatalf("after Revoke: err = %v, want ErrRevoked", err)
		}
	})
	t.Run("update", func(t *testing.T) {
		k, token := f.create(t, apikey.CreateParams{Scopes: []string{"read"}})
		warm(token)
		scopes := []string{"write"}
		if _, err := f.cached.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &scopes}); err != nil {
			t.Fatal(err)
		}
		got, err := f.cached.Verify(ctx, token)
		if err != nil || !slices.Equal(got.Scopes, scopes) {
			t.Fatalf("after Update: scopes = %v, err = %v; want %v", got.Scopes, err, scopes)
		}
		past := f.clk.Now().Add(time.Minute)
		if _, err := f.cached.Update(ctx, k.ID, apikey.KeyUpdate{ExpiresAt: &past}); err != nil {
			t.Fatal(err)
		}
		f.clk.Add(2 * time.Minute)
		if _, err := f.cached.Verify(ctx, token); !errors.Is(err, apikey.ErrExpired) {
			t.Fatalf("after expiry update: err = %v, want ErrExpired", err)
		}
	})
	t.Run("delete", func(t *testing.T) {
		k, token := f.create(t, apikey.CreateParams{})
		warm(token)
		if err := f.cached.Delete(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.cached.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Fatalf("after Delete: err = %v, want ErrInvalidKey", err)
		}
	})
	t.Run("roll", func(t *testing.T) {
		k, token := f.create(t, apikey.CreateParams{})
		warm(token)
		_, fresh, err := f.cached.Roll(ctx, k.ID, apikey.RollOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.cached.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Fatalf("old token after Roll: err = %v, want ErrInvalidKey", err)
		}
		if _, err := f.cached.Verify(ctx, fresh); err != nil {
			t.Fatalf("new token after Roll: %v", err)
		}
	})
}

func TestExpiryCheckedOnHit(t *testing.T) {
	f := newFixture(t)
	exp := f.clk.Now().Add(time.Minute)
	_, token := f.create(t, apikey.CreateParams{ExpiresAt: &exp})
	if _, err := f.cached.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Minute) // ExpiresAt itself: expired
	if _, err, n := f.verifyCounted(f.cached, token); !errors.Is(err, apikey.ErrExpired) || n != 0 {
		t.Fatalf("past ExpiresAt: err = %v, lookups = %d; want ErrExpired from the cache (0 lookups)", err, n)
	}
}

func TestConcurrentMissesShareOneLookup(t *testing.T) {
	f := newFixture(t)
	_, token := f.create(t, apikey.CreateParams{})
	f.store.delay = 100 * time.Millisecond
	const n = 100
	var start, done sync.WaitGroup
	start.Add(1)
	errs := make(chan error, n)
	for range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			_, err := f.cached.Verify(context.Background(), token)
			errs <- err
		}()
	}
	before := f.store.lookups.Load()
	start.Done()
	done.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := f.store.lookups.Load() - before; got != 1 {
		t.Fatalf("%d concurrent Verifies of a cold id made %d store lookups, want 1", n, got)
	}
}

func TestUnknownIDNegativeCache(t *testing.T) {
	f := newFixture(t)
	k, token := f.create(t, apikey.CreateParams{})
	if err := f.plain.Delete(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err, n := f.verifyCounted(f.cached, token); !errors.Is(err, apikey.ErrInvalidKey) || n != 1 {
		t.Fatalf("unknown id: err = %v, lookups = %d; want ErrInvalidKey, 1", err, n)
	}
	if _, err, n := f.verifyCounted(f.cached, token); !errors.Is(err, apikey.ErrInvalidKey) || n != 0 {
		t.Fatalf("unknown id again: err = %v, lookups = %d; want ErrInvalidKey, 0 (negative cache)", err, n)
	}
}

func TestNegativeEntryExpires(t *testing.T) {
	clk := newClock()
	store := &countingStore{Store: openStore(t)}
	cache := newCache(t, ottercache.Config{Now: clk.Now})
	m, err := apikey.NewManager(store, apikey.Config{Cache: cache, Now: clk.Now, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	k, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	m.Delete(context.Background(), k.ID)
	m.Verify(context.Background(), token)
	m.Verify(context.Background(), token)
	if n := store.lookups.Load(); n != 1 {
		t.Fatalf("lookups = %d within the negative TTL, want 1", n)
	}
	clk.Add(ottercache.DefaultNegativeTTL + time.Second)
	m.Verify(context.Background(), token)
	if n := store.lookups.Load(); n != 2 {
		t.Fatalf("lookups = %d after the negative TTL, want 2", n)
	}
}

// switchInvalidator is an apikey.Invalidator whose subscription the test
// turns on and off.
type switchInvalidator struct {
	handlers chan apikey.InvalidationHandler // one per call of Listen
	drop     chan struct{}
}

func (s *switchInvalidator) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	s.handlers <- h
	select {
	case <-s.drop:
		return errors.New("dropped")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestSuspendResume checks the cache through its Manager while an
// invalidation subscription comes and goes: bypassed until subscribed,
// bypassed once lost, emptied and trusted once subscribed again.
func TestSuspendResume(t *testing.T) {
	f := newFixture(t)
	inv := &switchInvalidator{handlers: make(chan apikey.InvalidationHandler, 10), drop: make(chan struct{}, 1)}
	m, err := apikey.NewManager(f.store, apikey.Config{
		Cache: newCache(t, ottercache.Config{TTL: time.Hour}), Invalidator: inv, Now: f.clk.Now, UsageFlushInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	_, token := f.create(t, apikey.CreateParams{})
	h := <-inv.handlers
	h.Subscribed()
	if _, err := m.Verify(context.Background(), token); err != nil {
		t.Fatal(err)
	}
	inv.drop <- struct{}{}
	h = <-inv.handlers // the Manager listens again: it has suspended the cache
	for i := range 3 {
		if _, err, n := f.verifyCounted(m, token); err != nil || n != 1 {
			t.Fatalf("suspended Verify %d: err = %v, lookups = %d; want nil, 1", i, err, n)
		}
	}
	h.Subscribed()
	if _, err, n := f.verifyCounted(m, token); err != nil || n != 1 {
		t.Fatalf("first Verify after resubscribing: err = %v, lookups = %d; want nil, 1 (cache emptied)", err, n)
	}
	if _, err, n := f.verifyCounted(m, token); err != nil || n != 0 {
		t.Fatalf("second Verify after resubscribing: err = %v, lookups = %d; want nil, 0 (trusted again)", err, n)
	}
}

package apikey_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// mapCache is the least apikey.Cache: a map. Its Set can be held back to
// let an invalidation land in the middle of a fill.
type mapCache struct {
	mu      sync.Mutex
	m       map[string]*apikey.CacheEntry
	holdSet chan chan struct{} // when set, Set waits for the channel it receives
}

func (c *mapCache) Get(id string) (*apikey.CacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return e, ok
}

func (c *mapCache) Set(id string, e *apikey.CacheEntry) {
	if c.holdSet != nil {
		release := make(chan struct{})
		c.holdSet <- release
		<-release
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id] = e
}

func (c *mapCache) Delete(id string) { c.mu.Lock(); delete(c.m, id); c.mu.Unlock() }
func (c *mapCache) Clear()           { c.mu.Lock(); clear(c.m); c.mu.Unlock() }

// A revocation that lands while a verification is filling the cache with
// the row it read before the revocation must not leave that stale row in
// the cache.
func TestCacheFillRacingRevoke(t *testing.T) {
	ctx := context.Background()
	cache := &mapCache{m: map[string]*apikey.CacheEntry{}}
	m := mustManager(t, openStore(t), apikey.Config{Cache: cache})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	cache.holdSet = make(chan chan struct{})
	done := make(chan error)
	go func() { _, err := m.Verify(ctx, token); done <- err }()
	release := <-cache.holdSet // the fill has read the active row and passed its check
	cache.holdSet = nil
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the Verify that raced the revocation: %v (it read the row before)", err)
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify after the revocation = %v, want ErrRevoked (a stale cache entry survived)", err)
	}
}

// gateStore holds back the first Lookup after reading the row, so that a
// change can land while the lookup is in flight.
type gateStore struct {
	apikey.Store
	mu      sync.Mutex
	n       int
	read    chan struct{} // closed when the first lookup has read its row
	release chan struct{} // the first lookup returns once this is closed
}

func (s *gateStore) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	s.mu.Lock()
	s.n++
	first := s.n == 1
	s.mu.Unlock()
	rec, err := s.Store.Lookup(ctx, id)
	if first {
		close(s.read)
		<-s.release
		if err := ctx.Err(); err != nil { // as a driver would notice
			return nil, err
		}
	}
	return rec, err
}

// A Verify that starts after Revoke returned must not join a lookup that
// read the row before the revocation.
func TestVerifyAfterRevokeDoesNotJoinOlderLookup(t *testing.T) {
	ctx := context.Background()
	gs := &gateStore{Store: openStore(t), read: make(chan struct{}), release: make(chan struct{})}
	m := mustManager(t, gs, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	go m.Verify(ctx, token)
	<-gs.read
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() { _, err := m.Verify(ctx, token); res <- err }()
	select {
	case err := <-res: // it did not wait for the old lookup
		if !errors.Is(err, apikey.ErrRevoked) {
			t.Errorf("Verify started after Revoke returned: %v, want ErrRevoked", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Verify started after Revoke waited for the lookup that began before it")
	}
	close(gs.release)
}

// The caller that leads a shared lookup may go away; the others waiting on
// it must still get their answer.
func TestCancelledLeaderDoesNotFailFollowers(t *testing.T) {
	gs := &gateStore{Store: openStore(t), read: make(chan struct{}), release: make(chan struct{})}
	m := mustManager(t, gs, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
	_, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	leaderCtx, cancel := context.WithCancel(context.Background())
	go m.Verify(leaderCtx, token)
	<-gs.read
	res := make(chan error, 1)
	go func() { _, err := m.Verify(context.Background(), token); res <- err }()
	time.Sleep(20 * time.Millisecond) // let the follower join the flight
	cancel()
	close(gs.release)
	if err := <-res; err != nil {
		t.Errorf("follower of a cancelled leader: %v, want the key", err)
	}
}

// VerifyShared answers what Verify answers, hands out the cache's own
// record (the same pointer on every hit), and sees a revocation on the
// next call.
func TestVerifyShared(t *testing.T) {
	ctx := context.Background()
	cache := &mapCache{m: map[string]*apikey.CacheEntry{}}
	m := mustManager(t, openStore(t), apikey.Config{Cache: cache})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "n", Scopes: []string{"read"}, Metadata: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	copied, err := m.Verify(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.VerifyShared(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	second, err := m.VerifyShared(ctx, token)
	if err != nil {
		t.Fatal(err)
	}
	if first != second {
		t.Error("two hits of VerifyShared returned different records, want the cache's one")
	}
	if copied == first {
		t.Error("Verify returned the shared record, want a copy")
	}
	if first.ID != k.ID || first.State != apikey.StateActive || !first.HasScope("read") || first.Metadata["a"] != "b" {
		t.Errorf("VerifyShared = %+v, want the active key %s", first, k.ID)
	}
	if _, err := m.VerifyShared(ctx, token[:len(token)-1]+"x"); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("VerifyShared of a bad token = %v, want ErrInvalidKey", err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.VerifyShared(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("VerifyShared after the revocation = %v, want ErrRevoked", err)
	}
	if first.State != apikey.StateActive || first.RevokedAt != nil {
		t.Errorf("a record returned before the revocation changed: %+v", first)
	}
}

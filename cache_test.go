package apikey_test

import (
	"context"
	"errors"
	"sync"
	"testing"

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

// Package ottercache is an apikey.Cache on github.com/maypok86/otter/v2: a
// bounded, concurrent in-memory cache whose entries expire after a time to
// live that depends on whether the entry is positive (a key record) or
// negative (an id known not to exist).
//
//	cache, err := ottercache.New(ottercache.Config{})
//	...
//	m, err := apikey.NewManager(store, apikey.Config{Cache: cache})
//
// The Manager evicts the keys it changes itself; when several processes
// share a store, give the Manager an apikey.Config.Invalidator too (a
// *postgres.Store or a *redisbus.Bus) so that changes made elsewhere evict
// them as well.
package ottercache

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/maypok86/otter/v2"
)

// Defaults of Config.
const (
	// DefaultMaxEntries bounds the cache: at a few hundred bytes per
	// entry, 100,000 entries hold in some tens of megabytes.
	DefaultMaxEntries = 100_000

	// DefaultTTL is how long a key record stays cached. Revocations and
	// changes made through this process evict the entry at once, and those
	// made by other processes are evicted by an invalidation listener; the
	// TTL only bounds how stale an entry can get when no listener runs (or
	// a change bypassed the Manager), so it trades a store read every 30
	// seconds per hot key for at most 30 seconds of staleness.
	DefaultTTL = 30 * time.Second

	// DefaultNegativeTTL is how long an unknown id stays cached: long
	// enough to absorb a burst of requests with a bad key, short enough
	// that nothing depends on it.
	DefaultNegativeTTL = 2 * time.Second
)

// Config configures a Cache. The zero value is usable: every field has a
// documented default.
type Config struct {
	// MaxEntries bounds the number of cached keys; the least valuable
	// entries (by otter's W-TinyLFU policy) are evicted beyond it. Zero
	// means DefaultMaxEntries.
	MaxEntries int

	// TTL is how long a key record stays cached after it was stored. Zero
	// means DefaultTTL (30s).
	TTL time.Duration

	// NegativeTTL is how long an unknown id (a nil *apikey.CacheEntry)
	// stays cached. Zero means DefaultNegativeTTL (2s).
	NegativeTTL time.Duration

	// Now, when set, is the cache's clock, for tests. Nil means the real
	// clock. With a custom clock the cache does no periodic clean-up:
	// expired entries are still never returned, and are dropped when read
	// or evicted by size.
	Now func() time.Time
}

// Cache is an apikey.Cache on otter. It is safe for concurrent use. Create
// one with New.
type Cache struct {
	c                *otter.Cache[string, *apikey.CacheEntry]
	clock            *otter.CoarseClock // nil with Config.Now
	ttl, negativeTTL time.Duration
}

// ClockResolution is how often a Cache reads the real time. otter reads
// its clock on every Get; a coarse clock makes that read as cheap as a
// variable's (about a quarter of a cache hit here), at the price of
// entries living up to this much longer or shorter than their TTL.
const ClockResolution = 100 * time.Millisecond

var _ apikey.Cache = (*Cache)(nil)

// New returns a Cache configured by cfg, or an error naming the first
// negative setting.
func New(cfg Config) (*Cache, error) {
	if cfg.MaxEntries < 0 {
		return nil, fmt.Errorf("ottercache: MaxEntries must not be negative, got %d", cfg.MaxEntries)
	}
	if cfg.TTL < 0 || cfg.NegativeTTL < 0 {
		return nil, errors.New("ottercache: TTL and NegativeTTL must not be negative")
	}
	c := &Cache{ttl: cfg.TTL, negativeTTL: cfg.NegativeTTL}
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if c.negativeTTL == 0 {
		c.negativeTTL = DefaultNegativeTTL
	}
	max := cfg.MaxEntries
	if max == 0 {
		max = DefaultMaxEntries
	}
	opts := &otter.Options[string, *apikey.CacheEntry]{
		MaximumSize: max,
		// The lifetime is set when an entry is written and not extended by
		// reads, so that a hot key is still re-read every TTL.
		ExpiryCalculator: otter.ExpiryWritingFunc(c.lifetime),
	}
	if cfg.Now != nil {
		opts.Clock = funcClock(cfg.Now)
	} else {
		c.clock = otter.NewCoarseClock(ClockResolution)
		opts.Clock = c.clock
	}
	oc, err := otter.New(opts)
	if err != nil {
		return nil, fmt.Errorf("ottercache: %w", err)
	}
	c.c = oc
	return c, nil
}

func (c *Cache) lifetime(e otter.Entry[string, *apikey.CacheEntry]) time.Duration {
	if e.Value == nil {
		return c.negativeTTL
	}
	return c.ttl
}

// Get returns the entry cached for id; ok is false when there is none or it
// expired. A nil entry with ok true records that id does not exist.
func (c *Cache) Get(id string) (e *apikey.CacheEntry, ok bool) {
	return c.c.GetIfPresent(id)
}

// Set caches e for id, for TTL, or for NegativeTTL when e is nil.
func (c *Cache) Set(id string, e *apikey.CacheEntry) {
	c.c.Set(id, e)
}

// Delete evicts id.
func (c *Cache) Delete(id string) {
	c.c.Invalidate(id)
}

// Clear evicts every entry.
func (c *Cache) Clear() {
	c.c.InvalidateAll()
}

// Len returns the approximate number of cached entries, expired ones not
// yet cleaned up included.
func (c *Cache) Len() int {
	return c.c.EstimatedSize()
}

// Close stops the cache's goroutines: the one that periodically drops
// expired entries and the one of its clock. The cache keeps working, with
// precise time reads. Close is only needed where goroutine leaks are
// checked, since both goroutines also stop once the cache is unreachable.
func (c *Cache) Close() {
	c.c.StopAllGoroutines()
	if c.clock != nil {
		c.clock.Stop()
	}
}

// funcClock adapts a time function to otter.Clock.
type funcClock func() time.Time

func (f funcClock) NowNano() int64 { return f().UnixNano() }

// Tick returns nil: no periodic clean-up with a custom clock.
func (f funcClock) Tick(time.Duration) <-chan time.Time { return nil }

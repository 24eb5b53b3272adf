package apikeytest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
)

// TestCache runs the conformance suite of apikey.Cache. newCache is called
// once per subtest and must return an empty cache that holds at least 1,000
// entries for at least ten seconds; it should register its own cleanup with
// t.Cleanup.
//
// The suite checks what the Manager relies on: a Get sees the last Set,
// Delete and Clear of the same goroutine (an eviction that is late would
// let a revoked key verify), a nil entry is cached like any other (a
// negative entry), and concurrent use is safe (run it with -race).
func TestCache(t *testing.T, newCache func(t *testing.T) apikey.Cache) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, apikey.Cache)
	}{
		{"Miss", testCacheMiss},
		{"SetGet", testCacheSetGet},
		{"Replace", testCacheReplace},
		{"Negative", testCacheNegative},
		{"Delete", testCacheDelete},
		{"Clear", testCacheClear},
		{"Concurrent", testCacheConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newCache(t)) })
	}
}

// wantEntry checks that c holds want for id.
func wantEntry(t *testing.T, c apikey.Cache, id string, want *apikey.CacheEntry) {
	t.Helper()
	if got, ok := c.Get(id); !ok || got != want {
		t.Fatalf("Get(%q) = %p, %v; want %p, true", id, got, ok, want)
	}
}

// wantMiss checks that c holds nothing for id.
func wantMiss(t *testing.T, c apikey.Cache, id string) {
	t.Helper()
	if got, ok := c.Get(id); ok {
		t.Fatalf("Get(%q) = %p, true; want a miss", id, got)
	}
}

func testCacheMiss(t *testing.T, c apikey.Cache) {
	wantMiss(t, c, "missing00000")
}

func testCacheSetGet(t *testing.T, c apikey.Cache) {
	a, b := &apikey.CacheEntry{}, &apikey.CacheEntry{}
	c.Set("aaaaaaaaaaaa", a)
	c.Set("bbbbbbbbbbbb", b)
	wantEntry(t, c, "aaaaaaaaaaaa", a)
	wantEntry(t, c, "bbbbbbbbbbbb", b)
	wantEntry(t, c, "aaaaaaaaaaaa", a) // a read takes nothing away
}

func testCacheReplace(t *testing.T, c apikey.Cache) {
	a, b := &apikey.CacheEntry{}, &apikey.CacheEntry{}
	c.Set("aaaaaaaaaaaa", a)
	c.Set("aaaaaaaaaaaa", b)
	wantEntry(t, c, "aaaaaaaaaaaa", b)
	c.Set("aaaaaaaaaaaa", nil)
	wantEntry(t, c, "aaaaaaaaaaaa", nil)
	c.Set("aaaaaaaaaaaa", a)
	wantEntry(t, c, "aaaaaaaaaaaa", a)
}

func testCacheNegative(t *testing.T, c apikey.Cache) {
	c.Set("gone00000000", nil)
	e, ok := c.Get("gone00000000")
	if !ok || e != nil || !e.Negative() {
		t.Fatalf("Get of a negative entry = %p, %v; want nil, true", e, ok)
	}
}

func testCacheDelete(t *testing.T, c apikey.Cache) {
	a, b := &apikey.CacheEntry{}, &apikey.CacheEntry{}
	c.Set("aaaaaaaaaaaa", a)
	c.Set("bbbbbbbbbbbb", b)
	c.Set("nnnnnnnnnnnn", nil)
	c.Delete("aaaaaaaaaaaa")
	wantMiss(t, c, "aaaaaaaaaaaa")
	wantEntry(t, c, "bbbbbbbbbbbb", b)
	c.Delete("nnnnnnnnnnnn")
	wantMiss(t, c, "nnnnnnnnnnnn")
	c.Delete("missing00000") // not an error
	wantEntry(t, c, "bbbbbbbbbbbb", b)
}

func testCacheClear(t *testing.T, c apikey.Cache) {
	ids := make([]string, 100)
	for i := range ids {
		ids[i] = fmt.Sprintf("clear%07d", i)
		if i%10 == 0 {
			c.Set(ids[i], nil)
		} else {
			c.Set(ids[i], &apikey.CacheEntry{})
		}
	}
	c.Clear()
	for _, id := range ids {
		wantMiss(t, c, id)
	}
	e := &apikey.CacheEntry{}
	c.Set(ids[0], e) // still usable
	wantEntry(t, c, ids[0], e)
}

// testCacheConcurrent has goroutines use ids of their own while others
// clear the cache: each must read its own writes, and a Get must never
// return an entry that was not set for the id (the race detector checks
// the rest).
func testCacheConcurrent(t *testing.T, c apikey.Cache) {
	const workers, rounds = 8, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := range workers {
		wg.Go(func() {
			id := fmt.Sprintf("worker%06d", w)
			mine := map[*apikey.CacheEntry]bool{nil: true}
			for i := range rounds {
				e := &apikey.CacheEntry{}
				mine[e] = true
				c.Set(id, e)
				// A concurrent Clear may empty the cache at any time, but
				// what Get returns must be something set for this id.
				if got, ok := c.Get(id); ok && !mine[got] {
					errs <- fmt.Errorf("Get(%q) returned an entry never set for it", id)
					return
				}
				if i%3 == 0 {
					c.Set(id, nil)
				}
				c.Delete(id)
				if got, ok := c.Get(id); ok {
					errs <- fmt.Errorf("Get(%q) after Delete by the same goroutine = %p, true; want a miss", id, got)
					return
				}
			}
		})
	}
	wg.Go(func() {
		for range rounds / 10 {
			c.Clear()
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

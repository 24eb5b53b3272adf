package ottercache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/ottercache"
)

func newClock() *apikeytest.Clock {
	return apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
}

func newCache(t *testing.T, cfg ottercache.Config) *ottercache.Cache {
	t.Helper()
	c, err := ottercache.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func TestCache(t *testing.T) {
	apikeytest.TestCache(t, func(t *testing.T) apikey.Cache { return newCache(t, ottercache.Config{}) })
}

func TestSetGetDeleteClear(t *testing.T) {
	c := newCache(t, ottercache.Config{})
	e1, e2 := &apikey.CacheEntry{}, &apikey.CacheEntry{}
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get on an empty cache: ok = true")
	}
	c.Set("a", e1)
	c.Set("b", e2)
	if got, ok := c.Get("a"); !ok || got != e1 {
		t.Fatalf("Get(a) = %p, %v; want %p, true", got, ok, e1)
	}
	c.Delete("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("Get(a) after Delete: ok = true")
	}
	if got, ok := c.Get("b"); !ok || got != e2 {
		t.Fatalf("Get(b) = %p, %v; want %p, true", got, ok, e2)
	}
	c.Set("b", e1) // replace
	if got, _ := c.Get("b"); got != e1 {
		t.Fatalf("Get(b) after replace = %p, want %p", got, e1)
	}
	c.Set("n", nil)
	c.Clear()
	for _, id := range []string{"a", "b", "n"} {
		if _, ok := c.Get(id); ok {
			t.Errorf("Get(%s) after Clear: ok = true", id)
		}
	}
}

func TestNegativeEntry(t *testing.T) {
	c := newCache(t, ottercache.Config{})
	c.Set("gone", nil)
	e, ok := c.Get("gone")
	if !ok || e != nil || !e.Negative() {
		t.Fatalf("Get(gone) = %p, %v; want nil, true", e, ok)
	}
}

func TestTTLs(t *testing.T) {
	tests := []struct {
		name  string
		cfg   ottercache.Config
		entry *apikey.CacheEntry
		alive time.Duration // still cached after this
		dead  time.Duration // gone after this
	}{
		{"positive default", ottercache.Config{}, &apikey.CacheEntry{}, ottercache.DefaultTTL - time.Second, ottercache.DefaultTTL + time.Second},
		{"negative default", ottercache.Config{}, nil, ottercache.DefaultNegativeTTL - 100*time.Millisecond, ottercache.DefaultNegativeTTL + 100*time.Millisecond},
		{"positive set", ottercache.Config{TTL: time.Hour}, &apikey.CacheEntry{}, 59 * time.Minute, 61 * time.Minute},
		{"negative set", ottercache.Config{NegativeTTL: 10 * time.Second}, nil, 9 * time.Second, 11 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			tt.cfg.Now = clk.Now
			c := newCache(t, tt.cfg)
			c.Set("k", tt.entry)
			clk.Add(tt.alive)
			if e, ok := c.Get("k"); !ok || e != tt.entry {
				t.Fatalf("after %v: Get = %p, %v; want %p, true", tt.alive, e, ok, tt.entry)
			}
			clk.Add(tt.dead - tt.alive)
			if _, ok := c.Get("k"); ok {
				t.Fatalf("after %v: Get ok = true, want expired", tt.dead)
			}
		})
	}
}

func TestTTLRealClock(t *testing.T) {
	// The real clock is read every ClockResolution (100ms): entries may
	// expire that much early or late.
	c := newCache(t, ottercache.Config{TTL: 600 * time.Millisecond, NegativeTTL: 50 * time.Millisecond})
	c.Set("p", &apikey.CacheEntry{})
	c.Set("n", nil)
	time.Sleep(250 * time.Millisecond)
	if _, ok := c.Get("n"); ok {
		t.Error("negative entry still cached after its TTL")
	}
	if _, ok := c.Get("p"); !ok {
		t.Error("positive entry gone before its TTL")
	}
	time.Sleep(600 * time.Millisecond)
	if _, ok := c.Get("p"); ok {
		t.Error("positive entry still cached after its TTL")
	}
}

func TestReadDoesNotExtend(t *testing.T) {
	clk := newClock()
	c := newCache(t, ottercache.Config{TTL: 10 * time.Second, Now: clk.Now})
	c.Set("k", &apikey.CacheEntry{})
	for range 10 { // 11s in all
		clk.Add(time.Second + 100*time.Millisecond)
		c.Get("k")
	}
	if _, ok := c.Get("k"); ok {
		t.Fatal("entry read every second still cached after its TTL: reads must not extend it")
	}
}

func TestBounded(t *testing.T) {
	const max = 100
	c := newCache(t, ottercache.Config{MaxEntries: max})
	e := &apikey.CacheEntry{}
	for i := range 10 * max {
		c.Set(fmt.Sprint(i), e)
	}
	// Eviction runs in otter's maintenance, shortly after the writes.
	deadline := time.Now().Add(2 * time.Second)
	for c.Len() > max && time.Now().Before(deadline) {
		c.Set("extra", e) // writes drive maintenance
		time.Sleep(time.Millisecond)
	}
	if n := c.Len(); n > max {
		t.Fatalf("Len = %d after %d inserts, want at most %d", n, 10*max, max)
	}
	hits := 0
	for i := range 10 * max {
		if _, ok := c.Get(fmt.Sprint(i)); ok {
			hits++
		}
	}
	if hits > max {
		t.Fatalf("%d entries readable, want at most %d", hits, max)
	}
}

func TestNewRejectsNegative(t *testing.T) {
	for _, cfg := range []ottercache.Config{{MaxEntries: -1}, {TTL: -time.Second}, {NegativeTTL: -time.Second}} {
		if _, err := ottercache.New(cfg); err == nil {
			t.Errorf("New(%+v) succeeded, want an error", cfg)
		}
	}
}

package apikey_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/memstore"
)

// counting counts the Lookups of a store; it hides the store's change
// feed, which tests hand to Config.ChangeFeed.
type counting struct {
	apikey.Store
	lookups atomic.Int64
}

func (c *counting) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	c.lookups.Add(1)
	return c.Store.Lookup(ctx, id)
}

// verifiesFromCache reports whether a Verify of token reads no store.
func verifiesFromCache(t *testing.T, m *apikey.Manager, c *counting, token string) (bool, error) {
	t.Helper()
	before := c.lookups.Load()
	_, err := m.Verify(context.Background(), token)
	return c.lookups.Load() == before, err
}

// waitAcked waits until every live instance of s has applied its last
// change.
func waitAcked(t *testing.T, s *memstore.Store) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for {
		last, err := s.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ins, err := s.Instances(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := len(ins) > 0
		for _, in := range ins {
			done = done && in.AckedSeq >= last
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances %+v have not applied change %d within 5s", ins, last)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestChangeFeedConfig(t *testing.T) {
	st := openStore(t)
	tests := []struct {
		cfg  apikey.Config
		want string
	}{
		{apikey.Config{StaleAfter: 3 * time.Second}, "StaleAfter (3s) must be below StrictTimeout (3s)"},
		{apikey.Config{StaleAfter: time.Second, StrictTimeout: 500 * time.Millisecond}, "below StrictTimeout"},
		{apikey.Config{ChangePollInterval: time.Second}, "ChangePollInterval (1s) must be below StaleAfter (1s)"},
		{apikey.Config{StaleAfter: -time.Second}, "StaleAfter must not be negative"},
		{apikey.Config{StrictTimeout: -time.Second}, "StrictTimeout must not be negative"},
	}
	for _, tt := range tests {
		if _, err := apikey.NewManager(st, tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("NewManager(%+v) error = %v, want one mentioning %q", tt.cfg, err, tt.want)
		}
	}
	for _, cfg := range []apikey.Config{
		{StaleAfter: 100 * time.Millisecond},                      // the poll interval follows (25ms)
		{StaleAfter: 5 * time.Second, StrictTimeout: time.Minute}, // both raised
		{ChangePollInterval: -1, StaleAfter: 2 * time.Second},     // polling off
	} {
		m, err := apikey.NewManager(st, cfg)
		if err != nil {
			t.Errorf("NewManager(%+v): %v", cfg, err)
			continue
		}
		m.Close(context.Background())
	}
}

// A strict call on a Manager whose store keeps no registry changes nothing
// and says why.
func TestStrictUnsupported(t *testing.T) {
	ctx := context.Background()
	st := struct{ apikey.Store }{openStore(t)} // hides the change feed
	m := mustManager(t, st, apikey.Config{StrictRevocation: true, UsageFlushInterval: -1})
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); !errors.Is(err, apikey.ErrStrictUnsupported) {
		t.Errorf("strict Revoke without a registry: %v, want ErrStrictUnsupported", err)
	}
	if err := m.Delete(ctx, k.ID); !errors.Is(err, apikey.ErrStrictUnsupported) {
		t.Errorf("strict Delete without a registry: %v, want ErrStrictUnsupported", err)
	}
	if got, err := m.Get(ctx, k.ID); err != nil || got.Revoked() {
		t.Errorf("after refused strict calls, Get = %+v, %v; want the key, active", got, err)
	}
	if _, err := m.WaitApplied(ctx); !errors.Is(err, apikey.ErrStrictUnsupported) {
		t.Errorf("WaitApplied without a registry: %v, want ErrStrictUnsupported", err)
	}
	if !m.Strict(ctx) || m.Strict(apikey.WithStrict(ctx, false)) {
		t.Error("Strict does not follow the configuration and WithStrict")
	}
	if _, err := m.Revoke(apikey.WithStrict(ctx, false), k.ID); err != nil {
		t.Errorf("Revoke with WithStrict(false): %v", err)
	}
}

// A Manager with a cache registers itself from NewManager to Close, under
// its InstanceName or HOST:PID, and the first read of the feed is done by
// NewManager: the cache answers at once.
func TestInstanceRegistration(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &counting{Store: st}
	named := mustManager(t, c, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, ChangeFeed: st,
		InstanceName: "api-1", UsageFlushInterval: -1})
	anon := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, UsageFlushInterval: -1})
	ins, err := st.Instances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	names := map[string]bool{}
	for _, in := range ins {
		names[in.Name] = true
	}
	if len(ins) != 2 || !names[host+":"+strconv.Itoa(os.Getpid())] || !names["api-1"] {
		t.Fatalf("Instances = %+v, want HOST:PID and api-1", ins)
	}
	_, token, err := named.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	verifiesFromCache(t, named, c, token)
	if hit, err := verifiesFromCache(t, named, c, token); !hit || err != nil {
		t.Errorf("second Verify right after NewManager: from cache %v, %v; want a hit", hit, err)
	}
	for _, m := range []*apikey.Manager{named, anon} {
		if err := m.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if ins, _ := st.Instances(ctx); len(ins) != 0 {
		t.Errorf("Instances after Close = %+v, want none", ins)
	}
}

// An Invalidator's message prompts a read of the feed: the acknowledgement
// follows within milliseconds, not a poll interval.
func TestInvalidatorPromptsFeedRead(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	inv := newFake()
	m := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, Invalidator: inv,
		ChangePollInterval: 2 * time.Second, StaleAfter: 4 * time.Second, StrictTimeout: 5 * time.Second, UsageFlushInterval: -1})
	s := inv.next(t)
	s.h.Subscribed()
	w := mustManager(t, st, apikey.Config{UsageFlushInterval: -1})
	k, _, err := w.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.h.Invalidate(k.ID)
	waitAcked(t, st)
	if d := time.Since(start); d > time.Second {
		t.Errorf("the feed was read %v after the Invalidator's message, want at once (the poll interval is 2s)", d)
	}
	_ = m
}

// A key created under an id that the cache knows as unknown verifies once
// the feed has reported the insert.
func TestFeedInsertEvictsUnknown(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	c := &counting{Store: st}
	r := mustManager(t, c, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, ChangeFeed: st,
		ChangePollInterval: 5 * time.Millisecond, StaleAfter: time.Second, UsageFlushInterval: -1})
	w := mustManager(t, st, apikey.Config{UsageFlushInterval: -1})
	k, token, err := w.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := st.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, st)
	for range 2 {
		if _, err := r.Verify(ctx, token); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Fatalf("Verify of a deleted key: %v, want ErrInvalidKey", err)
		}
	}
	if hit, _ := verifiesFromCache(t, r, c, token); !hit {
		t.Fatal("the unknown id is not cached: the test proves nothing")
	}
	if err := st.Insert(ctx, rec, 0, nil); err != nil { // the same key, back
		t.Fatal(err)
	}
	waitAcked(t, st)
	if _, err := r.Verify(ctx, token); err != nil {
		t.Errorf("Verify of a key inserted under an id cached as unknown, after the feed reported it: %v", err)
	}
}

// An invalidation of one id must not stop a lookup of another from filling
// the cache: with two invalidation channels (an Invalidator and the change
// feed) invalidations are frequent.
func TestInvalidationKeepsOtherFills(t *testing.T) {
	ctx := context.Background()
	cache := &mapCache{m: map[string]*apikey.CacheEntry{}}
	c := &counting{Store: openStore(t)}
	m := mustManager(t, c, apikey.Config{Cache: cache, UsageFlushInterval: -1})
	other, _, err := m.Create(ctx, apikey.CreateParams{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "filled"})
	if err != nil {
		t.Fatal(err)
	}
	cache.holdSet = make(chan chan struct{})
	done := make(chan error)
	go func() { _, err := m.Verify(ctx, token); done <- err }()
	release := <-cache.holdSet // the fill has read the row and passed its check
	cache.holdSet = nil
	m.Invalidate(other.ID)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hit, err := verifiesFromCache(t, m, c, token); !hit || err != nil {
		t.Errorf("after an invalidation of another id during the fill: from cache %v, %v; want a hit", hit, err)
	}
}

func TestNotAcknowledgedError(t *testing.T) {
	err := error(&apikey.NotAcknowledgedError{Seq: 7, Instances: []string{"a:1", "b:2"}, Timeout: 3 * time.Second, Err: context.DeadlineExceeded})
	if !errors.Is(err, apikey.ErrNotAcknowledged) || apikey.CodeOf(err) != apikey.CodeNotAcknowledged {
		t.Errorf("%v: does not match ErrNotAcknowledged or its code", err)
	}
	if got, want := err.Error(), "apikey: change applied, but not acknowledged within 3s by 2 instances: a:1, b:2"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	one := &apikey.NotAcknowledgedError{Instances: []string{"a:1"}, Timeout: time.Second, Err: errors.New("connection refused")}
	if got, want := one.Error(), "apikey: change applied, but not acknowledged within 1s by instance a:1: connection refused"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// scriptedFeed is a ChangeFeed whose changes the test appends.
type scriptedFeed struct {
	mu      sync.Mutex
	changes []apikey.KeyChange
}

func (f *scriptedFeed) add(c apikey.KeyChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c.Seq = int64(len(f.changes) + 1)
	f.changes = append(f.changes, c)
}

func (f *scriptedFeed) ChangesAfter(_ context.Context, seq int64, limit int) ([]apikey.KeyChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rest := f.changes[min(int(seq), len(f.changes)):]
	return slices.Clone(rest[:min(limit, len(rest))]), nil
}

func (f *scriptedFeed) LastChange(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return int64(len(f.changes)), nil
}

func (f *scriptedFeed) PruneChanges(context.Context, time.Duration) error { return nil }

// A truncate in the feed empties the cache.
func TestFeedTruncateClearsCache(t *testing.T) {
	ctx := context.Background()
	feed := &scriptedFeed{}
	c := &counting{Store: openStore(t)}
	m := mustManager(t, c, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, ChangeFeed: feed,
		ChangePollInterval: 5 * time.Millisecond, UsageFlushInterval: -1})
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	verifiesFromCache(t, m, c, token)
	if hit, _ := verifiesFromCache(t, m, c, token); !hit {
		t.Fatal("the key is not cached: the test proves nothing")
	}
	feed.add(apikey.KeyChange{Op: apikey.ChangeTruncate})
	deadline := time.Now().Add(5 * time.Second)
	for {
		if hit, _ := verifiesFromCache(t, m, c, token); !hit {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache still answers 5s after a truncate in the feed")
		}
		time.Sleep(time.Millisecond)
	}
}

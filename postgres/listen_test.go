package postgres_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/postgres"
)

// mapCache is a minimal apikey.Cache that counts its hits. The thing under
// test is the listener, not the cache.
type mapCache struct {
	mu   sync.Mutex
	m    map[string]*apikey.CacheEntry
	hits int
}

func newMapCache() *mapCache { return &mapCache{m: map[string]*apikey.CacheEntry{}} }

func (c *mapCache) Get(id string) (*apikey.CacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if ok {
		c.hits++
	}
	return e, ok
}

func (c *mapCache) Set(id string, e *apikey.CacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[id] = e
}

func (c *mapCache) Delete(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}

func (c *mapCache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}

func (c *mapCache) Hits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

// spy is an apikey.Invalidator around a Store that records what its Listen
// reports and how often the Manager calls it. When hold is set, a call of
// Listen after the first blocks on it before listening: the Manager has
// then suspended its cache and is reconnecting.
type spy struct {
	next *postgres.Store

	mu          sync.Mutex
	invalidated map[string]int
	all         int
	heartbeats  int
	subscribes  int
	listens     int           // calls of Listen
	drops       int           // calls of Listen that ended other than by cancellation
	changed     chan struct{} // closed and replaced on every change
	hold        chan struct{}
}

var (
	_ apikey.Invalidator     = (*spy)(nil)
	_ apikey.HeartbeatSender = (*spy)(nil)
)

func newSpy(next *postgres.Store) *spy {
	return &spy{next: next, invalidated: map[string]int{}, changed: make(chan struct{})}
}

// note changes the spy's record under its lock and wakes waitFor.
func (s *spy) note(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *spy) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	var hold chan struct{}
	s.note(func() {
		s.listens++
		if s.listens > 1 {
			hold = s.hold
		}
	})
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	err := s.next.Listen(ctx, spyHandler{s, h})
	if ctx.Err() == nil {
		s.note(func() { s.drops++ })
	}
	return err
}

func (s *spy) SendHeartbeat(ctx context.Context, token string) error {
	return s.next.SendHeartbeat(ctx, token)
}

// spyHandler records the calls of Listen and forwards them to the
// Manager's handler.
type spyHandler struct {
	s    *spy
	next apikey.InvalidationHandler
}

func (h spyHandler) Subscribed() {
	h.next.Subscribed()
	h.s.note(func() { h.s.subscribes++ })
}

func (h spyHandler) Invalidate(id string) {
	h.next.Invalidate(id)
	h.s.note(func() { h.s.invalidated[id]++ })
}

func (h spyHandler) InvalidateAll() {
	h.next.InvalidateAll()
	h.s.note(func() { h.s.all++ })
}

func (h spyHandler) Heartbeat(token string) {
	h.next.Heartbeat(token)
	h.s.note(func() { h.s.heartbeats++ })
}

// waitFor waits until cond, checked under the spy's lock, holds.
func (s *spy) waitFor(t testing.TB, what string, timeout time.Duration, cond func(*spy) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		ok, ch := cond(s), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
	}
}

// pair is two instances on one schema: A writes, B verifies through a
// cache that its Manager keeps fresh with B's store as Invalidator.
type pair struct {
	a, b    *apikey.Manager
	sa, sb  *postgres.Store
	cache   *mapCache
	spy     *spy
	appName string
}

func newPair(t testing.TB, cfg apikey.Config) *pair {
	t.Helper()
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	p := &pair{cache: newMapCache(), appName: "apikey_listen_test_" + strings.ToLower(rand.Text()[:10])}
	p.sa = openStore(t, dsn, schema)
	if err := p.sa.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	p.sb = openStore(t, dsn, schema, func(cfg *pgxpool.Config) {
		cfg.ConnConfig.RuntimeParams["application_name"] = p.appName
	})
	var err error
	if p.a, err = apikey.NewManager(p.sa, apikey.Config{UsageFlushInterval: -1}); err != nil {
		t.Fatal(err)
	}
	p.spy = newSpy(p.sb)
	cfg.Cache, cfg.Invalidator, cfg.UsageFlushInterval = p.cache, p.spy, -1
	if p.b, err = apikey.NewManager(p.sb, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.b.Close(ctx); err != nil { // waits for Listen to return
			t.Errorf("Close: %v", err)
		}
	})
	p.spy.waitFor(t, "the first subscription", 5*time.Second, func(s *spy) bool { return s.subscribes >= 1 })
	return p
}

// cached creates a key on A and verifies it twice on B, the second time
// from B's cache.
func (p *pair) cached(t testing.TB, name string) (*apikey.Key, string) {
	t.Helper()
	ctx := context.Background()
	k, token, err := p.a.Create(ctx, apikey.CreateParams{Name: name, Scopes: []string{"read"}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	// B verifies until its cache serves the key. A cache may be emptied
	// as a whole at any time (a listener that reconnects flushes it), so
	// one miss on a loaded machine is not a failure; five in a row are.
	for range 5 {
		hits := p.cache.Hits()
		for range 2 {
			if _, err := p.b.Verify(ctx, token); err != nil {
				t.Fatalf("Verify on B: %v", err)
			}
		}
		if p.cache.Hits() > hits {
			return k, token
		}
	}
	t.Fatalf("B's second Verify did not hit its cache, five times over")
	return nil, ""
}

// within polls check until it returns true, for at most limit, and returns
// how long that took.
func within(t testing.TB, what string, limit time.Duration, check func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !check() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not seen within %v", what, limit)
		}
		time.Sleep(50 * time.Microsecond)
	}
	return time.Since(start)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

func rejects(b *apikey.Manager, token string, want error) func() bool {
	return func() bool {
		_, err := b.Verify(context.Background(), token)
		return errors.Is(err, want)
	}
}

func TestListenInvalidatesAcrossInstances(t *testing.T) {
	p := newPair(t, apikey.Config{})
	ctx := t.Context()
	const trials = 50
	var revoke, update, del []time.Duration
	for i := range trials {
		// Revoke on A: B refuses the token.
		k, token := p.cached(t, fmt.Sprint("revoke ", i))
		if _, err := p.a.Revoke(ctx, k.ID); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		revoke = append(revoke, within(t, "revocation on B", time.Second, rejects(p.b, token, apikey.ErrRevoked)))

		// Update on A: B sees the new scopes.
		k, token = p.cached(t, fmt.Sprint("update ", i))
		if _, err := p.a.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &[]string{"write"}}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		update = append(update, within(t, "new scopes on B", time.Second, func() bool {
			got, err := p.b.Verify(ctx, token)
			return err == nil && slices.Equal(got.Scopes, []string{"write"})
		}))

		// Delete on A: B no longer knows the key.
		k, token = p.cached(t, fmt.Sprint("delete ", i))
		if err := p.a.Delete(ctx, k.ID); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		del = append(del, within(t, "deletion on B", time.Second, rejects(p.b, token, apikey.ErrInvalidKey)))
	}
	for _, m := range []struct {
		name string
		d    []time.Duration
	}{{"revoke", revoke}, {"update", update}, {"delete", del}} {
		t.Logf("%s on A -> seen on B over %d trials: p50 %v, p99 %v, max %v", m.name, len(m.d),
			percentile(m.d, 0.50), percentile(m.d, 0.99), percentile(m.d, 1))
	}
}

// TestListenControl shows that without Listen, B's cache serves a revoked
// key: the other tests are not vacuous.
func TestListenControl(t *testing.T) {
	dsn := testDSN(t)
	schema := newSchema(t, dsn)
	sa, sb := openStore(t, dsn, schema), openStore(t, dsn, schema)
	if err := sa.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	a, _ := apikey.NewManager(sa, apikey.Config{UsageFlushInterval: -1})
	b, _ := apikey.NewManager(sb, apikey.Config{Cache: newMapCache(), UsageFlushInterval: -1})
	k, token, err := a.Create(t.Context(), apikey.CreateParams{Name: "stale"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(t.Context(), token); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Revoke(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := b.Verify(t.Context(), token); err != nil {
		t.Fatalf("without a listener, B's cache should still serve the key; got %v", err)
	}
}

func TestListenDirectSQL(t *testing.T) {
	p := newPair(t, apikey.Config{})
	ctx := t.Context()
	k, token := p.cached(t, "sql")
	if _, err := p.sa.Pool().Exec(ctx, "UPDATE apikey_keys SET revoked_at = now() WHERE id = $1", k.ID); err != nil {
		t.Fatalf("UPDATE: %v", err)
	}
	d := within(t, "a revocation made with SQL, on B", time.Second, rejects(p.b, token, apikey.ErrRevoked))
	t.Logf("direct SQL revocation seen on B after %v", d)

	// TRUNCATE empties every cache.
	_, token = p.cached(t, "truncated")
	if _, err := p.sa.Pool().Exec(ctx, "TRUNCATE apikey_keys"); err != nil {
		t.Fatalf("TRUNCATE: %v", err)
	}
	within(t, "a TRUNCATE, on B", time.Second, rejects(p.b, token, apikey.ErrInvalidKey))
}

func TestListenIgnoresLastUsed(t *testing.T) {
	p := newPair(t, apikey.Config{})
	ctx := t.Context()
	k, _ := p.cached(t, "used")
	if _, err := p.sa.Pool().Exec(ctx, "UPDATE apikey_keys SET last_used_at = now() WHERE id = $1", k.ID); err != nil {
		t.Fatalf("UPDATE: %v", err)
	}
	if err := p.sa.RecordUsage(ctx, []apikey.UsageCount{{KeyID: k.ID, Bucket: time.Now().Truncate(time.Minute), Outcome: "valid", Count: 3}},
		map[string]time.Time{k.ID: time.Now().Add(time.Minute)}); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	p.spy.mu.Lock()
	n := p.spy.invalidated[k.ID]
	p.spy.mu.Unlock()
	if n != 0 {
		t.Errorf("writes of last_used_at alone invalidated the key %d times, want 0", n)
	}
	if got, err := p.sa.Lookup(ctx, k.ID); err != nil || got.LastUsedAt == nil {
		t.Fatalf("Lookup: %v, LastUsedAt %v: the writes did not happen", err, got.LastUsedAt)
	}
	// Positive control: the same statement on another column notifies.
	if _, err := p.sa.Pool().Exec(ctx, "UPDATE apikey_keys SET name = 'renamed', last_used_at = now() WHERE id = $1", k.ID); err != nil {
		t.Fatalf("UPDATE: %v", err)
	}
	p.spy.waitFor(t, "the invalidation of a renamed key", time.Second, func(s *spy) bool { return s.invalidated[k.ID] > 0 })
}

func TestListenFailSafe(t *testing.T) {
	p := newPair(t, apikey.Config{})
	ctx := t.Context()
	k, token := p.cached(t, "fail-safe")

	// Hold the next Listen, which the Manager calls once it has suspended
	// B's cache after the connection died, so that the revocation below is
	// certainly made while nobody listens.
	hold := make(chan struct{})
	p.spy.mu.Lock()
	p.spy.hold = hold
	listens, subscribes := p.spy.listens, p.spy.subscribes
	p.spy.mu.Unlock()

	var killed int
	if err := p.sa.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND query LIKE 'LISTEN%'`, p.appName).Scan(&killed); err != nil {
		t.Fatalf("terminate the listener's backend: %v", err)
	}
	if killed != 1 {
		t.Fatalf("terminated %d listener backends, want 1", killed)
	}
	p.spy.waitFor(t, "a new Listen after the connection died", 5*time.Second, func(s *spy) bool { return s.listens > listens })

	if _, err := p.a.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	// The notification is lost, but B no longer trusts its cache.
	if _, err := p.b.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify on B while the listener is down: err = %v, want %v", err, apikey.ErrRevoked)
	}
	p.spy.mu.Lock()
	p.spy.hold = nil
	p.spy.mu.Unlock()
	close(hold)

	p.spy.waitFor(t, "a new subscription after reconnecting", 5*time.Second, func(s *spy) bool { return s.subscribes > subscribes })
	for range 3 {
		if _, err := p.b.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
			t.Errorf("Verify on B after the listener came back: err = %v, want %v", err, apikey.ErrRevoked)
		}
	}
	// And the new connection delivers.
	k2, token2 := p.cached(t, "after reconnect")
	if _, err := p.a.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	within(t, "a revocation after the reconnection, on B", time.Second, rejects(p.b, token2, apikey.ErrRevoked))
}

// TestListenHealthCheck checks that a quiet listener's heartbeats come
// back and that it stays up.
func TestListenHealthCheck(t *testing.T) {
	p := newPair(t, apikey.Config{InvalidationHeartbeat: 20 * time.Millisecond})
	time.Sleep(300 * time.Millisecond) // several heartbeats
	p.spy.mu.Lock()
	drops, subscribes, heartbeats := p.spy.drops, p.spy.subscribes, p.spy.heartbeats
	p.spy.mu.Unlock()
	if drops != 0 || subscribes != 1 {
		t.Errorf("a healthy, quiet listener: %d drops, %d subscriptions; want 0, 1", drops, subscribes)
	}
	if heartbeats < 3 {
		t.Errorf("%d heartbeats came back in 300ms at one every 20ms, want at least 3", heartbeats)
	}
	k, token := p.cached(t, "after heartbeats")
	if _, err := p.a.Revoke(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	within(t, "a revocation after heartbeats, on B", time.Second, rejects(p.b, token, apikey.ErrRevoked))
}

// TestInvalidator runs the Invalidator conformance suite on a Store whose
// connections go through a proxy that can freeze them; the Managers of the
// suite read and write through a Store on the same schema that does not.
func TestInvalidator(t *testing.T) {
	apikeytest.TestInvalidator(t, func(t *testing.T) apikeytest.InvalidatorHarness {
		dsn := testDSN(t)
		schema := newSchema(t, dsn)
		direct := openStore(t, dsn, schema)
		if err := direct.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate: %v", err)
		}
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		proxy := apikeytest.NewProxy(t, net.JoinHostPort(cfg.ConnConfig.Host, strconv.Itoa(int(cfg.ConnConfig.Port))))
		host, port, _ := net.SplitHostPort(proxy.Addr())
		portNum, _ := strconv.Atoi(port)
		appName := "apikey_invalidator_test_" + strings.ToLower(rand.Text()[:10])
		proxied := openStore(t, dsn, schema, func(cfg *pgxpool.Config) {
			cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Fallbacks = host, uint16(portNum), nil
			cfg.ConnConfig.RuntimeParams["application_name"] = appName
		})
		return apikeytest.InvalidatorHarness{
			Invalidator: proxied,
			Store:       direct,
			Drop: func(ctx context.Context) error {
				var killed int
				err := direct.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
					WHERE application_name = $1 AND query LIKE 'LISTEN%'`, appName).Scan(&killed)
				if err == nil && killed == 0 {
					err = errors.New("no listening backend to terminate")
				}
				return err
			},
			Freeze: func() func() { proxy.Freeze(); return proxy.Thaw },
		}
	})
}

// BenchmarkInvalidation measures how long a revocation made on instance A
// takes to be refused by instance B, whose cache Listen keeps fresh, over
// 200 trials (or b.N if larger). It reports p50, p95 and p99 in ms.
func BenchmarkInvalidation(b *testing.B) {
	p := newPair(b, apikey.Config{})
	ctx := context.Background()
	n := max(b.N, 200)
	lat := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := range n {
		b.StopTimer()
		k, token := p.cached(b, fmt.Sprint("bench ", i))
		b.StartTimer()
		if _, err := p.a.Revoke(ctx, k.ID); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, within(b, "revocation on B", time.Second, rejects(p.b, token, apikey.ErrRevoked)))
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.95)), "p95-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
}

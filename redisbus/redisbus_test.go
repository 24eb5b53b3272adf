package redisbus_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/redisbus"
	"github.com/go-apikey/apikey/sqlite"
	"github.com/redis/go-redis/v9"
)

// counting wraps a Bus and counts what its Listen reports and how often
// the Manager calls it.
type counting struct {
	*redisbus.Bus
	invalidations, all, subscribes, listens, drops atomic.Int64
}

func (c *counting) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	c.listens.Add(1)
	err := c.Bus.Listen(ctx, countingHandler{c, h})
	if ctx.Err() == nil {
		c.drops.Add(1)
	}
	return err
}

type countingHandler struct {
	c *counting
	apikey.InvalidationHandler
}

func (h countingHandler) Invalidate(id string) {
	h.InvalidationHandler.Invalidate(id)
	h.c.invalidations.Add(1)
}

func (h countingHandler) InvalidateAll() {
	h.InvalidationHandler.InvalidateAll()
	h.c.all.Add(1)
}

func (h countingHandler) Subscribed() {
	h.InvalidationHandler.Subscribed()
	h.c.subscribes.Add(1)
}

func redisAddr(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("APIKEY_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to run the tests against a real Redis")
	}
	return addr
}

func uniqueChannel(t *testing.T) string {
	return fmt.Sprintf("apikey-test:%s:%d", t.Name(), time.Now().UnixNano())
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func newBus(t *testing.T, client redis.UniversalClient, channel string) *redisbus.Bus {
	t.Helper()
	b, err := redisbus.New(client, channel)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// openSQLite opens a Store on the SQLite file path, migrated.
func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

type instances struct {
	a, b *apikey.Manager
	inv  *counting     // B's Invalidator
	sub  *redis.Client // B's client
}

// twoInstances opens two Stores on one SQLite file: A publishes its
// changes, B caches and listens.
func twoInstances(t *testing.T, addr string) *instances {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	sa, sb := openSQLite(t, path), openSQLite(t, path)
	channel := uniqueChannel(t)
	pub := redis.NewClient(&redis.Options{Addr: addr})
	sub := redis.NewClient(&redis.Options{Addr: addr, ClientName: "redisbus-test-" + fmt.Sprint(time.Now().UnixNano())})
	t.Cleanup(func() { pub.Close(); sub.Close() })

	a, err := apikey.NewManager(sa, apikey.Config{Invalidator: newBus(t, pub, channel), UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	inv := &counting{Bus: newBus(t, sub, channel)}
	b, err := apikey.NewManager(sb, apikey.Config{Cache: cache, Invalidator: inv, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.Close(ctx)
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		cache.Close()
	})
	waitFor(t, "the subscription", 5*time.Second, func() bool { return inv.subscribes.Load() >= 1 })
	return &instances{a: a, b: b, inv: inv, sub: sub}
}

func TestRevokeOnAInvalidatesB(t *testing.T) {
	in := twoInstances(t, redisAddr(t))
	ctx := context.Background()
	k, token, err := in.a.Create(ctx, apikey.CreateParams{Name: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.b.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	before := in.inv.invalidations.Load()
	if _, err := in.a.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject the key revoked on A", time.Second, func() bool {
		_, err := in.b.Verify(ctx, token)
		return errors.Is(err, apikey.ErrRevoked)
	})
	// The database's change log may evict the key first; Redis must still
	// carry the invalidation.
	waitFor(t, "B to receive the invalidation over Redis", time.Second, func() bool {
		return in.inv.invalidations.Load() > before
	})
}

func TestUpdateDeleteRollOnAInvalidateB(t *testing.T) {
	in := twoInstances(t, redisAddr(t))
	ctx := context.Background()
	warm := func(token string) {
		t.Helper()
		if _, err := in.b.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	k, token, _ := in.a.Create(ctx, apikey.CreateParams{Name: "u", Scopes: []string{"read"}})
	warm(token)
	scopes := []string{"write"}
	if _, err := in.a.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &scopes}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to see the update", time.Second, func() bool {
		got, err := in.b.Verify(ctx, token)
		return err == nil && slices.Equal(got.Scopes, scopes)
	})

	_, fresh, err := in.a.Roll(ctx, k.ID, apikey.RollOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject the rolled-away token", time.Second, func() bool {
		_, err := in.b.Verify(ctx, token)
		return errors.Is(err, apikey.ErrInvalidKey)
	})
	warm(fresh)

	if err := in.a.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject the deleted key", time.Second, func() bool {
		_, err := in.b.Verify(ctx, fresh)
		return errors.Is(err, apikey.ErrInvalidKey)
	})
}

// TestRevocationLatency reports how long B takes to reject a key revoked
// on A, over many trials; it asserts the bound loosely (1s).
func TestRevocationLatency(t *testing.T) {
	in := twoInstances(t, redisAddr(t))
	ctx := context.Background()
	const trials = 200
	lat := make([]time.Duration, 0, trials)
	for range trials {
		k, token, err := in.a.Create(ctx, apikey.CreateParams{Name: "lat"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.b.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := in.a.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		for {
			if _, err := in.b.Verify(ctx, token); errors.Is(err, apikey.ErrRevoked) {
				break
			}
			if time.Since(start) > time.Second {
				t.Fatalf("B still accepts a key revoked on A after %v", time.Since(start))
			}
			time.Sleep(20 * time.Microsecond)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("revocation on A rejected by B: p50 %v, p99 %v, max %v over %d trials (time from Revoke call)",
		lat[trials/2], lat[trials*99/100], lat[trials-1], trials)
}

// killPubSub closes, from another connection, the pub/sub connections of
// the client named name (only ours: others may share the server).
func killPubSub(t *testing.T, addr, name string) int {
	t.Helper()
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	ctx := context.Background()
	list, err := admin.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	killed := 0
	for _, line := range strings.Split(list, "\n") {
		fields := map[string]string{}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["name"] == name && strings.Contains(fields["flags"], "P") {
			if err := admin.Do(ctx, "CLIENT", "KILL", "ID", fields["id"]).Err(); err != nil {
				t.Fatal(err)
			}
			killed++
		}
	}
	return killed
}

func TestConnectionLossSuspendsCache(t *testing.T) {
	addr := redisAddr(t)
	in := twoInstances(t, addr)
	ctx := context.Background()
	k, token, _ := in.a.Create(ctx, apikey.CreateParams{Name: "kill"})
	if _, err := in.b.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	d0, s0 := in.inv.drops.Load(), in.inv.subscribes.Load()
	if n := killPubSub(t, addr, in.sub.Options().ClientName); n != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1", n)
	}
	waitFor(t, "Listen to report the killed connection", 5*time.Second, func() bool { return in.inv.drops.Load() > d0 })
	waitFor(t, "a new subscription", 5*time.Second, func() bool { return in.inv.subscribes.Load() > s0 })
	// Invalidations flow again.
	if _, err := in.b.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := in.a.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B to reject a key revoked after the reconnection", time.Second, func() bool {
		_, err := in.b.Verify(ctx, token)
		return errors.Is(err, apikey.ErrRevoked)
	})
}

// countingStore counts Lookups, to tell a cached verification from one
// that read the store.
type countingStore struct {
	apikey.Store
	lookups atomic.Int64
}

func (s *countingStore) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	s.lookups.Add(1)
	return s.Store.Lookup(ctx, id)
}

func TestListenUnreachableStaysSuspended(t *testing.T) {
	// Nothing listens on port 1: no Redis is needed.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer client.Close()
	inv := &counting{Bus: newBus(t, client, "ch")}
	store := &countingStore{Store: openSQLite(t, filepath.Join(t.TempDir(), "keys.db"))}
	var unsubscribed atomic.Int64
	cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	m, err := apikey.NewManager(store, apikey.Config{
		Cache: cache, Invalidator: inv, UsageFlushInterval: -1,
		OnInvalidationError: func(err error) {
			if errors.Is(err, apikey.ErrUnsubscribed) {
				unsubscribed.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, token, err := m.Create(ctx, apikey.CreateParams{Name: "never cached"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		before := store.lookups.Load()
		if _, err := m.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
		if store.lookups.Load() == before {
			t.Fatal("Verify answered from the cache while the Invalidator never subscribed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if l, s, u := inv.listens.Load(), inv.subscribes.Load(), unsubscribed.Load(); l < 2 || s != 0 || u < 2 {
		t.Fatalf("Listen called %d times, subscribed %d times, ErrUnsubscribed reported %d times; want at least 2, 0, at least 2", l, s, u)
	}
}

func TestNewNeedsClientAndChannel(t *testing.T) {
	if _, err := redisbus.New(redis.NewClient(&redis.Options{}), ""); err == nil {
		t.Error("New with an empty channel succeeded")
	}
	if _, err := redisbus.New(nil, "ch"); err == nil {
		t.Error("New without a client succeeded")
	}
}

// TestManagerPublishesChanges checks what a Manager publishes: the ids of
// the keys it changes, not those it creates or rejects.
func TestManagerPublishesChanges(t *testing.T) {
	addr := redisAddr(t)
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ctx := context.Background()
	channel := uniqueChannel(t)
	ps := client.Subscribe(ctx, channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil { // the confirmation
		t.Fatal(err)
	}
	m, err := apikey.NewManager(openSQLite(t, filepath.Join(t.TempDir(), "keys.db")),
		apikey.Config{Invalidator: newBus(t, client, channel), UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "published"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, token+"x"); err == nil {
		t.Fatal("a bad token verified")
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Payload != k.ID {
		t.Fatalf("first message = %q, want the revoked key's id %q", msg.Payload, k.ID)
	}
}

// TestPublishDoesNotBlock checks that a Manager whose Redis does not answer
// still completes a revocation within the publish timeout, and reports the
// lost invalidation.
func TestPublishDoesNotBlock(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "10.255.255.1:6379"}) // unroutable: dial hangs
	defer client.Close()
	var notPublished atomic.Int64
	const timeout = 300 * time.Millisecond
	m, err := apikey.NewManager(openSQLite(t, filepath.Join(t.TempDir(), "keys.db")), apikey.Config{
		Invalidator: newBus(t, client, "ch"), InvalidationTimeout: timeout, UsageFlushInterval: -1,
		OnInvalidationError: func(err error) {
			if errors.Is(err, apikey.ErrNotPublished) {
				notPublished.Add(1)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	defer m.Close(ctx)
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "unpublished"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v (a failed publish must not fail the revocation)", err)
	}
	if d := time.Since(start); d > timeout+500*time.Millisecond {
		t.Fatalf("a revocation whose publish failed took %v, want about the timeout (%v)", d, timeout)
	}
	if n := notPublished.Load(); n != 1 {
		t.Fatalf("ErrNotPublished reported %d times, want 1", n)
	}
}

// TestEmptyPayloadEmptiesCaches checks that PUBLISH of an empty message
// empties every cache.
func TestEmptyPayloadEmptiesCaches(t *testing.T) {
	in := twoInstances(t, redisAddr(t))
	ctx := context.Background()
	if err := in.sub.Publish(ctx, in.inv.Channel(), "").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "InvalidateAll", time.Second, func() bool { return in.inv.all.Load() == 1 })
}

// TestInvalidator runs the Invalidator conformance suite on a Bus whose
// client goes through a proxy that can freeze it.
func TestInvalidator(t *testing.T) {
	addr := redisAddr(t)
	apikeytest.TestInvalidator(t, func(t *testing.T) apikeytest.InvalidatorHarness {
		proxy := apikeytest.NewProxy(t, addr)
		name := "redisbus-conformance-" + fmt.Sprint(time.Now().UnixNano())
		client := redis.NewClient(&redis.Options{Addr: proxy.Addr(), ClientName: name})
		t.Cleanup(func() { client.Close() })
		return apikeytest.InvalidatorHarness{
			Invalidator: newBus(t, client, uniqueChannel(t)),
			Store:       openSQLite(t, filepath.Join(t.TempDir(), "keys.db")),
			Drop: func(context.Context) error {
				if n := killPubSub(t, addr, name); n == 0 {
					return errors.New("no subscription to kill")
				}
				return nil
			},
			Freeze: func() func() { proxy.Freeze(); return proxy.Thaw },
		}
	})
}

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
	"github.com/go-apikey/apikey/ottercache"
	"github.com/go-apikey/apikey/redisbus"
	"github.com/go-apikey/apikey/sqlite"
	"github.com/redis/go-redis/v9"
)

// counting wraps an Invalidator and counts its calls.
type counting struct {
	inv                              redisbus.Invalidator
	invalidations, suspends, resumes atomic.Int64
	trusted                          atomic.Bool
}

func (c *counting) Invalidate(id string) { c.invalidations.Add(1); c.inv.Invalidate(id) }
func (c *counting) SuspendCache()        { c.trusted.Store(false); c.suspends.Add(1); c.inv.SuspendCache() }
func (c *counting) ResumeCache()         { c.inv.ResumeCache(); c.resumes.Add(1); c.trusted.Store(true) }

// nop is an Invalidator without a cache behind it.
type nop struct{}

func (nop) Invalidate(string) {}
func (nop) SuspendCache()     {}
func (nop) ResumeCache()      {}

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

// listen runs Listen in the background until the test ends.
func listen(t *testing.T, client redis.UniversalClient, channel string, inv redisbus.Invalidator) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- redisbus.Listen(ctx, client, channel, inv) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Listen returned %v, want context.Canceled", err)
			}
		case <-time.After(5 * time.Second):
			t.Error("Listen did not return after its context was cancelled")
		}
	})
}

type instances struct {
	a, b *apikey.Manager
	inv  *counting     // around b
	sub  *redis.Client // B's subscriber client
}

// twoInstances opens two Stores on one SQLite file: A publishes its
// changes, B caches and listens.
func twoInstances(t *testing.T, addr string) *instances {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keys.db")
	open := func() *sqlite.Store {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	sa, sb := open(), open()
	if err := sa.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	channel := uniqueChannel(t)
	pub := redis.NewClient(&redis.Options{Addr: addr})
	sub := redis.NewClient(&redis.Options{Addr: addr, ClientName: "redisbus-test-" + fmt.Sprint(time.Now().UnixNano())})
	t.Cleanup(func() { pub.Close(); sub.Close() })

	a, err := apikey.NewManager(sa, apikey.Config{OnEvent: redisbus.Publisher(pub, channel), UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	cache, err := ottercache.New(ottercache.Config{TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, err := apikey.NewManager(sb, apikey.Config{Cache: cache, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(ctx); b.Close(ctx); cache.Close() })
	in := &instances{a: a, b: b, inv: &counting{inv: b}}
	listen(t, sub, channel, in.inv)
	waitFor(t, "the subscription", 5*time.Second, func() bool { return in.inv.resumes.Load() >= 1 })
	in.sub = sub
	return in
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
	if in.inv.invalidations.Load() == before {
		t.Fatal("B rejected the key without receiving an invalidation")
	}
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

	_, fresh, err := in.a.Roll(ctx, k.ID)
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
	s0, r0 := in.inv.suspends.Load(), in.inv.resumes.Load()
	if n := killPubSub(t, addr, in.sub.Options().ClientName); n != 1 {
		t.Fatalf("killed %d pub/sub connections, want 1", n)
	}
	waitFor(t, "SuspendCache after the connection was killed", 5*time.Second, func() bool { return in.inv.suspends.Load() > s0 })
	waitFor(t, "ResumeCache after the reconnection", 5*time.Second, func() bool { return in.inv.resumes.Load() > r0 && in.inv.trusted.Load() })
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

func TestListenUnreachableStaysSuspended(t *testing.T) {
	// Nothing listens on port 1: no Redis is needed.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond})
	defer client.Close()
	inv := &counting{inv: nop{}}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := redisbus.Listen(ctx, client, "ch", inv)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Listen = %v, want context.DeadlineExceeded", err)
	}
	if inv.suspends.Load() < 1 || inv.resumes.Load() != 0 {
		t.Fatalf("suspends = %d, resumes = %d; want at least 1 and 0", inv.suspends.Load(), inv.resumes.Load())
	}
}

func TestListenNeedsChannel(t *testing.T) {
	if err := redisbus.Listen(context.Background(), redis.NewClient(&redis.Options{}), "", nop{}); err == nil {
		t.Fatal("Listen with an empty channel succeeded")
	}
}

func TestPublisherIgnoresOtherEvents(t *testing.T) {
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
	pub := redisbus.Publisher(client, channel)
	pub(apikey.Event{Type: apikey.EventCreated, KeyID: "created00000"})
	pub(apikey.Event{Type: apikey.EventVerifyRejected, KeyID: "rejected0000"})
	pub(apikey.Event{Type: apikey.EventRevoked, KeyID: "revoked00000"})
	msg, err := ps.ReceiveMessage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Payload != "revoked00000" {
		t.Fatalf("first message = %q, want the revoked key's id", msg.Payload)
	}
}

func TestPublisherDoesNotBlock(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "10.255.255.1:6379"}) // unroutable: dial hangs
	defer client.Close()
	pub := redisbus.Publisher(client, "ch")
	start := time.Now()
	pub(apikey.Event{Type: apikey.EventRevoked, KeyID: "abc"})
	if d := time.Since(start); d > redisbus.PublishTimeout+500*time.Millisecond {
		t.Fatalf("a failing publish took %v, want about PublishTimeout (%v)", d, redisbus.PublishTimeout)
	}
}

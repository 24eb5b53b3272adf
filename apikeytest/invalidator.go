package apikeytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// InvalidatorHarness is what a backend's test gives TestInvalidator for
// one subtest: an Invalidator and a store whose changes it carries.
type InvalidatorHarness struct {
	// Invalidator is the backend under test. Required.
	Invalidator apikey.Invalidator

	// Store is a fresh, migrated store whose changes reach Invalidator:
	// through the database itself (a trigger that notifies), or through
	// the Manager publishing them when Invalidator is an
	// apikey.InvalidationPublisher. The suite's Managers read and write
	// through it. Required.
	Store apikey.Store

	// Drop, when set, breaks the connection of every Listen running on
	// Invalidator from outside, as a server that restarts would (for
	// example by terminating the database backend that listens, or with
	// Proxy.Drop). Nil skips the subtests that need it.
	Drop func(ctx context.Context) error

	// Freeze, when set, makes the connections of Invalidator silent but
	// open, as a network partition would, until thaw is called (for
	// example with Proxy.Freeze and Proxy.Thaw, Invalidator dialling
	// through the proxy and Store not). Nil skips the subtests that need
	// it.
	Freeze func() (thaw func())
}

// TestInvalidator runs the conformance suite of apikey.Invalidator.
// newHarness is called once per subtest and must return a harness whose
// store and channel no other subtest uses; it should register its own
// cleanup with t.Cleanup and may call t.Skip when the backend is not
// available.
//
// The suite checks the seam itself (Listen signals Subscribed, then
// delivers the id of every key changed after that, carries heartbeats,
// returns on cancellation and reports a dropped connection) and what a
// Manager makes of it: a key revoked through one Manager is refused by
// another that had it cached, the cache is bypassed while the connection
// is down or silent, and trusted again once it is back.
func TestInvalidator(t *testing.T, newHarness func(t *testing.T) InvalidatorHarness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, InvalidatorHarness)
	}{
		{"SubscribedThenDelivers", testInvalidatorDelivers},
		{"ChangeRightAfterSubscribed", testInvalidatorNoGap},
		{"Heartbeat", testInvalidatorHeartbeat},
		{"CancelStops", testInvalidatorCancel},
		{"DropReported", testInvalidatorDrop},
		{"ManagerRevocation", testInvalidatorManager},
		{"ManagerDrop", testInvalidatorManagerDrop},
		{"ManagerSilence", testInvalidatorManagerSilence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newHarness(t)) })
	}
}

// recorder is an InvalidationHandler that records what Listen reports.
type recorder struct {
	mu         sync.Mutex
	subscribed int
	ids        map[string]int
	all        int
	beats      map[string]int
	changed    chan struct{} // closed and replaced on every call
}

func newRecorder() *recorder {
	return &recorder{ids: map[string]int{}, beats: map[string]int{}, changed: make(chan struct{})}
}

func (r *recorder) note(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) Subscribed()            { r.note(func() { r.subscribed++ }) }
func (r *recorder) Invalidate(id string)   { r.note(func() { r.ids[id]++ }) }
func (r *recorder) InvalidateAll()         { r.note(func() { r.all++ }) }
func (r *recorder) Heartbeat(token string) { r.note(func() { r.beats[token]++ }) }

// waitFor waits until cond, checked under the recorder's lock, holds.
func (r *recorder) waitFor(t *testing.T, what string, timeout time.Duration, cond func(*recorder) bool) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		ok, ch := cond(r), r.changed
		r.mu.Unlock()
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

// listening runs Listen with a recorder until the test ends, and checks
// then that it returned the context's error.
type listening struct {
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

func listen(t *testing.T, inv apikey.Invalidator) *listening {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	l := &listening{rec: newRecorder(), cancel: cancel, done: make(chan error, 1)}
	go func() { l.done <- inv.Listen(ctx, l.rec) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-l.done:
		case <-time.After(10 * time.Second):
			t.Error("Listen did not return within 10s of its context's cancellation")
		}
	})
	return l
}

// subscribed waits for the first Subscribed.
func (l *listening) subscribed(t *testing.T) {
	t.Helper()
	l.rec.waitFor(t, "Subscribed", 10*time.Second, func(r *recorder) bool { return r.subscribed > 0 })
}

// writer returns a Manager over h.Store that publishes through
// h.Invalidator, without a cache: it listens to nothing.
func writer(t *testing.T, h InvalidatorHarness) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(h.Store, apikey.Config{Invalidator: h.Invalidator, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func mustCreate(t *testing.T, m *apikey.Manager, name string) (*apikey.Key, string) {
	t.Helper()
	k, token, err := m.Create(context.Background(), apikey.CreateParams{Name: name})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	return k, token
}

func testInvalidatorDelivers(t *testing.T, h InvalidatorHarness) {
	ctx := context.Background()
	w := writer(t, h)
	l := listen(t, h.Invalidator)
	l.subscribed(t)
	delivered := func(what, id string) {
		t.Helper()
		l.rec.waitFor(t, what+" of "+id, 5*time.Second, func(r *recorder) bool { return r.ids[id] > 0 })
	}
	k, _ := mustCreate(t, w, "revoked")
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	delivered("the revocation", k.ID)

	k, _ = mustCreate(t, w, "updated")
	name := "renamed"
	if _, err := w.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	delivered("the update", k.ID)

	k, _ = mustCreate(t, w, "rolled")
	if _, _, err := w.Roll(ctx, k.ID, apikey.RollOptions{}); err != nil {
		t.Fatal(err)
	}
	delivered("the roll", k.ID)

	k, _ = mustCreate(t, w, "deleted")
	if err := w.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	delivered("the deletion", k.ID)

	l.rec.mu.Lock()
	defer l.rec.mu.Unlock()
	if l.rec.subscribed != 1 {
		t.Errorf("Subscribed called %d times on a healthy connection, want 1", l.rec.subscribed)
	}
}

// testInvalidatorNoGap changes a key as soon as Subscribed is seen, on
// fresh subscriptions: the change must be delivered.
func testInvalidatorNoGap(t *testing.T, h InvalidatorHarness) {
	ctx := context.Background()
	w := writer(t, h)
	for i := range 5 {
		k, _ := mustCreate(t, w, fmt.Sprint("gap ", i))
		l := listen(t, h.Invalidator)
		l.subscribed(t)
		if _, err := w.Revoke(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		l.rec.waitFor(t, "a revocation made right after Subscribed", 5*time.Second, func(r *recorder) bool { return r.ids[k.ID] > 0 })
		l.cancel()
	}
}

func testInvalidatorHeartbeat(t *testing.T, h InvalidatorHarness) {
	hb, ok := h.Invalidator.(apikey.HeartbeatSender)
	if !ok {
		t.Skip("the Invalidator is not a HeartbeatSender")
	}
	l := listen(t, h.Invalidator)
	l.subscribed(t)
	for _, token := range []string{"ABCDEFGHIJKL-1", "ZZ234567ZZ-zz09", "X"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := hb.SendHeartbeat(ctx, token)
		cancel()
		if err != nil {
			t.Fatalf("SendHeartbeat(%q): %v", token, err)
		}
		l.rec.waitFor(t, "heartbeat "+token, 5*time.Second, func(r *recorder) bool { return r.beats[token] > 0 })
	}
	l.rec.mu.Lock()
	defer l.rec.mu.Unlock()
	// The channel may be shared (PostgreSQL notifies database-wide, so
	// stores in other schemas, such as other tests, deliver their ids
	// too): only the heartbeats themselves must not arrive as ids.
	for _, token := range []string{"ABCDEFGHIJKL-1", "ZZ234567ZZ-zz09", "X"} {
		for id := range l.rec.ids {
			if strings.Contains(id, token) {
				t.Errorf("heartbeat %q was delivered as the invalidation of %q", token, id)
			}
		}
	}
	if len(l.rec.ids) == 0 && l.rec.all != 0 {
		t.Errorf("heartbeats were delivered as InvalidateAll (%d times) on a quiet channel", l.rec.all)
	}
}

func testInvalidatorCancel(t *testing.T, h InvalidatorHarness) {
	// Cancelled before it starts.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- h.Invalidator.Listen(ctx, newRecorder()) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen with a cancelled context = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen with a cancelled context did not return")
	}

	// Cancelled while subscribed.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	go func() { done <- h.Invalidator.Listen(ctx, rec) }()
	rec.waitFor(t, "Subscribed", 10*time.Second, func(r *recorder) bool { return r.subscribed > 0 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Listen after cancellation = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Listen did not return within 5s of its context's cancellation")
	}
}

func testInvalidatorDrop(t *testing.T, h InvalidatorHarness) {
	if h.Drop == nil {
		t.Skip("the harness cannot drop connections")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- h.Invalidator.Listen(ctx, rec) }()
	rec.waitFor(t, "Subscribed", 10*time.Second, func(r *recorder) bool { return r.subscribed > 0 })
	if err := h.Drop(ctx); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Errorf("Listen after its connection was dropped = %v, want the connection's error", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not return within 10s of its connection being dropped")
	}
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

// mapCache is a plain apikey.Cache.
type mapCache struct {
	mu sync.Mutex
	m  map[string]*apikey.CacheEntry
}

func (c *mapCache) Get(id string) (*apikey.CacheEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	return e, ok
}
func (c *mapCache) Set(id string, e *apikey.CacheEntry) { c.mu.Lock(); c.m[id] = e; c.mu.Unlock() }
func (c *mapCache) Delete(id string)                    { c.mu.Lock(); delete(c.m, id); c.mu.Unlock() }
func (c *mapCache) Clear()                              { c.mu.Lock(); clear(c.m); c.mu.Unlock() }

// reader is a Manager with a cache kept fresh by the Invalidator.
type reader struct {
	m      *apikey.Manager
	store  *countingStore
	mu     sync.Mutex
	errors []error // given to OnInvalidationError
}

func newReader(t *testing.T, h InvalidatorHarness, heartbeat, timeout time.Duration) *reader {
	t.Helper()
	r := &reader{store: &countingStore{Store: h.Store}}
	r.start(t, apikey.Config{
		Invalidator:           h.Invalidator,
		InvalidationHeartbeat: heartbeat,
		InvalidationTimeout:   timeout,
	})
	return r
}

// start makes the reader's Manager from cfg, over its counting store and
// an empty cache, recording what OnInvalidationError reports; the Manager
// is closed when the test ends.
func (r *reader) start(t *testing.T, cfg apikey.Config) {
	t.Helper()
	cfg.Cache = &mapCache{m: map[string]*apikey.CacheEntry{}}
	cfg.OnInvalidationError = func(err error) {
		r.mu.Lock()
		r.errors = append(r.errors, err)
		r.mu.Unlock()
	}
	cfg.UsageFlushInterval = -1
	m, err := apikey.NewManager(r.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	r.m = m
}

// cached reports whether a verification of token is answered from the
// cache: of two verifications in a row, the second reads no store.
func (r *reader) cached(t *testing.T, token string) bool {
	t.Helper()
	if _, err := r.m.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	before := r.store.lookups.Load()
	if _, err := r.m.Verify(context.Background(), token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r.store.lookups.Load() == before
}

// eventually polls cond every 10ms until it holds, for at most limit.
func eventually(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *reader) reported(target error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, err := range r.errors {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

func testInvalidatorManager(t *testing.T, h InvalidatorHarness) {
	ctx := context.Background()
	w := writer(t, h)
	r := newReader(t, h, 0, 0)
	k, token := mustCreate(t, w, "cached")
	eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader refusing the key revoked by the writer", time.Second, func() bool {
		_, err := r.m.Verify(ctx, token)
		return errors.Is(err, apikey.ErrRevoked)
	})
}

func testInvalidatorManagerDrop(t *testing.T, h InvalidatorHarness) {
	if h.Drop == nil {
		t.Skip("the harness cannot drop connections")
	}
	ctx := context.Background()
	w := writer(t, h)
	r := newReader(t, h, 0, 0)
	k, token := mustCreate(t, w, "dropped")
	eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
	if err := h.Drop(ctx); err != nil {
		t.Fatalf("Drop: %v", err)
	}
	eventually(t, "ErrUnsubscribed reported after the drop", 10*time.Second, func() bool { return r.reported(apikey.ErrUnsubscribed) })
	eventually(t, "the reader answering from its cache after the reconnection", 10*time.Second, func() bool { return r.cached(t, token) })
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader refusing a key revoked after the reconnection", time.Second, func() bool {
		_, err := r.m.Verify(ctx, token)
		return errors.Is(err, apikey.ErrRevoked)
	})
}

func testInvalidatorManagerSilence(t *testing.T, h InvalidatorHarness) {
	if h.Freeze == nil {
		t.Skip("the harness cannot freeze connections")
	}
	if _, ok := h.Invalidator.(apikey.HeartbeatSender); !ok {
		t.Skip("the Invalidator is not a HeartbeatSender: silence goes unnoticed")
	}
	w := writer(t, h)
	r := newReader(t, h, 50*time.Millisecond, 300*time.Millisecond)
	_, token := mustCreate(t, w, "silent")
	eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
	thaw := h.Freeze()
	thawed := false
	defer func() {
		if !thawed {
			thaw()
		}
	}()
	start := time.Now()
	eventually(t, "the reader bypassing its cache while its connection is silent", 5*time.Second, func() bool { return !r.cached(t, token) })
	t.Logf("silence noticed after %v (heartbeat 50ms, timeout 300ms)", time.Since(start))
	// The cache is suspended first and the error reported after it, from
	// another goroutine: the report may trail the bypass by a moment.
	eventually(t, "OnInvalidationError given ErrHeartbeatLost", 2*time.Second, func() bool { return r.reported(apikey.ErrHeartbeatLost) })
	for range 3 {
		if r.cached(t, token) {
			t.Fatal("the reader answered from its cache while its connection was silent")
		}
	}
	thaw()
	thawed = true
	eventually(t, "the reader answering from its cache once the connection is back", 15*time.Second, func() bool { return r.cached(t, token) })
}

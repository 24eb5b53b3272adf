package apikey_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

// fakeInvalidator is an Invalidator driven by the test: every call of
// Listen shows up on sessions, and lasts until the test ends it or its
// context is done.
type fakeInvalidator struct {
	sessions chan *fakeSession
	listens  atomic.Int64
	failNow  atomic.Bool // Listen fails at once
	deaf     atomic.Bool // Listen ignores its context

	mu         sync.Mutex
	current    *fakeSession
	echo       bool // SendHeartbeat delivers the token to the current session
	beats      int
	published  []string
	publishErr error
}

type fakeSession struct {
	h        apikey.InvalidationHandler
	ctx      context.Context
	end      chan error
	returned chan struct{}
}

func newFake() *fakeInvalidator {
	return &fakeInvalidator{sessions: make(chan *fakeSession, 100), echo: true}
}

func (f *fakeInvalidator) Listen(ctx context.Context, h apikey.InvalidationHandler) error {
	f.listens.Add(1)
	if f.failNow.Load() {
		return errors.New("connection refused")
	}
	s := &fakeSession{h: h, ctx: ctx, end: make(chan error, 1), returned: make(chan struct{})}
	defer close(s.returned)
	f.mu.Lock()
	f.current = s
	f.mu.Unlock()
	f.sessions <- s
	if f.deaf.Load() {
		return <-s.end
	}
	select {
	case err := <-s.end:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeInvalidator) SendHeartbeat(ctx context.Context, token string) error {
	f.mu.Lock()
	f.beats++
	s, echo := f.current, f.echo
	f.mu.Unlock()
	if echo && s != nil {
		s.h.Heartbeat("not-" + token) // another process's
		s.h.Heartbeat(token)
	}
	return nil
}

func (f *fakeInvalidator) setEcho(on bool) {
	f.mu.Lock()
	f.echo = on
	f.mu.Unlock()
}

func (f *fakeInvalidator) beatCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.beats
}

// next returns the next call of Listen.
func (f *fakeInvalidator) next(t *testing.T) *fakeSession {
	t.Helper()
	select {
	case s := <-f.sessions:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the Manager did not call Listen")
		return nil
	}
}

// publisher is a fakeInvalidator that publishes.
type publisher struct{ *fakeInvalidator }

func (p publisher) Publish(ctx context.Context, id string) error {
	if _, ok := ctx.Deadline(); !ok {
		return errors.New("publish without a deadline")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, id)
	return p.publishErr
}

func (p publisher) ids() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.published)
}

// errorLog collects what OnInvalidationError is given.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(err error) { l.mu.Lock(); l.errs = append(l.errs, err); l.mu.Unlock() }

func (l *errorLog) has(target error) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// listened is a Manager with a cache and a fake Invalidator, over a
// counting store, with one key.
type listened struct {
	m     *apikey.Manager
	store *countingStore
	fake  *fakeInvalidator
	errs  *errorLog
	id    string
	token string
}

func newListened(t *testing.T, cfg apikey.Config) *listened {
	t.Helper()
	l := &listened{store: &countingStore{Store: openStore(t)}, fake: newFake(), errs: &errorLog{}}
	cfg.Cache = &mapCache{m: map[string]*apikey.CacheEntry{}}
	if cfg.Invalidator == nil {
		cfg.Invalidator = l.fake
	}
	cfg.OnInvalidationError = l.errs.add
	cfg.UsageFlushInterval = -1
	m, err := apikey.NewManager(l.store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	l.m = m
	k, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	l.id, l.token = k.ID, token
	return l
}

// lookups verifies the key once and returns how many store lookups that
// took.
func (l *listened) lookups(t *testing.T) int64 {
	t.Helper()
	before := l.store.lookups.Load()
	if _, err := l.m.Verify(context.Background(), l.token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return l.store.lookups.Load() - before
}

// cached reports whether, of two verifications, the second was answered
// from the cache.
func (l *listened) cached(t *testing.T) bool {
	t.Helper()
	l.lookups(t)
	return l.lookups(t) == 0
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestInvalidatorNotTrustedBeforeSubscribed(t *testing.T) {
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t)
	for range 3 {
		if l.cached(t) {
			t.Fatal("Verify answered from the cache before the Invalidator subscribed")
		}
	}
	s.h.Subscribed()
	if !l.cached(t) {
		t.Fatal("Verify did not use the cache once subscribed")
	}
}

func TestInvalidatorDropSuspendsAndResubscribes(t *testing.T) {
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t)
	s.h.Subscribed()
	if !l.cached(t) {
		t.Fatal("not cached once subscribed")
	}
	lost := errors.New("connection reset")
	s.end <- lost
	s2 := l.fake.next(t)
	for range 3 {
		if l.cached(t) {
			t.Fatal("Verify answered from the cache after the subscription was lost")
		}
	}
	if !l.errs.has(apikey.ErrUnsubscribed) || !l.errs.has(lost) {
		t.Errorf("OnInvalidationError got %v, want ErrUnsubscribed wrapping %v", l.errs.errs, lost)
	}
	s2.h.Subscribed()
	if n := l.lookups(t); n != 1 {
		t.Errorf("first Verify after resubscribing: %d lookups, want 1 (the cache is emptied)", n)
	}
	if n := l.lookups(t); n != 0 {
		t.Errorf("second Verify after resubscribing: %d lookups, want 0 (trusted again)", n)
	}
}

// TestInvalidatorEndedSessionCannotResume checks that a Subscribed from a
// call of Listen that has returned is ignored.
func TestInvalidatorEndedSessionCannotResume(t *testing.T) {
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t)
	s.end <- errors.New("lost before subscribing")
	<-s.returned
	l.fake.next(t) // the new call, which does not subscribe
	s.h.Subscribed()
	for range 3 {
		if l.cached(t) {
			t.Fatal("a late Subscribed of an ended Listen made the cache trusted")
		}
	}
}

func TestInvalidatorDelivers(t *testing.T) {
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t)
	s.h.Subscribed()
	if !l.cached(t) {
		t.Fatal("not cached once subscribed")
	}
	s.h.Invalidate(l.id)
	if n := l.lookups(t); n != 1 {
		t.Errorf("Verify after Invalidate: %d lookups, want 1", n)
	}
	if n := l.lookups(t); n != 0 {
		t.Errorf("second Verify after Invalidate: %d lookups, want 0", n)
	}
	s.h.InvalidateAll()
	if n := l.lookups(t); n != 1 {
		t.Errorf("Verify after InvalidateAll: %d lookups, want 1", n)
	}
	if n := l.lookups(t); n != 0 {
		t.Errorf("second Verify after InvalidateAll: %d lookups, want 0 (still trusted)", n)
	}
}

func TestInvalidatorHeartbeat(t *testing.T) {
	l := newListened(t, apikey.Config{InvalidationHeartbeat: 10 * time.Millisecond, InvalidationTimeout: 50 * time.Millisecond})
	s := l.fake.next(t)
	if n := l.fake.beatCount(); n != 0 {
		t.Errorf("%d heartbeats before the subscription, want 0", n)
	}
	s.h.Subscribed()
	time.Sleep(200 * time.Millisecond)
	if n := l.fake.beatCount(); n < 5 {
		t.Errorf("%d heartbeats in 200ms at one every 10ms, want at least 5", n)
	}
	if l.fake.listens.Load() != 1 || !l.cached(t) {
		t.Fatalf("with heartbeats coming back: %d calls of Listen, cached %v; want 1, true", l.fake.listens.Load(), l.cached(t))
	}

	// Silence: the heartbeats stop coming back.
	l.fake.setEcho(false)
	eventually(t, "the silent Listen cancelled", func() bool { return s.ctx.Err() != nil })
	s2 := l.fake.next(t)
	if l.cached(t) {
		t.Fatal("Verify answered from the cache after a heartbeat was lost")
	}
	if !l.errs.has(apikey.ErrHeartbeatLost) || !l.errs.has(apikey.ErrUnsubscribed) {
		t.Errorf("OnInvalidationError got %v, want ErrUnsubscribed wrapping ErrHeartbeatLost", l.errs.errs)
	}
	l.fake.setEcho(true)
	s2.h.Subscribed()
	if !l.cached(t) {
		t.Fatal("not cached once subscribed again")
	}
}

func TestInvalidatorHeartbeatOff(t *testing.T) {
	l := newListened(t, apikey.Config{InvalidationHeartbeat: -1})
	l.fake.next(t).h.Subscribed()
	time.Sleep(50 * time.Millisecond)
	if n := l.fake.beatCount(); n != 0 {
		t.Errorf("%d heartbeats with heartbeats off, want 0", n)
	}
}

func TestInvalidatorBackoff(t *testing.T) {
	fake := newFake()
	fake.failNow.Store(true)
	l := newListened(t, apikey.Config{Invalidator: fake})
	time.Sleep(500 * time.Millisecond)
	// Retries after 50, 100, 200ms: about 4 calls in 500ms.
	if n := fake.listens.Load(); n < 3 || n > 6 {
		t.Errorf("Listen called %d times in 500ms of immediate failures, want 3 to 6 (back-off from 50ms, doubling)", n)
	}
	if !l.errs.has(apikey.ErrUnsubscribed) {
		t.Error("failures to subscribe were not reported")
	}
	if l.cached(t) {
		t.Fatal("Verify answered from the cache of a Manager that never subscribed")
	}
}

func TestInvalidatorSubscribeTimeout(t *testing.T) {
	defer apikey.SetSubscribeTimeout(100 * time.Millisecond)()
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t) // never subscribes
	eventually(t, "the Listen that never subscribed cancelled", func() bool { return s.ctx.Err() != nil })
	l.fake.next(t).h.Subscribed()
	if !l.cached(t) {
		t.Fatal("not cached once the second Listen subscribed")
	}
	if !l.errs.has(apikey.ErrUnsubscribed) {
		t.Error("the timeout was not reported")
	}
}

func TestInvalidatorStopsOnClose(t *testing.T) {
	l := newListened(t, apikey.Config{})
	s := l.fake.next(t)
	s.h.Subscribed()
	if err := l.m.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-s.returned:
	default:
		t.Fatal("Close returned before Listen")
	}
	time.Sleep(100 * time.Millisecond)
	if n := l.fake.listens.Load(); n != 1 {
		t.Errorf("Listen called %d times after Close, want 1 in all", n)
	}
}

func TestInvalidatorCloseDoesNotWaitPastContext(t *testing.T) {
	fake := newFake()
	fake.deaf.Store(true) // Listen ignores its context
	l := newListened(t, apikey.Config{Invalidator: fake})
	s := fake.next(t)
	defer func() { s.end <- errors.New("released") }()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := l.m.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a Listen that does not return = %v, want context.DeadlineExceeded", err)
	}
}

func TestInvalidatorConfig(t *testing.T) {
	_, err := apikey.NewManager(openStore(t), apikey.Config{Invalidator: newFake(), InvalidationTimeout: -time.Second})
	if err == nil {
		t.Fatal("NewManager with a negative InvalidationTimeout succeeded")
	}
}

// TestManagerPublishes checks that every change is published, with or
// without a cache, and that nothing else is.
func TestManagerPublishes(t *testing.T) {
	ctx := context.Background()
	pub := publisher{newFake()}
	errs := &errorLog{}
	m := mustManager(t, openStore(t), apikey.Config{Invalidator: pub, OnInvalidationError: errs.add})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); len(got) != 0 {
		t.Fatalf("published %q after Create and Verify, want nothing", got)
	}
	name := "renamed"
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Roll(ctx, k.ID, apikey.RollOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	// Refused: nothing changed, nothing published.
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name}); !errors.Is(err, apikey.ErrFrozen) {
		t.Fatalf("Update of a revoked key = %v, want ErrFrozen", err)
	}
	if _, err := m.Revoke(ctx, "000000000000"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("Revoke of an unknown key = %v, want ErrNotFound", err)
	}
	if err := m.Delete(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	want := []string{k.ID, k.ID, k.ID, k.ID} // update, roll, revoke, delete
	if got := pub.ids(); !slices.Equal(got, want) {
		t.Fatalf("published %q, want %q", got, want)
	}
	if pub.listens.Load() != 0 {
		t.Error("a Manager without a cache listened")
	}

	// A failed publish does not fail the change, and is reported.
	pub.mu.Lock()
	pub.publishErr = errors.New("redis down")
	pub.mu.Unlock()
	k2, _, err := m.Create(ctx, apikey.CreateParams{Name: "q"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Revoke(ctx, k2.ID); err != nil {
		t.Fatalf("Revoke with a failing publish: %v", err)
	}
	if !errs.has(apikey.ErrNotPublished) {
		t.Errorf("OnInvalidationError got %v, want ErrNotPublished", errs.errs)
	}
}

// TestHashUpgradePublishes checks that the hash upgrade of a verification
// under a new pepper is published like any other change.
func TestHashUpgradePublishes(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	v1 := apikey.Pepper{Version: 1, Secret: []byte("0123456789abcdef-one")}
	v2 := apikey.Pepper{Version: 2, Secret: []byte("0123456789abcdef-two")}
	old := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v1}})
	k, token, err := old.Create(ctx, apikey.CreateParams{Name: "h"})
	if err != nil {
		t.Fatal(err)
	}
	pub := publisher{newFake()}
	m := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{v2, v1}, Invalidator: pub})
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatal(err)
	}
	if got := pub.ids(); !slices.Equal(got, []string{k.ID}) {
		t.Fatalf("published %q after a hash upgrade, want [%s]", got, k.ID)
	}
}

// TestCacheConformance runs the Cache suite on the test's map cache, so
// that the suite itself is exercised in this module.
func TestCacheConformance(t *testing.T) {
	apikeytest.TestCache(t, func(*testing.T) apikey.Cache { return &mapCache{m: map[string]*apikey.CacheEntry{}} })
}

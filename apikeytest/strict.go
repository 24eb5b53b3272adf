package apikeytest

import (
	"context"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TrialsVar is the environment variable that sets how many revocations
// TestStrictRevocation makes (200 by default, 20 with -short): for example
// APIKEY_STRICT_TRIALS=1000.
const TrialsVar = "APIKEY_STRICT_TRIALS"

func strictTrials(t *testing.T) int {
	if n, err := strconv.Atoi(os.Getenv(TrialsVar)); err == nil && n > 0 {
		return n
	}
	if testing.Short() {
		return 20
	}
	return 200
}

// TestStrictRevocation runs, on a backend whose stores are
// apikey.ChangeFeeds and apikey.InstanceRegistries, the suite of what a
// Manager makes of them. newPair is called once per subtest and returns
// two stores over one fresh database, as two processes would open it (two
// handles on one SQLite file, two pools on one PostgreSQL schema; a
// backend without a database returns the same store twice).
//
// The suite checks that a strict Revoke or Delete on a Manager over the
// first store returns only once a Manager over the second, which had the
// key in its cache, refuses it: not one grant after the call returns, over
// TrialsVar trials; that the change feed alone, without an Invalidator,
// carries changes to the other cache; that a strict call names the live
// instances that did not acknowledge in time (and still applies the
// change), that WithStrict overrides the configuration, and that a Manager
// whose reads of the feed hang or fail stops answering from its cache
// within StaleAfter, then trusts it again once they succeed.
func TestStrictRevocation(t *testing.T, newPair func(t *testing.T) (a, b apikey.Store)) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, apikey.Store, apikey.Store)
	}{
		{"NoGrantAfterReturn", testStrictNoGrant},
		{"FeedCarriesChanges", testFeedCarriesChanges},
		{"NotAcknowledged", testStrictNotAcknowledged},
		{"StaleWhenReadsHang", func(t *testing.T, a, b apikey.Store) { testStaleCache(t, a, b, true) }},
		{"StaleWhenReadsFail", func(t *testing.T, a, b apikey.Store) { testStaleCache(t, a, b, false) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newPair(t)
			asFeed(t, a)
			asFeed(t, b)
			tc.run(t, a, b)
		})
	}
}

// gatedFeed passes a ChangeFeed and InstanceRegistry through, except that
// the calls of the poll loop (ChangesAfter, LastChange, PutInstance) can
// be made to hang until their context ends, or to fail.
type gatedFeed struct {
	feedStore
	hang, fail atomic.Bool
}

var errGated = errors.New("apikeytest: the change feed is cut off")

func (g *gatedFeed) gate(ctx context.Context) error {
	if g.hang.Load() {
		<-ctx.Done()
		return ctx.Err()
	}
	if g.fail.Load() {
		return errGated
	}
	return nil
}

func (g *gatedFeed) ChangesAfter(ctx context.Context, seq int64, limit int) ([]apikey.KeyChange, error) {
	if err := g.gate(ctx); err != nil {
		return nil, err
	}
	return g.feedStore.ChangesAfter(ctx, seq, limit)
}

func (g *gatedFeed) LastChange(ctx context.Context) (int64, error) {
	if err := g.gate(ctx); err != nil {
		return 0, err
	}
	return g.feedStore.LastChange(ctx)
}

func (g *gatedFeed) PutInstance(ctx context.Context, in apikey.Instance, ttl time.Duration) error {
	if err := g.gate(ctx); err != nil {
		return err
	}
	return g.feedStore.PutInstance(ctx, in, ttl)
}

// feedReader is a Manager with a cache kept fresh by the change feed of
// its store alone, and a count of its store lookups.
type feedReader struct {
	*reader
	feed *gatedFeed
}

func newFeedReader(t *testing.T, s apikey.Store, name string, every, stale time.Duration) *feedReader {
	t.Helper()
	r := &feedReader{reader: &reader{store: &countingStore{Store: s}}, feed: &gatedFeed{feedStore: asFeed(t, s)}}
	r.start(t, apikey.Config{
		ChangeFeed:         r.feed, // the counting wrapper hides the store's
		ChangePollInterval: every,
		StaleAfter:         stale,
		InstanceName:       name,
	})
	return r
}

// strictWriter is a Manager without a cache that revokes strictly.
func strictWriter(t *testing.T, s apikey.Store, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	cfg.UsageFlushInterval = -1
	m, err := apikey.NewManager(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func testStrictNoGrant(t *testing.T, a, b apikey.Store) {
	ctx := context.Background()
	trials := strictTrials(t)
	w := strictWriter(t, a, apikey.Config{StrictRevocation: true, StrictTimeout: 5 * time.Second})
	r := newFeedReader(t, b, "reader", 20*time.Millisecond, time.Second)
	var grants, cachedBefore int
	waits := make([]time.Duration, 0, trials)
	for i := range trials {
		k, token := mustCreate(t, w, "strict")
		eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
		cachedBefore++
		start := time.Now()
		var err error
		if i%4 == 3 {
			err = w.Delete(ctx, k.ID)
		} else {
			_, err = w.Revoke(ctx, k.ID)
		}
		waits = append(waits, time.Since(start))
		if err != nil {
			t.Fatalf("trial %d: strict revocation: %v", i, err)
		}
		if _, err := r.m.Verify(ctx, token); err == nil {
			grants++
			t.Errorf("trial %d: the reader granted the key after the strict revocation returned", i)
		} else if !errors.Is(err, apikey.ErrRevoked) && !errors.Is(err, apikey.ErrInvalidKey) {
			t.Fatalf("trial %d: Verify on the reader: %v", i, err)
		}
	}
	slices.Sort(waits)
	t.Logf("%d strict revocations (1 in 4 a delete) of keys the reader had cached: %d grants by the reader after the call returned; wait p50 %v, p99 %v, max %v",
		trials, grants, waits[len(waits)/2], waits[len(waits)*99/100], waits[len(waits)-1])
}

func testFeedCarriesChanges(t *testing.T, a, b apikey.Store) {
	ctx := context.Background()
	w := strictWriter(t, a, apikey.Config{})
	r := newFeedReader(t, b, "reader", 20*time.Millisecond, time.Second)
	k, token := mustCreate(t, w, "carried")
	eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
	if _, err := w.Update(ctx, k.ID, apikey.KeyUpdate{Scopes: &[]string{"changed"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader seeing the new scopes", 5*time.Second, func() bool {
		got, err := r.m.Verify(ctx, token)
		return err == nil && slices.Equal(got.Scopes, []string{"changed"})
	})
	eventually(t, "the reader answering from its cache again", 5*time.Second, func() bool { return r.cached(t, token) })
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the reader refusing the key revoked by the writer", 5*time.Second, func() bool {
		_, err := r.m.Verify(ctx, token)
		return errors.Is(err, apikey.ErrRevoked)
	})
}

func testStrictNotAcknowledged(t *testing.T, a, b apikey.Store) {
	ctx := context.Background()
	reg := asFeed(t, b)
	// A live instance that never applies anything.
	if err := reg.PutInstance(ctx, apikey.Instance{ID: "ghost-id", Name: "ghost"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	const timeout = 300 * time.Millisecond
	w := strictWriter(t, a, apikey.Config{StrictRevocation: true, StrictTimeout: timeout, StaleAfter: 100 * time.Millisecond})
	k, _ := mustCreate(t, w, "not acknowledged")
	start := time.Now()
	got, err := w.Revoke(ctx, k.ID)
	waited := time.Since(start)
	var na *apikey.NotAcknowledgedError
	if !errors.Is(err, apikey.ErrNotAcknowledged) || !errors.As(err, &na) {
		t.Fatalf("strict Revoke with a live instance that never acknowledges: %v, want a *NotAcknowledgedError", err)
	}
	if !slices.Equal(na.Instances, []string{"ghost"}) || na.Seq <= 0 {
		t.Errorf("NotAcknowledgedError = %+v, want Instances [ghost] and the change's Seq", na)
	}
	if apikey.CodeOf(err) != apikey.CodeNotAcknowledged {
		t.Errorf("CodeOf = %q, want %q", apikey.CodeOf(err), apikey.CodeNotAcknowledged)
	}
	if waited < timeout || waited > timeout+2*time.Second {
		t.Errorf("the strict Revoke returned after %v, want StrictTimeout, %v", waited, timeout)
	}
	if got == nil || !got.Revoked() {
		t.Errorf("the strict Revoke returned key %+v with the error, want the revoked key", got)
	}
	if k2, err := w.Get(ctx, k.ID); err != nil || !k2.Revoked() {
		t.Errorf("after a strict Revoke that was not acknowledged, Get = %+v, %v; want the key revoked", k2, err)
	}

	// WithStrict(false) does not wait; WithStrict(true) waits on a
	// Manager that is not strict by default.
	k, _ = mustCreate(t, w, "not strict")
	if _, err := w.Revoke(apikey.WithStrict(ctx, false), k.ID); err != nil {
		t.Errorf("Revoke with WithStrict(false): %v", err)
	}
	lax := strictWriter(t, a, apikey.Config{StrictTimeout: timeout, StaleAfter: 100 * time.Millisecond})
	k, _ = mustCreate(t, lax, "strict by context")
	if err := lax.Delete(apikey.WithStrict(ctx, true), k.ID); !errors.Is(err, apikey.ErrNotAcknowledged) {
		t.Errorf("Delete with WithStrict(true) and the ghost live: %v, want ErrNotAcknowledged", err)
	}
	if _, err := lax.Get(ctx, k.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("after a strict Delete that was not acknowledged, Get: %v, want ErrNotFound", err)
	}

	// Once the ghost is gone, strict calls succeed.
	if err := reg.RemoveInstance(ctx, "ghost-id"); err != nil {
		t.Fatal(err)
	}
	k, _ = mustCreate(t, w, "acknowledged")
	if _, err := w.Revoke(ctx, k.ID); err != nil {
		t.Errorf("strict Revoke with no live instance: %v", err)
	}
	ack, err := w.WaitApplied(ctx)
	if err != nil || ack.Seq <= 0 || len(ack.Instances) != 0 {
		t.Errorf("WaitApplied with no live instance = %+v, %v; want the last Seq and no instance", ack, err)
	}
}

// testStaleCache cuts a reader off from its change feed (its calls hang,
// or fail) and checks that it stops answering from its cache within
// StaleAfter of the cut, then answers from it again once the feed is
// back.
func testStaleCache(t *testing.T, a, b apikey.Store, hang bool) {
	const stale = 300 * time.Millisecond
	w := strictWriter(t, a, apikey.Config{})
	r := newFeedReader(t, b, "cut off", 20*time.Millisecond, stale)
	_, token := mustCreate(t, w, "stale")
	eventually(t, "the reader answering from its cache", 10*time.Second, func() bool { return r.cached(t, token) })
	gate := &r.feed.fail
	if hang {
		gate = &r.feed.hang
	}
	gate.Store(true)
	cut := time.Now()
	// The last read that can complete began before the cut: by cut +
	// StaleAfter the cache must no longer answer, whatever the poller
	// is doing.
	time.Sleep(stale + 10*time.Millisecond)
	for range 3 {
		if r.cached(t, token) {
			t.Fatalf("the reader still answers from its cache %v after it was cut off from its change feed (StaleAfter %v)", time.Since(cut), stale)
		}
	}
	if !hang {
		eventually(t, "ErrChangeFeed reported", 5*time.Second, func() bool { return r.reported(apikey.ErrChangeFeed) })
	}
	gate.Store(false)
	eventually(t, "the reader answering from its cache once the feed is back", 10*time.Second, func() bool { return r.cached(t, token) })
}

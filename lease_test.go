package apikey_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/memstore"
)

// spendCounter counts the spends that reach a real store.
type spendCounter struct {
	*memstore.Store
	spends atomic.Int64
}

func (s *spendCounter) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	s.spends.Add(1)
	return s.Store.SpendCredits(ctx, req)
}

// leaseManager returns a Manager that leases up to 100 credits over st,
// on clock, closed with the test.
func leaseManager(t *testing.T, st apikey.Store, clock *apikeytest.Clock) *apikey.Manager {
	t.Helper()
	m := mustManager(t, st, apikey.Config{Now: clock.Now, UsageFlushInterval: -1, CreditLease: 100, CreditLeaseTTL: 40 * time.Millisecond})
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func storedBalance(t *testing.T, st apikey.Store, id string) int64 {
	t.Helper()
	r, err := st.Lookup(t.Context(), id)
	if err != nil || r.Credits == nil {
		t.Fatalf("Lookup(%s): %+v, %v", id, r, err)
	}
	return r.Credits.Remaining
}

// TestCreditLeaseSpendsInMemory: with leases, most spends make no store
// call, every answer still counts down exactly, and Close gives back what
// is left, so that the store ends at the balance less the spends.
func TestCreditLeaseSpendsInMemory(t *testing.T) {
	ctx := t.Context()
	st := &spendCounter{Store: memstore.New()}
	clock := apikeytest.NewClock(t0)
	m := leaseManager(t, st, clock)
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 10000}})
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 1000; i++ {
		res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
		if err != nil {
			t.Fatal(err)
		}
		if res.Credits == nil || res.Credits.Remaining != 10000-i {
			t.Fatalf("spend %d: remaining %+v, want %d", i, res.Credits, 10000-i)
		}
	}
	if n := st.spends.Load(); n > 20 {
		t.Errorf("%d store spends for 1000 spends with leases of up to 100", n)
	}
	b := storedBalance(t, st, k.ID)
	if b >= 9000 {
		t.Errorf("stored balance %d: nothing leased", b)
	}
	// What the store lacks is what LeasedCredits reports held.
	if keys, held := m.LeasedCredits(); keys != 1 || held != 9000-b {
		t.Errorf("LeasedCredits = %d keys, %d credits; want 1 key, %d credits (9000 less the stored %d)", keys, held, 9000-b, b)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if b := storedBalance(t, st, k.ID); b != 9000 {
		t.Errorf("stored balance after Close %d, want 9000: the lease given back", b)
	}
	if keys, held := m.LeasedCredits(); keys != 0 || held != 0 {
		t.Errorf("LeasedCredits after Close = %d keys, %d credits; want none", keys, held)
	}
}

// TestCreditLeaseEnds: a lease ends with a change made by this Manager, at
// its TTL for a change made elsewhere, and at the refill; the credits left
// go back only to the balance they came from.
func TestCreditLeaseEnds(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	clock := apikeytest.NewClock(t0)
	m := leaseManager(t, st, clock)
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 1000, Refill: &apikey.Refill{Interval: "1h", Amount: 1000}}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(cost, want int64) {
		t.Helper()
		res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: cost})
		if err != nil || res.Credits == nil || res.Credits.Remaining != want {
			t.Fatalf("Check(%d): %+v, %v; want %d left", cost, res.Credits, err, want)
		}
	}
	check(1, 999)
	// This Manager's own set ends the lease at once.
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 500}); err != nil {
		t.Fatal(err)
	}
	check(1, 499)
	// Another instance's set: this one spends its lease until the TTL,
	// then sees the set; what it held is not added to the new balance.
	other := mustManager(t, st, apikey.Config{Now: clock.Now, UsageFlushInterval: -1})
	if _, err := other.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 300}); err != nil {
		t.Fatal(err)
	}
	check(1, 498) // from the lease
	clock.Add(50 * time.Millisecond)
	check(1, 299)
	// The refill ends the lease: 1000 again, whatever was leased.
	clock.Add(time.Hour)
	check(2, 998)
	if b := storedBalance(t, st, k.ID); b >= 998 {
		t.Fatalf("stored %d: nothing leased", b)
	}
	// An idempotent spend goes to the store, with the lease given back
	// first: 998 covers 990 though the store alone held less.
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 990, IdempotencyKey: "big"}); err != nil || res.Credits.Remaining != 8 {
		t.Fatalf("idempotent spend: %+v, %v; want 8 left", res, err)
	}
	if b := storedBalance(t, st, k.ID); b != 8 {
		t.Errorf("stored %d after the idempotent spend, want 8", b)
	}
	// A balance nearly spent is not leased: each spend is exact.
	check(5, 3)
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 4}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Fatalf("spend 4 of 3: %v", err)
	}
	check(3, 0)
}

// TestCreditLeaseSweep: a lease left alone past its TTL is given back by
// the Manager's sweep, without another spend.
func TestCreditLeaseSweep(t *testing.T) {
	ctx := t.Context()
	st := memstore.New()
	clock := apikeytest.NewClock(t0)
	m := leaseManager(t, st, clock)
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
		t.Fatal(err)
	}
	if b := storedBalance(t, st, k.ID); b == 999 {
		t.Fatal("nothing leased")
	}
	clock.Add(time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for storedBalance(t, st, k.ID) != 999 {
		if time.Now().After(deadline) {
			t.Fatalf("stored %d 5s after the lease ended, want 999", storedBalance(t, st, k.ID))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCreditLeaseConfig: bad settings are refused by name.
func TestCreditLeaseConfig(t *testing.T) {
	for _, cfg := range []apikey.Config{{CreditLease: -1}, {CreditLease: 5, CreditLeaseTTL: -time.Second}} {
		if _, err := apikey.NewManager(memstore.New(), cfg); err == nil {
			t.Errorf("NewManager(%+v) accepted", cfg)
		}
	}
}

// heldStore holds the answer of its first leasing spend until released.
type heldStore struct {
	*memstore.Store
	answered, release chan struct{}
	once              atomic.Bool
}

func (s *heldStore) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	res, err := s.Store.SpendCredits(ctx, req)
	if req.Lease > 0 && s.once.CompareAndSwap(false, true) {
		close(s.answered)
		<-s.release
	}
	return res, err
}

// TestCreditLeaseChangeDuringTrip: a set that lands while the trip that
// leased is on its way back ends that lease too: the next spend sees the
// set balance, not credits leased before it.
func TestCreditLeaseChangeDuringTrip(t *testing.T) {
	ctx := t.Context()
	st := &heldStore{Store: memstore.New(), answered: make(chan struct{}), release: make(chan struct{})}
	clock := apikeytest.NewClock(t0)
	m := leaseManager(t, st, clock)
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
		first <- err
	}()
	<-st.answered // leased from the balance of 1000, not yet installed
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 500}); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
	if err != nil || res.Credits == nil || res.Credits.Remaining != 499 {
		t.Fatalf("spend after the set: %+v, %v; want 499 left", res.Credits, err)
	}
}

// aheadStore holds the leases taken ahead (no cost) until released.
type aheadStore struct {
	*memstore.Store
	ahead   atomic.Int64
	release chan struct{}
}

func (s *aheadStore) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	if req.Cost == 0 && req.Lease > 0 {
		s.ahead.Add(1)
		<-s.release
	}
	return s.Store.SpendCredits(ctx, req)
}

// TestCreditLeaseTopsUpAhead: once half a lease is spent, one spend starts
// a trip for the next lease in the background, and the key's spends go on
// taking what is left meanwhile instead of waiting for it.
func TestCreditLeaseTopsUpAhead(t *testing.T) {
	ctx := t.Context()
	st := &aheadStore{Store: memstore.New(), release: make(chan struct{})}
	clock := apikeytest.NewClock(t0)
	m := mustManager(t, st, apikey.Config{Now: clock.Now, UsageFlushInterval: -1, CreditLease: 100, CreditLeaseTTL: time.Hour})
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 100000}})
	if err != nil {
		t.Fatal(err)
	}
	spend := func(n int) {
		t.Helper()
		done := make(chan error, 1)
		go func() {
			for range n {
				if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%d spends did not finish: they wait for the trip ahead", n)
		}
	}
	spend(1 + 90) // the first leases 100; spending half of it starts the trip ahead
	for deadline := time.Now().Add(5 * time.Second); st.ahead.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no trip ahead")
		}
	}
	if n := st.ahead.Load(); n != 1 {
		t.Fatalf("%d trips ahead, want 1: one at a time", n)
	}
	before := storedBalance(t, st, k.ID) // 100000 - 1 - 100: the first trip's
	close(st.release)                    // the trip brings its lease
	deadline := time.Now().Add(5 * time.Second)
	for storedBalance(t, st, k.ID) == before {
		if time.Now().After(deadline) {
			t.Fatal("the trip ahead brought nothing")
		}
		time.Sleep(time.Millisecond)
	}
	// It asked for what brings the lease back to CreditLease when it
	// started, never more: 91 spent, at most 100 held.
	if b := storedBalance(t, st, k.ID); b < 100000-91-100 {
		t.Errorf("stored %d after the trip ahead: more than CreditLease held", b)
	}
	spend(100) // from what is left and the new lease, and trips
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if b := storedBalance(t, st, k.ID); b != 100000-191 {
		t.Errorf("stored %d after Close, want %d", b, 100000-191)
	}
}

// TestCreditLeaseOwnerChangeDuringFirstTrip: an owner's balance set while
// the first trip of one of its keys is on its way back ends the lease
// that trip brings, as a change of the key does.
func TestCreditLeaseOwnerChangeDuringFirstTrip(t *testing.T) {
	ctx := t.Context()
	st := &heldStore{Store: memstore.New(), answered: make(chan struct{}), release: make(chan struct{})}
	clock := apikeytest.NewClock(t0)
	m := leaseManager(t, st, clock)
	_, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "o"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetOwner(ctx, "o", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 1000}}); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
		first <- err
	}()
	<-st.answered
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{Owner: "o", Op: apikey.CreditSet, Amount: 500}); err != nil {
		t.Fatal(err)
	}
	close(st.release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil || res.Credits == nil || res.Credits.Remaining != 499 {
		t.Fatalf("spend after the owner's set: %+v, %v; want 499 left", res, err)
	}
}

// doneCounter counts the spends the store has answered.
type doneCounter struct {
	*memstore.Store
	done atomic.Int64
}

func (s *doneCounter) SpendCredits(ctx context.Context, req apikey.SpendRequest) (apikey.SpendResult, error) {
	defer s.done.Add(1)
	return s.Store.SpendCredits(ctx, req)
}

// TestCreditLeaseTopUpSeesSet: a balance set to 0 by another instance is
// seen by this one's next top-up, which drops what is left of the lease:
// the spends after it are refused, though the lease had credits left.
func TestCreditLeaseTopUpSeesSet(t *testing.T) {
	ctx := t.Context()
	st := &doneCounter{Store: memstore.New()}
	clock := apikeytest.NewClock(t0)
	m := mustManager(t, st, apikey.Config{Now: clock.Now, UsageFlushInterval: -1, CreditLease: 100, CreditLeaseTTL: time.Hour})
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 100000}})
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		_, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
		return err
	}
	if err := check(); err != nil { // leases 100
		t.Fatal(err)
	}
	other := mustManager(t, st, apikey.Config{Now: clock.Now, UsageFlushInterval: -1})
	if _, err := other.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 0}); err != nil {
		t.Fatal(err)
	}
	before := st.done.Load()
	for range 51 { // from the lease; the last starts the top-up
		if err := check(); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); st.done.Load() == before; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no top-up")
		}
	}
	// The top-up installs its answer just after the store's: a spend or
	// two may still pass meanwhile, not the 49 the lease had left.
	passed := 0
	for {
		err := check()
		if errors.Is(err, apikey.ErrUsageExceeded) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if passed++; passed > 5 {
			t.Fatalf("%d spends passed after a top-up found the balance set to 0", passed)
		}
	}
}

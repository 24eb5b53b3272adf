package apikeytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestCredits runs the conformance suite of apikey.LimitStore: owners'
// records, and balances of credits spent exactly. newHarness is called once
// per subtest, as by TestStore; its Store must implement apikey.LimitStore.
// The concurrency subtests run 32 goroutines against one balance: a store
// passes only if no interleaving spends more than the balance, spends
// below zero, spends a retried request twice, refunds twice, or spends a
// key's balance without its owner's.
func TestCredits(t *testing.T, newHarness func(t *testing.T) Harness) {
	t.Helper()
	tests := []struct {
		name string
		run  func(*testing.T, Harness)
	}{
		{"RoundTrip", testLimitsRoundTrip},
		{"ExactConcurrentSpend", testExactSpend},
		{"NeverBelowZero", testNeverBelowZero},
		{"IdempotentRetry", testIdempotentRetry},
		{"RefundOnce", testRefundOnce},
		{"RefillSets", testRefillSets},
		{"OwnerAndKeyAllOrNothing", testOwnerAndKey},
		{"Audited", testCreditsAudited},
		{"ChangeFeed", testLimitsChangeFeed},
		{"DeleteOwner", testDeleteOwner},
		{"LeaseReturn", testLeaseReturn},
		{"LeaseConserves", testLeaseConserves},
		{"LeasingManagers", testLeasingManagers},
		{"PruneSpends", testPruneSpends},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			if _, ok := h.Store.(apikey.LimitStore); !ok {
				t.Fatalf("%T does not implement apikey.LimitStore", h.Store)
			}
			tt.run(t, h)
		})
	}
}

// concurrency is how many goroutines the concurrency subtests run.
const concurrency = 32

func creditsManager(t *testing.T, h Harness) (*apikey.Manager, *Clock) {
	t.Helper()
	c := NewClock(base)
	m := newManager(t, h, apikey.Config{Now: c.Now, UsageFlushInterval: -1})
	return m, c
}

func balanceOf(t *testing.T, m *apikey.Manager, id string) int64 {
	t.Helper()
	k, err := m.Get(t.Context(), id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if k.Credits == nil {
		t.Fatalf("key %s has no credits", id)
	}
	return k.Credits.Remaining
}

// spendAll runs concurrency goroutines that each try perG spends of cost
// with opts, and returns how many passed; any error other than
// ErrUsageExceeded fails the test.
func spendAll(t *testing.T, m *apikey.Manager, token string, perG int, opts func(g, i int) apikey.CheckOptions) int64 {
	t.Helper()
	return spendAcross(t, []*apikey.Manager{m}, token, perG, opts)
}

// spendAcross is spendAll with the goroutines spread over ms in turn. A
// spend that passes must not leave a balance below zero.
func spendAcross(t *testing.T, ms []*apikey.Manager, token string, perG int, opts func(g, i int) apikey.CheckOptions) int64 {
	t.Helper()
	var passed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for g := 0; g < concurrency; g++ {
		m := ms[g%len(ms)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perG; i++ {
				res, err := m.Check(context.Background(), token, opts(g, i))
				switch {
				case err == nil && res.Credits != nil && res.Credits.Remaining < 0:
					errs <- fmt.Errorf("a spend passed with %d left", res.Credits.Remaining)
					return
				case err == nil:
					passed.Add(1)
				case errors.Is(err, apikey.ErrUsageExceeded):
				default:
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Check: %v", err)
	}
	return passed.Load()
}

func testLimitsRoundTrip(t *testing.T, h Harness) {
	ctx := t.Context()
	m, _ := creditsManager(t, h)
	limits := []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20}, {Name: "search", Limit: 10, Period: time.Second, FailOpen: true}}
	k, _ := create(t, m, apikey.CreateParams{Name: "k", Owner: "acme", RateLimits: limits,
		Credits: &apikey.Credits{Remaining: 1000, Refill: &apikey.Refill{Interval: "monthly", Amount: 1000, Day: 31}}})
	got, err := m.Get(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.RateLimits, limits) {
		t.Errorf("RateLimits = %+v, want %+v", got.RateLimits, limits)
	}
	if c := got.Credits; c == nil || c.Remaining != 1000 || c.Refill == nil || *c.Refill != (apikey.Refill{Interval: "monthly", Amount: 1000, Day: 31}) ||
		c.NextRefillAt == nil || !c.NextRefillAt.Equal(time.Date(2031, 3, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("Credits = %+v, want 1000 refilled monthly on the 31st, next 2031-03-31", c)
	}
	// Update replaces and clears them.
	upd, err := m.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &[]apikey.RateLimit{}, ClearCredits: true})
	if err != nil || len(upd.RateLimits) != 0 || upd.Credits != nil {
		t.Fatalf("Update clearing limits and credits: %+v, %v", upd, err)
	}
	if got, _ := m.Get(ctx, k.ID); len(got.RateLimits) != 0 || got.Credits != nil {
		t.Errorf("after clearing: %+v, %+v", got.RateLimits, got.Credits)
	}
	// Owners.
	if _, err := m.Owner(ctx, "acme"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Owner before SetOwner: %v, want ErrNotFound", err)
	}
	o, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &limits, Credits: &apikey.Credits{Remaining: 5}})
	if err != nil || o.ID != "acme" || !slices.Equal(o.RateLimits, limits) || o.Credits == nil || o.Credits.Remaining != 5 {
		t.Fatalf("SetOwner: %+v, %v", o, err)
	}
	o2, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{ClearCredits: true})
	if err != nil || !slices.Equal(o2.RateLimits, limits) || o2.Credits != nil {
		t.Fatalf("SetOwner clearing credits: %+v, %v", o2, err)
	}
	back, err := m.Owner(ctx, "acme")
	if err != nil || !slices.Equal(back.RateLimits, limits) || back.Credits != nil || !back.UpdatedAt.Equal(us(base)) {
		t.Errorf("Owner: %+v, %v", back, err)
	}
}

func testExactSpend(t *testing.T, h Harness) {
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 100}})
	passed := spendAll(t, m, tok, 5, func(int, int) apikey.CheckOptions { return apikey.CheckOptions{Credits: 1} })
	if passed != 100 {
		t.Errorf("%d spends of 1 passed against a balance of 100 (%d tried)", passed, concurrency*5)
	}
	if b := balanceOf(t, m, k.ID); b != 0 {
		t.Errorf("balance = %d, want 0", b)
	}
}

func testNeverBelowZero(t *testing.T, h Harness) {
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 100}})
	passed := spendAll(t, m, tok, 2, func(int, int) apikey.CheckOptions { return apikey.CheckOptions{Credits: 3} })
	if passed != 33 {
		t.Errorf("%d spends of 3 passed against 100, want 33", passed)
	}
	if b := balanceOf(t, m, k.ID); b != 1 {
		t.Errorf("balance = %d, want 1", b)
	}
	if _, err := m.Check(t.Context(), tok, apikey.CheckOptions{Credits: 2}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Errorf("spend 2 of 1: %v, want ErrUsageExceeded", err)
	}
}

func testIdempotentRetry(t *testing.T, h Harness) {
	ctx := t.Context()
	m, clock := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 100}})
	// 32 goroutines retry 4 requests each: each request is spent once.
	passed := spendAll(t, m, tok, 4, func(_, i int) apikey.CheckOptions {
		return apikey.CheckOptions{Credits: 10, IdempotencyKey: fmt.Sprint("req-", i)}
	})
	if passed != concurrency*4 {
		t.Errorf("%d of %d retries passed; a retry must get the first answer", passed, concurrency*4)
	}
	if b := balanceOf(t, m, k.ID); b != 60 {
		t.Errorf("balance = %d, want 60 (4 requests of 10)", b)
	}
	res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 10, IdempotencyKey: "req-0"})
	if err != nil || res.Credits == nil || !res.Credits.Replayed || res.Credits.Remaining < 60 || res.Credits.Remaining > 90 {
		t.Errorf("retry: %+v, %v; want the first answer, replayed", res.Credits, err)
	}
	// Past the window, the same idempotency key is a new request.
	clock.Add(apikey.IdempotencyWindow + time.Second)
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 10, IdempotencyKey: "req-0"}); err != nil || res.Credits.Replayed || res.Credits.Remaining != 50 {
		t.Errorf("after the window: %+v, %v; want a new spend leaving 50", res.Credits, err)
	}
	// Another key's idempotency keys are its own.
	k2, tok2 := create(t, m, apikey.CreateParams{Name: "k2", Credits: &apikey.Credits{Remaining: 100}})
	if res, err := m.Check(ctx, tok2, apikey.CheckOptions{Credits: 10, IdempotencyKey: "req-1"}); err != nil || res.Credits.Replayed {
		t.Errorf("another key, same idempotency key: %+v, %v", res.Credits, err)
	}
	if b := balanceOf(t, m, k2.ID); b != 90 {
		t.Errorf("balance of the other key = %d, want 90", b)
	}
}

func testRefundOnce(t *testing.T, h Harness) {
	ctx := t.Context()
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Owner: "acme", Credits: &apikey.Credits{Remaining: 100}})
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 50}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 30, IdempotencyKey: "spend-1"}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := m.AdjustCredits(context.Background(), apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "spend-1"}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("refund: %v", err)
	}
	if b := balanceOf(t, m, k.ID); b != 100 {
		t.Errorf("key balance after %d refunds = %d, want 100 (refunded once)", concurrency, b)
	}
	if o, err := m.Owner(ctx, "acme"); err != nil || o.Credits.Remaining != 50 {
		t.Errorf("owner after the refunds: %+v, %v; want 50", o, err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "never-spent"}); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("refund of an unknown spend: %v, want ErrNotFound", err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: -101}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("add -101 to 100: %v, want ErrInvalidInput", err)
	}
	if c, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: -100}); err != nil || c.Remaining != 0 {
		t.Errorf("add -100 to 100: %+v, %v", c, err)
	}
	if c, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 7}); err != nil || c.Remaining != 7 {
		t.Errorf("set 7: %+v, %v", c, err)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 7}); !errors.Is(err, apikey.ErrFrozen) {
		t.Errorf("set on a revoked key: %v, want ErrFrozen", err)
	}
}

func testRefillSets(t *testing.T, h Harness) {
	ctx := t.Context()
	m, clock := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 10, Refill: &apikey.Refill{Interval: "1h", Amount: 10}}})
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 100}); err != nil {
		t.Fatal(err)
	}
	clock.Add(59 * time.Minute)
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil || res.Credits.Remaining != 105 {
		t.Fatalf("before the refill: %+v, %v; want 105", res, err)
	}
	clock.Add(time.Minute)
	// The refill sets the balance to 10: it does not add to 105.
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil || res.Credits.Remaining != 9 {
		t.Fatalf("after the refill: %+v, %v; want 10 - 1", res, err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 10}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Fatalf("spend 10 of 9: %v", err)
	}
	var le *apikey.LimitError
	_, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 10})
	if !errors.As(err, &le) || le.RetryAfter != time.Hour {
		t.Errorf("refusal: %v; want RetryAfter 1h, the next refill", err)
	}
	clock.Add(5 * time.Hour) // several periods: one refill, to the amount
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 10}); err != nil || res.Credits.Remaining != 0 {
		t.Fatalf("after five periods: %+v, %v; want 10 - 10", res, err)
	}
	got, _ := m.Get(ctx, k.ID)
	if want := us(base).Add(7 * time.Hour); got.Credits.NextRefillAt == nil || !got.Credits.NextRefillAt.Equal(want) {
		t.Errorf("NextRefillAt = %v, want %v (aligned to the schedule)", got.Credits.NextRefillAt, want)
	}
}

func testOwnerAndKey(t *testing.T, h Harness) {
	ctx := t.Context()
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Owner: "acme", Credits: &apikey.Credits{Remaining: 100}})
	_, tok2 := create(t, m, apikey.CreateParams{Name: "k2", Owner: "acme"}) // no balance of its own
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 20}}); err != nil {
		t.Fatal(err)
	}
	var passed, passedKey atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			token := tok
			if g%2 == 1 {
				token = tok2
			}
			if _, err := m.Check(context.Background(), token, apikey.CheckOptions{Credits: 1}); err == nil {
				passed.Add(1)
				if token == tok {
					passedKey.Add(1)
				}
			} else if !errors.Is(err, apikey.ErrUsageExceeded) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if passed.Load() != 20 {
		t.Errorf("%d spends passed against an owner balance of 20", passed.Load())
	}
	o, err := m.Owner(ctx, "acme")
	if err != nil || o.Credits.Remaining != 0 {
		t.Fatalf("owner: %+v, %v; want 0 left", o, err)
	}
	// The key's balance went down only with the spends the owner allowed.
	kb := balanceOf(t, m, k.ID)
	if want := 100 - passedKey.Load(); kb != want {
		t.Errorf("key balance = %d, want %d: 100 less the %d spends of the key that passed", kb, want, passedKey.Load())
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Fatalf("spend with the owner at 0: %v", err)
	}
	if b := balanceOf(t, m, k.ID); b != kb {
		t.Errorf("key balance moved from %d to %d on a spend the owner refused", kb, b)
	}
	// A key without balance under an owner without record is unlimited.
	_, tok3 := create(t, m, apikey.CreateParams{Name: "k3", Owner: "nobody"})
	if res, err := m.Check(ctx, tok3, apikey.CheckOptions{Credits: 1000}); err != nil || res.Credits != nil {
		t.Errorf("no balances: %+v, %v; want a pass without credits", res, err)
	}
}

func testCreditsAudited(t *testing.T, h Harness) {
	ctx := t.Context()
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 10}})
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	evs, err := h.Store.ListEvents(ctx, apikey.EventQuery{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var types []apikey.EventType
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := []apikey.EventType{apikey.EventOwnerUpdated, apikey.EventCreditsChanged, apikey.EventLimitsChanged, apikey.EventCreated}
	if !slices.Equal(types, want) {
		t.Fatalf("audit log = %v, want %v (spends are not audited)", types, want)
	}
	if c := evs[1].Changes["credits"]; fmt.Sprint(c.Before) != "9" || fmt.Sprint(c.After) != "14" {
		t.Errorf("credits change = %+v, want 9 -> 14", c)
	}
	if _, ok := evs[2].Changes["ratelimits"]; !ok {
		t.Errorf("limits change = %+v, want ratelimits", evs[2].Changes)
	}
	if evs[0].KeyID != apikey.OwnerSubject("acme") || evs[0].Owner != "acme" {
		t.Errorf("owner entry: key id %q, owner %q", evs[0].KeyID, evs[0].Owner)
	}
}

func testLimitsChangeFeed(t *testing.T, h Harness) {
	ctx := t.Context()
	feed, ok := h.Store.(apikey.ChangeFeed)
	if !ok {
		t.Skip("the store is not an apikey.ChangeFeed")
	}
	m, _ := creditsManager(t, h)
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 10}})
	last := func() int64 {
		n, err := feed.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	seq := last()
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1, IdempotencyKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if n := last(); n != seq {
		t.Errorf("a spend and a refund recorded %d changes; balances are not cached", n-seq)
	}
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Second}}}); err != nil {
		t.Fatal(err)
	}
	ids := changedAfter(t, feed, seq)
	if !slices.Contains(ids, k.ID) || !slices.Contains(ids, apikey.OwnerSubject("acme")) {
		t.Errorf("changes after the limits changed name %v, want %s and %s", ids, k.ID, apikey.OwnerSubject("acme"))
	}
	// A balance set, of a key or an owner, gives it a new epoch, which
	// reaches the other instances (their caches and leases) as a change.
	seq = last()
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{Owner: "acme", Op: apikey.CreditSet, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	ids = changedAfter(t, feed, seq)
	if !slices.Contains(ids, k.ID) || !slices.Contains(ids, apikey.OwnerSubject("acme")) {
		t.Errorf("changes after the balances were set name %v, want %s and %s", ids, k.ID, apikey.OwnerSubject("acme"))
	}
	seq = last()
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
		t.Fatal(err)
	}
	if n := last(); n != seq {
		t.Errorf("a spend after the set recorded %d changes", n-seq)
	}
}

// testDeleteOwner checks LimitStore.DeleteOwner through the Manager: the
// owner's limits and balance go, its keys stay with their own, the
// deletion is audited and in the change feed, a refund of a spend that
// took from the deleted balance gives back the key's part, and an unknown
// owner is ErrNotFound.
func testDeleteOwner(t *testing.T, h Harness) {
	ctx := t.Context()
	m, _ := creditsManager(t, h)
	one := []apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Hour}}
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &one, Credits: &apikey.Credits{Remaining: 10}}); err != nil {
		t.Fatal(err)
	}
	k, tok := create(t, m, apikey.CreateParams{Name: "k", Owner: "acme", Credits: &apikey.Credits{Remaining: 5}})
	other, _ := create(t, m, apikey.CreateParams{Name: "other", Owner: "acme"})
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 2, IdempotencyKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); !errors.Is(err, apikey.ErrRateLimited) {
		t.Fatalf("second Check under the owner's 1/h: %v, want ErrRateLimited", err)
	}
	var seq int64
	feed, isFeed := h.Store.(apikey.ChangeFeed)
	if isFeed {
		n, err := feed.LastChange(ctx)
		if err != nil {
			t.Fatal(err)
		}
		seq = n
	}

	if err := m.DeleteOwner(ctx, "acme"); err != nil {
		t.Fatalf("DeleteOwner: %v", err)
	}
	if _, err := m.Owner(ctx, "acme"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Owner after DeleteOwner: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"acme", "nobody"} {
		if err := m.DeleteOwner(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("DeleteOwner(%q) without a record: %v, want ErrNotFound", id, err)
		}
	}
	if err := m.DeleteOwner(ctx, ""); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("DeleteOwner(\"\"): %v, want ErrInvalidInput", err)
	}
	if err := h.Store.(apikey.LimitStore).DeleteOwner(ctx, "acme", nil); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("LimitStore.DeleteOwner of a deleted owner: %v, want ErrNotFound", err)
	}

	// The keys stay, with their owner and their own balance.
	for _, id := range []string{k.ID, other.ID} {
		got, err := m.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s) after DeleteOwner: %v", id, err)
		}
		if got.Owner != "acme" {
			t.Errorf("key %s owner = %q, want acme", id, got.Owner)
		}
	}
	if b := balanceOf(t, m, k.ID); b != 3 {
		t.Errorf("key balance after DeleteOwner = %d, want 3", b)
	}
	// Neither the owner's limit nor its balance applies any more.
	for i := range 3 {
		res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1})
		if err != nil {
			t.Fatalf("Check %d after DeleteOwner: %v", i, err)
		}
		for _, r := range res.RateLimits {
			if r.Scope == "owner" {
				t.Errorf("Check after DeleteOwner applied an owner limit: %+v", r)
			}
		}
		if res.Credits == nil || res.Credits.Remaining != int64(2-i) {
			t.Errorf("Check %d: credits %+v, want the key's %d", i, res.Credits, 2-i)
		}
	}
	// A refund of a spend that took from the deleted balance gives back
	// the key's part.
	c, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "a"})
	if err != nil {
		t.Fatalf("refund after DeleteOwner: %v", err)
	}
	if c == nil || c.Remaining != 2 {
		t.Errorf("balance after the refund = %+v, want 2", c)
	}

	// Audited, with what the record held.
	evs, err := h.Store.ListEvents(ctx, apikey.EventQuery{Type: apikey.EventOwnerDeleted, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("owner.deleted entries = %d, want 1", len(evs))
	}
	ev := evs[0]
	if ev.KeyID != apikey.OwnerSubject("acme") || ev.Owner != "acme" {
		t.Errorf("owner.deleted: key id %q, owner %q", ev.KeyID, ev.Owner)
	}
	if c := ev.Changes["credits"]; fmt.Sprint(c.Before) == "<nil>" || c.After != nil {
		t.Errorf("owner.deleted credits change = %+v, want the balance -> nil", c)
	}
	if _, ok := ev.Changes["ratelimits"]; !ok {
		t.Errorf("owner.deleted changes = %+v, want ratelimits", ev.Changes)
	}

	// In the change feed, so that other instances evict the owner.
	if isFeed {
		ids := changedAfter(t, feed, seq)
		if !slices.Contains(ids, apikey.OwnerSubject("acme")) {
			t.Errorf("changes after DeleteOwner name %v, want %s", ids, apikey.OwnerSubject("acme"))
		}
	}

	// A new record starts afresh.
	o, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.RateLimits) != 0 || o.Credits == nil || o.Credits.Remaining != 1 {
		t.Errorf("owner recreated after DeleteOwner = %+v, want no limits and a balance of 1", o)
	}
}

// changedAfter returns the ids (keys and OwnerSubject ids) of the first
// changes of feed after seq.
func changedAfter(t *testing.T, feed apikey.ChangeFeed, seq int64) []string {
	t.Helper()
	changes, err := feed.ChangesAfter(context.Background(), seq, 10)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range changes {
		ids = append(ids, c.KeyID)
	}
	return ids
}

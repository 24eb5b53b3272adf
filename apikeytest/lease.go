package apikeytest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// testLeaseReturn checks SpendRequest.Lease and Return against the store:
// a lease takes its share with the cost, a return gives it back to the
// balance it came from, and never to a balance set, cleared or refilled
// since.
func testLeaseReturn(t *testing.T, h Harness) {
	ctx := t.Context()
	m, clock := creditsManager(t, h)
	ls := h.Store.(apikey.LimitStore)
	spend := func(req apikey.SpendRequest) apikey.SpendResult {
		t.Helper()
		req.Now = clock.Now()
		res, err := ls.SpendCredits(ctx, req)
		if err != nil {
			t.Fatalf("SpendCredits(%+v): %v", req, err)
		}
		return res
	}
	remaining := func(p *int64) int64 {
		t.Helper()
		if p == nil {
			t.Fatal("no balance in the result")
		}
		return *p
	}

	k, _ := create(t, m, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 1000}})
	res := spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 100})
	// (1000 - 1) / LeaseShare = 62 of the 100 asked.
	if !res.Spent || res.Leased != 62 || remaining(res.KeyRemaining) != 1000-1-62 || res.OwnerRemaining != nil || res.RefillAt != nil {
		t.Fatalf("lease: %+v; want 1 spent and 62 leased, 937 left", res)
	}
	if b := balanceOf(t, m, k.ID); b != 937 {
		t.Fatalf("stored balance %d, want 937", b)
	}
	ret := spend(apikey.SpendRequest{KeyID: k.ID, Return: 62, KeyEpoch: res.KeyEpoch})
	if !ret.Spent || remaining(ret.KeyRemaining) != 999 || ret.KeyEpoch != res.KeyEpoch || ret.Leased != 0 {
		t.Fatalf("return: %+v; want 999 left, epoch %d kept", ret, res.KeyEpoch)
	}
	if b := balanceOf(t, m, k.ID); b != 999 {
		t.Fatalf("stored balance after the return %d, want 999", b)
	}
	// A return with a spend folds the old lease in: 999 + 62 - 1 - lease.
	res = spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 100})
	res2 := spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 1, Return: res.Leased, KeyEpoch: res.KeyEpoch})
	if want := int64(999 - 1 - 1 - 1); remaining(res2.KeyRemaining) != want || res2.Leased != 1 {
		t.Fatalf("spend with return: %+v; want %d left, 1 leased", res2, want)
	}

	// A lease taken ahead, without a spend.
	ahead := spend(apikey.SpendRequest{KeyID: k.ID, Lease: 10, KeyEpoch: res2.KeyEpoch})
	if want := int64(996 - 10); !ahead.Spent || ahead.Leased != 10 || remaining(ahead.KeyRemaining) != want {
		t.Fatalf("lease ahead: %+v; want 10 leased, %d left", ahead, want)
	}
	spend(apikey.SpendRequest{KeyID: k.ID, Return: 10, KeyEpoch: ahead.KeyEpoch})

	// A set gives the balance a new epoch: what was leased before it is
	// not given back.
	res = spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 100})
	if res.Leased == 0 {
		t.Fatalf("no lease: %+v", res)
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 50}); err != nil {
		t.Fatal(err)
	}
	ret = spend(apikey.SpendRequest{KeyID: k.ID, Return: res.Leased, KeyEpoch: res.KeyEpoch})
	if remaining(ret.KeyRemaining) != 50 || ret.KeyEpoch == res.KeyEpoch {
		t.Fatalf("return after a set: %+v; want 50 left and a new epoch (was %d)", ret, res.KeyEpoch)
	}
	// Add and refund keep the epoch.
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 30}); err != nil {
		t.Fatal(err)
	}
	if again := spend(apikey.SpendRequest{KeyID: k.ID, Return: 5, KeyEpoch: ret.KeyEpoch}); remaining(again.KeyRemaining) != 85 {
		t.Fatalf("return after an add: %+v; want 50 + 30 + 5", again)
	}
	// So does an update of the key that sets its credits.
	res = spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 100})
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Credits: &apikey.Credits{Remaining: 7}}); err != nil {
		t.Fatal(err)
	}
	if ret = spend(apikey.SpendRequest{KeyID: k.ID, Return: res.Leased, KeyEpoch: res.KeyEpoch}); remaining(ret.KeyRemaining) != 7 {
		t.Fatalf("return after an update of the credits: %+v; want 7", ret)
	}
	// A lease the balance cannot cover is not taken; the cost is.
	if res = spend(apikey.SpendRequest{KeyID: k.ID, Cost: 5, Lease: 100}); !res.Spent || res.Leased != 0 || remaining(res.KeyRemaining) != 2 {
		t.Fatalf("lease of a small balance: %+v; want 5 spent, none leased, 2 left", res)
	}
	// A cleared balance takes nothing back.
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{ClearCredits: true}); err != nil {
		t.Fatal(err)
	}
	if ret = spend(apikey.SpendRequest{KeyID: k.ID, Return: 9, KeyEpoch: res.KeyEpoch}); !ret.Spent || ret.KeyRemaining != nil {
		t.Fatalf("return to a cleared balance: %+v", ret)
	}

	// A refill gives a new epoch, and ends the lease (RefillAt).
	r, _ := create(t, m, apikey.CreateParams{Name: "r", Credits: &apikey.Credits{Remaining: 100, Refill: &apikey.Refill{Interval: "1h", Amount: 100}}})
	res = spend(apikey.SpendRequest{KeyID: r.ID, Cost: 1, Lease: 100})
	if want := clock.Now().Add(time.Hour); res.Leased != 99/apikey.LeaseShare || res.RefillAt == nil || res.RefillAt.Sub(want).Abs() > time.Second {
		t.Fatalf("lease of a refilled balance: %+v; want %d leased until about %v", res, 99/apikey.LeaseShare, want)
	}
	clock.Add(time.Hour)
	ret = spend(apikey.SpendRequest{KeyID: r.ID, Return: res.Leased, KeyEpoch: res.KeyEpoch})
	if remaining(ret.KeyRemaining) != 100 || ret.KeyEpoch == res.KeyEpoch {
		t.Fatalf("return after the refill: %+v; want 100, the refill, and a new epoch", ret)
	}

	// Owner and key: the lease is taken from both, its size from the
	// smaller; a return goes to each balance whose epoch is unchanged.
	ok, _ := create(t, m, apikey.CreateParams{Name: "o", Owner: "lessee", Credits: &apikey.Credits{Remaining: 1000}})
	if _, err := m.SetOwner(ctx, "lessee", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 500}}); err != nil {
		t.Fatal(err)
	}
	res = spend(apikey.SpendRequest{KeyID: ok.ID, Owner: "lessee", Cost: 1, Lease: 100})
	if res.Leased != 499/apikey.LeaseShare || remaining(res.KeyRemaining) != 999-res.Leased || remaining(res.OwnerRemaining) != 499-res.Leased {
		t.Fatalf("lease of key and owner: %+v; want %d leased from both", res, 499/apikey.LeaseShare)
	}
	if _, err := m.SetOwner(ctx, "lessee", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 200}}); err != nil {
		t.Fatal(err)
	}
	ret = spend(apikey.SpendRequest{KeyID: ok.ID, Owner: "lessee", Return: res.Leased, KeyEpoch: res.KeyEpoch, OwnerEpoch: res.OwnerEpoch})
	if remaining(ret.KeyRemaining) != 999 || remaining(ret.OwnerRemaining) != 200 {
		t.Fatalf("return after the owner's set: %+v; want the key's 999 back, the owner at 200", ret)
	}
	// A balance with no credits, key or owner, leases nothing.
	nk, _ := create(t, m, apikey.CreateParams{Name: "n"})
	if res = spend(apikey.SpendRequest{KeyID: nk.ID, Cost: 1, Lease: 100}); !res.Spent || res.Leased != 0 || res.KeyRemaining != nil {
		t.Fatalf("lease without a balance: %+v", res)
	}

	// Malformed requests, and an unknown key.
	for _, req := range []apikey.SpendRequest{
		{KeyID: k.ID},
		{KeyID: k.ID, Cost: -1},
		{KeyID: k.ID, Cost: 1, Lease: -1},
		{KeyID: k.ID, Return: -1, Cost: 1},
		{KeyID: k.ID, Cost: 1, Lease: 5, IdempotencyKey: "x"},
		{KeyID: k.ID, Cost: 1, Return: 5, IdempotencyKey: "x"},
	} {
		req.Now = clock.Now()
		if _, err := ls.SpendCredits(ctx, req); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("SpendCredits(%+v): %v, want ErrInvalidInput", req, err)
		}
	}
	if _, err := ls.SpendCredits(ctx, apikey.SpendRequest{KeyID: "nosuchkey0000000", Return: 3, Now: clock.Now()}); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("return to an unknown key: %v, want ErrNotFound", err)
	}
}

// testLeaseConserves runs concurrency goroutines that each lease and give
// back, many times over: whatever the interleaving, the balance ends at
// what it was less the costs, exactly.
func testLeaseConserves(t *testing.T, h Harness) {
	ctx := t.Context()
	m, clock := creditsManager(t, h)
	ls := h.Store.(apikey.LimitStore)
	k, _ := create(t, m, apikey.CreateParams{Name: "k", Owner: "pool", Credits: &apikey.Credits{Remaining: 100000}})
	if _, err := m.SetOwner(ctx, "pool", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 50000}}); err != nil {
		t.Fatal(err)
	}
	const rounds = 8
	var wg sync.WaitGroup
	errs := make(chan error, concurrency)
	for g := 0; g < concurrency; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var held apikey.SpendResult
			for i := 0; i < rounds; i++ {
				res, err := ls.SpendCredits(ctx, apikey.SpendRequest{KeyID: k.ID, Owner: "pool", Cost: 1, Lease: int64(1 + g%5),
					Return: held.Leased, KeyEpoch: held.KeyEpoch, OwnerEpoch: held.OwnerEpoch, Now: clock.Now()})
				if err != nil || !res.Spent || res.Leased == 0 {
					errs <- errors.Join(err, errors.New("a spend with a lease was refused or leased nothing"))
					return
				}
				held = res
			}
			_, err := ls.SpendCredits(ctx, apikey.SpendRequest{KeyID: k.ID, Owner: "pool", Return: held.Leased,
				KeyEpoch: held.KeyEpoch, OwnerEpoch: held.OwnerEpoch, Now: clock.Now()})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	spent := int64(concurrency * rounds)
	if b := balanceOf(t, m, k.ID); b != 100000-spent {
		t.Errorf("key balance %d, want %d: every lease given back, every cost kept", b, 100000-spent)
	}
	if o, err := m.Owner(ctx, "pool"); err != nil || o.Credits.Remaining != 50000-spent {
		t.Errorf("owner: %+v, %v; want %d", o, err, 50000-spent)
	}
}

// testLeasingManagers runs two Managers that lease (Config.CreditLease)
// over the store, with concurrency goroutines spending one credit at a
// time from one key and its owner, far more often than the balances
// allow: no more passes than the smaller balance holds, and once both
// Managers are closed the store holds exactly the balances less what
// passed, which a third Manager can then spend to the last credit.
func testLeasingManagers(t *testing.T, h Harness) {
	ctx := t.Context()
	clock := NewClock(base)
	cfg := apikey.Config{Now: clock.Now, UsageFlushInterval: -1, CreditLease: 50}
	a, b := newManager(t, h, cfg), newManager(t, h, cfg)
	k, tok := create(t, a, apikey.CreateParams{Name: "k", Owner: "team", Credits: &apikey.Credits{Remaining: 1000}})
	if _, err := a.SetOwner(ctx, "team", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 800}}); err != nil {
		t.Fatal(err)
	}
	p := spendAcross(t, []*apikey.Manager{a, b}, tok, 40, func(int, int) apikey.CheckOptions { return apikey.CheckOptions{Credits: 1} })
	if p > 800 || p < 700 {
		t.Fatalf("%d of %d spends passed against an owner balance of 800", p, concurrency*40)
	}
	for _, m := range []*apikey.Manager{a, b} {
		if err := m.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if got := balanceOf(t, newManager(t, h, apikey.Config{Now: clock.Now, UsageFlushInterval: -1}), k.ID); got != 1000-p {
		t.Errorf("key balance %d after Close, want 1000 - %d", got, p)
	}
	c := newManager(t, h, apikey.Config{Now: clock.Now, UsageFlushInterval: -1})
	o, err := c.Owner(ctx, "team")
	if err != nil || o.Credits.Remaining != 800-p {
		t.Fatalf("owner after Close: %+v, %v; want %d", o, err, 800-p)
	}
	rest := spendAll(t, c, tok, 40, func(int, int) apikey.CheckOptions { return apikey.CheckOptions{Credits: 1} })
	if rest != 800-p {
		t.Errorf("a third Manager spent %d of the %d left", rest, 800-p)
	}
}

// testPruneSpends checks apikey.SpendPruner: the records of spends made
// before the time given are forgotten (their refunds are not found), the
// others kept, whatever the key.
func testPruneSpends(t *testing.T, h Harness) {
	ctx := t.Context()
	p, ok := h.Store.(apikey.SpendPruner)
	if !ok {
		t.Skipf("%T is not an apikey.SpendPruner", h.Store)
	}
	m, clock := creditsManager(t, h)
	a, ta := create(t, m, apikey.CreateParams{Name: "a", Credits: &apikey.Credits{Remaining: 100}})
	b, tb := create(t, m, apikey.CreateParams{Name: "b", Credits: &apikey.Credits{Remaining: 100}})
	for _, tok := range []string{ta, tb} {
		if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 1, IdempotencyKey: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(23 * time.Hour)
	if _, err := m.Check(ctx, ta, apikey.CheckOptions{Credits: 1, IdempotencyKey: "new"}); err != nil {
		t.Fatal(err)
	}
	clock.Add(2 * time.Hour)
	n, err := m.PruneSpends(ctx)
	if err != nil || n != 2 {
		t.Fatalf("PruneSpends: %d, %v; want the 2 records older than 24h", n, err)
	}
	for _, id := range []string{a.ID, b.ID} {
		if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: id, Op: apikey.CreditRefund, IdempotencyKey: "old"}); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("refund of a pruned spend of %s: %v, want ErrNotFound", id, err)
		}
	}
	if c, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: a.ID, Op: apikey.CreditRefund, IdempotencyKey: "new"}); err != nil || c.Remaining != 99 {
		t.Errorf("refund of the spend within the window: %+v, %v; want 99", c, err)
	}
	if n, err := p.PruneSpends(ctx, clock.Now().Add(-apikey.IdempotencyWindow)); err != nil || n != 0 {
		t.Errorf("second prune: %d, %v; want nothing left to prune", n, err)
	}
}

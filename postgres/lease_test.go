package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

// TestCreditEpochs follows credits_epoch (migration 0015) through every
// write of a balance, including those apikeytest.TestCredits/LeaseReturn
// does not reach: a set, a clear and a refill, wherever it is applied,
// give a new epoch; a spend, an add, a refund and any other change keep
// it. An owner deleted and made again takes an epoch it never had.
func TestCreditEpochs(t *testing.T) {
	ctx := t.Context()
	s := newStore(t)
	clock := apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	m, err := apikey.NewManager(s, apikey.Config{Now: clock.Now, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })

	epoch := func(table, id string) int64 {
		t.Helper()
		var e int64 // 0 for no row
		if err := s.Pool().QueryRow(ctx, "SELECT coalesce(max(credits_epoch), 0) FROM "+table+" WHERE id = $1", id).Scan(&e); err != nil {
			t.Fatalf("epoch of %s %s: %v", table, id, err)
		}
		return e
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	spend := func(req apikey.SpendRequest) {
		t.Helper()
		req.Now = clock.Now()
		res, err := s.SpendCredits(ctx, req)
		if err != nil || !res.Spent {
			t.Fatalf("SpendCredits(%+v): %+v, %v", req, res, err)
		}
	}

	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme",
		Credits: &apikey.Credits{Remaining: 100, Refill: &apikey.Refill{Interval: "1h", Amount: 100}}})
	if err != nil {
		t.Fatal(err)
	}
	adjust := func(adj apikey.CreditAdjustment) func() {
		return func() { must(m.AdjustCredits(ctx, adj)) }
	}
	steps := []struct {
		name    string
		table   string // apikey_keys or apikey_owners
		id      string
		do      func()
		changes bool
	}{
		{"spend", "apikey_keys", k.ID, func() { spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1, Lease: 10}) }, false},
		{"idempotent spend", "apikey_keys", k.ID, func() { spend(apikey.SpendRequest{KeyID: k.ID, Cost: 2, IdempotencyKey: "r1"}) }, false},
		{"add", "apikey_keys", k.ID, adjust(apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 5}), false},
		{"refund", "apikey_keys", k.ID, adjust(apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "r1"}), false},
		{"update of the name", "apikey_keys", k.ID, func() { must(m.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("k2")})) }, false},
		{"set", "apikey_keys", k.ID, adjust(apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 50}), true},
		{"spend with a refill due", "apikey_keys", k.ID, func() {
			clock.Add(time.Hour)
			spend(apikey.SpendRequest{KeyID: k.ID, Cost: 1})
		}, true},
		{"add with a refill due", "apikey_keys", k.ID, func() {
			clock.Add(time.Hour)
			must(m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 5}))
		}, true},
		{"refund with a refill due", "apikey_keys", k.ID, func() {
			spend(apikey.SpendRequest{KeyID: k.ID, Cost: 2, IdempotencyKey: "r2"})
			clock.Add(time.Hour)
			must(m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "r2"}))
		}, true},
		{"update of the credits", "apikey_keys", k.ID, func() {
			must(m.Update(ctx, k.ID, apikey.KeyUpdate{Credits: &apikey.Credits{Remaining: 9}}))
		}, true},
		{"update that clears the credits", "apikey_keys", k.ID, func() {
			must(m.Update(ctx, k.ID, apikey.KeyUpdate{ClearCredits: true}))
		}, true},

		{"owner set", "apikey_owners", "acme", func() {
			must(m.SetOwner(ctx, "acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 500}}))
		}, true},
		{"owner spend", "apikey_owners", "acme", func() { spend(apikey.SpendRequest{KeyID: k.ID, Owner: "acme", Cost: 1, Lease: 10}) }, false},
		{"owner add", "apikey_owners", "acme", adjust(apikey.CreditAdjustment{Owner: "acme", Op: apikey.CreditAdd, Amount: 5}), false},
		{"owner limits", "apikey_owners", "acme", func() {
			must(m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{}}))
		}, false},
		{"owner cleared", "apikey_owners", "acme", func() {
			must(m.SetOwner(ctx, "acme", apikey.OwnerUpdate{ClearCredits: true}))
		}, true},
		{"owner add to no balance", "apikey_owners", "acme", adjust(apikey.CreditAdjustment{Owner: "acme", Op: apikey.CreditAdd, Amount: 5}), true},
		{"owner set by an adjustment", "apikey_owners", "acme", adjust(apikey.CreditAdjustment{Owner: "acme", Op: apikey.CreditSet, Amount: 7}), true},
	}
	seen := map[string]int64{} // the greatest epoch of each table
	for _, st := range steps {
		before := epoch(st.table, st.id)
		st.do()
		after := epoch(st.table, st.id)
		if changed := after != before; changed != st.changes {
			t.Errorf("%s: epoch %d -> %d; want a new epoch: %v", st.name, before, after, st.changes)
		}
		if after < before {
			t.Errorf("%s: epoch went back, %d -> %d", st.name, before, after)
		}
		seen[st.table] = max(seen[st.table], after)
	}

	// An owner deleted and made again, a second later, takes a new epoch.
	if err := m.DeleteOwner(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Second)
	must(m.SetOwner(ctx, "acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 500}}))
	if e := epoch("apikey_owners", "acme"); e <= seen["apikey_owners"] {
		t.Errorf("owner made again: epoch %d, want more than %d", e, seen["apikey_owners"])
	}
}

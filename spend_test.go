package apikey_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestSpend: the rule every LimitStore applies, all or nothing over the
// key's and the owner's balances, refills first.
func TestSpend(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	soon, later := now.Add(time.Hour), now.Add(48*time.Hour)

	key, owner := &apikey.Credits{Remaining: 10}, &apikey.Credits{Remaining: 3, NextRefillAt: &later}
	res := apikey.Spend(key, owner, now, 5)
	if res.Spent || key.Remaining != 10 || owner.Remaining != 3 || *res.KeyRemaining != 10 || *res.OwnerRemaining != 3 {
		t.Errorf("owner short: %+v, key %d, owner %d; want nothing spent", res, key.Remaining, owner.Remaining)
	}
	if res.NextRefillAt == nil || !res.NextRefillAt.Equal(later) {
		t.Errorf("owner short: next refill %v, want %v", res.NextRefillAt, later)
	}

	key.NextRefillAt = &soon
	key.Remaining = 1
	if res = apikey.Spend(key, owner, now, 5); res.NextRefillAt == nil || !res.NextRefillAt.Equal(soon) {
		t.Errorf("both short: next refill %v, want the earliest, %v", res.NextRefillAt, soon)
	}

	key, owner = &apikey.Credits{Remaining: 10}, &apikey.Credits{Remaining: 7}
	res = apikey.Spend(key, owner, now, 5)
	if !res.Spent || key.Remaining != 5 || owner.Remaining != 2 || *res.KeyRemaining != 5 || *res.OwnerRemaining != 2 {
		t.Errorf("both cover: %+v, key %d, owner %d; want 5 and 2", res, key.Remaining, owner.Remaining)
	}
	*res.KeyRemaining = 99 // the result's numbers are its own
	if key.Remaining != 5 {
		t.Errorf("the result shares the key's balance")
	}

	if res = apikey.Spend(nil, nil, now, 5); !res.Spent || res.KeyRemaining != nil || res.OwnerRemaining != nil {
		t.Errorf("no balances: %+v, want spent with no numbers", res)
	}

	// A refill due sets the balance before the spend.
	due := now.Add(-time.Minute)
	key = &apikey.Credits{Remaining: 0, Refill: &apikey.Refill{Interval: apikey.RefillDaily, Amount: 100}, NextRefillAt: &due}
	if res = apikey.Spend(key, nil, now, 30); !res.Spent || key.Remaining != 70 || res.OwnerRemaining != nil {
		t.Errorf("refill due: %+v, balance %d; want spent from 100, 70 left", res, key.Remaining)
	}
}

// TestAdjust: set and add after the refill due, never below zero, on a
// copy.
func TestAdjust(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	due := now.Add(-time.Minute)
	c := &apikey.Credits{Remaining: 3, Refill: &apikey.Refill{Interval: apikey.RefillDaily, Amount: 50}, NextRefillAt: &due}
	got, err := apikey.Adjust(c, apikey.CreditAdd, 10, now)
	if err != nil || got.Remaining != 60 || c.Remaining != 3 {
		t.Errorf("add after a refill: %+v, %v (original %d); want 60 on a copy", got, err, c.Remaining)
	}
	if got, err = apikey.Adjust(nil, apikey.CreditSet, 7, now); err != nil || got.Remaining != 7 {
		t.Errorf("set on no balance: %+v, %v", got, err)
	}
	if _, err = apikey.Adjust(&apikey.Credits{Remaining: 5}, apikey.CreditAdd, -6, now); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("add below zero: %v, want ErrInvalidInput", err)
	}
	if got, err = apikey.Adjust(&apikey.Credits{Remaining: 5}, apikey.CreditAdd, -5, now); err != nil || got.Remaining != 0 {
		t.Errorf("add down to zero: %+v, %v", got, err)
	}
	if _, err = apikey.Adjust(nil, apikey.CreditRefund, 1, now); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("refund through Adjust: %v, want ErrInvalidInput", err)
	}
	if ch := apikey.CreditsChange(nil, &apikey.Credits{Remaining: 4}); ch.Before != nil || ch.After != int64(4) {
		t.Errorf("CreditsChange: %+v", ch)
	}
}

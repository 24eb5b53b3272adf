package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestClientLimits drives the limits and credits of the service through
// apikeyclient: create and update with limits, Check, AdjustCredits,
// owners.
func TestClientLimits(t *testing.T) {
	s := newService(t)
	c := s.client(t, s.admin)
	ctx := context.Background()

	limits := []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Hour}, {Name: "tokens", Limit: 10, Period: time.Hour, Burst: 5}}
	k, token, err := c.Create(ctx, apikey.CreateParams{Name: "metered", Owner: "acme", RateLimits: limits, Credits: &apikey.Credits{Remaining: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if len(k.RateLimits) != 2 || k.RateLimits[1] != limits[1] || k.Credits == nil || k.Credits.Remaining != 3 {
		t.Fatalf("created: %+v %+v", k.RateLimits, k.Credits)
	}

	res, err := c.Check(ctx, token, apikey.CheckOptions{RateLimit: "tokens", Cost: 2, Credits: 2, IdempotencyKey: "job-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Key.ID != k.ID || len(res.RateLimits) != 2 || res.RateLimits[1].Name != "tokens" || res.RateLimits[1].Remaining != 3 ||
		res.RateLimits[1].Reset <= 0 || res.Credits == nil || res.Credits.Remaining != 1 {
		t.Errorf("check: %+v %+v %+v", res.Key, res.RateLimits, res.Credits)
	}
	if res, err = c.Check(ctx, token, apikey.CheckOptions{Credits: 2, IdempotencyKey: "job-1"}); err != nil || !res.Credits.Replayed || res.Credits.Remaining != 1 {
		t.Errorf("replay: %+v, %v", res, err)
	}
	_, err = c.Check(ctx, token, apikey.CheckOptions{Credits: 2})
	var le *apikey.LimitError
	if !errors.Is(err, apikey.ErrUsageExceeded) || !errors.As(err, &le) {
		t.Errorf("check beyond the credits: %v, want a *apikey.LimitError matching ErrUsageExceeded", err)
	}
	_, err = c.Check(ctx, token, apikey.CheckOptions{RateLimit: "tokens", Cost: 4})
	if !errors.Is(err, apikey.ErrRateLimited) || !errors.As(err, &le) || le.RetryAfter <= 0 {
		t.Errorf("check beyond the limit: %v (%+v), want ErrRateLimited with a RetryAfter", err, le)
	}
	if _, err := c.Check(ctx, "ak_AAAAAAAAAAAA_"+"x", apikey.CheckOptions{}); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("check of a bad token: %v", err)
	}
	_, err = c.Check(ctx, token, apikey.CheckOptions{RateLimit: "Bad Name"})
	s.checkErr(t, "check with a bad limit name", err, apikey.ErrInvalidInput, http.StatusBadRequest, apikey.CodeInvalidInput)

	// Credits: add, refund, set; an unknown spend; below zero.
	if cr, err := c.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 10}); err != nil || cr.Remaining != 11 {
		t.Errorf("add: %+v, %v", cr, err)
	}
	if cr, err := c.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "job-1"}); err != nil || cr.Remaining != 13 {
		t.Errorf("refund: %+v, %v", cr, err)
	}
	_, err = c.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "job-2"})
	s.checkErr(t, "refund of an unknown spend", err, apikey.ErrNotFound, http.StatusNotFound, apikey.CodeNotFound)
	_, err = c.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: -100})
	var ve *apikey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "amount" {
		t.Errorf("add below zero: %v, want a validation error on amount", err)
	}

	// Update: new limits, credits cleared.
	one := []apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Minute, FailOpen: true}}
	k, err = c.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &one, ClearCredits: true})
	if err != nil || len(k.RateLimits) != 1 || !k.RateLimits[0].FailOpen || k.Credits != nil {
		t.Errorf("update: %+v, %v", k, err)
	}
	if _, err := c.Update(ctx, k.ID, apikey.KeyUpdate{Credits: &apikey.Credits{}, ClearCredits: true}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("update that sets and clears the credits: %v", err)
	}

	// Owners.
	if _, err := c.Owner(ctx, "globex"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("owner without a record: %v", err)
	}
	o, err := c.SetOwner(ctx, "acme corp/eu", apikey.OwnerUpdate{RateLimits: &limits, Credits: &apikey.Credits{Remaining: 50}})
	if err != nil || o.ID != "acme corp/eu" || len(o.RateLimits) != 2 || o.Credits.Remaining != 50 {
		t.Fatalf("set owner: %+v, %v", o, err)
	}
	if cr, err := c.AdjustCredits(ctx, apikey.CreditAdjustment{Owner: "acme corp/eu", Op: apikey.CreditSet, Amount: 7}); err != nil || cr.Remaining != 7 {
		t.Errorf("owner set: %+v, %v", cr, err)
	}
	if o, err = c.Owner(ctx, "acme corp/eu"); err != nil || o.Credits == nil || o.Credits.Remaining != 7 {
		t.Errorf("owner: %+v, %v", o, err)
	}

	// Replace: what is not sent is gone.
	one = []apikey.RateLimit{{Name: "search", Limit: 3, Period: time.Second}}
	if o, err = c.ReplaceOwner(ctx, apikey.Owner{ID: "acme corp/eu", RateLimits: one}); err != nil || len(o.RateLimits) != 1 || o.RateLimits[0].Name != "search" || o.Credits != nil {
		t.Errorf("replace owner: %+v, %v", o, err)
	}
	if o, err = c.Owner(ctx, "acme corp/eu"); err != nil || len(o.RateLimits) != 1 || o.Credits != nil {
		t.Errorf("owner after replace: %+v, %v", o, err)
	}
	if _, err := c.ReplaceOwner(ctx, apikey.Owner{ID: "acme", RateLimits: []apikey.RateLimit{{Name: "bad name!", Limit: 1, Period: time.Second}}}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("replace with a bad limit: %v", err)
	}

	// DeleteOwner: the record goes, the owner's keys stay; a second
	// delete, and an owner that never had a record, are not found.
	if err := c.DeleteOwner(ctx, "acme corp/eu"); err != nil {
		t.Fatalf("DeleteOwner: %v", err)
	}
	if _, err := c.Owner(ctx, "acme corp/eu"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Owner after DeleteOwner: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"acme corp/eu", "globex"} {
		if err := c.DeleteOwner(ctx, id); !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("DeleteOwner(%q) without a record: %v, want ErrNotFound", id, err)
		}
	}
	if err := c.DeleteOwner(ctx, ""); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("DeleteOwner(\"\"): %v, want ErrInvalidInput", err)
	}
	if _, err := c.Get(ctx, k.ID); err != nil {
		t.Errorf("the owner's key after DeleteOwner: %v", err)
	}
}

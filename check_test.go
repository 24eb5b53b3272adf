package apikey_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

func limitManager(t *testing.T) (*apikey.Manager, *apikeytest.Clock) {
	t.Helper()
	clock := apikeytest.NewClock(limitEpoch)
	m := mustManager(t, openStore(t), apikey.Config{Now: clock.Now, UsageFlushInterval: -1})
	return m, clock
}

func TestCheckKeyAndOwnerLimits(t *testing.T) {
	ctx := context.Background()
	m, clock := limitManager(t)
	_, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme", RateLimits: []apikey.RateLimit{
		{Name: "requests", Limit: 100, Period: time.Minute, Burst: 3},
		{Name: "search", Limit: 1, Period: time.Second, Burst: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	// The "requests" limit applies to every request; "search" only when
	// asked for.
	for i := 0; i < 3; i++ {
		res, err := m.Check(ctx, tok, apikey.CheckOptions{})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if len(res.RateLimits) != 1 || res.RateLimits[0].Name != "requests" || res.RateLimits[0].Remaining != int64(2-i) {
			t.Fatalf("request %d: limits %+v", i, res.RateLimits)
		}
	}
	_, err = m.Check(ctx, tok, apikey.CheckOptions{})
	var le *apikey.LimitError
	if !errors.Is(err, apikey.ErrRateLimited) || !errors.As(err, &le) || le.RetryAfter != 600*time.Millisecond {
		t.Fatalf("4th request: %v, want ErrRateLimited retrying after 600ms", err)
	}
	if apikey.CodeOf(err) != apikey.CodeRateLimited {
		t.Errorf("CodeOf = %q", apikey.CodeOf(err))
	}
	clock.Add(time.Minute)
	res, err := m.Check(ctx, tok, apikey.CheckOptions{RateLimit: "search"})
	if err != nil || len(res.RateLimits) != 2 {
		t.Fatalf("search: %+v, %v", res, err)
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{RateLimit: "search"}); !errors.Is(err, apikey.ErrRateLimited) {
		t.Fatalf("second search within the second: %v, want ErrRateLimited", err)
	}
	// An owner limit is shared by the owner's keys.
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 2, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	_, tok2, err := m.Create(ctx, apikey.CreateParams{Name: "k2", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Minute)
	for i, tk := range []string{tok, tok2} {
		if res, err := m.Check(ctx, tk, apikey.CheckOptions{}); err != nil || res.RateLimits[len(res.RateLimits)-1].Scope != "owner" {
			t.Fatalf("key %d: %+v, %v", i, res, err)
		}
	}
	if _, err := m.Check(ctx, tok2, apikey.CheckOptions{}); !errors.As(err, &le) || le.RateLimits[len(le.RateLimits)-1].Scope != "owner" {
		t.Fatalf("third request of the owner: %v, want refused by the owner's limit", err)
	}
	// Verify is not limited.
	if _, err := m.Verify(ctx, tok2); err != nil {
		t.Fatal(err)
	}
}

func TestCheckCredits(t *testing.T) {
	ctx := context.Background()
	m, clock := limitManager(t)
	k, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme",
		RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Hour}},
		Credits:    &apikey.Credits{Remaining: 10, Refill: &apikey.Refill{Interval: "daily", Amount: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 4, IdempotencyKey: "req-1"})
	if err != nil || res.Credits == nil || res.Credits.Remaining != 6 {
		t.Fatalf("spend 4: %+v, %v", res, err)
	}
	// Refused by the rate limit: no credit spent.
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 4}); !errors.Is(err, apikey.ErrRateLimited) {
		t.Fatalf("rate limited spend: %v", err)
	}
	clock.Add(time.Hour)
	// A retry spends nothing more.
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 4, IdempotencyKey: "req-1"}); err != nil || res.Credits.Remaining != 6 || !res.Credits.Replayed {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	clock.Add(time.Hour)
	_, err = m.Check(ctx, tok, apikey.CheckOptions{Credits: 7})
	var le *apikey.LimitError
	if !errors.Is(err, apikey.ErrUsageExceeded) || !errors.As(err, &le) || le.Credits.Remaining != 6 {
		t.Fatalf("spend 7 of 6: %v", err)
	}
	if want := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC).Sub(clock.Now()); le.RetryAfter != want {
		t.Errorf("RetryAfter = %v, want %v (the next refill)", le.RetryAfter, want)
	}
	// Refund gives the 4 back once.
	for i := 0; i < 2; i++ {
		c, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditRefund, IdempotencyKey: "req-1"})
		if err != nil || c.Remaining != 10 {
			t.Fatalf("refund %d: %+v, %v", i, c, err)
		}
	}
	// The refill sets the balance.
	clock.Set(time.Date(2030, 1, 2, 0, 0, 1, 0, time.UTC))
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditAdd, Amount: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := m.Get(ctx, k.ID)
	if err != nil || got.Credits == nil || got.Credits.Remaining != 15 {
		t.Fatalf("after refill and add 5: %+v, %v", got.Credits, err)
	}
	// Owner credits are spent with the key's.
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{Owner: "acme", Op: apikey.CreditSet, Amount: 3}); err != nil {
		t.Fatal(err)
	}
	clock.Add(time.Hour)
	if res, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 2}); err != nil || res.Credits.Remaining != 1 {
		t.Fatalf("spend 2 from key 15 and owner 3: %+v, %v", res, err)
	}
	clock.Add(time.Hour)
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{Credits: 2}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Fatalf("spend 2 with owner 1: %v", err)
	}
	if got, _ := m.Get(ctx, k.ID); got.Credits.Remaining != 13 {
		t.Errorf("key balance after the owner refused = %d, want 13 (all or nothing)", got.Credits.Remaining)
	}
}

func TestCheckOptionsInvalid(t *testing.T) {
	m, _ := limitManager(t)
	for _, o := range []apikey.CheckOptions{{RateLimit: "Bad Name"}, {Cost: -1}, {Credits: -1}, {IdempotencyKey: strings.Repeat("x", 256)}, {IdempotencyKey: "a\nb"}} {
		if _, err := m.Check(context.Background(), "ak_x", o); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("Check(%+v) = %v, want ErrInvalidInput", o, err)
		}
	}
}

func TestLimitsValidation(t *testing.T) {
	ctx := context.Background()
	m, _ := limitManager(t)
	bad := [][]apikey.RateLimit{
		{{Name: "", Limit: 1, Period: time.Second}},
		{{Name: "UPPER", Limit: 1, Period: time.Second}},
		{{Name: "a", Limit: 0, Period: time.Second}},
		{{Name: "a", Limit: 1, Period: time.Millisecond}},
		{{Name: "a", Limit: 1, Period: time.Second, Burst: -1}},
		{{Name: "a", Limit: 1, Period: time.Second}, {Name: "a", Limit: 2, Period: time.Second}},
	}
	for _, l := range bad {
		if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "k", RateLimits: l}); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("Create with limits %+v: %v, want ErrInvalidInput", l, err)
		}
	}
	badCredits := []*apikey.Credits{
		{Remaining: -1},
		{Refill: &apikey.Refill{Interval: "weekly", Amount: 1}},
		{Refill: &apikey.Refill{Interval: "30s", Amount: 1}},
		{Refill: &apikey.Refill{Interval: "monthly", Day: 32, Amount: 1}},
		{Refill: &apikey.Refill{Interval: "daily", Amount: -1}},
	}
	for _, c := range badCredits {
		if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "k", Credits: c}); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("Create with credits %+v: %v, want ErrInvalidInput", c, err)
		}
	}
}

func TestRefillNext(t *testing.T) {
	at := func(s string) time.Time {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			panic(err)
		}
		return t
	}
	tests := []struct {
		r         apikey.Refill
		prev, now string
		want      string
	}{
		{apikey.Refill{Interval: "daily"}, "2030-01-01T00:00:00Z", "2030-01-05T13:00:00Z", "2030-01-06T00:00:00Z"},
		{apikey.Refill{Interval: "monthly", Day: 31}, "2030-01-01T00:00:00Z", "2030-02-03T00:00:00Z", "2030-02-28T00:00:00Z"},
		{apikey.Refill{Interval: "monthly", Day: 15}, "2030-01-01T00:00:00Z", "2030-01-15T00:00:00Z", "2030-02-15T00:00:00Z"},
		{apikey.Refill{Interval: "monthly"}, "2030-01-01T00:00:00Z", "2030-12-05T00:00:00Z", "2031-01-01T00:00:00Z"},
		{apikey.Refill{Interval: "12h"}, "2030-01-01T00:00:00Z", "2030-01-02T01:00:00Z", "2030-01-02T12:00:00Z"},
		{apikey.Refill{Interval: "7d"}, "2030-01-01T06:00:00Z", "2030-01-01T06:00:00Z", "2030-01-08T06:00:00Z"},
	}
	for _, tt := range tests {
		if got := tt.r.Next(at(tt.prev), at(tt.now)); !got.Equal(at(tt.want)) {
			t.Errorf("%+v.Next(%s, %s) = %v, want %s", tt.r, tt.prev, tt.now, got, tt.want)
		}
	}
}

func TestLimitsJSON(t *testing.T) {
	k := apikey.Key{ID: "AbC123xyz789", RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20}},
		Credits: &apikey.Credits{Remaining: 1000, Refill: &apikey.Refill{Interval: "monthly", Amount: 1000, Day: 1}}}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"ratelimits":[{"name":"requests","limit":100,"period":"1m","burst":20}]`,
		`"credits":{"remaining":1000,"refill":{"interval":"monthly","amount":1000,"day":1}}`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s lacks %s", b, want)
		}
	}
	var back apikey.Key
	if err := json.Unmarshal(b, &back); err != nil || back.RateLimits[0].Period != time.Minute || back.Credits.Refill.Day != 1 {
		t.Fatalf("decoding: %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"ratelimits":[{"name":"a","limit":1,"period":"1 minute"}]}`), &back); err == nil {
		t.Error("a bad period decoded")
	}
	r, _ := json.Marshal(apikey.LimitResult{Name: "requests", Limit: 100, Remaining: 42, Reset: 11500 * time.Millisecond, Allowed: true})
	if want := `{"name":"requests","limit":100,"remaining":42,"allowed":true,"reset":12}`; string(r) != want {
		t.Errorf("LimitResult JSON = %s, want %s", r, want)
	}
}

// TestOwnerChangeReachesCaches checks that a change of an owner's limits
// made through one Manager reaches another's cache through the change
// feed, as a key's change does.
func TestOwnerChangeReachesCaches(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, ChangePollInterval: 5 * time.Millisecond,
		StaleAfter: time.Second, UsageFlushInterval: -1})
	t.Cleanup(func() { a.Close(context.Background()) })
	b := mustManager(t, st, apikey.Config{UsageFlushInterval: -1})
	k, tok, err := b.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // cached, with the owner's (absent) record
		if _, err := a.Check(ctx, tok, apikey.CheckOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &[]apikey.RateLimit{{Name: "search", Limit: 1, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Check(ctx, tok, apikey.CheckOptions{RateLimit: "search"})
		if errors.Is(err, apikey.ErrRateLimited) {
			break // both limits are in force
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the owner's and the key's new limits never reached the other Manager's cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOwnerDeleteReachesCaches checks that the deletion of an owner's
// record through one Manager reaches another's cache through the change
// feed: the owner's limit stops refusing the cached key.
func TestOwnerDeleteReachesCaches(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	a := mustManager(t, st, apikey.Config{Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}, ChangePollInterval: 5 * time.Millisecond,
		StaleAfter: time.Second, UsageFlushInterval: -1})
	t.Cleanup(func() { a.Close(context.Background()) })
	b := mustManager(t, st, apikey.Config{UsageFlushInterval: -1})
	if _, err := b.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	_, tok, err := b.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx, tok, apikey.CheckOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Check(ctx, tok, apikey.CheckOptions{}); !errors.Is(err, apikey.ErrRateLimited) {
		t.Fatalf("second Check under the owner's 1/h: %v, want ErrRateLimited", err)
	}
	if err := b.DeleteOwner(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteOwner(ctx, "acme"); !errors.Is(err, apikey.ErrNotFound) {
		t.Fatalf("DeleteOwner of a deleted owner: %v, want ErrNotFound", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := a.Check(ctx, tok, apikey.CheckOptions{})
		if err == nil {
			break
		}
		if !errors.Is(err, apikey.ErrRateLimited) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the owner's deletion never reached the other Manager's cache")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for range 3 {
		if _, err := a.Check(ctx, tok, apikey.CheckOptions{}); err != nil {
			t.Fatalf("Check after the owner's deletion: %v", err)
		}
	}
}

// downLimiter is a Limiter that cannot decide, as one whose Redis is gone.
type downLimiter struct{}

func (downLimiter) Allow(context.Context, string, apikey.RateLimit, int64) (apikey.LimitResult, error) {
	return apikey.LimitResult{}, errors.New("connection refused")
}

// TestLimiterFailure checks the errors of a Limiter that fails: a limit
// that does not fail open refuses with a *LimiterError matching
// ErrUnavailable and naming the limit and its scope; one that fails open
// lets the request through.
func TestLimiterFailure(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{Limiter: downLimiter{}, UsageFlushInterval: -1})
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "org", Limit: 5, Period: time.Minute}}}); err != nil {
		t.Fatal(err)
	}
	_, closed, err := m.Create(ctx, apikey.CreateParams{Name: "closed", Owner: "acme",
		RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Minute, FailOpen: true}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Check(ctx, closed, apikey.CheckOptions{RateLimit: "org"})
	var le *apikey.LimiterError
	if !errors.Is(err, apikey.ErrUnavailable) || !errors.As(err, &le) || le.Scope != "owner" || le.Limit != "org" {
		t.Fatalf("Check with the limiter down: %v (%#v), want a *LimiterError of the owner's limit org matching ErrUnavailable", err, le)
	}
	if !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error %q lost the limiter's cause", err)
	}
	if _, err := m.Check(ctx, closed, apikey.CheckOptions{}); err != nil {
		t.Errorf("Check of the fail-open requests limit alone with the limiter down: %v", err)
	}
}

func TestLimitsBadInput(t *testing.T) {
	ctx := context.Background()
	m, _ := limitManager(t)
	k, _, err := m.Create(ctx, apikey.CreateParams{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	adjustments := []apikey.CreditAdjustment{
		{Op: apikey.CreditSet, Amount: 1},                             // no subject
		{KeyID: k.ID, Owner: "acme", Op: apikey.CreditSet, Amount: 1}, // two subjects
		{KeyID: k.ID, Op: "double", Amount: 1},                        // unknown op
		{KeyID: k.ID, Op: apikey.CreditSet, Amount: -1},               // negative balance
		{KeyID: k.ID, Op: apikey.CreditRefund},                        // refund without idempotency key
		{Owner: "acme", Op: apikey.CreditRefund, IdempotencyKey: "a"}, // refund of an owner
		{Owner: "a\x00b", Op: apikey.CreditSet, Amount: 1},            // control character
		{KeyID: k.ID, Op: apikey.CreditAdd, Amount: -1},               // below zero
	}
	for _, adj := range adjustments {
		if _, err := m.AdjustCredits(ctx, adj); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("AdjustCredits(%+v) = %v, want ErrInvalidInput", adj, err)
		}
	}
	if _, err := m.AdjustCredits(ctx, apikey.CreditAdjustment{KeyID: "nope", Op: apikey.CreditSet, Amount: 1}); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("AdjustCredits of a malformed id: %v, want ErrNotFound", err)
	}
	owners := []struct {
		id string
		u  apikey.OwnerUpdate
	}{
		{"", apikey.OwnerUpdate{}},
		{"acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "x", Limit: -1, Period: time.Second}}}},
		{"acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 1}, ClearCredits: true}},
		{"acme", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: -5}}},
	}
	for _, o := range owners {
		if _, err := m.SetOwner(ctx, o.id, o.u); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("SetOwner(%q, %+v) = %v, want ErrInvalidInput", o.id, o.u, err)
		}
	}
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{Credits: &apikey.Credits{}, ClearCredits: true}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Update setting and clearing credits: %v, want ErrInvalidInput", err)
	}
	if _, err := m.Update(ctx, k.ID, apikey.KeyUpdate{RateLimits: &[]apikey.RateLimit{{Name: "a", Limit: 1, Period: time.Second, Burst: -1}}}); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("Update with a negative burst: %v, want ErrInvalidInput", err)
	}
	if got, _ := m.Get(ctx, k.ID); len(got.RateLimits) != 0 || got.Credits != nil {
		t.Errorf("refused updates changed the key: %+v", got)
	}
}

// TestCheckLimitConcurrentAndSwept checks the limiter cells that a cached
// key keeps: concurrent requests never pass more than the burst, and a
// bucket swept while the entry holds it keeps counting in a fresh one.
func TestCheckLimitConcurrentAndSwept(t *testing.T) {
	ctx := context.Background()
	clock := apikeytest.NewClock(limitEpoch)
	lim := apikey.NewMemoryLimiter(clock.Now)
	m := mustManager(t, openStore(t), apikey.Config{Now: clock.Now, Limiter: lim, UsageFlushInterval: -1,
		Cache: &mapCache{m: map[string]*apikey.CacheEntry{}}})
	_, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 50, Period: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); err == nil {
					passed.Add(1)
				} else if !errors.Is(err, apikey.ErrRateLimited) {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if passed.Load() != 50 {
		t.Fatalf("%d of 160 concurrent requests passed a limit of 50", passed.Load())
	}
	clock.Add(time.Hour) // full again: the sweep drops the bucket
	lim.Sweep()
	if n := lim.Len(); n != 0 {
		t.Fatalf("Len after the sweep = %d", n)
	}
	for i := 0; i < 50; i++ {
		if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); err != nil {
			t.Fatalf("request %d after the sweep: %v", i, err)
		}
	}
	if _, err := m.Check(ctx, tok, apikey.CheckOptions{}); !errors.Is(err, apikey.ErrRateLimited) {
		t.Fatalf("51st request after the sweep: %v; the swept cell must not keep counting alone", err)
	}
	if n := lim.Len(); n != 1 {
		t.Errorf("Len = %d, want the one fresh bucket", n)
	}
}

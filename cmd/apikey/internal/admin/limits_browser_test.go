package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// TestBrowserLimits changes the rate limits and credits of a key and of its
// owner with the admin site's forms, in Chromium.
func TestBrowserLimits(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	bg := context.Background()
	k, _, err := s.m.Create(bg, apikey.CreateParams{Name: "partner", Owner: "acme corp", Credits: &apikey.Credits{Remaining: 10}})
	if err != nil {
		t.Fatal(err)
	}
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)

	b.open("/admin/keys/" + k.ID)
	b.wantText(".limits .ratelimits", "none")
	b.wantText(".limits .credits", "10 left")

	// Add 5 credits with the inline form.
	b.do(chromedp.SetValue(chromedp.ID("credits-op"), "add"), chromedp.SendKeys(chromedp.ID("credits-amount"), "5"))
	if resp := b.follow(`form.credits-form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("add credits: status %d", resp.Status)
	}
	b.wantText(".notice", "The credits were changed.")
	b.wantText(".limits .credits", "15 left")

	// Edit the limits: a malformed line is pointed at, nothing changes.
	b.follow(`a[href$="/limits"]`)
	b.wantText("h1", "Rate limits and credits")
	b.fill("ratelimits", "requests=100/1m,burst=20\nsearch=10")
	if resp := b.follow(`form.limits-form button[type=submit]`); resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("malformed limit: status %d, want 422", resp.Status)
	}
	b.wantText("#ratelimits-error", "Line 2: No /PERIOD.")
	if got, _ := s.m.Get(bg, k.ID); len(got.RateLimits) != 0 {
		t.Fatalf("a refused form changed the limits: %+v", got.RateLimits)
	}
	b.fill("ratelimits", "requests=100/1m,burst=20\nsearch=10/1s,fail-open")
	b.fill("refill", "daily:50")
	if resp := b.follow(`form.limits-form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("save limits: status %d", resp.Status)
	}
	b.wantText(".notice", "The limits and credits were saved.")
	b.wantText(".limits .ratelimits", "requests=100/1m,burst=20")
	b.wantText(".limits .ratelimits", "search=10/1s,fail-open")
	b.wantText(".limits .refill", "daily:50")
	got, err := s.m.Get(bg, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := []apikey.RateLimit{{Name: "requests", Limit: 100, Period: time.Minute, Burst: 20}, {Name: "search", Limit: 10, Period: time.Second, FailOpen: true}}
	if len(got.RateLimits) != 2 || got.RateLimits[0] != want[0] || got.RateLimits[1] != want[1] ||
		got.Credits == nil || got.Credits.Remaining != 15 || got.Credits.Refill == nil || *got.Credits.Refill != (apikey.Refill{Interval: "daily", Amount: 50}) {
		t.Errorf("saved: %+v %+v", got.RateLimits, got.Credits)
	}

	// The owner's page, from the key's.
	b.open("/admin/keys/" + k.ID)
	b.follow(`a[href="/admin/owners/acme%20corp"]`)
	b.wantText("h1", "Owner acme corp")
	b.wantText(".owner-record", "no limits or credits")
	b.fill("ratelimits", "requests=1000/1h")
	b.fill("credits", "500")
	if resp := b.follow(`form.limits-form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("save owner: status %d", resp.Status)
	}
	b.wantText(".notice", "The owner's limits and credits were saved.")
	b.wantText(".owner-record .ratelimits", "requests=1000/1h")
	b.wantText(".owner-record .credits", "500 left")
	b.do(chromedp.SetValue(chromedp.ID("credits-op"), "set"), chromedp.SendKeys(chromedp.ID("credits-amount"), "42"))
	b.follow(`form.credits-form button[type=submit]`)
	b.wantText(".owner-record .credits", "42 left")
	o, err := s.m.Owner(bg, "acme corp")
	if err != nil || len(o.RateLimits) != 1 || o.Credits == nil || o.Credits.Remaining != 42 {
		t.Fatalf("owner saved: %+v, %v", o, err)
	}

	// The forms are protected like the others: a cross-origin POST is
	// refused and changes nothing.
	req, _ := http.NewRequest("POST", s.srv.URL+"/admin/owners/acme%20corp/credits", strings.NewReader(url.Values{"op": {"set"}, "amount": {"0"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin POST: status %d, want 403", resp.StatusCode)
	}
	if o, _ := s.m.Owner(bg, "acme corp"); o.Credits.Remaining != 42 {
		t.Errorf("the cross-origin POST changed the credits to %d", o.Credits.Remaining)
	}

	// Deleting the owner's record: the page says so, the keys stay.
	b.open("/admin/owners/acme%20corp")
	if resp := b.follow(`#delete-owner`); resp.Status != http.StatusOK {
		t.Fatalf("delete owner: status %d", resp.Status)
	}
	b.wantText(".notice", "The owner's limits and credits were deleted; its keys are unchanged.")
	b.wantText(".owner-record", "no limits or credits")
	b.wantText("#owner-keys", k.ID)
	if _, err := s.m.Owner(bg, "acme corp"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("owner after the delete button: %v, want ErrNotFound", err)
	}
}

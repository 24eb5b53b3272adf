package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// TestBrowserNetEnv creates a test key with an allowlist and an inactivity
// expiry through the admin site's form in Chromium, reads them on the
// key's page, edits them (a bad range is pointed at and changes nothing),
// and checks that a cross-origin post of the edit form is refused.
func TestBrowserNetEnv(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	bg := context.Background()
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)

	b.open("/admin/keys/new")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "ci runner"), chromedp.SetValue(chromedp.ID("environment"), "test"))
	b.fill("allowed_cidrs", "10.1.2.3/8\n2001:db8::/32")
	b.fill("inactivity_expiry", "90d")
	if resp := b.follow(`main form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("create: status %d", resp.Status)
	}
	token, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("token")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, "ak_test_") {
		t.Fatalf("the new key %q is not a test key", apikey.Redact(token))
	}
	k, err := s.m.Verify(bg, token)
	if err != nil {
		t.Fatal(err)
	}
	b.open("/admin/keys/" + k.ID)
	b.wantText(".details .environment", "test")
	b.wantText(".details .allowed-cidrs", "10.0.0.0/8")
	b.wantText(".details .allowed-cidrs", "2001:db8::/32")
	b.wantText(".details .inactivity", "90d")
	b.wantText(".details .inactivity", "expires unused from")

	// Edit: a malformed range is pointed at, nothing changes.
	b.follow(`a[href$="/edit"]`)
	b.wantText("h1", "Edit key")
	if v, _ := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("environment"))); v != "test" {
		t.Errorf("edit form environment = %q", v)
	}
	b.fill("allowed_cidrs", "192.0.2.0/24\n192.0.2.0/40")
	if resp := b.follow(`main form button[type=submit]`); resp.Status != http.StatusUnprocessableEntity {
		t.Fatalf("bad range: status %d, want 422", resp.Status)
	}
	b.wantText("#allowed_cidrs-error", `Entry 2 "192.0.2.0/40": bad prefix length /40.`)
	if got, _ := s.m.Get(bg, k.ID); len(got.AllowedCIDRs) != 2 {
		t.Fatalf("a refused form changed the allowlist: %v", got.AllowedCIDRs)
	}
	b.fill("allowed_cidrs", "192.0.2.0/24")
	b.fill("inactivity_expiry", "never")
	if resp := b.follow(`main form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("save: status %d", resp.Status)
	}
	b.wantText(".details .allowed-cidrs", "192.0.2.0/24")
	b.wantText(".details .inactivity", "never")
	got, err := s.m.Get(bg, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.AllowedCIDRs) != 1 || got.AllowedCIDRs[0].String() != "192.0.2.0/24" || got.InactivityExpiry != apikey.Inactivity(apikey.NoInactivityExpiry) || got.Environment != apikey.EnvTest {
		t.Errorf("saved %+v", got)
	}
	// The audit log has the change.
	evs, err := s.m.Events(bg, apikey.EventFilter{KeyID: k.ID, Type: apikey.EventUpdated})
	if err != nil || len(evs.Events) != 1 || evs.Events[0].Changes["allowed_cidrs"].After == nil || evs.Events[0].Changes["inactivity_expiry"].After != "never" {
		t.Errorf("audit: %+v %v", evs, err)
	}

	// A cross-origin post of the edit form is refused.
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/admin/keys/"+k.ID+"/edit",
		strings.NewReader(url.Values{"name": {"ci runner"}, "allowed_cidrs": {""}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin edit: status %d, want 403", resp.StatusCode)
	}
	if got, _ := s.m.Get(bg, k.ID); len(got.AllowedCIDRs) != 1 || !slices.Contains(got.AllowedCIDRs, got.AllowedCIDRs[0]) {
		t.Errorf("the cross-origin post changed the allowlist: %v", got.AllowedCIDRs)
	}
}

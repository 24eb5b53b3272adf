package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// TestBrowserKeyListFits checks, in a 1280 px wide window, that the key
// list fits its box without a horizontal scroll bar once keys have an
// expiry, a last-used time, an owner and several scopes: all columns,
// state included, are visible.
func TestBrowserKeyListFits(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	bg := context.Background()
	for _, name := range []string{"Billing service (production)", "Nightly export job", "Mobile app (iOS)"} {
		at := s.clock.Now().Add(90 * 24 * 3600e9)
		k, _, err := s.m.Create(bg, apikey.CreateParams{Name: name, Owner: "acme-corporation-eu",
			Scopes: []string{"billing:read", "invoices:write", "orders:read"}, ExpiresAt: &at})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.store.RecordUsage(bg, nil, map[string]time.Time{k.ID: s.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	b := tab{t: t, ctx: ctx, s: s}
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)
	b.open("/admin/keys")
	if b.exists("table.keys tbody td .muted") {
		t.Fatalf("a key shows a placeholder (never, —): the test wants every column filled")
	}
	clipped, err := chromedp.Run(ctx, chromedp.Evaluate[bool](
		`(() => { const w = document.querySelector(".table-wrap"); return w.scrollWidth > w.clientWidth; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if clipped {
		t.Errorf("the key list is wider than its box at 1280 px: it scrolls, and the last columns are hidden")
	}
}

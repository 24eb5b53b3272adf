package admin_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// usageSite returns a site with keys of two owners and a month of usage,
// recorded straight into the store (the site's Manager does not track
// usage), and the ids of the keys by name.
func usageSite(t *testing.T) (*site, map[string]string) {
	t.Helper()
	s := newSite(t)
	bg := context.Background()
	now := s.clock.Now()
	ids := map[string]string{}
	for _, c := range []struct {
		name, owner string
		ttl         time.Duration
		perHour     int64
		rejected    int64
		lastUsed    time.Duration // ago; 0 for never
	}{
		{"Billing service", "acme", 0, 40, 3, time.Minute},
		{"Nightly export", "acme", 10 * 24 * time.Hour, 6, 0, 2 * time.Hour},
		{"Mobile app", "globex", 0, 15, 8, 5 * time.Minute},
		{"Forgotten CI key", "globex", 0, 0, 0, 0},
	} {
		p := apikey.CreateParams{Name: c.name, Owner: c.owner, Scopes: []string{"orders:read"}}
		if c.ttl > 0 {
			at := now.Add(c.ttl)
			p.ExpiresAt = &at
		}
		k, _, err := s.m.Create(bg, p)
		if err != nil {
			t.Fatal(err)
		}
		ids[c.name] = k.ID
		if c.perHour == 0 {
			continue
		}
		var counts []apikey.UsageCount
		for h := range 30 * 24 {
			at := now.Add(-time.Duration(h) * time.Hour).Truncate(time.Minute)
			n := c.perHour * int64(1+(h*7)%5) / 3 // some shape
			counts = append(counts, apikey.UsageCount{KeyID: k.ID, Bucket: at, Outcome: "valid", Count: n})
			if c.rejected > 0 && h%6 == 0 {
				counts = append(counts, apikey.UsageCount{KeyID: k.ID, Bucket: at, Outcome: "invalid_key", Count: c.rejected})
			}
			if c.name == "Mobile app" && h%24 == 3 {
				counts = append(counts, apikey.UsageCount{KeyID: k.ID, Bucket: at, Outcome: "key_expired", Count: 2})
			}
		}
		if err := s.store.RecordUsage(bg, counts, map[string]time.Time{k.ID: now.Add(-c.lastUsed)}); err != nil {
			t.Fatal(err)
		}
	}
	// A key created 40 days ago and never used since.
	s.clock.Add(-40 * 24 * time.Hour)
	k, _, err := s.m.Create(bg, apikey.CreateParams{Name: "Old partner key", Owner: "initech"})
	s.clock.Add(40 * 24 * time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ids["Old partner key"] = k.ID
	return s, ids
}

// TestBrowserUsage drives the overview, a key's usage chart over its
// three periods and an owner's page in Chromium, and, with
// APIKEY_SCREENSHOTS=1, saves them to docs/screenshots.
func TestBrowserUsage(t *testing.T) {
	ctx := browsertest.New(t)
	s, ids := usageSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	shots := os.Getenv("APIKEY_SCREENSHOTS") == "1"
	shot := func(name string) {
		t.Helper()
		if !shots {
			return
		}
		if err := browsertest.Screenshot(ctx, filepath.Join("..", "..", "..", "..", "docs", "screenshots", name+".png")); err != nil {
			t.Fatal(err)
		}
	}
	b.open("/admin/login")
	if resp := b.login(adminEmail, adminPassword); resp.Status != http.StatusOK {
		t.Fatalf("login: %d", resp.Status)
	}

	// The overview.
	if resp := b.open("/admin/"); resp.Status != http.StatusOK {
		t.Fatalf("overview: status %d", resp.Status)
	}
	b.wantText("#count-all", "5")
	b.wantText("#count-active", "5")
	b.wantText("#expiring", "Nightly export")
	// Unused for 30 days: the key made 40 days ago, not the one made today.
	if got := b.text("#unused"); !strings.Contains(got, "Old partner key") || strings.Contains(got, "Forgotten CI key") {
		t.Errorf("unused keys: %q, want the old partner key only", got)
	}
	top := b.text("#top-keys tbody")
	if i, j := strings.Index(top, "Billing service"), strings.Index(top, "Mobile app"); i < 0 || j < 0 || i > j || strings.Contains(top, "Forgotten") {
		t.Errorf("top keys, want Billing service before Mobile app and no unused key:\n%s", top)
	}
	shot("admin-overview")

	// A key's usage: 24 hours by hour, then 7 and 30 days by day.
	b.follow(`#top-keys a[href^="/admin/keys/` + ids["Mobile app"] + `"]`)
	b.open("/admin/keys/" + ids["Mobile app"])
	for _, p := range []struct {
		param string
		bars  int
	}{{"24h", 25}, {"7d", 8}, {"30d", 31}} {
		if p.param != "24h" {
			b.follow(`.periods a[href="?period=` + p.param + `"]`)
		}
		b.wantText(".periods a.current", map[string]string{"24h": "24 hours", "7d": "7 days", "30d": "30 days"}[p.param])
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.usage-chart g.bar").length`))
		if err != nil {
			t.Fatal(err)
		}
		if n < p.bars-1 || n > p.bars {
			t.Errorf("period %s: %d bars, want %d", p.param, n, p.bars)
		}
		// Readable without colour: rejected parts are patterned, and the
		// legend names each pattern.
		patterned, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("svg.usage-chart rect.invalid[fill^='url(#']").length`))
		if err != nil {
			t.Fatal(err)
		}
		if patterned == 0 {
			t.Errorf("period %s: no hatched bar part for the invalid keys", p.param)
		}
		b.wantText(".usage-legend", "invalid key (hatched)")
		b.wantText("#usage-total", "rejected verifications")
		// The chart is drawn: it has a size on the page.
		w, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("svg.usage-chart").getBoundingClientRect().width`))
		if err != nil || w < 400 {
			t.Errorf("period %s: chart width %v (%v)", p.param, w, err)
		}
		shot("admin-key-usage-" + p.param)
	}

	// The owner's page, from the key's page.
	b.follow(`a[href="/admin/owners/globex"]`)
	b.wantText("h1", "Owner globex")
	b.wantText("#owner-keys", "Mobile app")
	b.wantText("#owner-keys", "Forgotten CI key")
	b.wantText("#usage-total", "valid")
	shot("admin-owner")

	// An owner without keys has a page (its limits), with an empty list.
	b.open("/admin/owners/nobody")
	b.wantText("#owner-keys", "This owner has no keys.")
}

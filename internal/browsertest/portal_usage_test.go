package browsertest_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/internal/browsertest"
	"github.com/go-apikey/apikey/sqlite"
)

// TestPortalUsage checks, in Chromium, that an owner sees the usage of
// their own keys, and only theirs, as a chart on the list and on a key's
// page.
func TestPortalUsage(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err := apikey.NewManager(store, apikey.Config{UsageFlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	mine, token, err := m.Create(ctx, apikey.CreateParams{Name: "reporting job", Owner: "alice", Scopes: []string{"hello:read"}})
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := m.Create(ctx, apikey.CreateParams{Name: "bob's key", Owner: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := m.Verify(ctx, token); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 { // bob's traffic must not show on alice's pages
		if _, err := m.Verify(ctx, other); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Verify(ctx, apikeytest.WrongSecret(token)); err == nil {
		t.Fatal("a wrong secret verified")
	}
	// Records from two days ago, so that the chart has more than one bar.
	if err := store.RecordUsage(ctx, []apikey.UsageCount{{KeyID: mine.ID, Bucket: time.Now().Add(-48 * time.Hour).Truncate(time.Minute), Outcome: "valid", Count: 7}}, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}

	srv := demoHost(t, m)
	alice := browsertest.New(t)
	if err := signIn(alice, srv.URL, "alice"); err != nil {
		t.Fatalf("alice signs in: %v", err)
	}
	total, err := browsertest.Text(alice, "#usage-total")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(total, "10 successful and 1 refused") {
		t.Errorf("alice's usage total: %q, want 10 successful and 1 refused (bob's 5 not counted)", total)
	}
	bars, err := chromedp.Run(alice, chromedp.Evaluate[int](`document.querySelectorAll("svg.usage-chart g.bar rect").length`))
	if err != nil || bars != 3 { // today: valid and invalid; two days ago: valid
		t.Errorf("alice's chart has %d bar parts (%v), want 3", bars, err)
	}
	if ok, err := browsertest.Exists(alice, `svg.usage-chart rect.invalid[fill^="url(#"]`); err != nil || !ok {
		t.Errorf("the refused requests are not drawn with a pattern (%v, %v)", ok, err)
	}
	shoot(t, alice, "portal-usage.png")

	if _, err := browsertest.Follow(alice, `a[href$="`+mine.ID+`"]`); err != nil {
		t.Fatal(err)
	}
	total, err = browsertest.Text(alice, "#usage-total")
	if err != nil || !strings.Contains(total, "10 successful and 1 refused") {
		t.Errorf("the key's usage total: %q (%v)", total, err)
	}
	shoot(t, alice, "portal-key-usage.png")
}

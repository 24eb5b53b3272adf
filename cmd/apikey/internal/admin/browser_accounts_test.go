package admin_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// TestBrowserAccounts sets up two-factor sign-in in Chromium from the
// account page, signs in again with a code, and looks at the users page
// and a viewer's key list; with APIKEY_SCREENSHOTS=1 it saves them.
func TestBrowserAccounts(t *testing.T) {
	ctx := browsertest.New(t)
	s, _ := accountSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	shot := func(name string) {
		t.Helper()
		if os.Getenv("APIKEY_SCREENSHOTS") != "1" {
			return
		}
		if err := browsertest.Screenshot(ctx, filepath.Join("..", "..", "..", "..", "docs", "screenshots", name+".png")); err != nil {
			t.Fatal(err)
		}
	}
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)
	b.open("/admin/users")
	b.wantText("#users", "bob@example.com")
	b.wantText("#users", "viewer")
	shot("admin-users")

	b.follow(`nav a[href="/admin/account"]`)
	b.wantText("#account-2fa", "off")
	secret := strings.TrimSpace(b.text("#totp-secret"))
	shot("admin-account")
	code, err := admin.TOTPCode(secret, s.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	b.do(chromedp.SendKeys(chromedp.ID("code"), code))
	if resp := b.follow(`form[action="/admin/account/two-factor"] button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("two-factor setup: status %d", resp.Status)
	}
	b.wantText("#account-2fa", "on")

	// Sign out, then in: the code is asked for.
	b.follow(`form[action="/admin/logout"] button[type=submit]`)
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)
	b.wantText("#login-error", "6-digit code")
	code, _ = admin.TOTPCode(secret, s.clock.Now())
	b.fill("password", adminPassword)
	b.do(chromedp.SendKeys(chromedp.ID("code"), code))
	if resp := b.follow(`form[action="/admin/login"] button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("login with a code: status %d", resp.Status)
	}
	b.wantText("h1", "Keys")

	// A viewer's pages offer no change.
	viewer := tab{t: t, ctx: browsertest.NewBrowserContext(t, ctx), s: s}
	viewer.open("/admin/login")
	viewer.login("bob@example.com", adminPassword)
	if viewer.exists(`a[href="/admin/keys/new"]`) || viewer.exists(`a[href="/admin/users"]`) {
		t.Error("a viewer is offered to create keys or manage users")
	}
}

package browsertest_test

import (
	"context"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/sqlite"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyportal"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// demoHost is a host application like examples/portal: a login that trusts
// any name (kept in a plain cookie) and the portal at /keys/.
func demoHost(t *testing.T, m *apikey.Manager) *httptest.Server {
	t.Helper()
	portal, err := apikeyportal.New(m, apikeyportal.Config{
		Owner: func(r *http.Request) (string, error) {
			c, err := r.Cookie("user")
			if err != nil {
				return "", nil
			}
			return c.Value, nil
		},
		LoginURL:      "/login",
		AllowedScopes: []string{"hello:read", "hello:write"},
		DefaultScopes: []string{"hello:read"},
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/keys/", http.StripPrefix("/keys", portal))
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><title>Sign in</title><form method="post" action="/login">
<label for="username">User name</label><input id="username" name="username">
<button type="submit">Sign in</button></form>`)
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "user", Value: r.PostFormValue("username"), Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/keys/", http.StatusSeeOther)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func signIn(ctx context.Context, base, user string) error {
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login"),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
	)
	if err == nil {
		_, err = browsertest.Follow(ctx, `button[type="submit"]`)
	}
	if err == nil {
		err = chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`a[href="./new"]`)))
	}
	return err
}

// shoot saves a screenshot under $APIKEY_SCREENSHOTS when it is set.
func shoot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("APIKEY_SCREENSHOTS")
	if dir == "" {
		return
	}
	if err := browsertest.Screenshot(ctx, filepath.Join(dir, name)); err != nil {
		t.Error(err)
	}
}

// TestPortal walks through the portal in headless Chromium: alice creates
// a key, reads it once, sees it gone after a reload and revokes it; a forged
// cross-origin form is refused; bob cannot reach alice's key.
func TestPortal(t *testing.T) {
	m := newManager(t, apikey.Config{})
	srv := demoHost(t, m)
	alice := browsertest.New(t)

	if err := signIn(alice, srv.URL, "alice"); err != nil {
		t.Fatalf("alice signs in: %v", err)
	}
	shoot(t, alice, "portal-empty.png")
	_, err := browsertest.Follow(alice, `a[href="./new"]`)
	if err == nil {
		err = chromedp.Do(alice, chromedp.SendKeys(chromedp.CSS("#name"), "browser key"))
	}
	if err != nil {
		t.Fatalf("opening the form: %v", err)
	}
	shoot(t, alice, "portal-new.png")
	if _, err := browsertest.Follow(alice, `button[type="submit"]`); err != nil {
		t.Fatalf("submitting the form: %v", err)
	}
	token, err := browsertest.Text(alice, "#token")
	if err != nil {
		t.Fatal(err)
	}
	k, err := m.Verify(context.Background(), strings.TrimSpace(token))
	if err != nil {
		t.Fatalf("the key shown does not verify: %v", err)
	}
	if k.Owner != "alice" || k.Name != "browser key" || strings.Join(k.Scopes, ",") != "hello:read" {
		t.Errorf("key: owner %q name %q scopes %v", k.Owner, k.Name, k.Scopes)
	}
	if ok, err := browsertest.Exists(alice, `button.copy:not([hidden])`); err != nil || !ok {
		t.Errorf("the copy button is not shown: %v, %v", ok, err)
	}
	shoot(t, alice, "portal-created.png")

	// Reload: the secret is gone.
	if err := chromedp.Do(alice, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#gone"))); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	if ok, err := browsertest.Exists(alice, "#token"); err != nil || ok {
		t.Errorf("after reload the token is still on the page (%v, %v)", ok, err)
	}
	body, err := chromedp.Run(alice, chromedp.OuterHTML(chromedp.CSS("body")))
	if err != nil || strings.Contains(body, k.ID+"_") || strings.Contains(body, strings.TrimSpace(token)) {
		t.Errorf("after reload the page still holds the secret (%v)", err)
	}

	// Revoke it.
	err = chromedp.Do(alice, chromedp.Navigate(srv.URL+"/keys/"+k.ID))
	if err == nil {
		_, err = browsertest.Follow(alice, `a.danger`)
	}
	if err != nil {
		t.Fatalf("opening the revoke confirmation: %v", err)
	}
	shoot(t, alice, "portal-revoke.png")
	if _, err := browsertest.Follow(alice, `form[action$="/revoke"] button`); err != nil {
		t.Fatal(err)
	}
	notice, err := browsertest.Text(alice, ".notice")
	if err != nil || !strings.Contains(notice, "has been revoked") {
		t.Errorf("notice after revoke = %q, %v", notice, err)
	}
	shoot(t, alice, "portal-list.png")
	if got, _ := m.Get(context.Background(), k.ID); got == nil || got.State != apikey.StateRevoked {
		t.Errorf("key state after revoke: %+v", got)
	}

	// A page on another origin posts a form to the portal with alice's
	// cookie (127.0.0.1 on another port is the same site, so SameSite=Lax
	// lets it through): CrossOriginProtection refuses it.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/keys/new">
<input name="name" value="planted"><input name="expires" value="never"></form>
<script>document.forms[0].submit()</script>`, html.EscapeString(srv.URL))
	}))
	defer evil.Close()
	if err := chromedp.Do(alice, chromedp.Navigate(evil.URL), chromedp.WaitVisible(chromedp.CSS("#message"))); err != nil {
		t.Fatalf("cross-origin form: %v", err)
	}
	if h1, _ := browsertest.Text(alice, "h1"); h1 != "Request refused" {
		t.Errorf("cross-origin POST: heading %q, want Request refused", h1)
	}
	page, err := m.List(context.Background(), apikey.KeyFilter{Owner: "alice"})
	if err != nil || len(page.Keys) != 1 {
		t.Errorf("alice has %d keys after the cross-origin POST (%v), want 1", len(page.Keys), err)
	}

	// Bob, in a browser context of his own, tries alice's key.
	bob := browsertest.NewBrowserContext(t, alice)
	if err := signIn(bob, srv.URL, "bob"); err != nil {
		t.Fatalf("bob signs in: %v", err)
	}
	for _, path := range []string{k.ID, k.ID + "/revoke", k.ID + "/created"} {
		if err := chromedp.Do(bob, chromedp.Navigate(srv.URL+"/keys/"+path)); err != nil {
			t.Fatal(err)
		}
		h1, err := browsertest.Text(bob, "h1")
		if err != nil || h1 != "Not found" {
			t.Errorf("bob at /keys/%s sees %q (%v), want Not found", path, h1, err)
		}
		who, _ := browsertest.Text(bob, ".who")
		if !strings.Contains(who, "bob") {
			t.Errorf("bob at /keys/%s is signed in as %q", path, who)
		}
	}
	shoot(t, bob, "portal-not-found.png")
}

// newManager returns a Manager over a fresh SQLite store.
func newManager(t testing.TB, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	cfg.UsageFlushInterval = -1
	m, err := apikey.NewManager(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

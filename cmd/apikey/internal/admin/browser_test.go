package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// tab drives one browser tab against a site.
type tab struct {
	t   *testing.T
	ctx context.Context
	s   *site
}

// nav runs actions that load a page and returns its response.
func (b tab) nav(actions ...chromedp.Action[chromedp.Void]) *network.Response {
	b.t.Helper()
	resp, err := chromedp.RunResponse(b.ctx, actions...)
	if err != nil {
		b.t.Fatalf("navigation: %v", err)
	}
	return resp
}

// follow clicks the element that matches sel (a link or a submit button)
// and returns the response of the page it leads to.
func (b tab) follow(sel string) *network.Response {
	b.t.Helper()
	resp, err := browsertest.Follow(b.ctx, sel)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp
}

func (b tab) open(path string) *network.Response {
	b.t.Helper()
	return b.nav(chromedp.Navigate(b.s.srv.URL + path))
}

func (b tab) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, actions...); err != nil {
		b.t.Fatal(err)
	}
}

func (b tab) text(sel string) string {
	b.t.Helper()
	s, err := browsertest.Text(b.ctx, sel)
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b tab) exists(sel string) bool {
	b.t.Helper()
	ok, err := browsertest.Exists(b.ctx, sel)
	if err != nil {
		b.t.Fatal(err)
	}
	return ok
}

func (b tab) wantText(sel, want string) {
	b.t.Helper()
	if got := b.text(sel); !strings.Contains(got, want) {
		b.t.Fatalf("%s shows %q, want it to contain %q", sel, got, want)
	}
}

// historyTo runs a history navigation script and waits for a loaded page
// whose URL ends with suffix.
func (b tab) historyTo(script, suffix string) {
	b.t.Helper()
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](script+"; null")); err != nil {
		b.t.Fatal(err)
	}
	cond := fmt.Sprintf("location.pathname.endsWith(%q) && document.readyState === 'complete'", suffix)
	for deadline := time.Now().Add(10 * time.Second); ; {
		ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](cond))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waiting for a page at %s: %v", suffix, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fill sets the value of the element with the given id.
func (b tab) fill(id, value string) {
	b.t.Helper()
	js := fmt.Sprintf("document.getElementById(%q).value = %q", id, value)
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js)); err != nil {
		b.t.Fatal(err)
	}
}

func (b tab) login(email, password string) *network.Response {
	b.t.Helper()
	b.fill("email", "")
	b.do(chromedp.SendKeys(chromedp.ID("email"), email), chromedp.SendKeys(chromedp.ID("password"), password))
	return b.follow(`form[action="/admin/login"] button[type=submit]`)
}

// createKey fills the create form and returns the key shown once.
func (b tab) createKey(name, owner, scopes string) string {
	b.t.Helper()
	b.open("/admin/keys/new")
	b.do(chromedp.SendKeys(chromedp.ID("name"), name), chromedp.SendKeys(chromedp.ID("owner"), owner),
		chromedp.SendKeys(chromedp.ID("scopes"), scopes))
	resp := b.follow(`main form button[type=submit]`)
	if resp.Status != http.StatusOK {
		b.t.Fatalf("create: status %d", resp.Status)
	}
	token, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("token")))
	if err != nil {
		b.t.Fatal(err)
	}
	return token
}

func TestBrowser(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	bg := context.Background()

	// Unauthenticated: the key list sends the browser to the login page,
	// which returns it there after login.
	b.open("/admin/keys")
	b.wantText("h1", "Sign in")
	resp := b.login(adminEmail, adminPassword)
	if resp.Status != http.StatusOK || !strings.HasSuffix(resp.URL, "/admin/keys") {
		t.Fatalf("after login: %d %s", resp.Status, resp.URL)
	}
	b.wantText("h1", "Keys")

	// Create a key and read it once.
	token := b.createKey("billing service", "acme", "billing:read")
	if k, err := s.m.Verify(bg, token); err != nil || k.Name != "billing service" {
		t.Fatalf("the key shown does not verify: %v, %+v", err, k)
	}
	b.wantText(".alert.warning", "will not be shown again")
	if !b.exists(`button.copy:not([hidden])`) {
		t.Errorf("no copy button: the script did not run")
	}
	if resp := b.nav(chromedp.Reload()); resp.Status != http.StatusOK || resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("reload: status %d, Cache-Control %v", resp.Status, resp.Headers["Cache-Control"])
	}
	if b.exists("#token") {
		t.Fatalf("the key is shown again after a reload")
	}
	b.wantText("h1", "can no longer be shown")
	// Back to the form, then forward to the key's page again.
	b.historyTo("history.back()", "/admin/keys/new")
	b.historyTo("history.forward()", "/reveal")
	if b.exists("#token") {
		t.Fatalf("the key is shown again after back and forward")
	}

	// More keys, made directly.
	ids := map[string]string{}
	for _, c := range [][2]string{{"charlie", "globex"}, {"delta", "globex"}, {"echo", "acme"}} {
		k, _, err := s.m.Create(bg, apikey.CreateParams{Name: c[0], Owner: c[1]})
		if err != nil {
			t.Fatal(err)
		}
		ids[c[0]] = k.ID
	}

	// Search and filter.
	b.open("/admin/keys")
	b.do(chromedp.SendKeys(chromedp.ID("q"), "harl"))
	b.follow(`form.filters button[type=submit]`)
	if body := b.text("table.keys tbody"); !strings.Contains(body, "charlie") || strings.Contains(body, "delta") {
		t.Errorf("search for harl lists:\n%s", body)
	}
	b.open("/admin/keys")
	b.do(chromedp.SendKeys(chromedp.ID("owner"), "globex"))
	b.follow(`form.filters button[type=submit]`)
	if body := b.text("table.keys tbody"); !strings.Contains(body, "charlie") || !strings.Contains(body, "delta") || strings.Contains(body, "echo") {
		t.Errorf("owner globex lists:\n%s", body)
	}

	// Revoke with confirmation.
	b.open("/admin/keys/" + ids["charlie"])
	b.follow(`a[href$="/revoke"]`)
	b.wantText("h1", "Revoke “charlie”?")
	b.follow(`main form button.danger`)
	b.wantText(".notice", "The key was revoked.")
	b.wantText("h1 .badge", "Revoked")

	// The state filter.
	b.open("/admin/keys")
	b.do(chromedp.SetValue(chromedp.ID("state"), "revoked"))
	b.follow(`form.filters button[type=submit]`)
	if body := b.text("table.keys tbody"); !strings.Contains(body, "charlie") || strings.Contains(body, "delta") {
		t.Errorf("state revoked lists:\n%s", body)
	}

	// Bulk revoke.
	b.open("/admin/keys")
	for _, name := range []string{"delta", "echo"} {
		if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf("(e => (e.click(), e.checked))(document.getElementById(%q))", "sel-"+ids[name]))); err != nil {
			t.Fatalf("ticking %s: %v", name, err)
		}
	}
	b.follow(`.below-table button.danger`)
	b.wantText("h1", "Revoke 2 keys?")
	b.follow(`main form button.danger`)
	b.wantText(".notice", "2 keys were revoked.")
	for _, name := range []string{"delta", "echo"} {
		if k, _ := s.m.Get(bg, ids[name]); !k.Revoked() {
			t.Errorf("%s is not revoked", name)
		}
	}

	// The audit log shows what the admin did.
	b.open("/admin/events")
	body := b.text("table.events tbody")
	for _, want := range []string{"key.created", "key.revoked", "admin:" + adminEmail, ids["delta"]} {
		if !strings.Contains(body, want) {
			t.Errorf("audit log lacks %q:\n%s", want, body)
		}
	}

	// A form on another origin (same site: another port of 127.0.0.1, so
	// the SameSite=Lax cookie is sent) cannot post to the admin.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s/admin/keys">
<input name="name" value="planted"><button id="go" type="submit">go</button></form>`, s.srv.URL)
	}))
	defer evil.Close()
	b.nav(chromedp.Navigate(evil.URL))
	resp = b.follow("#go")
	if resp.Status != http.StatusForbidden {
		t.Errorf("cross-origin form POST: status %d, want 403", resp.Status)
	}
	if page, _ := s.m.List(bg, apikey.KeyFilter{Search: "planted"}); len(page.Keys) != 0 {
		t.Errorf("the cross-origin form created a key")
	}

	// Logout.
	b.open("/admin/keys")
	b.follow(`form.logout button`)
	b.wantText(".notice", "You have signed out.")
	b.open("/admin/keys")
	b.wantText("h1", "Sign in")
}

func TestBrowserLoginThrottled(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	b.open("/admin/login")
	for i := 1; i <= 5; i++ {
		resp := b.login(adminEmail, fmt.Sprintf("wrong password %d", i))
		if resp.Status != http.StatusOK {
			t.Fatalf("attempt %d: status %d", i, resp.Status)
		}
		b.wantText("#login-error", "Invalid email or password.")
	}
	resp := b.login(adminEmail, adminPassword)
	if resp.Status != http.StatusTooManyRequests {
		t.Fatalf("6th attempt: status %d, want 429", resp.Status)
	}
	b.wantText("#login-error", "Too many failed sign-in attempts")
	// Another browser, same address, another account: not throttled yet.
	other := tab{t: t, ctx: browsertest.NewBrowserContext(t, ctx), s: s}
	other.open("/admin/login")
	other.login("bob@example.com", "wrong password")
	other.wantText("#login-error", "Invalid email or password.")
}

// TestScreenshots saves PNGs of the main pages to docs/screenshots. It runs
// only with APIKEY_SCREENSHOTS=1, so that test runs do not rewrite them.
func TestScreenshots(t *testing.T) {
	if os.Getenv("APIKEY_SCREENSHOTS") != "1" {
		t.Skip("set APIKEY_SCREENSHOTS=1 to write docs/screenshots/*.png")
	}
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	bg := context.Background()
	dir := filepath.Join("..", "..", "..", "..", "docs", "screenshots") // the repository root's
	shot := func(name string) {
		t.Helper()
		if err := browsertest.Screenshot(ctx, filepath.Join(dir, name+".png")); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		p   apikey.CreateParams
		ttl time.Duration
	}{
		{apikey.CreateParams{Name: "Nightly export", Owner: "data-team", Scopes: []string{"exports:read"}}, 0},
		{apikey.CreateParams{Name: "Legacy importer", Owner: "acme", Scopes: []string{"orders:write"}}, time.Hour},
		{apikey.CreateParams{Name: "Old CI runner", Owner: "platform", Scopes: []string{"deploy:write"}}, 0},
		{apikey.CreateParams{Name: "Billing service", Owner: "acme", Scopes: []string{"billing:read", "invoices:*"}, Metadata: map[string]string{"team": "payments", "env": "prod"}}, 0},
		{apikey.CreateParams{Name: "Mobile app (iOS)", Owner: "globex", Scopes: []string{"orders:read", "profile:read"}}, 90 * 24 * time.Hour},
		{apikey.CreateParams{Name: "Partner sandbox", Owner: "initech", Scopes: []string{"*"}}, 30 * 24 * time.Hour},
	} {
		if c.ttl > 0 {
			at := s.clock.Now().Add(c.ttl)
			c.p.ExpiresAt = &at
		}
		k, _, err := s.m.Create(apikey.WithActor(bg, "admin:"+adminEmail), c.p)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name == "Old CI runner" {
			if _, err := s.m.Revoke(apikey.WithActor(bg, "admin:bob@example.com"), k.ID); err != nil {
				t.Fatal(err)
			}
		}
		s.clock.Add(7*time.Hour + 13*time.Minute)
	}

	b.open("/admin/login")
	shot("login")
	b.login(adminEmail, adminPassword)
	shot("keys")
	b.open("/admin/keys/new")
	b.do(chromedp.SendKeys(chromedp.ID("name"), "Reporting dashboard"), chromedp.SendKeys(chromedp.ID("owner"), "acme"),
		chromedp.SendKeys(chromedp.ID("scopes"), "reports:read bad scope!"), chromedp.SendKeys(chromedp.ID("expires_at"), "90d"),
		chromedp.SendKeys(chromedp.ID("metadata"), "team=analytics\ncost-centre"))
	b.follow(`main form button[type=submit]`)
	shot("create-form-errors")
	b.open("/admin/keys/new")
	shot("create-form")
	b.createKey("Reporting dashboard", "acme", "reports:read")
	shot("key-shown-once")
	b.follow(`.card .actions a`)
	shot("key-detail")
	b.open("/admin/events")
	shot("audit-log")

	// Leaks: two keys found in public, one revoked by the policy, one of
	// an owner whose policy is to be told.
	policy := apikey.LeakPolicy{Owners: map[string]apikey.LeakAction{"globex": apikey.LeakNotify}}
	for _, c := range []struct{ name, owner, url, source string }{
		{"Build bot", "platform", "https://github.com/example/infra/blob/4f2a91c/.github/workflows/deploy.yml", "content"},
		{"Mobile app (Android)", "globex", "https://github.com/example/mobile/commit/9c1e77d", "commit"},
		{"Support widget", "acme", "https://gist.github.com/example/5b0d3a", "gist_content"},
	} {
		_, token, err := s.m.Create(apikey.WithActor(bg, "admin:"+adminEmail), apikey.CreateParams{Name: c.name, Owner: c.owner})
		if err != nil {
			t.Fatal(err)
		}
		s.clock.Add(7 * time.Minute) // within the idle timeout of the session
		if _, err := s.m.ReportLeak(apikey.WithActor(bg, "leak-report"), apikey.LeakReport{Token: token, URL: c.url, Source: c.source}, policy); err != nil {
			t.Fatal(err)
		}
	}
	b.open("/admin/leaks")
	shot("leaks")
}

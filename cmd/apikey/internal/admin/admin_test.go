package admin_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeytest"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/sqlite"
)

// fastParams keep argon2id cheap in tests.
var fastParams = admin.PasswordParams{Memory: 64, Time: 1, Threads: 1}

const (
	adminEmail    = "alice@example.com"
	adminPassword = "correct horse battery"
)

// site is an admin handler over a fresh SQLite database, with one admin
// user.
type site struct {
	t      *testing.T
	srv    *httptest.Server
	m      *apikey.Manager
	store  *sqlite.Store
	clock  *apikeytest.Clock
	handle http.Handler
}

func newSite(t *testing.T, configure ...func(*admin.Config)) *site {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apikey.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	clk := apikeytest.NewClock(time.Now().UTC().Truncate(time.Second))
	m, err := apikey.NewManager(store, apikey.Config{Now: clk.Now, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	if err := admin.CreateUser(ctx, store.Admin(), adminEmail, adminPassword, fastParams, clk.Now()); err != nil {
		t.Fatal(err)
	}
	cfg := admin.Config{Manager: m, Store: store.Admin(), Now: clk.Now, PasswordParams: fastParams, Logger: discardLogger()}
	for _, f := range configure {
		f(&cfg)
	}
	h, err := admin.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/admin/", h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &site{t: t, srv: srv, m: m, store: store, clock: clk, handle: h}
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	s *site
	c *http.Client
}

func (s *site) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{s: s, c: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (b *browser) do(req *http.Request) response {
	b.s.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.s.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(body)}
}

func (b *browser) get(path string) response {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.s.srv.URL+path, nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

// post submits a form as a same-origin browser would.
func (b *browser) post(path string, form url.Values) response {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.s.srv.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(req)
}

func (b *browser) login(email, password string) response {
	b.s.t.Helper()
	return b.post("/admin/login", url.Values{"email": {email}, "password": {password}})
}

// loggedIn returns a browser with a session.
func (s *site) loggedIn() *browser {
	s.t.Helper()
	b := s.browser()
	if r := b.login(adminEmail, adminPassword); r.status != http.StatusSeeOther {
		s.t.Fatalf("login: status %d, want 303; body %s", r.status, r.body)
	}
	return b
}

func (b *browser) cookie() string {
	u, _ := url.Parse(b.s.srv.URL + "/admin/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "apikey_admin_session" {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(v string) {
	u, _ := url.Parse(b.s.srv.URL + "/admin/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "apikey_admin_session", Value: v, Path: "/admin/"}})
}

func wantStatus(t *testing.T, r response, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body:\n%s", r.status, want, r.body)
	}
}

func wantRedirect(t *testing.T, r response, prefix string) {
	t.Helper()
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), prefix) {
		t.Fatalf("got %d Location %q, want 303 to %s...; body:\n%s", r.status, r.header.Get("Location"), prefix, r.body)
	}
}

var tokenRE = regexp.MustCompile(`id="token"[^>]*value="([^"]+)"`)

// create posts the create form and returns the key's id and plaintext.
func (b *browser) create(form url.Values) (id, token string) {
	b.s.t.Helper()
	r := b.post("/admin/keys", form)
	wantRedirect(b.s.t, r, "/admin/keys/")
	loc := r.header.Get("Location")
	id = strings.TrimSuffix(strings.TrimPrefix(loc, "/admin/keys/"), "/reveal")
	r = b.get(loc)
	wantStatus(b.s.t, r, http.StatusOK)
	m := tokenRE.FindStringSubmatch(r.body)
	if m == nil {
		b.s.t.Fatalf("reveal page shows no key:\n%s", r.body)
	}
	return id, m[1]
}

func TestUnauthenticatedRedirectsToLogin(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for _, path := range []string{"/admin/", "/admin/keys", "/admin/keys/new", "/admin/events", "/admin/keys/abcdefghijkl"} {
		r := b.get(path)
		wantRedirect(t, r, "/admin/login?next=")
	}
	r := b.post("/admin/keys", url.Values{"name": {"x"}})
	wantRedirect(t, r, "/admin/login")
	if page, _ := s.m.List(context.Background(), apikey.KeyFilter{}); len(page.Keys) != 0 {
		t.Errorf("an unauthenticated POST created %d keys", len(page.Keys))
	}
	// The login page is public and sends the security headers.
	r = b.get("/admin/login")
	wantStatus(t, r, http.StatusOK)
	for name, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "same-origin",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := r.header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

func TestLoginNext(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	r := b.post("/admin/login", url.Values{"email": {"ALICE@example.com"}, "password": {adminPassword}, "next": {"/admin/events?type=key.created"}})
	wantRedirect(t, r, "/admin/events?type=key.created")
	// An off-site next is ignored.
	b = s.browser()
	r = b.post("/admin/login", url.Values{"email": {adminEmail}, "password": {adminPassword}, "next": {"//evil.example/admin/"}})
	wantRedirect(t, r, "/admin/keys")
	if loc := r.header.Get("Location"); loc != "/admin/keys" {
		t.Errorf("Location %q, want /admin/keys", loc)
	}
}

func TestLoginErrorsAreUniform(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	wrong := b.login(adminEmail, "wrong password!")
	unknown := b.login("bob@example.com", adminPassword)
	for _, r := range []response{wrong, unknown} {
		wantStatus(t, r, http.StatusOK)
		if !strings.Contains(r.body, "Invalid email or password.") {
			t.Errorf("body lacks the uniform error:\n%s", r.body)
		}
		if strings.Contains(r.header.Get("Set-Cookie"), "apikey_admin_session=") {
			t.Errorf("failed login set a session cookie")
		}
	}
	r := b.login("", "")
	wantStatus(t, r, http.StatusBadRequest)
}

func TestLoginCookie(t *testing.T) {
	s := newSite(t)
	r := s.browser().login(adminEmail, adminPassword)
	wantRedirect(t, r, "/admin/keys")
	sc := r.header.Get("Set-Cookie")
	for _, want := range []string{"apikey_admin_session=", "HttpOnly", "SameSite=Lax", "Path=/admin/"} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %q", sc, want)
		}
	}
	if strings.Contains(sc, "Secure") {
		t.Errorf("Set-Cookie %q is Secure over plain HTTP in auto mode", sc)
	}
	s2 := newSite(t, func(c *admin.Config) { c.SecureCookies = admin.SecureAlways })
	if sc := s2.browser().login(adminEmail, adminPassword).header.Get("Set-Cookie"); !strings.Contains(sc, "Secure") {
		t.Errorf("SecureAlways: Set-Cookie %q is not Secure", sc)
	}
}

func TestLoginRotatesSession(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	first := b.cookie()
	r := b.login(adminEmail, adminPassword)
	wantRedirect(t, r, "/admin/keys")
	second := b.cookie()
	if first == "" || second == "" || first == second {
		t.Fatalf("cookie before %q, after %q: want two different values", first, second)
	}
	wantStatus(t, b.get("/admin/keys"), http.StatusOK)
	old := s.browser()
	old.setCookie(first)
	wantRedirect(t, old.get("/admin/keys"), "/admin/login")
}

func TestLogoutEndsSessionOnServer(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	token := b.cookie()
	wantRedirect(t, b.post("/admin/logout", nil), "/admin/login")
	// Replaying the cookie after logout does not work: the session is gone
	// from the database, not only from the browser.
	replay := s.browser()
	replay.setCookie(token)
	wantRedirect(t, replay.get("/admin/keys"), "/admin/login")
}

func TestSessionIdleTimeout(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.IdleTimeout = 30 * time.Minute })
	b := s.loggedIn()
	s.clock.Add(20 * time.Minute)
	wantStatus(t, b.get("/admin/keys"), http.StatusOK) // activity resets the idle clock
	s.clock.Add(20 * time.Minute)
	wantStatus(t, b.get("/admin/keys"), http.StatusOK)
	s.clock.Add(30 * time.Minute)
	r := b.get("/admin/keys")
	wantRedirect(t, r, "/admin/login")
	if !strings.Contains(r.header.Get("Location"), "expired=1") {
		t.Errorf("Location %q does not say the session expired", r.header.Get("Location"))
	}
}

func TestSessionAbsoluteTimeout(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.IdleTimeout = time.Hour; c.AbsoluteTimeout = 3 * time.Hour })
	b := s.loggedIn()
	token := b.cookie()
	for range 5 {
		s.clock.Add(35 * time.Minute)
		wantStatus(t, b.get("/admin/keys"), http.StatusOK)
	}
	s.clock.Add(6 * time.Minute) // 3h01 after login, active all along
	wantRedirect(t, b.get("/admin/keys"), "/admin/login")
	b.setCookie(token)
	s.clock.Add(-time.Hour) // even if the clock went back, the session is deleted
	wantRedirect(t, b.get("/admin/keys"), "/admin/login")
}

func TestLoginThrottledPerAccount(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for i := range 5 {
		if r := b.login(adminEmail, "wrong password "+strconv.Itoa(i)); r.status != http.StatusOK {
			t.Fatalf("attempt %d: status %d", i+1, r.status)
		}
	}
	r := b.login(adminEmail, "wrong password 6")
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra <= 0 || ra > 15*60 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if !strings.Contains(r.body, "Too many failed sign-in attempts") {
		t.Errorf("429 page lacks the message:\n%s", r.body)
	}
	// The right password is refused too while throttled.
	wantStatus(t, b.login(adminEmail, adminPassword), http.StatusTooManyRequests)
	// After the window, the account may try again.
	s.clock.Add(15 * time.Minute)
	wantRedirect(t, b.login(adminEmail, adminPassword), "/admin/keys")
}

func TestLoginThrottledPerAddress(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.AddressFailures = 3 })
	b := s.browser()
	for i := range 3 {
		wantStatus(t, b.login("user"+strconv.Itoa(i)+"@example.com", "whatever password"), http.StatusOK)
	}
	wantStatus(t, b.login("other@example.com", "whatever password"), http.StatusTooManyRequests)
}

// fromAddress is a ClientAddress that reads the test's client address from
// the X-Test-Address header.
func fromAddress(c *admin.Config) {
	c.ClientAddress = func(r *http.Request) string { return r.Header.Get("X-Test-Address") }
}

// loginFrom posts the login form as if from addr.
func (b *browser) loginFrom(addr, email, password string) response {
	b.s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.s.srv.URL+"/admin/login",
		strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.s.srv.URL)
	req.Header.Set("X-Test-Address", addr)
	return b.do(req)
}

// TestLoginNotLockedOutFromElsewhere: a stranger who fails again and again
// on the admin's account, from another address, gets 429 but does not lock
// the admin out.
func TestLoginNotLockedOutFromElsewhere(t *testing.T) {
	s := newSite(t, fromAddress)
	stranger, owner := s.browser(), s.browser()
	const strangerAddr, ownerAddr = "203.0.113.9", "198.51.100.7"
	for i := range 5 {
		wantStatus(t, stranger.loginFrom(strangerAddr, adminEmail, "guess "+strconv.Itoa(i)), http.StatusOK)
	}
	for i := range 20 {
		wantStatus(t, stranger.loginFrom(strangerAddr, adminEmail, "guess again "+strconv.Itoa(i)), http.StatusTooManyRequests)
	}
	// The stranger is still refused, the right password included...
	wantStatus(t, stranger.loginFrom(strangerAddr, adminEmail, adminPassword), http.StatusTooManyRequests)
	// ...and the admin, from their own address, signs in.
	wantRedirect(t, owner.loginFrom(ownerAddr, adminEmail, adminPassword), "/admin/keys")

	// Failures of the admin's own address count on their own: four typos,
	// then the right password, works.
	other := s.browser()
	for i := range 4 {
		wantStatus(t, other.loginFrom(ownerAddr, adminEmail, "typo "+strconv.Itoa(i)), http.StatusOK)
	}
	wantRedirect(t, other.loginFrom(ownerAddr, adminEmail, adminPassword), "/admin/keys")
}

// TestLoginThrottleDefaults checks the documented numbers: 5 failures per
// account from one address, 100 per address in all, per 15 minutes.
func TestLoginThrottleDefaults(t *testing.T) {
	s := newSite(t, fromAddress)
	b := s.browser()
	const addr = "192.0.2.1"
	// Brute force on one account from one address: 5 guesses.
	for i := range admin.DefaultAccountFailures {
		wantStatus(t, b.loginFrom(addr, adminEmail, "guess "+strconv.Itoa(i)), http.StatusOK)
	}
	wantStatus(t, b.loginFrom(addr, adminEmail, adminPassword), http.StatusTooManyRequests)
	// Spraying many accounts from the address: 100 failures in all.
	for i := admin.DefaultAccountFailures; i < admin.DefaultAddressFailures; i++ {
		wantStatus(t, b.loginFrom(addr, "user"+strconv.Itoa(i)+"@example.com", "guess"), http.StatusOK)
	}
	r := b.loginFrom(addr, "fresh@example.com", "guess")
	wantStatus(t, r, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra <= 0 || ra > int(admin.DefaultFailureWindow/time.Second) {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	// Another address is not affected.
	wantRedirect(t, b.loginFrom("192.0.2.2", adminEmail, adminPassword), "/admin/keys")
	// After the window, the address may try again.
	s.clock.Add(admin.DefaultFailureWindow)
	wantRedirect(t, b.loginFrom(addr, adminEmail, adminPassword), "/admin/keys")
	if admin.DefaultAccountFailures != 5 || admin.DefaultAddressFailures != 100 || admin.DefaultFailureWindow != 15*time.Minute {
		t.Errorf("defaults %d, %d, %v; the documentation says 5, 100, 15m",
			admin.DefaultAccountFailures, admin.DefaultAddressFailures, admin.DefaultFailureWindow)
	}
}

func TestCrossOriginPostRefused(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	for _, hdr := range []map[string]string{
		{"Origin": "http://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"},
	} {
		req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/admin/keys",
			strings.NewReader(url.Values{"name": {"evil"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r := b.do(req)
		wantStatus(t, r, http.StatusForbidden)
	}
	// Login and logout are protected as well.
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/admin/logout", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	wantStatus(t, b.do(req), http.StatusForbidden)
	if page, _ := s.m.List(context.Background(), apikey.KeyFilter{}); len(page.Keys) != 0 {
		t.Errorf("cross-origin POSTs created %d keys", len(page.Keys))
	}
	wantStatus(t, b.get("/admin/keys"), http.StatusOK) // still signed in
}

// TestExpiryUsesManagerClock checks that a relative expiry counts from
// the Manager's clock, even when the site's own clock (sessions) differs.
func TestExpiryUsesManagerClock(t *testing.T) {
	s := newSite(t, func(c *admin.Config) {
		mclock := c.Now
		c.Now = func() time.Time { return mclock().Add(-365 * 24 * time.Hour) }
	})
	b := s.loggedIn()
	r := b.post("/admin/keys", url.Values{"name": {"billing"}, "expires_at": {"30d"}})
	wantRedirect(t, r, "/admin/keys/")
	page, err := s.m.List(context.Background(), apikey.KeyFilter{})
	if err != nil || len(page.Keys) != 1 {
		t.Fatalf("List: %v, %v", page, err)
	}
	if want := s.clock.Now().Add(30 * 24 * time.Hour); page.Keys[0].ExpiresAt == nil || !page.Keys[0].ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v: 30 days by the Manager's clock", page.Keys[0].ExpiresAt, want)
	}
}

func TestCreateShowsKeyOnce(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	r := b.post("/admin/keys", url.Values{"name": {"billing"}, "owner": {"acme"}, "scopes": {"billing:read, orders:*"},
		"expires_at": {"30d"}, "metadata": {"team=payments\nenv = prod\n"}})
	wantRedirect(t, r, "/admin/keys/")
	loc := r.header.Get("Location")
	first := b.get(loc)
	wantStatus(t, first, http.StatusOK)
	if cc := first.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("reveal page Cache-Control = %q, want no-store", cc)
	}
	m := tokenRE.FindStringSubmatch(first.body)
	if m == nil {
		t.Fatalf("the first GET shows no key:\n%s", first.body)
	}
	if !strings.Contains(first.body, "will not be shown again") {
		t.Errorf("no warning on the reveal page")
	}
	k, err := s.m.Verify(context.Background(), m[1])
	if err != nil {
		t.Fatalf("the key shown does not verify: %v", err)
	}
	if k.Name != "billing" || k.Owner != "acme" || strings.Join(k.Scopes, " ") != "billing:read orders:*" ||
		k.Metadata["team"] != "payments" || k.Metadata["env"] != "prod" || k.ExpiresAt == nil {
		t.Errorf("created key %+v", k)
	}
	second := b.get(loc)
	wantStatus(t, second, http.StatusOK)
	if strings.Contains(second.body, m[1]) || tokenRE.MatchString(second.body) {
		t.Errorf("the second GET shows the key again")
	}
	if !strings.Contains(second.body, "can no longer be shown") {
		t.Errorf("the second GET does not explain:\n%s", second.body)
	}
	// The audit log names the admin.
	evs, err := s.m.Events(context.Background(), apikey.EventFilter{KeyID: k.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Events) != 1 || evs.Events[0].Actor != "admin:"+adminEmail {
		t.Errorf("events %+v, want one by admin:%s", evs.Events, adminEmail)
	}
}

func TestRevealOnlyForItsSession(t *testing.T) {
	s := newSite(t)
	a := s.loggedIn()
	r := a.post("/admin/keys", url.Values{"name": {"k"}})
	loc := r.header.Get("Location")
	other := s.loggedIn()
	if body := other.get(loc).body; tokenRE.MatchString(body) {
		t.Errorf("another session saw the key")
	}
	if body := a.get(loc).body; !tokenRE.MatchString(body) {
		t.Errorf("the creating session did not see its key")
	}
}

func TestCreateFormErrors(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	valid := url.Values{"name": {"svc"}, "owner": {"acme"}, "scopes": {"read"}, "expires_at": {""}, "metadata": {"a=b"}}
	cases := []struct {
		name, field, value, message string
	}{
		{"empty name", "name", "  ", "Enter a name."},
		{"bad scope", "scopes", "read bad!scope", `&#34;bad!scope&#34; is not a valid scope`},
		{"bad expiry", "expires_at", "next tuesday", "Enter a date and time in UTC"},
		{"past expiry", "expires_at", "2001-01-01T00:00", "The expiry must be in the future."},
		{"metadata without =", "metadata", "a=b\nnonsense", "Line 2: write each entry as name=value."},
		{"metadata duplicate", "metadata", "a=b\na=c", "Line 2: &#34;a&#34; is given twice."},
		{"metadata bad name", "metadata", "bad name=x", "Name &#34;bad name&#34; must be 1 to 64 characters"},
		{"owner too long", "owner", strings.Repeat("o", 201), "Longer than 200 bytes."},
		{"name with control character", "name", "a\x01b", "Contains a control character."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range valid {
				form[k] = v
			}
			form.Set(c.field, c.value)
			r := b.post("/admin/keys", form)
			wantStatus(t, r, http.StatusUnprocessableEntity)
			errRE := regexp.MustCompile(`<p class="field-error" id="` + c.field + `-error">([^<]*)</p>`)
			m := errRE.FindStringSubmatch(r.body)
			if m == nil || !strings.Contains(m[1], c.message) {
				t.Fatalf("no error %q next to %s:\n%s", c.message, c.field, r.body)
			}
			if !strings.Contains(r.body, `aria-invalid="true"`) {
				t.Errorf("the field is not marked aria-invalid")
			}
			// The other fields keep what was typed.
			for k, v := range valid {
				if k == c.field || v[0] == "" {
					continue
				}
				if !strings.Contains(r.body, v[0]) {
					t.Errorf("the form lost %s=%q", k, v[0])
				}
			}
		})
	}
	if page, _ := s.m.List(context.Background(), apikey.KeyFilter{}); len(page.Keys) != 0 {
		t.Errorf("bad forms created %d keys", len(page.Keys))
	}
}

func TestOwnerLimitShownOnField(t *testing.T) {
	ctx := context.Background()
	s := newSite(t)
	m, err := apikey.NewManager(s.store, apikey.Config{MaxKeysPerOwner: 1, UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	h, err := admin.New(admin.Config{Manager: m, Store: s.store.Admin(), PasswordParams: fastParams, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s.srv.Config.Handler = h
	b := s.loggedIn()
	b.create(url.Values{"name": {"one"}, "owner": {"acme"}})
	r := b.post("/admin/keys", url.Values{"name": {"two"}, "owner": {"acme"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, `id="owner-error">This owner already has the maximum number of active keys`) {
		t.Errorf("no owner error:\n%s", r.body)
	}
}

func TestEditKey(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	id, _ := b.create(url.Values{"name": {"old"}, "scopes": {"read"}, "metadata": {"a=1"}})
	r := b.get("/admin/keys/" + id + "/edit")
	wantStatus(t, r, http.StatusOK)
	// Errors are shown by field; nothing changes.
	r = b.post("/admin/keys/"+id+"/edit", url.Values{"name": {""}, "scopes": {"read"}, "metadata": {"a=1"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, `id="name-error">Enter a name.`) {
		t.Errorf("no name error:\n%s", r.body)
	}
	r = b.post("/admin/keys/"+id+"/edit", url.Values{"name": {"new"}, "scopes": {"read write"}, "metadata": {"b=2"}, "expires_at": {"2099-01-01T00:00"}})
	wantRedirect(t, r, "/admin/keys/"+id+"?done=updated")
	k, err := s.m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if k.Name != "new" || strings.Join(k.Scopes, " ") != "read write" || len(k.Metadata) != 1 || k.Metadata["b"] != "2" ||
		k.ExpiresAt == nil || k.ExpiresAt.Year() != 2099 {
		t.Errorf("after edit: %+v", k)
	}
	// Clearing the expiry.
	r = b.post("/admin/keys/"+id+"/edit", url.Values{"name": {"new"}, "scopes": {"read write"}, "metadata": {"b=2"}, "expires_at": {""}})
	wantRedirect(t, r, "/admin/keys/"+id)
	if k, _ := s.m.Get(context.Background(), id); k.ExpiresAt != nil {
		t.Errorf("expiry not cleared: %v", k.ExpiresAt)
	}
}

func TestRevokedKeyIsReadOnly(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	id, _ := b.create(url.Values{"name": {"frozen"}})
	r := b.get("/admin/keys/" + id + "/revoke")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "cannot be undone") {
		t.Errorf("no confirmation text:\n%s", r.body)
	}
	wantRedirect(t, b.post("/admin/keys/"+id+"/revoke", nil), "/admin/keys/"+id+"?done=revoked")
	r = b.get("/admin/keys/" + id + "/edit")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "<fieldset disabled>") || strings.Contains(r.body, ">Save</button>") {
		t.Errorf("the edit form of a revoked key is not read-only:\n%s", r.body)
	}
	r = b.post("/admin/keys/"+id+"/edit", url.Values{"name": {"thawed"}})
	wantStatus(t, r, http.StatusConflict)
	if k, _ := s.m.Get(context.Background(), id); k.Name != "frozen" {
		t.Errorf("a revoked key was renamed to %q", k.Name)
	}
	wantStatus(t, b.post("/admin/keys/"+id+"/roll", nil), http.StatusConflict)
}

func TestRoll(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	id, old := b.create(url.Values{"name": {"rolling"}})
	wantStatus(t, b.get("/admin/keys/"+id+"/roll"), http.StatusOK)
	r := b.post("/admin/keys/"+id+"/roll", nil)
	wantRedirect(t, r, "/admin/keys/"+id+"/reveal")
	page := b.get(r.header.Get("Location"))
	m := tokenRE.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no new key shown:\n%s", page.body)
	}
	ctx := context.Background()
	if _, err := s.m.Verify(ctx, m[1]); err != nil {
		t.Errorf("new key: %v", err)
	}
	if _, err := s.m.Verify(ctx, old); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("old key: %v, want ErrInvalidKey", err)
	}
	if tokenRE.MatchString(b.get(r.header.Get("Location")).body) {
		t.Errorf("the rolled key is shown twice")
	}
}

func TestBulkRevoke(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		id, _ := b.create(url.Values{"name": {name}})
		ids = append(ids, id)
	}
	// Selecting shows a confirmation; nothing is revoked yet.
	r := b.post("/admin/keys/revoke-selected", url.Values{"id": {ids[0], ids[1], "not-an-id"}})
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "Revoke 2 keys?") {
		t.Errorf("confirmation page:\n%s", r.body)
	}
	ctx := context.Background()
	for _, id := range ids {
		if k, _ := s.m.Get(ctx, id); k.Revoked() {
			t.Fatalf("%s revoked before confirmation", id)
		}
	}
	r = b.post("/admin/keys/revoke-selected", url.Values{"id": {ids[0], ids[1]}, "confirm": {"yes"}})
	wantRedirect(t, r, "/admin/keys?done=bulk&n=2")
	for i, id := range ids {
		k, _ := s.m.Get(ctx, id)
		if k.Revoked() != (i < 2) {
			t.Errorf("key %d revoked = %v", i, k.Revoked())
		}
	}
	if body := b.get(r.header.Get("Location")).body; !strings.Contains(body, "2 keys were revoked.") {
		t.Errorf("no notice after bulk revoke")
	}
	wantRedirect(t, b.post("/admin/keys/revoke-selected", nil), "/admin/keys?done=none")
}

func TestListSearchFilterAndPaging(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.PageSize = 2 })
	ctx := context.Background()
	mk := func(name, owner string) string {
		env := apikey.EnvLive
		if name == "charlie" {
			env = apikey.EnvTest
		}
		k, _, err := s.m.Create(ctx, apikey.CreateParams{Name: name, Owner: owner, Environment: env})
		if err != nil {
			t.Fatal(err)
		}
		s.clock.Add(24 * time.Hour)
		return k.ID
	}
	mk("alpha", "acme")
	bravo := mk("bravo", "acme")
	mk("charlie", "globex")
	if _, err := s.m.Revoke(ctx, bravo); err != nil {
		t.Fatal(err)
	}
	b := s.loggedIn()
	body := b.get("/admin/keys").body
	if !strings.Contains(body, "charlie") || !strings.Contains(body, "bravo") || strings.Contains(body, "alpha") {
		t.Errorf("first page of 2:\n%s", body)
	}
	next := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(body)
	if next == nil {
		t.Fatalf("no next link")
	}
	body = b.get(strings.ReplaceAll(next[1], "&amp;", "&")).body
	if !strings.Contains(body, "alpha") || strings.Contains(body, "charlie") {
		t.Errorf("second page:\n%s", body)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"q=harl", []string{"charlie"}},
		{"owner=acme", []string{"alpha", "bravo"}},
		{"state=revoked", []string{"bravo"}},
		{"state=active&owner=acme", []string{"alpha"}},
		{"environment=test", []string{"charlie"}},
		{"environment=live&owner=acme", []string{"alpha", "bravo"}},
		{"created_to=" + s.clock.Now().Add(-72*time.Hour).Format(time.DateOnly), []string{"alpha"}},
		{"created_from=" + s.clock.Now().Add(-48*time.Hour).Format(time.DateOnly), []string{"bravo", "charlie"}},
	} {
		body := b.get("/admin/keys?" + c.query).body
		for _, name := range []string{"alpha", "bravo", "charlie"} {
			want := strings.Contains(strings.Join(c.want, " "), name)
			if got := strings.Contains(body, ">"+name+"</a>"); got != want {
				t.Errorf("%s: %s listed = %v, want %v", c.query, name, got, want)
			}
		}
	}
	r := b.get("/admin/keys?created_from=yesterday&state=bogus&environment=prod")
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(r.body, `id="created_from-error"`) || !strings.Contains(r.body, `id="state-error"`) ||
		!strings.Contains(r.body, `id="environment-error"`) {
		t.Errorf("filter errors not shown by field:\n%s", r.body)
	}
}

func TestEventsPage(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	id, _ := b.create(url.Values{"name": {"audited"}})
	wantRedirect(t, b.post("/admin/keys/"+id+"/revoke", nil), "/admin/keys/")
	r := b.get("/admin/events?key_id=" + id)
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{"key.created", "key.revoked", "admin:" + adminEmail} {
		if !strings.Contains(r.body, want) {
			t.Errorf("audit page lacks %q:\n%s", want, r.body)
		}
	}
	r = b.get("/admin/events?type=key.revoked")
	if strings.Contains(r.body, `<span class="event key.created">`) {
		t.Errorf("type filter ignored")
	}
	r = b.get("/admin/events?type=bogus")
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(r.body, `id="type-error"`) {
		t.Errorf("no type error:\n%s", r.body)
	}
}

func TestStoreDownIs503(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	s.store.Close()
	r := b.get("/admin/keys")
	wantStatus(t, r, http.StatusServiceUnavailable)
	if !strings.Contains(r.body, "Service unavailable") {
		t.Errorf("503 page:\n%s", r.body)
	}
}

// TestStoreDownLogRedactsKeyInPath pastes a key into a page's path during
// a store outage: the error record names the path, never the key.
func TestStoreDownLogRedactsKeyInPath(t *testing.T) {
	var logs syncBuffer
	s := newSite(t, func(c *admin.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	b := s.loggedIn()
	k, token, err := s.m.Create(context.Background(), apikey.CreateParams{Name: "pasted"})
	if err != nil {
		t.Fatal(err)
	}
	s.store.Close()
	wantStatus(t, b.get("/admin/keys/"+token), http.StatusServiceUnavailable)
	secret := token[strings.LastIndexByte(token, '_')+1:]
	out := logs.String()
	if strings.Contains(out, token) || strings.Contains(out, secret[:16]) {
		t.Errorf("the log holds the key pasted into the path:\n%s", out)
	}
	if !strings.Contains(out, "admin: store unavailable") || !strings.Contains(out, "/admin/keys/ak_"+k.ID+"_…") {
		t.Errorf("the outage record lacks the redacted path:\n%s", out)
	}
}

// syncBuffer collects log output, safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func TestNotFound(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	wantStatus(t, b.get("/admin/keys/abcdefghijkl"), http.StatusNotFound)
	wantStatus(t, b.get("/admin/keys/nope"), http.StatusNotFound)
	wantStatus(t, b.get("/admin/nowhere"), http.StatusNotFound)
}

func TestStaticAssets(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for _, path := range []string{"/admin/static/admin.css", "/admin/static/admin.js"} {
		r := b.get(path)
		wantStatus(t, r, http.StatusOK)
		if len(r.body) < 100 {
			t.Errorf("%s: %d bytes", path, len(r.body))
		}
	}
}

func TestPasswordHash(t *testing.T) {
	h, err := admin.HashPassword("a long enough password", fastParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Errorf("hash %q", h)
	}
	if !admin.CheckPassword(h, "a long enough password") || admin.CheckPassword(h, "a long enough passwore") {
		t.Errorf("CheckPassword disagrees")
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=64,t=1,p=1$", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if admin.CheckPassword(bad, "") {
			t.Errorf("CheckPassword(%q) matched", bad)
		}
	}
}

func TestCreateUser(t *testing.T) {
	s := newSite(t)
	ctx := context.Background()
	err := admin.CreateUser(ctx, s.store.Admin(), "Alice@Example.com", "another long password", fastParams, time.Now())
	if !errors.Is(err, admin.ErrUserExists) || !errors.Is(err, apikey.ErrDuplicateID) {
		t.Errorf("duplicate: %v", err)
	}
	for _, c := range [][2]string{{"not an email", "long enough password"}, {"Bob <bob@example.com>", "long enough password"}, {"bob@example.com", "short"}} {
		if err := admin.CreateUser(ctx, s.store.Admin(), c[0], c[1], fastParams, time.Now()); !errors.Is(err, admin.ErrBadUser) {
			t.Errorf("CreateUser(%q, %q) = %v, want ErrBadUser", c[0], c[1], err)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

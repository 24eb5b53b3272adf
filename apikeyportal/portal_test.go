package apikeyportal_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyportal"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/memstore"
)

// ownerHeader carries the test's "signed-in user".
const ownerHeader = "X-Test-Owner"

type fixture struct {
	t *testing.T
	m *apikey.Manager
	h http.Handler // the portal mounted at /keys/
}

func newManager(t testing.TB, cfg apikey.Config) *apikey.Manager {
	t.Helper()
	store := memstore.New()
	cfg.UsageFlushInterval = -1
	m, err := apikey.NewManager(store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

// newFixture mounts a portal at /keys/ whose owner is the X-Test-Owner
// header. cfg.Owner is filled in when nil.
func newFixture(t *testing.T, mcfg apikey.Config, cfg apikeyportal.Config) *fixture {
	t.Helper()
	m := newManager(t, mcfg)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Owner == nil {
		cfg.Owner = func(r *http.Request) (string, error) { return r.Header.Get(ownerHeader), nil }
	}
	p, err := apikeyportal.New(m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/keys/", http.StripPrefix("/keys", p))
	return &fixture{t: t, m: m, h: mux}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f *fixture) do(owner, method, target string, form url.Values, hdr ...string) response {
	f.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req := httptest.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if owner != "" {
		req.Header.Set(ownerHeader, owner)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.String()}
}

func (f *fixture) get(owner, target string) response { return f.do(owner, "GET", target, nil) }

func (f *fixture) post(owner, target string, form url.Values) response {
	return f.do(owner, "POST", target, form)
}

// resolve resolves a relative Location against the request path, as a
// browser does.
func resolve(t *testing.T, from, location string) string {
	t.Helper()
	base, err := url.Parse(from)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := url.Parse(location)
	if err != nil {
		t.Fatal(err)
	}
	return base.ResolveReference(ref).String()
}

func (f *fixture) createKey(owner, name string) *apikey.Key {
	f.t.Helper()
	k, _, err := f.m.Create(context.Background(), apikey.CreateParams{Name: name, Owner: owner})
	if err != nil {
		f.t.Fatal(err)
	}
	return k
}

func (f *fixture) state(id string) apikey.State {
	f.t.Helper()
	k, err := f.m.Get(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return k.State
}

var tokenRE = regexp.MustCompile(`<code id="token"[^>]*>([^<]+)</code>`)

func TestListShowsOnlyOwnKeys(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	a1 := f.createKey("alice", "alice-deploy")
	a2 := f.createKey("alice", "alice-billing")
	b1 := f.createKey("bob", "bob-secret-project")
	f.createKey("", "ownerless")

	r := f.get("alice", "/keys/")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d, want 200", r.status)
	}
	for _, want := range []string{a1.ID, a2.ID, "alice-deploy", "alice-billing", "Signed in as <strong>alice</strong>"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("alice's list lacks %q", want)
		}
	}
	for _, bad := range []string{b1.ID, "bob-secret-project", "ownerless"} {
		if strings.Contains(r.body, bad) {
			t.Errorf("alice's list shows %q", bad)
		}
	}

	r = f.get("carol", "/keys/")
	if !strings.Contains(r.body, "You have no API keys yet") {
		t.Errorf("carol's list does not say she has no keys:\n%s", r.body)
	}
}

func TestCreateRevealsOnce(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{
		AllowedScopes: []string{"orders:read", "orders:write"},
		DefaultScopes: []string{"orders:read"},
	})
	form := f.get("alice", "/keys/new")
	if form.status != http.StatusOK || !strings.Contains(form.body, `value="orders:read" checked`) {
		t.Fatalf("form: status %d, default scope not checked:\n%s", form.status, form.body)
	}
	r := f.post("alice", "/keys/new", url.Values{
		"name": {"ci deploy"}, "expires": {"2592000"}, "scope": {"orders:write"},
		"owner": {"bob"}, // forged: the owner never comes from the form
	})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /keys/new: status %d, want 303\n%s", r.status, r.body)
	}
	loc := resolve(t, "/keys/new", r.header.Get("Location"))
	if !regexp.MustCompile(`^/keys/[0-9A-Za-z]{12}/created$`).MatchString(loc) {
		t.Fatalf("Location resolves to %q, want /keys/{id}/created", loc)
	}

	// Another owner cannot take the secret, and trying does not use it up.
	if r := f.get("bob", loc); r.status != http.StatusNotFound || strings.Contains(r.body, "token") {
		t.Errorf("bob GET %s: status %d, want 404 without a token", loc, r.status)
	}
	// A HEAD does not use it up either.
	if r := f.do("alice", "HEAD", loc, nil); r.status != http.StatusOK {
		t.Errorf("HEAD %s: status %d, want 200", loc, r.status)
	}

	r = f.get("alice", loc)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s: status %d", loc, r.status)
	}
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", got)
	}
	m := tokenRE.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("reveal page shows no token:\n%s", r.body)
	}
	k, err := f.m.Verify(context.Background(), m[1])
	if err != nil {
		t.Fatalf("the revealed token does not verify: %v", err)
	}
	if k.Owner != "alice" || k.Name != "ci deploy" || strings.Join(k.Scopes, ",") != "orders:write" {
		t.Errorf("key = owner %q name %q scopes %v, want alice, ci deploy, [orders:write]", k.Owner, k.Name, k.Scopes)
	}
	if k.ExpiresAt == nil || time.Until(*k.ExpiresAt) < 29*24*time.Hour || time.Until(*k.ExpiresAt) > 31*24*time.Hour {
		t.Errorf("ExpiresAt = %v, want in 30 days", k.ExpiresAt)
	}

	// Refresh: the secret is gone.
	r = f.get("alice", loc)
	if r.status != http.StatusOK || tokenRE.MatchString(r.body) || strings.Contains(r.body, m[1]) {
		t.Fatalf("second GET %s shows the token again (status %d)", loc, r.status)
	}
	if !strings.Contains(r.body, "cannot be shown again") {
		t.Errorf("second GET does not explain the secret is gone:\n%s", r.body)
	}
}

func TestRevokeOwnKey(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	k := f.createKey("alice", "old laptop")

	r := f.get("alice", "/keys/"+k.ID+"/revoke")
	if r.status != http.StatusOK || !strings.Contains(r.body, `action="../`+k.ID+`/revoke"`) {
		t.Fatalf("confirmation: status %d, no form posting to ../%s/revoke:\n%s", r.status, k.ID, r.body)
	}
	if f.state(k.ID) != apikey.StateActive {
		t.Fatal("the confirmation page revoked the key")
	}
	r = f.post("alice", "/keys/"+k.ID+"/revoke", url.Values{})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST revoke: status %d, want 303", r.status)
	}
	if got := f.state(k.ID); got != apikey.StateRevoked {
		t.Fatalf("state = %s, want revoked", got)
	}
	loc := resolve(t, "/keys/"+k.ID+"/revoke", r.header.Get("Location"))
	if want := "/keys/?revoked=" + k.ID; loc != want {
		t.Errorf("Location resolves to %q, want %q", loc, want)
	}
	r = f.get("alice", loc)
	if !strings.Contains(r.body, "has been revoked") || !strings.Contains(r.body, "badge-revoked") {
		t.Errorf("list after revoke lacks the notice or the revoked badge:\n%s", r.body)
	}
	// Revoking again is harmless.
	if r := f.post("alice", "/keys/"+k.ID+"/revoke", url.Values{}); r.status != http.StatusSeeOther {
		t.Errorf("second revoke: status %d, want 303", r.status)
	}
	if r := f.get("alice", "/keys/"+k.ID); !strings.Contains(r.body, `id="state">revoked`) || strings.Contains(r.body, "/revoke") {
		t.Errorf("detail page of a revoked key:\n%s", r.body)
	}
}

// A key the operators disabled shows as disabled, with when, and can still
// be revoked by its owner.
func TestDisabledKey(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	k := f.createKey("alice", "paused")
	if r := f.get("alice", "/keys/"+k.ID); strings.Contains(r.body, `id="disabled"`) {
		t.Fatalf("an active key's page says it is disabled:\n%s", r.body)
	}
	if _, err := f.m.Disable(t.Context(), k.ID); err != nil {
		t.Fatal(err)
	}
	r := f.get("alice", "/keys/"+k.ID)
	if !strings.Contains(r.body, `id="state">disabled`) || !strings.Contains(r.body, `id="disabled"`) || !strings.Contains(r.body, "/revoke") {
		t.Errorf("detail page of a disabled key lacks its state, when it was disabled, or Revoke:\n%s", r.body)
	}
	if r := f.get("alice", "/keys/"); !strings.Contains(r.body, "badge-disabled") {
		t.Errorf("list lacks the disabled badge:\n%s", r.body)
	}
}

func TestOtherOwnersKeysAreNotFound(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	alice := f.createKey("alice", "alice-prod")
	bobs := f.createKey("bob", "bob-dev")
	const unknown = "000000000000"

	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		{"GET", "/keys/%s", nil},
		{"GET", "/keys/%s/revoke", nil},
		{"GET", "/keys/%s/created", nil},
		{"POST", "/keys/%s/revoke", url.Values{}},
		{"POST", "/keys/%s/revoke", url.Values{"id": {"%s"}}},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			var notFound response
			for _, id := range []string{unknown, alice.ID} {
				form := url.Values{}
				for k, v := range tc.form {
					form[k] = []string{strings.ReplaceAll(v[0], "%s", id)}
				}
				if tc.form == nil {
					form = nil
				}
				r := f.do("bob", tc.method, strings.ReplaceAll(tc.path, "%s", id), form)
				if r.status != http.StatusNotFound {
					t.Errorf("%s: status %d, want 404", id, r.status)
				}
				if id == unknown {
					notFound = r
				}
				if r.body != notFound.body {
					t.Errorf("%s: the 404 page differs from the one for an unknown id", id)
				}
				if strings.Contains(r.body, "alice") {
					t.Errorf("%s: the 404 page mentions alice", id)
				}
			}
		})
	}

	// A forged id field on bob's own revoke form revokes bob's key only.
	r := f.post("bob", "/keys/"+bobs.ID+"/revoke", url.Values{"id": {alice.ID}, "key": {alice.ID}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("bob revoking his own key: status %d", r.status)
	}
	if got := f.state(bobs.ID); got != apikey.StateRevoked {
		t.Errorf("bob's key is %s, want revoked", got)
	}
	// The revoked notice cannot be used to probe alice's keys.
	if r := f.get("bob", "/keys/?revoked="+alice.ID); strings.Contains(r.body, "alice-prod") || strings.Contains(r.body, "has been revoked") {
		t.Errorf("bob's list echoes alice's key:\n%s", r.body)
	}
	if got := f.state(alice.ID); got != apikey.StateActive {
		t.Errorf("alice's key is %s, want active", got)
	}
}

func TestOwnerLimit(t *testing.T) {
	f := newFixture(t, apikey.Config{MaxKeysPerOwner: 3}, apikeyportal.Config{})
	for i := range 3 {
		if r := f.post("alice", "/keys/new", url.Values{"name": {"k"}, "expires": {"never"}}); r.status != http.StatusSeeOther {
			t.Fatalf("key %d: status %d", i+1, r.status)
		}
	}
	r := f.post("alice", "/keys/new", url.Values{"name": {"fourth key"}, "expires": {"604800"}})
	if r.status != http.StatusConflict {
		t.Fatalf("4th key: status %d, want 409", r.status)
	}
	const want = "You have reached the limit of 3 keys; revoke one to create another."
	if !strings.Contains(r.body, want) {
		t.Errorf("4th key: body lacks %q:\n%s", want, r.body)
	}
	if !strings.Contains(r.body, `value="fourth key"`) || !strings.Contains(r.body, `value="604800" selected`) {
		t.Errorf("4th key: the form values were not kept:\n%s", r.body)
	}
	// Another owner is not affected.
	if r := f.post("bob", "/keys/new", url.Values{"name": {"k"}, "expires": {"never"}}); r.status != http.StatusSeeOther {
		t.Errorf("bob: status %d, want 303", r.status)
	}
	// At the limit, the list offers no "Create a key" but says why, and
	// the form is not offered either; bob, below it, gets both.
	if r := f.get("alice", "/keys/"); strings.Contains(r.body, `>Create a key</a>`) || !strings.Contains(r.body, want) {
		t.Errorf("alice's list at the limit offers to create a key, or does not say why:\n%s", r.body)
	}
	if r := f.get("alice", "/keys/new"); r.status != http.StatusConflict || !strings.Contains(r.body, want) {
		t.Errorf("alice's form at the limit: status %d, want 409 saying %q", r.status, want)
	}
	if r := f.get("bob", "/keys/"); !strings.Contains(r.body, `>Create a key</a>`) || strings.Contains(r.body, want) {
		t.Errorf("bob's list below the limit does not offer to create a key:\n%s", r.body)
	}
}

func TestFormErrors(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{
		AllowedScopes: []string{"a", "b"},
	})
	for _, tc := range []struct {
		name   string
		form   url.Values
		field  string // id of the error paragraph
		reason string
		kept   []string
	}{
		{"empty name", url.Values{"name": {"  "}, "expires": {"never"}, "scope": {"b"}},
			"name-error", "Enter a name", []string{`value="b" checked`}},
		{"control character", url.Values{"name": {"bad\x01name"}, "expires": {"never"}},
			"name-error", "control character", []string{`value="bad`}},
		{"long name", url.Values{"name": {strings.Repeat("x", 201)}, "expires": {"never"}},
			"name-error", "longer than 200", nil},
		{"unknown expiry", url.Values{"name": {"ok name"}, "expires": {"12345"}},
			"expires-error", "Choose an expiry", []string{`value="ok name"`}},
		{"missing expiry", url.Values{"name": {"ok name"}},
			"expires-error", "Choose an expiry", nil},
		{"scope not offered", url.Values{"name": {"ok name"}, "expires": {"never"}, "scope": {"a", "admin"}},
			"scopes-error", "Choose scopes from the list", []string{`value="a" checked`, `value="ok name"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.post("alice", "/keys/new", tc.form)
			if r.status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", r.status)
			}
			re := regexp.MustCompile(`<p class="field-error" id="` + tc.field + `">([^<]*)</p>`)
			m := re.FindStringSubmatch(r.body)
			if m == nil || !strings.Contains(m[1], tc.reason) {
				t.Errorf("no %s containing %q:\n%s", tc.field, tc.reason, r.body)
			}
			for _, k := range tc.kept {
				if !strings.Contains(r.body, k) {
					t.Errorf("form lost %s", k)
				}
			}
		})
	}
	page, err := f.m.List(context.Background(), apikey.KeyFilter{Owner: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Keys) != 0 {
		t.Errorf("bad forms created %d keys", len(page.Keys))
	}
}

func TestNoOwner(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	for _, path := range []string{"/keys/", "/keys/new", "/keys/000000000000"} {
		if r := f.get("", path); r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Sign in required") {
			t.Errorf("GET %s without owner: status %d, want 401", path, r.status)
		}
	}
	if r := f.post("", "/keys/new", url.Values{"name": {"x"}, "expires": {"never"}}); r.status != http.StatusUnauthorized {
		t.Errorf("POST without owner: status %d, want 401", r.status)
	}
	// The stylesheet needs no owner: the 401 page uses it.
	if r := f.get("", "/keys/static/portal.css"); r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("stylesheet: status %d, type %q", r.status, r.header.Get("Content-Type"))
	}

	g := newFixture(t, apikey.Config{}, apikeyportal.Config{
		LoginURL: "/login?next=keys",
		Owner: func(r *http.Request) (string, error) {
			if r.Header.Get(ownerHeader) == "broken" {
				return "mallory", errors.New("session store down")
			}
			return r.Header.Get(ownerHeader), nil
		},
	})
	for _, owner := range []string{"", "broken"} {
		r := g.get(owner, "/keys/")
		if r.status != http.StatusSeeOther || r.header.Get("Location") != "/login?next=keys" {
			t.Errorf("owner %q: status %d Location %q, want 303 to /login?next=keys", owner, r.status, r.header.Get("Location"))
		}
	}
}

func TestCrossOriginPost(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	k := f.createKey("alice", "target")
	for _, hdr := range [][]string{
		{"Sec-Fetch-Site", "cross-site"},
		{"Origin", "https://evil.example"},
	} {
		r := f.do("alice", "POST", "/keys/new", url.Values{"name": {"csrf"}, "expires": {"never"}}, hdr...)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "another site") {
			t.Errorf("%s: create: status %d, want 403 page", hdr[0], r.status)
		}
		r = f.do("alice", "POST", "/keys/"+k.ID+"/revoke", url.Values{}, hdr...)
		if r.status != http.StatusForbidden {
			t.Errorf("%s: revoke: status %d, want 403", hdr[0], r.status)
		}
	}
	if got := f.state(k.ID); got != apikey.StateActive {
		t.Errorf("key is %s after cross-origin POSTs, want active", got)
	}
	page, _ := f.m.List(context.Background(), apikey.KeyFilter{Owner: "alice"})
	if len(page.Keys) != 1 {
		t.Errorf("alice has %d keys, want 1", len(page.Keys))
	}
	// A same-origin browser POST passes.
	r := f.do("alice", "POST", "/keys/new", url.Values{"name": {"ok"}, "expires": {"never"}}, "Sec-Fetch-Site", "same-origin")
	if r.status != http.StatusSeeOther {
		t.Errorf("same-origin POST: status %d, want 303", r.status)
	}
}

func TestSecurityHeaders(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{})
	for _, r := range []response{f.get("alice", "/keys/"), f.get("", "/keys/"), f.get("alice", "/keys/nope/x/y")} {
		for name, want := range map[string]string{
			"X-Frame-Options":        "DENY",
			"X-Content-Type-Options": "nosniff",
			"Referrer-Policy":        "same-origin",
			"Cache-Control":          "no-store",
		} {
			if got := r.header.Get(name); got != want {
				t.Errorf("%s = %q, want %q", name, got, want)
			}
		}
		if csp := r.header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("Content-Security-Policy = %q", csp)
		}
	}
}

// TestRelativeLinks checks that the portal works whatever the prefix and
// however StripPrefix is called.
func TestRelativeLinks(t *testing.T) {
	m := newManager(t, apikey.Config{})
	p, err := apikeyportal.New(m, apikeyportal.Config{Owner: func(*http.Request) (string, error) { return "alice", nil }})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/account/api-keys/", http.StripPrefix("/account/api-keys/", p))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.PostForm(srv.URL+"/account/api-keys/new", url.Values{"name": {"x"}, "expires": {"never"}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`^/account/api-keys/[0-9A-Za-z]{12}/created$`).MatchString(resp.Request.URL.Path) || !tokenRE.Match(b) {
		t.Fatalf("after create: at %s (status %d), token shown: %v", resp.Request.URL.Path, resp.StatusCode, tokenRE.Match(b))
	}
	if !strings.Contains(string(b), `href="../static/portal.css"`) {
		t.Errorf("reveal page does not link the stylesheet relatively")
	}
	resp, err = http.Get(srv.URL + "/account/api-keys/static/portal.css")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("stylesheet: status %d", resp.StatusCode)
	}
}

func TestConfig(t *testing.T) {
	m := newManager(t, apikey.Config{})
	owner := func(*http.Request) (string, error) { return "x", nil }
	for _, tc := range []struct {
		name string
		cfg  apikeyportal.Config
	}{
		{"no owner func", apikeyportal.Config{}},
		{"bad allowed scope", apikeyportal.Config{Owner: owner, AllowedScopes: []string{"a b"}}},
		{"default not allowed", apikeyportal.Config{Owner: owner, AllowedScopes: []string{"a"}, DefaultScopes: []string{"b"}}},
		{"bad default scope", apikeyportal.Config{Owner: owner, DefaultScopes: []string{""}}},
		{"negative max expiry", apikeyportal.Config{Owner: owner, MaxExpiry: -time.Hour}},
		{"tiny max expiry", apikeyportal.Config{Owner: owner, MaxExpiry: time.Second}},
	} {
		if _, err := apikeyportal.New(m, tc.cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tc.name)
		}
	}
	if _, err := apikeyportal.New(nil, apikeyportal.Config{Owner: owner}); err == nil {
		t.Error("New(nil, ...) succeeded")
	}
}

func TestFixedScopesAndMaxExpiry(t *testing.T) {
	f := newFixture(t, apikey.Config{}, apikeyportal.Config{
		DefaultScopes: []string{"reports:read"},
		MaxExpiry:     60 * 24 * time.Hour,
	})
	r := f.get("alice", "/keys/new")
	for _, want := range []string{`>7 days</option>`, `>30 days</option>`, `value="5184000" selected>60 days</option>`, "reports:read"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("form lacks %q", want)
		}
	}
	for _, bad := range []string{"Never", "90 days", `type="checkbox"`} {
		if strings.Contains(r.body, bad) {
			t.Errorf("form offers %q", bad)
		}
	}
	if r := f.post("alice", "/keys/new", url.Values{"name": {"n"}, "expires": {"never"}}); r.status != http.StatusUnprocessableEntity {
		t.Errorf("never with MaxExpiry: status %d, want 422", r.status)
	}
	r = f.post("alice", "/keys/new", url.Values{"name": {"n"}, "expires": {"604800"}, "scope": {"admin"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("create: status %d\n%s", r.status, r.body)
	}
	page, err := f.m.List(context.Background(), apikey.KeyFilter{Owner: "alice"})
	if err != nil || len(page.Keys) != 1 {
		t.Fatalf("List: %v, %d keys", err, len(page.Keys))
	}
	if got := strings.Join(page.Keys[0].Scopes, ","); got != "reports:read" {
		t.Errorf("scopes = %q, want reports:read (the form cannot choose)", got)
	}
}

// TestManagerClock checks that the portal reads the time from the
// Manager: expiry dates and the one view of a new key's secret follow
// apikey.Config.Now, not the wall clock.
func TestManagerClock(t *testing.T) {
	now := time.Date(2040, 5, 6, 7, 8, 9, 0, time.UTC)
	clk := apikeytest.NewClock(now)
	f := newFixture(t, apikey.Config{Now: clk.Now}, apikeyportal.Config{})
	r := f.post("alice", "/keys/new", url.Values{"name": {"n"}, "expires": {"604800"}})
	if r.status != http.StatusSeeOther {
		t.Fatalf("POST /keys/new: status %d, want 303\n%s", r.status, r.body)
	}
	loc := resolve(t, "/keys/new", r.header.Get("Location"))
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/keys/"), "/created")
	k, err := f.m.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(7 * 24 * time.Hour); k.ExpiresAt == nil || !k.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v: seven days by the Manager's clock", k.ExpiresAt, want)
	}
	clk.Add(apikeyportal.RevealTTL + time.Second)
	if r := f.get("alice", loc); tokenRE.MatchString(r.body) {
		t.Errorf("the secret is still shown after RevealTTL by the Manager's clock")
	}
}

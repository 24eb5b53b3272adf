package admin_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/internal/browsertest"
)

// reportLeak reports token as found at url, as POST /v1/leaks does.
func (s *site) reportLeak(token, url string, action apikey.LeakAction) *apikey.Leak {
	s.t.Helper()
	ctx := apikey.WithActor(context.Background(), "leak-report")
	l, err := s.m.ReportLeak(ctx, apikey.LeakReport{Token: token, URL: url, Source: "content"}, apikey.LeakPolicy{Default: action})
	if err != nil {
		s.t.Fatalf("ReportLeak: %v", err)
	}
	return l
}

func TestLeaksPage(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.PageSize = 2 })
	bg := context.Background()
	loud, loudToken, err := s.m.Create(bg, apikey.CreateParams{Name: "loud", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	calm, calmToken, err := s.m.Create(bg, apikey.CreateParams{Name: "calm", Owner: "calm corp"})
	if err != nil {
		t.Fatal(err)
	}
	s.reportLeak(loudToken, "https://github.com/acme/app/blob/main/.env", apikey.LeakRevoke)
	s.reportLeak(calmToken, "javascript:alert(1)", apikey.LeakNotify)
	s.reportLeak(calmToken, "", apikey.LeakNotify)

	// Only for admins.
	wantRedirect(t, s.browser().get("/admin/leaks"), "/admin/login?next=")

	b := s.loggedIn()
	r := b.get("/admin/keys")
	if !strings.Contains(r.body, `<a href="/admin/leaks">Leaks</a>`) {
		t.Errorf("the navigation has no link to the leaks:\n%s", r.body)
	}
	r = b.get("/admin/leaks")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `<a href="/admin/leaks" aria-current="page">Leaks</a>`) {
		t.Errorf("the navigation does not mark the leaks page current")
	}
	// Newest first, two per page: calm's two leaks, then loud's.
	first, last := strings.Index(r.body, "not given"), strings.Index(r.body, "javascript:alert(1)")
	if first < 0 || last < 0 || first > last || strings.Contains(r.body, loud.ID) {
		t.Errorf("page 1 should list calm's leaks, newest first, and not loud's:\n%s", r.body)
	}
	// A URL that is not http(s) is shown, never linked.
	if strings.Contains(r.body, `href="javascript:`) || strings.Contains(r.body, `href="#ZgotmplZ"`) {
		t.Errorf("a javascript: URL became a link:\n%s", r.body)
	}
	for _, want := range []string{`<a href="/admin/keys/` + calm.ID + `"><code>` + calm.ID + `</code></a>`, "calm corp", ">notify<", `rel="next"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page 1 lacks %q:\n%s", want, r.body)
		}
	}
	next := regexp.MustCompile(`<a href="([^"]*)" rel="next">`).FindStringSubmatch(r.body)
	if next == nil {
		t.Fatalf("no next page link:\n%s", r.body)
	}
	r = b.get(strings.ReplaceAll(next[1], "&amp;", "&"))
	wantStatus(t, r, http.StatusOK)
	for _, want := range []string{`<a href="https://github.com/acme/app/blob/main/.env" rel="noopener noreferrer nofollow">`, loud.ID, "acme", ">revoke<", "« Newest"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("page 2 lacks %q:\n%s", want, r.body)
		}
	}
	if strings.Contains(r.body, calm.ID) || strings.Contains(r.body, `rel="next"`) {
		t.Errorf("page 2 lists more than loud's leak:\n%s", r.body)
	}

	// The filter by key.
	r = b.get("/admin/leaks?key_id=" + loud.ID)
	if !strings.Contains(r.body, loud.ID) || strings.Contains(r.body, "calm corp") {
		t.Errorf("key filter:\n%s", r.body)
	}
	r = b.get("/admin/leaks?key_id=nope")
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(r.body, `id="key_id-error"`) {
		t.Errorf("no key_id error:\n%s", r.body)
	}
	r = b.get("/admin/leaks?cursor=x")
	wantStatus(t, r, http.StatusBadRequest)
	r = b.get("/admin/leaks?key_id=AAAAAAAAAAAA")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "No leaks of this key.") {
		t.Errorf("empty page:\n%s", r.body)
	}

	// The key page links to its leaks; the audit log shows where it was
	// found.
	if r := b.get("/admin/keys/" + loud.ID); !strings.Contains(r.body, `href="/admin/leaks?key_id=`+loud.ID+`"`) {
		t.Errorf("the key page has no link to its leaks:\n%s", r.body)
	}
	r = b.get("/admin/events?type=key.leaked&key_id=" + loud.ID)
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `found at <a href="https://github.com/acme/app/blob/main/.env"`) || !strings.Contains(r.body, "leak-report") {
		t.Errorf("the audit log does not show where the key was found:\n%s", r.body)
	}
	r = b.get("/admin/events?type=key.leaked&key_id=" + calm.ID)
	if !strings.Contains(r.body, "found at an address not given") || !strings.Contains(r.body, "found at javascript:alert(1)") ||
		strings.Contains(r.body, `href="javascript:`) {
		t.Errorf("the audit log shows a URL that is not http(s) as a link, or not at all:\n%s", r.body)
	}

	// A store outage is a 503 page.
	s.store.Close()
	wantStatus(t, b.get("/admin/leaks"), http.StatusServiceUnavailable)
}

// TestBrowserLeaks follows the navigation to the leaks page in a browser
// and from a leak to its key.
func TestBrowserLeaks(t *testing.T) {
	ctx := browsertest.New(t)
	s := newSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	k, token, err := s.m.Create(context.Background(), apikey.CreateParams{Name: "leaky", Owner: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	s.reportLeak(token, "https://github.com/acme/app/blob/main/.env", apikey.LeakRevoke)
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)
	b.follow(`nav a[href="/admin/leaks"]`)
	b.wantText("h1", "Leaks")
	body := b.text("table.leaks tbody")
	for _, want := range []string{k.ID, "acme", "https://github.com/acme/app/blob/main/.env", "content", "Revoke"} {
		if !strings.Contains(body, want) {
			t.Errorf("the leaks table lacks %q:\n%s", want, body)
		}
	}
	b.follow(`table.leaks a[href="/admin/keys/` + k.ID + `"]`)
	b.wantText("h1", "leaky")
	b.wantText("h1 .badge", "Revoked")
}

package admin_test

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/internal/browsertest"
	"github.com/go-apikey/apikey/outbox"
)

// hookSite is a site with the webhook pages and account roles (bob is a
// viewer).
func hookSite(t *testing.T) (*site, *outbox.Service) {
	var svc *outbox.Service
	s, _ := accountSite(t, func(c *admin.Config) {
		svc = &outbox.Service{Store: nil}
		c.Webhooks = svc
	})
	svc.Store, svc.Now = s.store.Webhooks(), s.clock.Now
	return s, svc
}

// TestWebhookPages: endpoints, the secret shown once, deliveries with
// their attempts, resend; a viewer sees and changes nothing.
func TestWebhookPages(t *testing.T) {
	s, svc := hookSite(t)
	bg := context.Background()
	b := s.loggedIn()
	r := b.get("/admin/webhooks")
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, `<a href="/admin/webhooks" aria-current="page">Webhooks</a>`) || !strings.Contains(r.body, "No webhook endpoints.") {
		t.Errorf("webhooks page:\n%s", r.body)
	}
	r = b.post("/admin/webhooks", url.Values{"url": {"ftp://example.com"}})
	wantStatus(t, r, http.StatusUnprocessableEntity)
	if !strings.Contains(r.body, "Must be an http or https URL.") {
		t.Errorf("bad URL: no error on the page:\n%s", r.body)
	}

	// A real receiver that refuses, so that the attempts show.
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) }))
	defer rcv.Close()
	r = b.post("/admin/webhooks", url.Values{"url": {rcv.URL + "/hooks"}, "events": {"key.created", "key.revoked"}})
	wantRedirect(t, r, "/admin/webhooks/wh_")
	secretPage := r.header.Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(secretPage, "/admin/webhooks/"), "/secret")
	r = b.get(secretPage)
	secret := regexp.MustCompile(`value="(whsec_[^"]+)"`).FindStringSubmatch(r.body)
	if secret == nil {
		t.Fatalf("the secret is not shown:\n%s", r.body)
	}
	ep, err := svc.Get(bg, id)
	if err != nil || ep.Secret != html.UnescapeString(secret[1]) || len(ep.Events) != 2 {
		t.Fatalf("endpoint %+v, %v; want the secret shown and two events", ep, err)
	}
	if r = b.get(secretPage); strings.Contains(r.body, "whsec_") {
		t.Errorf("the secret is shown twice")
	}

	k, _, err := s.m.Create(apikey.WithActor(bg, "test"), apikey.CreateParams{Name: "hooked"})
	if err != nil {
		t.Fatal(err)
	}
	w := &outbox.Worker{Store: s.store.Webhooks(), Key: s.m.Get, MaxAttempts: 1}
	if _, err := w.RunOnce(bg); err != nil {
		t.Fatal(err)
	}
	r = b.get("/admin/webhooks/" + id)
	wantStatus(t, r, http.StatusOK)
	link := regexp.MustCompile(`<a href="(/admin/webhooks/` + id + `/deliveries/(msg_[0-9a-f]+))">`).FindStringSubmatch(r.body)
	if link == nil || !strings.Contains(r.body, "key.created") || !strings.Contains(r.body, ">failed<") || !strings.Contains(r.body, "418") {
		t.Fatalf("endpoint page lacks the failed delivery:\n%s", r.body)
	}
	r = b.get(link[1])
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(r.body, "the endpoint answered 418") || !strings.Contains(r.body, `>Resend</button>`) {
		t.Errorf("delivery page lacks the attempt or the Resend button:\n%s", r.body)
	}

	// A viewer sees the pages, without buttons, and may change nothing.
	bob := s.as("bob@example.com")
	r = bob.get(link[1])
	wantStatus(t, r, http.StatusOK)
	if strings.Contains(r.body, "Resend") {
		t.Errorf("a viewer sees the Resend button")
	}
	for _, path := range []string{link[1] + "/resend", "/admin/webhooks", "/admin/webhooks/" + id + "/delete", "/admin/webhooks/" + id + "/rotate"} {
		if r := bob.post(path, url.Values{"url": {"https://example.com"}}); r.status != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", path, r.status)
		}
	}

	r = b.post(link[1]+"/resend", nil)
	wantRedirect(t, r, link[1])
	d, err := svc.Delivery(bg, id, link[2])
	if err != nil || d.State != outbox.StatePending || d.Attempts != 0 || len(d.Log) != 1 {
		t.Errorf("after resend: %+v, %v", d, err)
	}
	r = b.post("/admin/webhooks/"+id+"/enabled", url.Values{"enabled": {"false"}})
	wantRedirect(t, r, "/admin/webhooks/"+id)
	if ep, _ := svc.Get(bg, id); ep.Enabled {
		t.Errorf("still enabled")
	}
	r = b.post("/admin/webhooks/"+id+"/delete", nil)
	wantRedirect(t, r, "/admin/webhooks")
	if r = b.get("/admin/webhooks/" + id); r.status != http.StatusNotFound {
		t.Errorf("deleted endpoint: %d", r.status)
	}
	if r = b.get("/admin/webhooks/wh_AAAAAAAAAAAAAAAAAAAAAA/deliveries/msg_0"); r.status != http.StatusNotFound {
		t.Errorf("unknown: %d", r.status)
	}
	_ = k
}

// TestBrowserWebhooks registers an endpoint, reads its secret, and resends
// a delivery, in Chromium.
func TestBrowserWebhooks(t *testing.T) {
	ctx := browsertest.New(t)
	s, svc := hookSite(t)
	b := tab{t: t, ctx: ctx, s: s}
	b.open("/admin/login")
	b.login(adminEmail, adminPassword)
	b.open("/admin/webhooks")
	b.do(chromedp.SendKeys(chromedp.ID("url"), "https://hooks.example.com/apikey"))
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[any](`document.querySelector('input[value="key.created"]').click(); null`)); err != nil {
		t.Fatal(err)
	}
	if resp := b.follow(`form.webhook-form button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("create: status %d", resp.Status)
	}
	b.wantText("h1", "Signing secret of https://hooks.example.com/apikey")
	secret, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("secret").value`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown: %q", secret)
	}
	b.follow(`main a[href^="/admin/webhooks/wh_"]`)
	b.wantText("h1", "https://hooks.example.com/apikey")
	eps, err := svc.List(context.Background())
	if err != nil || len(eps) != 1 || eps[0].Secret != secret || len(eps[0].Events) != 1 {
		t.Fatalf("endpoints %+v, %v", eps, err)
	}
	if _, _, err := s.m.Create(context.Background(), apikey.CreateParams{Name: "hooked"}); err != nil {
		t.Fatal(err)
	}
	b.open("/admin/webhooks/" + eps[0].ID)
	b.wantText("table.deliveries", "key.created")
	b.follow(`table.deliveries a`)
	b.wantText("h1", "Delivery msg_")
	if resp := b.follow(`form[action$="/resend"] button[type=submit]`); resp.Status != http.StatusOK {
		t.Fatalf("resend: status %d", resp.Status)
	}
	b.wantText(".details", "Pending")
}

package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyclient"
	"github.com/go-apikey/apikey/outbox"
)

// TestWebhooksAPI drives /v1/webhooks through apikeyclient against the
// real service: the secret shown once, the errors, deliveries, resend and
// the audit entries.
func TestWebhooksAPI(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) { testWebhooksAPI(t, backend) })
	}
}

func testWebhooksAPI(t *testing.T, backend string) {
	f := newFixture(t, options{http: true, backend: backend})
	s := &service{fixture: f, tokens: []string{f.admin, f.verify}}
	c := s.client(t, f.admin)
	ctx := context.Background()

	_, err := c.CreateWebhook(ctx, "ftp://example.com", nil, true)
	var ve *apikey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "url" || ve.Reason != "must be an http or https URL" {
		t.Errorf("bad URL: %v", err)
	}
	_, err = c.CreateWebhook(ctx, "https://example.com", []apikey.EventType{"key.created", "key.bogus"}, true)
	if !errors.As(err, &ve) || ve.Field != "events" || !strings.Contains(ve.Reason, `unknown event type "key.bogus"`) {
		t.Errorf("unknown event: %v", err)
	}
	w, err := c.CreateWebhook(ctx, "https://example.com/hooks", []apikey.EventType{"*"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Secret, "whsec_") || len(w.Events) != 0 || !w.Enabled {
		t.Errorf("created %+v", w)
	}
	got, err := c.Webhook(ctx, w.ID)
	if err != nil || got.Secret != "" || got.URL != w.URL {
		t.Errorf("Webhook = %+v, %v; want no secret", got, err)
	}
	// The secret is in no answer but the creation's.
	r := f.do(t, req{method: "GET", path: "/v1/webhooks", token: f.admin})
	if r.status != 200 || strings.Contains(string(r.body), w.Secret) || strings.Contains(string(r.body), "whsec_") {
		t.Errorf("GET /v1/webhooks: %d %s", r.status, r.body)
	}
	list, err := c.Webhooks(ctx)
	if err != nil || len(list) != 1 {
		t.Errorf("Webhooks = %v, %v", list, err)
	}
	rot, err := c.RotateWebhookSecret(ctx, w.ID)
	if err != nil || rot.Secret == "" || rot.Secret == w.Secret {
		t.Errorf("Rotate = %+v, %v", rot, err)
	}
	off := false
	if u, err := c.UpdateWebhook(ctx, w.ID, apikeyclient.WebhookUpdate{Enabled: &off}); err != nil || u.Enabled || u.Secret != "" {
		t.Errorf("disable = %+v, %v", u, err)
	}
	on := true
	created := []apikey.EventType{apikey.EventCreated}
	if u, err := c.UpdateWebhook(ctx, w.ID, apikeyclient.WebhookUpdate{Enabled: &on, Events: &created}); err != nil || !u.Enabled || len(u.Events) != 1 {
		t.Errorf("enable = %+v, %v", u, err)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/webhooks/" + w.ID, token: f.admin, body: `{}`})
	if r.status != 400 || !strings.Contains(string(r.body), "no field to change") {
		t.Errorf("empty PATCH: %d %s", r.status, r.body)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/webhooks/" + w.ID, token: f.admin, body: `{"secret":"whsec_x"}`})
	if r.status != 400 {
		t.Errorf("PATCH with a secret: %d %s", r.status, r.body)
	}

	// Deliveries: a key created now is queued for the endpoint.
	k, token, err := c.Create(ctx, apikey.CreateParams{Name: "billing"})
	if err != nil {
		t.Fatal(err)
	}
	s.tokens = append(s.tokens, token)
	if _, err := c.Update(ctx, k.ID, apikey.KeyUpdate{Name: ptr("other")}); err != nil { // filtered out
		t.Fatal(err)
	}
	page, err := c.Deliveries(ctx, w.ID, outbox.DeliveryFilter{})
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].Type != apikey.EventCreated || page.Deliveries[0].State != outbox.StatePending {
		t.Fatalf("Deliveries = %+v, %v", page, err)
	}
	d := page.Deliveries[0]
	if got, err := c.Delivery(ctx, w.ID, d.ID); err != nil || got.ID != d.ID || got.Log == nil && got.Attempts != 0 {
		t.Errorf("Delivery = %+v, %v", got, err)
	}
	if re, err := c.ResendDelivery(ctx, w.ID, d.ID); err != nil || re.ID != d.ID || re.State != outbox.StatePending {
		t.Errorf("Resend = %+v, %v", re, err)
	}
	r = f.do(t, req{method: "GET", path: "/v1/webhooks/" + w.ID + "/deliveries?state=lost", token: f.admin})
	if r.status != 400 || !strings.Contains(string(r.body), `"field":"state"`) {
		t.Errorf("bad state: %d %s", r.status, r.body)
	}
	r = f.do(t, req{method: "GET", path: "/v1/webhooks/" + w.ID + "/deliveries?limit=0", token: f.admin})
	if r.status != 400 {
		t.Errorf("limit=0: %d %s", r.status, r.body)
	}

	// Unknown ids.
	if _, err := c.Webhook(ctx, "wh_AAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("unknown webhook: %v", err)
	}
	if _, err := c.Webhook(ctx, "nope"); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("malformed webhook id: %v", err)
	}
	if _, err := c.ResendDelivery(ctx, w.ID, "msg_00000000000000000000000000000000"); !errors.Is(err, apikey.ErrDeliveryNotFound) {
		t.Errorf("unknown delivery: %v", err)
	}
	r = f.do(t, req{method: "GET", path: "/v1/webhooks/" + w.ID + "/deliveries/msg_0", token: f.admin})
	var p struct{ Detail, Code string }
	_ = json.Unmarshal(r.body, &p)
	if r.status != 404 || p.Code != "not_found" || p.Detail != "The webhook endpoint has no such delivery." {
		t.Errorf("unknown delivery: %d %s", r.status, r.body)
	}
	// A verify-only key may not manage webhooks.
	r = f.do(t, req{method: "GET", path: "/v1/webhooks", token: f.verify})
	if r.status != http.StatusForbidden {
		t.Errorf("verify key: %d", r.status)
	}

	if err := c.DeleteWebhook(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteWebhook(ctx, w.ID); !errors.Is(err, apikey.ErrWebhookNotFound) {
		t.Errorf("second delete: %v", err)
	}
	evs, err := c.Events(ctx, apikey.EventFilter{KeyID: apikey.WebhookSubject(w.ID)})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs.Events {
		types = append(types, string(e.Type))
		if e.Actor != "key:"+keyID(t, f.admin) {
			t.Errorf("%s by %q", e.Type, e.Actor)
		}
	}
	if strings.Join(types, " ") != "webhook.deleted webhook.updated webhook.updated webhook.updated webhook.created" {
		t.Errorf("audit: %v", types)
	}
}

func keyID(t *testing.T, token string) string {
	t.Helper()
	tk, err := apikey.ParseToken(token)
	if err != nil {
		t.Fatal(err)
	}
	return tk.ID
}

func ptr[T any](v T) *T { return &v }

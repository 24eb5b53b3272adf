package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
)

// TestKeysAPI walks every management route through its happy path over
// real HTTP.
func TestKeysAPI(t *testing.T) {
	f := newFixture(t, options{http: true})
	admin := f.admin

	// Create, with every field.
	r := f.do(t, req{method: "POST", path: "/v1/keys", token: admin,
		body: `{"name":"billing","owner":"acme","scopes":["invoices:read","invoices:read","billing:*"],"metadata":{"team":"core"},"expires_in":"30d"}`})
	mustStatus(t, r, http.StatusCreated, "create")
	var k key
	r.json(t, &k)
	if r.header.Get("Location") != "/v1/keys/"+k.ID || r.header.Get("Cache-Control") != "no-store" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("create headers: %v", r.header)
	}
	wantExp := f.clock.Now().Add(30 * 24 * time.Hour)
	if k.Name != "billing" || k.Owner != "acme" || !slices.Equal(k.Scopes, []string{"billing:*", "invoices:read"}) ||
		k.Metadata["team"] != "core" || k.ExpiresAt == nil || !k.ExpiresAt.Equal(wantExp) || k.State != "active" ||
		!strings.HasPrefix(k.Token, "ak_"+k.ID+"_") || len(k.ID) != apikey.IDLength {
		t.Errorf("created %+v", k)
	}
	if vk, err := f.m.Verify(context.Background(), k.Token); err != nil || vk.ID != k.ID {
		t.Errorf("the created key does not verify: %v", err)
	}

	// Create with expires_at and the minimum, a second later each.
	f.clock.Add(time.Second)
	at := f.clock.Now().Add(time.Hour).Format(time.RFC3339)
	k2 := f.create(t, `{"name":"second","owner":"acme","expires_at":"`+at+`"}`)
	if k2.ExpiresAt == nil || k2.ExpiresAt.Format(time.RFC3339) != at || len(k2.Scopes) != 0 || k2.Metadata == nil {
		t.Errorf("created %+v", k2)
	}
	f.clock.Add(time.Second)
	k3 := f.create(t, `{"name":"third"}`)

	// Get.
	r = f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID, token: admin})
	mustStatus(t, r, http.StatusOK, "get")
	var got key
	r.json(t, &got)
	if got.ID != k.ID || got.Token != "" || got.Name != "billing" || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("get: %s", r.body)
	}
	if strings.Contains(string(r.body), apikeytest.SecretOf(k.Token)) {
		t.Errorf("get shows the secret: %s", r.body)
	}

	// List: filter, search and pagination.
	var page struct {
		Keys       []key  `json:"keys"`
		NextCursor string `json:"next_cursor"`
	}
	r = f.do(t, req{method: "GET", path: "/v1/keys?owner=acme", token: admin})
	mustStatus(t, r, http.StatusOK, "list")
	r.json(t, &page)
	if len(page.Keys) != 2 || page.Keys[0].ID != k2.ID || page.Keys[1].ID != k.ID || page.NextCursor != "" {
		t.Errorf("list owner=acme: %s", r.body)
	}
	var ids []string
	cursor := ""
	for range 10 {
		path := "/v1/keys?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r = f.do(t, req{method: "GET", path: path, token: admin})
		mustStatus(t, r, http.StatusOK, "list page")
		page.NextCursor = ""
		r.json(t, &page)
		for _, pk := range page.Keys {
			ids = append(ids, pk.ID)
		}
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	slices.Sort(ids)
	if len(ids) != 5 || len(slices.Compact(ids)) != 5 || !slices.Contains(ids, k3.ID) { // admin, verifier and the three above
		t.Errorf("paged through %v", ids)
	}
	r = f.do(t, req{method: "GET", path: "/v1/keys?search=BILL&state=active", token: admin})
	r.json(t, &page)
	if len(page.Keys) != 1 || page.Keys[0].ID != k.ID {
		t.Errorf("search: %s", r.body)
	}

	// Patch: name, scopes, metadata, expiry by duration, then clear it.
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: admin,
		body: `{"name":"billing v2","scopes":[],"metadata":{"a":"b"},"expires_in":"2h"}`})
	mustStatus(t, r, http.StatusOK, "patch")
	got = key{}
	r.json(t, &got)
	if got.Name != "billing v2" || len(got.Scopes) != 0 || got.Metadata["a"] != "b" || len(got.Metadata) != 1 ||
		got.ExpiresAt == nil || !got.ExpiresAt.Equal(f.clock.Now().Add(2*time.Hour)) || got.Owner != "acme" {
		t.Errorf("patched: %s", r.body)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: admin, body: `{"expires_at":null}`,
		contentType: "application/merge-patch+json"})
	mustStatus(t, r, http.StatusOK, "patch clear")
	got = key{}
	r.json(t, &got)
	if got.ExpiresAt != nil || got.Name != "billing v2" {
		t.Errorf("cleared expiry: %s", r.body)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: admin, body: `{}`})
	mustStatus(t, r, http.StatusOK, "empty patch")

	// Roll: new secret, same id; the old one stops verifying.
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/roll", token: admin})
	mustStatus(t, r, http.StatusOK, "roll")
	var rolled key
	r.json(t, &rolled)
	if rolled.ID != k.ID || rolled.Token == "" || rolled.Token == k.Token || r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("rolled: %s", r.body)
	}
	if _, err := f.m.Verify(context.Background(), k.Token); err == nil {
		t.Error("the old secret still verifies after roll")
	}
	if _, err := f.m.Verify(context.Background(), rolled.Token); err != nil {
		t.Errorf("the rolled key does not verify: %v", err)
	}

	// Revoke, twice.
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: admin})
	mustStatus(t, r, http.StatusOK, "revoke")
	var rev1, rev2 key
	r.json(t, &rev1)
	f.clock.Add(time.Minute)
	r = f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: admin})
	mustStatus(t, r, http.StatusOK, "revoke again")
	r.json(t, &rev2)
	if rev1.State != "revoked" || rev1.RevokedAt == nil || rev2.RevokedAt == nil || !rev1.RevokedAt.Equal(*rev2.RevokedAt) {
		t.Errorf("revoke: %+v then %+v", rev1, rev2)
	}

	// Delete, then it is gone.
	r = f.do(t, req{method: "DELETE", path: "/v1/keys/" + k2.ID, token: admin})
	mustStatus(t, r, http.StatusNoContent, "delete")
	if len(r.body) != 0 {
		t.Errorf("delete body %q", r.body)
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/keys/" + k2.ID, token: admin}), http.StatusNotFound, "not_found", "get deleted")
	wantProblem(t, f.do(t, req{method: "DELETE", path: "/v1/keys/" + k2.ID, token: admin}), http.StatusNotFound, "not_found", "delete deleted")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k2.ID + "/revoke", token: admin}), http.StatusNotFound, "not_found", "revoke deleted")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k2.ID + "/roll", token: admin}), http.StatusNotFound, "not_found", "roll deleted")
	wantProblem(t, f.do(t, req{method: "PATCH", path: "/v1/keys/" + k2.ID, token: admin, body: `{"name":"x"}`}), http.StatusNotFound, "not_found", "patch deleted")
}

func TestPublicRoutes(t *testing.T) {
	f := newFixture(t, options{http: true})
	r := f.do(t, req{method: "GET", path: "/healthz"})
	mustStatus(t, r, http.StatusOK, "healthz")
	if string(r.body) != `{"status":"ok"}`+"\n" {
		t.Errorf("healthz body %q", r.body)
	}
	r = f.do(t, req{method: "GET", path: "/readyz"})
	mustStatus(t, r, http.StatusOK, "readyz")
	r = f.do(t, req{method: "HEAD", path: "/healthz"})
	mustStatus(t, r, http.StatusOK, "HEAD healthz")
	r = f.do(t, req{method: "GET", path: "/v1/openapi.json"})
	mustStatus(t, r, http.StatusOK, "openapi")
	if r.header.Get("Content-Type") != "application/json" {
		t.Errorf("openapi Content-Type %q", r.header.Get("Content-Type"))
	}
}

// TestScopes checks who may call what.
func TestScopes(t *testing.T) {
	f := newFixture(t, options{http: true})
	ctx := context.Background()
	_, plain, _ := f.m.Create(ctx, apikey.CreateParams{Name: "no scopes"})
	_, wild, _ := f.m.Create(ctx, apikey.CreateParams{Name: "wildcard", Scopes: []string{"apikey:*"}})
	revokedKey, revokedAdmin, _ := f.m.Create(ctx, apikey.CreateParams{Name: "old admin", Scopes: []string{server.ScopeAdmin}})
	if _, err := f.m.Revoke(ctx, revokedKey.ID); err != nil {
		t.Fatal(err)
	}
	verifyBody := `{"key":` + jsonString(plain) + `}`

	// The verify-only key verifies and may ask who it is, nothing else.
	r := f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: verifyBody})
	mustStatus(t, r, http.StatusOK, "verify with apikey:verify")
	p := wantProblem(t, f.do(t, req{method: "GET", path: "/v1/keys", token: f.verify}), http.StatusForbidden, "insufficient_scope", "list with apikey:verify")
	if !slices.Equal(p.RequiredScopes, []string{server.ScopeAdmin}) {
		t.Errorf("required_scopes %v", p.RequiredScopes)
	}
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys", token: f.verify, body: `{"name":"x"}`}), http.StatusForbidden, "insufficient_scope", "create with apikey:verify")
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: f.verify}), http.StatusOK, "whoami with apikey:verify")

	// A key without scopes only learns who it is.
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: plain}), http.StatusOK, "whoami without scopes")
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/verify", token: plain, body: verifyBody}), http.StatusForbidden, "insufficient_scope", "verify without scopes")

	// apikey:* covers both.
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/keys", token: wild}), http.StatusOK, "list with apikey:*")
	mustStatus(t, f.do(t, req{method: "POST", path: "/v1/verify", token: wild, body: verifyBody}), http.StatusOK, "verify with apikey:*")

	// No key, a bad key, a revoked admin key.
	for _, path := range []string{"/v1/keys", "/v1/whoami"} {
		r := f.do(t, req{method: "GET", path: path})
		wantProblem(t, r, http.StatusUnauthorized, "missing_key", "no key "+path)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
		wantProblem(t, f.do(t, req{method: "GET", path: path, token: "ak_nope"}), http.StatusUnauthorized, "invalid_key", "bad key "+path)
		wantProblem(t, f.do(t, req{method: "GET", path: path, token: revokedAdmin}), http.StatusUnauthorized, "key_revoked", "revoked admin "+path)
	}
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/verify", body: verifyBody}), http.StatusUnauthorized, "missing_key", "verify without key")
	wantProblem(t, f.do(t, req{method: "DELETE", path: "/v1/keys/" + revokedKey.ID}), http.StatusUnauthorized, "missing_key", "delete without key")
	if _, err := f.m.Get(ctx, revokedKey.ID); err != nil {
		t.Errorf("an unauthenticated delete went through: %v", err)
	}
}

// TestREADMEFlow follows the README: an admin key (made by the CLI there,
// by the Manager here) creates a key through the API; the key asks who it
// is under each header form; it is revoked and is then refused.
func TestREADMEFlow(t *testing.T) {
	f := newFixture(t, options{http: true})
	k := f.create(t, `{"name":"demo"}`)
	forms := map[string]http.Header{
		"Authorization: Api-Key": {"Authorization": {"Api-Key " + k.Token}},
		"Authorization: Bearer":  {"Authorization": {"Bearer " + k.Token}},
		"X-Api-Key":              {"X-Api-Key": {k.Token}},
	}
	for name, h := range forms {
		r := f.do(t, req{method: "GET", path: "/v1/whoami", header: h})
		mustStatus(t, r, http.StatusOK, "whoami "+name)
		var me key
		r.json(t, &me)
		if me.ID != k.ID || me.Name != "demo" || me.State != "active" || me.Token != "" {
			t.Errorf("whoami %s: %s", name, r.body)
		}
	}
	mustStatus(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: f.admin}), http.StatusOK, "revoke")
	for name, h := range forms {
		wantProblem(t, f.do(t, req{method: "GET", path: "/v1/whoami", header: h}), http.StatusUnauthorized, "key_revoked", "whoami after revoke "+name)
	}
	// A revoked key is frozen.
	p := wantProblem(t, f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{"name":"again"}`}),
		http.StatusConflict, "key_revoked", "patch revoked")
	if p.Detail == "" {
		t.Error("409 without detail")
	}
	wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/roll", token: f.admin}), http.StatusConflict, "key_revoked", "roll revoked")
	// An empty patch changes nothing, so it is no attempt to change the
	// frozen key: the Manager answers it as a Get.
	r := f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{}`})
	mustStatus(t, r, http.StatusOK, "empty patch of a revoked key")
	var got key
	r.json(t, &got)
	if got.State != "revoked" || got.Name != "demo" {
		t.Errorf("empty patch of a revoked key: %s", r.body)
	}
	// It can still be shown and deleted.
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID, token: f.admin}), http.StatusOK, "get revoked")
	mustStatus(t, f.do(t, req{method: "DELETE", path: "/v1/keys/" + k.ID, token: f.admin}), http.StatusNoContent, "delete revoked")
}

type verifyAnswer struct {
	Valid bool   `json:"valid"`
	Code  string `json:"code"`
	Key   *key   `json:"key"`
}

func TestVerifyEndpoint(t *testing.T) {
	f := newFixture(t, options{http: true})
	ctx := context.Background()
	good, goodTok, _ := f.m.Create(ctx, apikey.CreateParams{Name: "good", Scopes: []string{"billing:*", "users:read"}})
	exp := f.clock.Now().Add(time.Hour)
	_, expiring, _ := f.m.Create(ctx, apikey.CreateParams{Name: "expiring", ExpiresAt: &exp})
	rk, revoked, _ := f.m.Create(ctx, apikey.CreateParams{Name: "revoked"})
	f.m.Revoke(ctx, rk.ID)
	f.clock.Add(2 * time.Hour)
	wrongSecret := goodTok[:len(goodTok)-12] + strings.Repeat("A", 6) + goodTok[len(goodTok)-6:]

	cases := []struct {
		name, body string
		valid      bool
		code       string
	}{
		{"valid", `{"key":` + jsonString(goodTok) + `}`, true, ""},
		{"valid with scopes", `{"key":` + jsonString(goodTok) + `,"scopes":["billing:invoices:read","users:read"]}`, true, ""},
		{"empty scopes", `{"key":` + jsonString(goodTok) + `,"scopes":[]}`, true, ""},
		{"insufficient scope", `{"key":` + jsonString(goodTok) + `,"scopes":["users:read","users:write"]}`, false, "insufficient_scope"},
		{"expired", `{"key":` + jsonString(expiring) + `}`, false, "key_expired"},
		{"revoked", `{"key":` + jsonString(revoked) + `}`, false, "key_revoked"},
		{"garbage", `{"key":"hello"}`, false, "invalid_key"},
		{"empty", `{"key":""}`, false, "invalid_key"},
		{"control characters", `{"key":"ak_\u0000\n"}`, false, "invalid_key"},
		{"wrong secret", `{"key":` + jsonString(wrongSecret) + `}`, false, "invalid_key"},
		{"huge", `{"key":"` + strings.Repeat("a", 100_000) + `"}`, false, "invalid_key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: tc.body})
			mustStatus(t, r, http.StatusOK, tc.name)
			var a verifyAnswer
			r.json(t, &a)
			if a.Valid != tc.valid || a.Code != tc.code {
				t.Errorf("got valid=%v code=%q, want valid=%v code=%q", a.Valid, a.Code, tc.valid, tc.code)
			}
			if tc.valid && (a.Key == nil || a.Key.ID != good.ID || a.Key.Name != "good") {
				t.Errorf("valid answer without the key: %s", r.body)
			}
			if !tc.valid && (a.Key != nil || !strings.Contains(string(r.body), `"key":null`)) {
				t.Errorf("invalid answer with a key: %s", r.body)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
			}
		})
	}
}

// TestStoreDown closes the store under a running server: readiness and
// verification answer 503, never a grant.
func TestStoreDown(t *testing.T) {
	f := newFixture(t, options{http: true})
	k := f.create(t, `{"name":"x"}`)
	mustStatus(t, f.do(t, req{method: "GET", path: "/readyz"}), http.StatusOK, "readyz")
	f.store.Close()

	r := f.do(t, req{method: "GET", path: "/readyz"})
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "readyz")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK, "healthz")
	r = f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: `{"key":` + jsonString(k.Token) + `}`})
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "verify")
	if strings.Contains(string(r.body), `"valid":true`) || r.header.Get("Retry-After") == "" {
		t.Errorf("verify with the store down: %v %s", r.header, r.body)
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/keys", token: f.admin}), http.StatusServiceUnavailable, "unavailable", "list")
	if logs := f.logs.String(); strings.Contains(logs, k.Token) || strings.Contains(logs, f.admin) {
		t.Errorf("logs hold a key:\n%s", logs)
	}
}

// TestStoreDownKeyInPath pastes a key into the path while the store is
// down: neither the middleware's 503 refusal record nor the request record
// may hold it.
func TestStoreDownKeyInPath(t *testing.T) {
	f := newFixture(t, options{http: true})
	k := f.create(t, `{"name":"pasted"}`)
	f.store.Close()
	for _, path := range []string{"/v1/keys/" + k.Token, "/v1/keys/" + k.Token + "/usage", "/v1/whoami/" + k.Token} {
		f.do(t, req{method: "GET", path: path, token: f.admin})
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/keys/" + k.Token, token: f.admin}), http.StatusServiceUnavailable, "unavailable", "get")
	logs := f.logs.String()
	for _, secret := range []string{k.Token, apikeytest.SecretOf(k.Token), apikeytest.SecretOf(k.Token)[:16], f.admin, apikeytest.SecretOf(f.admin)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	if !strings.Contains(logs, `msg="apikey: request refused" outcome=unavailable`) || !strings.Contains(logs, "path=/v1/keys/ak_"+k.ID+"_… ") {
		t.Errorf("no refusal record with the redacted path:\n%s", logs)
	}
}

// TestVerifyHandlerStoreDown reaches the verify handler's own 503: the
// caller authenticates, then the store fails on the key being checked.
func TestVerifyHandlerStoreDown(t *testing.T) {
	var f *fixture
	f = newFixture(t, options{cfg: apikey.Config{Usable: func(ctx context.Context, k *apikey.Key) error {
		if k.Name == "unlucky" {
			return apikey.ErrUnavailable
		}
		return nil
	}}})
	_, tok, _ := f.m.Create(context.Background(), apikey.CreateParams{Name: "unlucky"})
	r := f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: `{"key":` + jsonString(tok) + `}`})
	wantProblem(t, r, http.StatusServiceUnavailable, "unavailable", "verify")
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}

// TestPanicRecovered checks the last resort: a panic below the handler
// (here in the Manager's Usable hook) is a logged 500 problem.
func TestPanicRecovered(t *testing.T) {
	f := newFixture(t, options{http: true, cfg: apikey.Config{Usable: func(ctx context.Context, k *apikey.Key) error {
		if k.Name == "boom" {
			panic("boom")
		}
		return nil
	}}})
	_, tok, _ := f.m.Create(context.Background(), apikey.CreateParams{Name: "boom"})
	r := f.do(t, req{method: "GET", path: "/v1/whoami", token: tok})
	p := wantProblem(t, r, http.StatusInternalServerError, "internal_error", "panic")
	if strings.Contains(p.Detail, "boom") {
		t.Errorf("the panic value reached the client: %q", p.Detail)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "panic serving request") || !strings.Contains(logs, "status=500") {
		t.Errorf("panic not logged:\n%s", logs)
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK, "healthz after a panic")
}

// TestRequestLog checks the one record per request: method, path, status,
// duration, key id; never a key, a query or a body.
func TestRequestLog(t *testing.T) {
	f := newFixture(t, options{http: true})
	k := f.create(t, `{"name":"secret-name"}`)
	f.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token})
	f.do(t, req{method: "GET", path: "/v1/keys?search=" + k.Token, token: f.admin})
	f.do(t, req{method: "GET", path: "/v1/keys/" + k.Token, token: f.admin})
	f.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token + "x"})
	f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: `{"key":` + jsonString(k.Token) + `}`})
	logs := f.logs.String()
	for _, secret := range []string{k.Token, apikeytest.SecretOf(k.Token), f.admin, apikeytest.SecretOf(f.admin), f.verify, apikeytest.SecretOf(f.verify), "secret-name"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q:\n%s", secret, logs)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs), "\n")
	if len(lines) != 6 {
		t.Errorf("%d log lines for 6 requests:\n%s", len(lines), logs)
	}
	want := `msg="apikey: request" method=GET path=/v1/whoami status=200 duration=`
	if !strings.Contains(lines[1], want) || !strings.HasSuffix(lines[1], "key_id="+k.ID) {
		t.Errorf("whoami record %q, want %q ... key_id=%s", lines[1], want, k.ID)
	}
	if !strings.Contains(lines[3], "path=/v1/keys/ak_"+k.ID+"_… ") {
		t.Errorf("a key in the path is not cut in %q", lines[3])
	}
	if !strings.Contains(lines[4], "status=401") || !strings.Contains(lines[4], "code=invalid_key") {
		t.Errorf("refusal record %q", lines[4])
	}
}

package server_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// netKey is the JSON of the new fields of a key.
type netKey struct {
	ID               string   `json:"id"`
	Token            string   `json:"key"`
	Environment      string   `json:"environment"`
	AllowedCIDRs     []string `json:"allowed_cidrs"`
	InactivityExpiry string   `json:"inactivity_expiry"`
}

// TestNetEnvJSON creates, reads, patches and lists keys with an
// environment, an allowlist and an inactivity expiry over HTTP, and checks
// the precise refusals of bad values.
func TestNetEnvJSON(t *testing.T) {
	f := newFixture(t, options{http: true})
	r := f.do(t, req{method: "POST", path: "/v1/keys", token: f.admin,
		body: `{"name":"ci","environment":"test","allowed_cidrs":["203.0.113.7/24","2001:db8::1"],"inactivity_expiry":"90d"}`})
	mustStatus(t, r, http.StatusCreated, "create")
	var k netKey
	r.json(t, &k)
	if !strings.HasPrefix(k.Token, "ak_test_"+k.ID+"_") || k.Environment != "test" ||
		!slices.Equal(k.AllowedCIDRs, []string{"203.0.113.0/24", "2001:db8::1/128"}) || k.InactivityExpiry != "90d" {
		t.Fatalf("created %+v", k)
	}
	r = f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID, token: f.admin})
	var got netKey
	r.json(t, &got)
	if got.Environment != "test" || !slices.Equal(got.AllowedCIDRs, k.AllowedCIDRs) || got.InactivityExpiry != "90d" {
		t.Errorf("read back %+v", got)
	}
	plain := f.create(t, `{"name":"plain"}`)
	r = f.do(t, req{method: "GET", path: "/v1/keys/" + plain.ID, token: f.admin})
	if !strings.Contains(string(r.body), `"environment":"live"`) || !strings.Contains(string(r.body), `"allowed_cidrs":[]`) ||
		strings.Contains(string(r.body), "inactivity_expiry") {
		t.Errorf("a plain key reads %s", r.body)
	}

	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{"allowed_cidrs":["10.0.0.0/8"],"inactivity_expiry":"never"}`})
	mustStatus(t, r, http.StatusOK, "patch")
	r.json(t, &got)
	if !slices.Equal(got.AllowedCIDRs, []string{"10.0.0.0/8"}) || got.InactivityExpiry != "never" {
		t.Errorf("patched %+v", got)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{"allowed_cidrs":[],"inactivity_expiry":"0"}`})
	mustStatus(t, r, http.StatusOK, "patch back")
	got = netKey{}
	r.json(t, &got)
	if len(got.AllowedCIDRs) != 0 || got.InactivityExpiry != "" {
		t.Errorf("patched back %+v", got)
	}

	for _, c := range []struct {
		method, path, body string
		field, detail      string
	}{
		{"POST", "/v1/keys", `{"name":"x","allowed_cidrs":["10.0.0.0/8","10.0.0.0/33"]}`, "allowed_cidrs", `entry 2 "10.0.0.0/33": bad prefix length /33`},
		{"POST", "/v1/keys", `{"name":"x","allowed_cidrs":["example.com"]}`, "allowed_cidrs", "not an IP address or CIDR range"},
		{"POST", "/v1/keys", `{"name":"x","environment":"prod"}`, "environment", `must be live or test, got "prod"`},
		{"POST", "/v1/keys", `{"name":"x","inactivity_expiry":"5m"}`, "inactivity_expiry", "must be between 1h and 36500d"},
		{"POST", "/v1/keys", `{"name":"x","inactivity_expiry":"soon"}`, "inactivity_expiry", "want a duration like 90d"},
		{"PATCH", "/v1/keys/" + k.ID, `{"environment":"live"}`, "environment", "cannot be changed"},
		{"PATCH", "/v1/keys/" + k.ID, `{"allowed_cidrs":null}`, "allowed_cidrs", "send [] to remove the allowlist"},
		{"PATCH", "/v1/keys/" + k.ID, `{"allowed_cidrs":["1.2.3.4/99"]}`, "allowed_cidrs", "bad prefix length /99"},
		{"GET", "/v1/keys?environment=prod", "", "environment", "must be live or test"},
	} {
		r := f.do(t, req{method: c.method, path: c.path, token: f.admin, body: c.body})
		p := wantProblem(t, r, http.StatusBadRequest, "invalid_input", c.body)
		if p.Field != c.field || !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s %s %s: field %q detail %q, want %q containing %q", c.method, c.path, c.body, p.Field, p.Detail, c.field, c.detail)
		}
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = "10.0.0.1"
	}
	b, _ := json.Marshal(map[string]any{"name": "x", "allowed_cidrs": many})
	p := wantProblem(t, f.do(t, req{method: "POST", path: "/v1/keys", token: f.admin, body: string(b)}), 400, "invalid_input", "101 ranges")
	if !strings.Contains(p.Detail, "at most 100 ranges, got 101") {
		t.Errorf("101 ranges: %q", p.Detail)
	}

	r = f.do(t, req{method: "GET", path: "/v1/keys?environment=test", token: f.admin})
	var page struct {
		Keys []netKey `json:"keys"`
	}
	r.json(t, &page)
	if len(page.Keys) != 1 || page.Keys[0].ID != k.ID {
		t.Errorf("list environment=test: %+v", page.Keys)
	}

	// The audit log records the changes.
	r = f.do(t, req{method: "GET", path: "/v1/events?key_id=" + k.ID + "&type=key.updated", token: f.admin})
	if !strings.Contains(string(r.body), `"allowed_cidrs":{"before":["203.0.113.0/24","2001:db8::1/128"],"after":["10.0.0.0/8"]}`) {
		t.Errorf("events: %s", r.body)
	}
}

// TestVerifyNetEnv: POST /v1/verify with environment, client_ip and
// defer_allowlist.
func TestVerifyNetEnv(t *testing.T) {
	f := newFixture(t, options{http: true})
	fenced := f.create(t, `{"name":"fenced","allowed_cidrs":["203.0.113.0/24","2001:db8::/32"]}`)
	test := f.create(t, `{"name":"test","environment":"test"}`)
	verify := func(body string) (int, string, string) {
		r := f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: body})
		var v struct {
			Valid bool   `json:"valid"`
			Code  string `json:"code"`
		}
		if r.status == 200 {
			r.json(t, &v)
			return 200, v.Code, ""
		}
		p := r.problem(t)
		return r.status, p.Code, p.Detail
	}
	key := func(token string) string { return `"key":` + jsonString(token) }
	for _, c := range []struct {
		body   string
		status int
		code   string
	}{
		{`{` + key(fenced.Token) + `,"client_ip":"203.0.113.9"}`, 200, ""},
		{`{` + key(fenced.Token) + `,"client_ip":"2001:db8::42"}`, 200, ""},
		{`{` + key(fenced.Token) + `,"client_ip":"198.51.100.1"}`, 200, "ip_not_allowed"},
		{`{` + key(fenced.Token) + `}`, 200, "ip_not_allowed"},
		{`{` + key(fenced.Token) + `,"defer_allowlist":true}`, 200, ""},
		{`{` + key(fenced.Token) + `,"client_ip":"203.0.113.9","environment":"test"}`, 200, "wrong_environment"},
		{`{` + key(test.Token) + `,"environment":"test"}`, 200, ""},
		{`{` + key(test.Token) + `,"environment":"live"}`, 200, "wrong_environment"},
		{`{` + key(test.Token) + `,"client_ip":"1.2.3.4:80"}`, 400, "invalid_input"},
		{`{` + key(test.Token) + `,"client_ip":"fe80::1%eth0"}`, 400, "invalid_input"},
		{`{` + key(test.Token) + `,"environment":"prod"}`, 400, "invalid_input"},
		{`{` + key(test.Token) + `,"client_ip":"1.2.3.4","defer_allowlist":true}`, 400, "invalid_input"},
	} {
		status, code, detail := verify(c.body)
		if status != c.status || code != c.code {
			t.Errorf("verify %s: %d %q %s, want %d %q", c.body, status, code, detail, c.status, c.code)
		}
	}

	// The Go client: Verify leaves the allowlist to its caller; Check
	// sends the client address.
	s := &service{fixture: f}
	c := s.client(t, f.verify)
	ctx := t.Context()
	if k, err := c.Verify(ctx, fenced.Token); err != nil || len(k.AllowedCIDRs) != 2 {
		t.Errorf("client Verify(fenced) = %v, %v", k, err)
	}
	if _, err := c.Check(ctx, fenced.Token, apikey.CheckOptions{ClientAddr: netip.MustParseAddr("198.51.100.1")}); !errors.Is(err, apikey.ErrIPNotAllowed) {
		t.Errorf("client Check from outside = %v, want ErrIPNotAllowed", err)
	}
	if _, err := c.Check(ctx, fenced.Token, apikey.CheckOptions{ClientAddr: netip.MustParseAddr("203.0.113.1")}); err != nil {
		t.Errorf("client Check from inside = %v", err)
	}
	if _, err := c.Check(ctx, test.Token, apikey.CheckOptions{Environment: apikey.EnvLive}); !errors.Is(err, apikey.ErrWrongEnvironment) {
		t.Errorf("client Check(test key, live) = %v, want ErrWrongEnvironment", err)
	}
	// Under apikeyhttp, the client's key is held against the request's
	// address: 127.0.0.1 is outside the allowlist.
	mw, err := apikeyhttp.New(c, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptestServe(mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})), fenced.Token)
	if rec != http.StatusForbidden {
		t.Errorf("apikeyhttp over the client, fenced key from 192.0.2.1: %d, want 403", rec)
	}

	// The client's Create, Update and List carry the fields.
	ac := s.client(t, f.admin)
	cidrs, _ := apikey.ParseCIDRs([]string{"10.0.0.0/8"})
	k, tok, err := ac.Create(ctx, apikey.CreateParams{Name: "via client", Environment: apikey.EnvTest, AllowedCIDRs: cidrs, InactivityExpiry: 30 * 24 * time.Hour})
	if err != nil || !strings.HasPrefix(tok, "ak_test_") || k.Environment != apikey.EnvTest || !slices.Equal(k.AllowedCIDRs, cidrs) || k.InactivityExpiry != apikey.Inactivity(30*24*time.Hour) {
		t.Fatalf("client Create = %+v, %v", k, err)
	}
	none := time.Duration(0)
	empty := []netip.Prefix{}
	if k, err := ac.Update(ctx, k.ID, apikey.KeyUpdate{AllowedCIDRs: &empty, InactivityExpiry: &none}); err != nil || len(k.AllowedCIDRs) != 0 || k.InactivityExpiry != 0 {
		t.Errorf("client Update = %+v, %v", k, err)
	}
	page, err := ac.List(ctx, apikey.KeyFilter{Environment: apikey.EnvTest})
	if err != nil || len(page.Keys) != 2 {
		t.Errorf("client List(test) = %v, %v", page, err)
	}
}

// httptestServe sends one request with token from httptest's default
// address, 192.0.2.1, and returns the status.
func httptestServe(h http.Handler, token string) int {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Api-Key "+token)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

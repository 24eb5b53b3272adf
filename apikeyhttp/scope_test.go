package apikeyhttp_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

func TestMain(m *testing.M) {
	// Tests that use the default logger must not flood the output.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}

func TestRequireScopes(t *testing.T) {
	v := &fakeVerifier{keys: map[string]*apikey.Key{
		"billing": {ID: "b", Scopes: []string{"billing:*"}},
		"reader":  {ID: "r", Scopes: []string{"billing:read", "users:read"}},
		"root":    {ID: "root", Scopes: []string{"*"}},
		"none":    {ID: "n"},
	}}
	tests := []struct {
		name   string
		guard  func(http.Handler) http.Handler
		key    string
		status int
	}{
		{"wildcard covers", apikeyhttp.RequireScopes("billing:read", "billing:invoices:write"), "billing", 200},
		{"wildcard does not cover the bare prefix", apikeyhttp.RequireScopes("billing"), "billing", 403},
		{"wildcard does not cover other areas", apikeyhttp.RequireScopes("billing:read", "users:read"), "billing", 403},
		{"exact scopes", apikeyhttp.RequireScopes("billing:read", "users:read"), "reader", 200},
		{"one missing", apikeyhttp.RequireScopes("billing:read", "billing:write"), "reader", 403},
		{"star covers everything", apikeyhttp.RequireScopes("anything", "billing:write"), "root", 200},
		{"no scopes requires only a key", apikeyhttp.RequireScopes(), "none", 200},
		{"no scopes granted", apikeyhttp.RequireScopes("users:read"), "none", 403},
		{"any: one of", apikeyhttp.RequireAnyScope("admin", "users:read"), "reader", 200},
		{"any: wildcard", apikeyhttp.RequireAnyScope("admin", "billing:export"), "billing", 200},
		{"any: none of", apikeyhttp.RequireAnyScope("admin", "users:write"), "reader", 403},
		{"any: empty list requires only a key", apikeyhttp.RequireAnyScope(), "none", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := mustNew(t, v, apikeyhttp.Config{}).Handler(tt.guard(echo))
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("X-Api-Key", tt.key)
			w := serve(h, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				return
			}
			p := problem(t, w)
			if p.Code != "insufficient_scope" {
				t.Errorf("code = %q, want insufficient_scope", p.Code)
			}
			if len(p.RequiredScopes) == 0 {
				t.Errorf("required_scopes missing from %s", w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != "" {
				t.Errorf("403 with WWW-Authenticate %q", got)
			}
		})
	}
}

func TestRequireScopesNamesScopes(t *testing.T) {
	v := newFake()
	h := mustNew(t, v, apikeyhttp.Config{}).Handler(apikeyhttp.RequireScopes("users:read", "users:write")(echo))
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Api-Key", "k2")
	w := serve(h, r)
	p := problem(t, w)
	if want := []string{"users:read", "users:write"}; !slices.Equal(p.RequiredScopes, want) {
		t.Errorf("required_scopes = %q, want %q", p.RequiredScopes, want)
	}
	if want := "The API key needs the scopes users:read, users:write."; p.Detail != want {
		t.Errorf("detail = %q, want %q", p.Detail, want)
	}
}

func TestRequireScopesWithoutKey(t *testing.T) {
	// Optional mode without a credential: the guard answers 401 with the
	// middleware's challenge.
	mw := mustNew(t, newFake(), apikeyhttp.Config{Optional: true, Realm: "r", Schemes: []string{"Api-Key"}})
	h := mw.Handler(apikeyhttp.RequireScopes("users:read")(echo))
	w := serve(h, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 {
		t.Fatalf("status = %d, want 401", w.Code)
	}
	if p := problem(t, w); p.Code != "missing_key" {
		t.Errorf("code = %q, want missing_key", p.Code)
	}
	if got, want := w.Header().Get("WWW-Authenticate"), `Api-Key realm="r"`; got != want {
		t.Errorf("WWW-Authenticate = %q, want %q", got, want)
	}

	// No middleware at all: still a 401 with a default challenge, never a
	// grant or a panic.
	w = serve(apikeyhttp.RequireScopes("users:read")(echo), httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Errorf("without middleware: status %d, challenge %q", w.Code, w.Header().Get("WWW-Authenticate"))
	}
}

func TestRequireScopesPanicsOnEmptyScope(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("RequireScopes(\"\") did not panic")
		}
	}()
	apikeyhttp.RequireScopes("users:read", "")
}

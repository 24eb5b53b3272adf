package apikeytest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
)

// NewRouter builds, for TestAdapter, a router of the framework under test
// whose middleware is the adapter made from v and cfg. It must serve:
//
//	/whoami    the middleware only
//	/invoices  the middleware, then the adapter's RequireScopes("billing:read")
//	/admin     the middleware, then RequireScopes("admin")
//	/any       the middleware, then RequireAnyScope("admin", "billing:write")
//	/none      the middleware, then RequireAnyScope("admin", "ops")
//	/headers   the middleware, answering "[" + the request's X-Api-Key header + "]"
//
// Every other handler answers 200 with "key <id>" for the verified key, or
// "anonymous" when the adapter's key lookup finds none. NewRouter reports a
// configuration error through t.
type NewRouter func(t *testing.T, v apikey.Verifier, cfg apikeyhttp.Config) http.Handler

// FakeVerifier knows a few tokens, one per outcome: ak_good (key
// 3fZ9q0LmA1bc of owner acme with the scope billing:*), ak_revoked,
// ak_expired and ak_down (the store is unavailable); any other token is
// invalid. It lets middleware tests cover every answer without a store.
var FakeVerifier = apikey.VerifierFunc(func(_ context.Context, token string) (*apikey.Key, error) {
	switch token {
	case "ak_good":
		return &apikey.Key{ID: "3fZ9q0LmA1bc", Owner: "acme", Scopes: []string{"billing:*"}}, nil
	case "ak_revoked":
		return nil, apikey.ErrRevoked
	case "ak_expired":
		return nil, apikey.ErrExpired
	case "ak_down":
		return nil, apikey.ErrUnavailable
	}
	return nil, apikey.ErrInvalidKey
})

// TestAdapter checks that a router adapter (gin, echo, ...) answers every
// request exactly as the net/http middleware of apikeyhttp does: the same
// statuses, problem codes and headers, scope guards, Optional mode,
// StripCredentials, and a real Manager behind it. Each adapter's tests call
// it with their NewRouter; framework-specific behaviour (aborting the
// chain, reading the key from the framework's context) stays in the
// adapter's own tests.
func TestAdapter(t *testing.T, newRouter NewRouter) {
	t.Run("Answers", func(t *testing.T) { testAdapterAnswers(t, newRouter) })
	t.Run("SameAsNetHTTP", func(t *testing.T) { testAdapterSameAsNetHTTP(t, newRouter) })
	t.Run("OptionalAndStrip", func(t *testing.T) { testAdapterOptionalAndStrip(t, newRouter) })
	t.Run("Manager", func(t *testing.T) { testAdapterManager(t, newRouter) })
}

// answer is what a router answered: its status, the problem code or the
// body of a success, and its headers.
type answer struct {
	status int
	code   string
	header http.Header
}

// get sends GET path with the header pairs to h.
func get(h http.Handler, path string, header ...string) answer {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := answer{status: w.Code, code: w.Body.String(), header: w.Header()}
	if w.Header().Get("Content-Type") == "application/problem+json" {
		var p struct {
			Code string `json:"code"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err == nil {
			res.code = p.Code
		}
	}
	return res
}

func testAdapterAnswers(t *testing.T, newRouter NewRouter) {
	r := newRouter(t, FakeVerifier, apikeyhttp.Config{})
	tests := []struct {
		name   string
		path   string
		header []string
		status int
		code   string
	}{
		{"valid bearer", "/whoami", []string{"Authorization", "Bearer ak_good"}, 200, "key 3fZ9q0LmA1bc"},
		{"valid api-key scheme", "/whoami", []string{"Authorization", "Api-Key ak_good"}, 200, "key 3fZ9q0LmA1bc"},
		{"valid x-api-key", "/whoami", []string{"X-Api-Key", "ak_good"}, 200, "key 3fZ9q0LmA1bc"},
		{"missing", "/whoami", nil, 401, "missing_key"},
		{"invalid", "/whoami", []string{"X-Api-Key", "ak_wrong"}, 401, "invalid_key"},
		{"revoked", "/whoami", []string{"X-Api-Key", "ak_revoked"}, 401, "key_revoked"},
		{"expired", "/whoami", []string{"X-Api-Key", "ak_expired"}, 401, "key_expired"},
		{"unavailable", "/whoami", []string{"X-Api-Key", "ak_down"}, 503, "unavailable"},
		{"conflicting", "/whoami", []string{"X-Api-Key", "ak_good", "Authorization", "Bearer ak_other"}, 400, "conflicting_credentials"},
		{"scope granted by wildcard", "/invoices", []string{"X-Api-Key", "ak_good"}, 200, "key 3fZ9q0LmA1bc"},
		{"scope denied", "/admin", []string{"X-Api-Key", "ak_good"}, 403, "insufficient_scope"},
		{"any scope granted", "/any", []string{"X-Api-Key", "ak_good"}, 200, "key 3fZ9q0LmA1bc"},
		{"any scope denied", "/none", []string{"X-Api-Key", "ak_good"}, 403, "insufficient_scope"},
		{"scope route without key", "/admin", nil, 401, "missing_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := get(r, tt.path, tt.header...)
			if got.status != tt.status || got.code != tt.code {
				t.Errorf("GET %s: got %d %q, want %d %q", tt.path, got.status, got.code, tt.status, tt.code)
			}
			switch got.status {
			case 401:
				if got.header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			case 503:
				if got.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			}
		})
	}
}

func testAdapterSameAsNetHTTP(t *testing.T, newRouter NewRouter) {
	r := newRouter(t, FakeVerifier, apikeyhttp.Config{})
	mw, err := apikeyhttp.New(FakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	plain := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, token := range []string{"", "ak_wrong", "ak_revoked", "ak_expired", "ak_down"} {
		reqA := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		reqP := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		if token != "" {
			reqA.Header.Set("Authorization", "Bearer "+token)
			reqP.Header.Set("Authorization", "Bearer "+token)
		}
		wA, wP := httptest.NewRecorder(), httptest.NewRecorder()
		r.ServeHTTP(wA, reqA)
		plain.ServeHTTP(wP, reqP)
		if wA.Code != wP.Code || wA.Body.String() != wP.Body.String() {
			t.Errorf("token %q: the adapter answered %d %s, net/http %d %s", token, wA.Code, wA.Body, wP.Code, wP.Body)
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After", "Cache-Control"} {
			if a, p := wA.Header().Get(h), wP.Header().Get(h); a != p {
				t.Errorf("token %q: %s: the adapter %q, net/http %q", token, h, a, p)
			}
		}
	}
}

func testAdapterOptionalAndStrip(t *testing.T, newRouter NewRouter) {
	r := newRouter(t, FakeVerifier, apikeyhttp.Config{Optional: true})
	if got := get(r, "/whoami"); got.status != 200 || got.code != "anonymous" {
		t.Errorf("no credential in Optional mode: got %d %q, want 200 anonymous", got.status, got.code)
	}
	if got := get(r, "/invoices"); got.status != 401 || got.code != "missing_key" {
		t.Errorf("no credential on a scoped route: got %d %q, want 401 missing_key", got.status, got.code)
	}
	s := newRouter(t, FakeVerifier, apikeyhttp.Config{StripCredentials: true})
	if got := get(s, "/headers", "X-Api-Key", "ak_good"); got.status != 200 || got.code != "[]" {
		t.Errorf("StripCredentials: got %d %q, want 200 []", got.status, got.code)
	}
	keep := newRouter(t, FakeVerifier, apikeyhttp.Config{})
	if got := get(keep, "/headers", "X-Api-Key", "ak_good"); got.status != 200 || got.code != "[ak_good]" {
		t.Errorf("without StripCredentials: got %d %q, want 200 [ak_good]", got.status, got.code)
	}
}

func testAdapterManager(t *testing.T, newRouter NewRouter) {
	ctx := context.Background()
	m, err := apikey.NewManager(memstore.New(), apikey.Config{UsageFlushInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "adapter test", Scopes: []string{"billing:read"}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, m, apikeyhttp.Config{})
	if got := get(r, "/invoices", "Authorization", "Bearer "+token); got.status != 200 || got.code != "key "+k.ID {
		t.Errorf("valid key: got %d %q, want 200 %q", got.status, got.code, "key "+k.ID)
	}
	if got := get(r, "/admin", "Authorization", "Bearer "+token); got.status != 403 || got.code != "insufficient_scope" {
		t.Errorf("scope denied: got %d %q, want 403 insufficient_scope", got.status, got.code)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := get(r, "/whoami", "Authorization", "Bearer "+token); got.status != 401 || got.code != "key_revoked" {
		t.Errorf("revoked key: got %d %q, want 401 key_revoked", got.status, got.code)
	}
}

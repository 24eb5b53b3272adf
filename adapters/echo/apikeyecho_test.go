package apikeyecho_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/go-apikey/apikey"
	apikeyecho "github.com/go-apikey/apikey/adapters/echo"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
)

// fakeVerifier knows a few tokens, one per outcome.
var fakeVerifier = apikey.VerifierFunc(func(_ context.Context, token string) (*apikey.Key, error) {
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

func whoami(c echo.Context) error {
	k, ok := apikeyecho.Key(c)
	if !ok {
		return c.String(http.StatusOK, "anonymous")
	}
	return c.String(http.StatusOK, "key "+k.ID)
}

// newServer protects /whoami with the middleware and the other routes with
// scope guards besides; the handlers answer with the key id.
func newServer(t *testing.T, v apikey.Verifier, cfg apikeyhttp.Config) *echo.Echo {
	t.Helper()
	auth, err := apikeyecho.Middleware(v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	api := e.Group("", auth)
	api.GET("/whoami", whoami)
	api.GET("/invoices", whoami, apikeyecho.RequireScopes("billing:read"))
	api.GET("/admin", whoami, apikeyecho.RequireScopes("admin"))
	api.GET("/any", whoami, apikeyecho.RequireAnyScope("admin", "billing:write"))
	api.GET("/none", whoami, apikeyecho.RequireAnyScope("admin", "ops"))
	return e
}

type result struct {
	status int
	code   string // problem code, or the body of a success
	header http.Header
}

func do(h http.Handler, path string, header ...string) result {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	res := result{status: w.Code, code: w.Body.String(), header: w.Header()}
	if w.Header().Get("Content-Type") == "application/problem+json" {
		var p apikeyhttp.Problem
		if err := json.Unmarshal(w.Body.Bytes(), &p); err == nil {
			res.code = p.Code
		}
	}
	return res
}

func TestMiddleware(t *testing.T) {
	e := newServer(t, fakeVerifier, apikeyhttp.Config{})
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
			got := do(e, tt.path, tt.header...)
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

// The adapter answers exactly as the net/http middleware it wraps.
func TestSameAnswersAsNetHTTP(t *testing.T) {
	e := newServer(t, fakeVerifier, apikeyhttp.Config{})
	mw, err := apikeyhttp.New(fakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	plain := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, token := range []string{"", "ak_wrong", "ak_revoked", "ak_expired", "ak_down"} {
		reqE := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		reqP := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		if token != "" {
			reqE.Header.Set("Authorization", "Bearer "+token)
			reqP.Header.Set("Authorization", "Bearer "+token)
		}
		wE, wP := httptest.NewRecorder(), httptest.NewRecorder()
		e.ServeHTTP(wE, reqE)
		plain.ServeHTTP(wP, reqP)
		if wE.Code != wP.Code || wE.Body.String() != wP.Body.String() {
			t.Errorf("token %q: echo answered %d %s, net/http %d %s", token, wE.Code, wE.Body, wP.Code, wP.Body)
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After", "Cache-Control"} {
			if g, p := wE.Header().Get(h), wP.Header().Get(h); g != p {
				t.Errorf("token %q: %s: echo %q, net/http %q", token, h, g, p)
			}
		}
	}
}

// A refused request stops the chain, and a handler's error still reaches
// echo's error handler after a grant.
func TestChain(t *testing.T) {
	auth, err := apikeyecho.Middleware(fakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	e := echo.New()
	e.Use(auth, func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error { ran = true; return next(c) }
	})
	e.GET("/x", func(c echo.Context) error { ran = true; return nil })
	e.GET("/teapot", func(c echo.Context) error {
		return echo.NewHTTPError(http.StatusTeapot, "short and stout")
	})
	if got := do(e, "/x", "X-Api-Key", "ak_wrong"); got.status != 401 {
		t.Fatalf("got %d, want 401", got.status)
	}
	if ran {
		t.Error("a handler after the refusing middleware ran")
	}
	if got := do(e, "/teapot", "X-Api-Key", "ak_good"); got.status != http.StatusTeapot {
		t.Errorf("handler error after a grant: got %d, want 418", got.status)
	}
}

func TestOptionalAndStrip(t *testing.T) {
	e := newServer(t, fakeVerifier, apikeyhttp.Config{Optional: true})
	if got := do(e, "/whoami"); got.status != 200 || got.code != "anonymous" {
		t.Errorf("no credential in Optional mode: got %d %q, want 200 anonymous", got.status, got.code)
	}
	if got := do(e, "/invoices"); got.status != 401 || got.code != "missing_key" {
		t.Errorf("no credential on a scoped route: got %d %q, want 401 missing_key", got.status, got.code)
	}

	auth, err := apikeyecho.Middleware(fakeVerifier, apikeyhttp.Config{StripCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	s := echo.New()
	s.GET("/h", func(c echo.Context) error {
		return c.String(http.StatusOK, "["+c.Request().Header.Get("X-Api-Key")+"]")
	}, auth)
	if got := do(s, "/h", "X-Api-Key", "ak_good"); got.status != 200 || got.code != "[]" {
		t.Errorf("StripCredentials: got %d %q, want 200 []", got.status, got.code)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := apikeyecho.Middleware(nil, apikeyhttp.Config{}); err == nil {
		t.Error("nil verifier: no error")
	}
	if _, err := apikeyecho.Middleware(fakeVerifier, apikeyhttp.Config{Headers: []string{"Authorization"}}); err == nil {
		t.Error("Authorization in Headers: no error")
	}
}

func TestKeyWithoutMiddleware(t *testing.T) {
	e := echo.New()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
	if _, ok := apikeyecho.Key(c); ok {
		t.Error("Key without middleware: ok")
	}
}

// The adapter over a real Manager (on the in-memory store).
func TestManager(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	m, err := apikey.NewManager(store, apikey.Config{})
	if err != nil {
		t.Fatal(err)
	}
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "echo test", Scopes: []string{"billing:read"}})
	if err != nil {
		t.Fatal(err)
	}
	e := newServer(t, m, apikeyhttp.Config{})
	if got := do(e, "/invoices", "Authorization", "Bearer "+token); got.status != 200 || got.code != "key "+k.ID {
		t.Errorf("valid key: got %d %q, want 200 %q", got.status, got.code, "key "+k.ID)
	}
	if got := do(e, "/admin", "Authorization", "Bearer "+token); got.status != 403 || got.code != "insufficient_scope" {
		t.Errorf("scope denied: got %d %q, want 403 insufficient_scope", got.status, got.code)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := do(e, "/whoami", "Authorization", "Bearer "+token); got.status != 401 || got.code != "key_revoked" {
		t.Errorf("revoked key: got %d %q, want 401 key_revoked", got.status, got.code)
	}
	if _, err := m.Verify(ctx, token); !errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Verify after revoke: got %v, want ErrRevoked", err)
	}
}

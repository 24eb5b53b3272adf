package apikeygin_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/go-apikey/apikey"
	apikeygin "github.com/go-apikey/apikey/adapters/gin"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
)

func init() { gin.SetMode(gin.TestMode) }

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

// newRouter protects /whoami with the middleware and /invoices with
// RequireScopes besides; both handlers answer with the key id.
func newRouter(t *testing.T, v apikey.Verifier, cfg apikeyhttp.Config) *gin.Engine {
	t.Helper()
	auth, err := apikeygin.Middleware(v, cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	whoami := func(c *gin.Context) {
		k, ok := apikeygin.Key(c)
		if !ok {
			c.String(http.StatusOK, "anonymous")
			return
		}
		c.String(http.StatusOK, "key "+k.ID)
	}
	api := r.Group("/", auth)
	api.GET("/whoami", whoami)
	api.GET("/invoices", apikeygin.RequireScopes("billing:read"), whoami)
	api.GET("/admin", apikeygin.RequireScopes("admin"), whoami)
	api.GET("/any", apikeygin.RequireAnyScope("admin", "billing:write"), whoami)
	return r
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
	r := newRouter(t, fakeVerifier, apikeyhttp.Config{})
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
		{"scope route without key", "/admin", nil, 401, "missing_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := do(r, tt.path, tt.header...)
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
	r := newRouter(t, fakeVerifier, apikeyhttp.Config{})
	mw, err := apikeyhttp.New(fakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	plain := mw.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, token := range []string{"", "ak_wrong", "ak_revoked", "ak_expired", "ak_down"} {
		var header []string
		if token != "" {
			header = []string{"Authorization", "Bearer " + token}
		}
		reqG := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		reqP := httptest.NewRequest(http.MethodGet, "/whoami", nil)
		for i := 0; i+1 < len(header); i += 2 {
			reqG.Header.Set(header[i], header[i+1])
			reqP.Header.Set(header[i], header[i+1])
		}
		wG, wP := httptest.NewRecorder(), httptest.NewRecorder()
		r.ServeHTTP(wG, reqG)
		plain.ServeHTTP(wP, reqP)
		if wG.Code != wP.Code || wG.Body.String() != wP.Body.String() {
			t.Errorf("token %q: gin answered %d %s, net/http %d %s", token, wG.Code, wG.Body, wP.Code, wP.Body)
		}
		for _, h := range []string{"Content-Type", "WWW-Authenticate", "Retry-After", "Cache-Control"} {
			if g, p := wG.Header().Get(h), wP.Header().Get(h); g != p {
				t.Errorf("token %q: %s: gin %q, net/http %q", token, h, g, p)
			}
		}
	}
}

// A refused request stops the chain: no later handler runs.
func TestRefusalAborts(t *testing.T) {
	auth, err := apikeygin.Middleware(fakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	r := gin.New()
	r.Use(auth, func(c *gin.Context) { ran = true; c.Next() })
	r.GET("/x", func(c *gin.Context) { ran = true })
	if got := do(r, "/x", "X-Api-Key", "ak_wrong"); got.status != 401 {
		t.Fatalf("got %d, want 401", got.status)
	}
	if ran {
		t.Error("a handler after the refusing middleware ran")
	}
}

func TestOptionalAndStrip(t *testing.T) {
	r := newRouter(t, fakeVerifier, apikeyhttp.Config{Optional: true})
	if got := do(r, "/whoami"); got.status != 200 || got.code != "anonymous" {
		t.Errorf("no credential in Optional mode: got %d %q, want 200 anonymous", got.status, got.code)
	}
	if got := do(r, "/invoices"); got.status != 401 || got.code != "missing_key" {
		t.Errorf("no credential on a scoped route: got %d %q, want 401 missing_key", got.status, got.code)
	}

	auth, err := apikeygin.Middleware(fakeVerifier, apikeyhttp.Config{StripCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	s := gin.New()
	s.GET("/h", auth, func(c *gin.Context) {
		c.String(http.StatusOK, "[%s]", c.GetHeader("X-Api-Key"))
	})
	if got := do(s, "/h", "X-Api-Key", "ak_good"); got.status != 200 || got.code != "[]" {
		t.Errorf("StripCredentials: got %d %q, want 200 []", got.status, got.code)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := apikeygin.Middleware(nil, apikeyhttp.Config{}); err == nil {
		t.Error("nil verifier: no error")
	}
	if _, err := apikeygin.Middleware(fakeVerifier, apikeyhttp.Config{Headers: []string{"Authorization"}}); err == nil {
		t.Error("Authorization in Headers: no error")
	}
}

func TestKeyWithoutMiddleware(t *testing.T) {
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	if _, ok := apikeygin.Key(c); ok {
		t.Error("Key without a request: ok")
	}
	c.Request = httptest.NewRequest(http.MethodGet, "/", nil)
	if _, ok := apikeygin.Key(c); ok {
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
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "gin test", Scopes: []string{"billing:read"}})
	if err != nil {
		t.Fatal(err)
	}
	r := newRouter(t, m, apikeyhttp.Config{})
	if got := do(r, "/invoices", "Authorization", "Bearer "+token); got.status != 200 || got.code != "key "+k.ID {
		t.Errorf("valid key: got %d %q, want 200 %q", got.status, got.code, "key "+k.ID)
	}
	if got := do(r, "/admin", "Authorization", "Bearer "+token); got.status != 403 || got.code != "insufficient_scope" {
		t.Errorf("scope denied: got %d %q, want 403 insufficient_scope", got.status, got.code)
	}
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := do(r, "/whoami", "Authorization", "Bearer "+token); got.status != 401 || got.code != "key_revoked" {
		t.Errorf("revoked key: got %d %q, want 401 key_revoked", got.status, got.code)
	}
}

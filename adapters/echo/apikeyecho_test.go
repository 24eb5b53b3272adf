package apikeyecho_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/go-apikey/apikey"
	apikeyecho "github.com/go-apikey/apikey/adapters/echo"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeytest"
)

func whoami(c echo.Context) error {
	k, ok := apikeyecho.Key(c)
	if !ok {
		return c.String(http.StatusOK, "anonymous")
	}
	return c.String(http.StatusOK, "key "+k.ID)
}

// newServer serves the routes that apikeytest.TestAdapter expects.
func newServer(t *testing.T, v apikey.Verifier, cfg apikeyhttp.Config) http.Handler {
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
	api.GET("/headers", func(c echo.Context) error {
		return c.String(http.StatusOK, "["+c.Request().Header.Get("X-Api-Key")+"]")
	})
	return e
}

// TestAdapter runs the suite that every router adapter passes.
func TestAdapter(t *testing.T) { apikeytest.TestAdapter(t, newServer) }

// do sends GET path with the header pairs and returns the status.
func do(h http.Handler, path string, header ...string) int {
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// A refused request stops the chain, and a handler's error still reaches
// echo's error handler after a grant.
func TestChain(t *testing.T) {
	auth, err := apikeyecho.Middleware(apikeytest.FakeVerifier, apikeyhttp.Config{})
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
	if got := do(e, "/x", "X-Api-Key", "ak_wrong"); got != 401 {
		t.Fatalf("got %d, want 401", got)
	}
	if ran {
		t.Error("a handler after the refusing middleware ran")
	}
	if got := do(e, "/teapot", "X-Api-Key", "ak_good"); got != http.StatusTeapot {
		t.Errorf("handler error after a grant: got %d, want 418", got)
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := apikeyecho.Middleware(nil, apikeyhttp.Config{}); err == nil {
		t.Error("nil verifier: no error")
	}
	if _, err := apikeyecho.Middleware(apikeytest.FakeVerifier, apikeyhttp.Config{Headers: []string{"Authorization"}}); err == nil {
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

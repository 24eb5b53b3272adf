package apikeygin_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/go-apikey/apikey"
	apikeygin "github.com/go-apikey/apikey/adapters/gin"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeytest"
)

func init() { gin.SetMode(gin.TestMode) }

// newRouter serves the routes that apikeytest.TestAdapter expects.
func newRouter(t *testing.T, v apikey.Verifier, cfg apikeyhttp.Config) http.Handler {
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
	api.GET("/none", apikeygin.RequireAnyScope("admin", "ops"), whoami)
	api.GET("/headers", func(c *gin.Context) {
		c.String(http.StatusOK, "[%s]", c.GetHeader("X-Api-Key"))
	})
	return r
}

// TestAdapter runs the suite that every router adapter passes.
func TestAdapter(t *testing.T) { apikeytest.TestAdapter(t, newRouter) }

// A refused request stops the chain: no later handler runs.
func TestRefusalAborts(t *testing.T) {
	auth, err := apikeygin.Middleware(apikeytest.FakeVerifier, apikeyhttp.Config{})
	if err != nil {
		t.Fatal(err)
	}
	ran := false
	r := gin.New()
	r.Use(auth, func(c *gin.Context) { ran = true; c.Next() })
	r.GET("/x", func(c *gin.Context) { ran = true })
	req := httptest.NewRequest(http.MethodGet, "/x", nil)
	req.Header.Set("X-Api-Key", "ak_wrong")
	w := httptest.NewRecorder()
	r.ServeHTTP(w, req)
	if w.Code != 401 {
		t.Fatalf("got %d, want 401", w.Code)
	}
	if ran {
		t.Error("a handler after the refusing middleware ran")
	}
}

func TestBadConfig(t *testing.T) {
	if _, err := apikeygin.Middleware(nil, apikeyhttp.Config{}); err == nil {
		t.Error("nil verifier: no error")
	}
	if _, err := apikeygin.Middleware(apikeytest.FakeVerifier, apikeyhttp.Config{Headers: []string{"Authorization"}}); err == nil {
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

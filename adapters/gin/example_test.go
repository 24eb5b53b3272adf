package apikeygin_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/gin-gonic/gin"

	"github.com/go-apikey/apikey"
	apikeygin "github.com/go-apikey/apikey/adapters/gin"
	"github.com/go-apikey/apikey/apikeyhttp"
)

func Example() {
	// In a real service the verifier is an *apikey.Manager or an
	// *apikeyclient.Client; this one knows a single key.
	verifier := apikey.VerifierFunc(func(_ context.Context, token string) (*apikey.Key, error) {
		if token == "ak_example" {
			return &apikey.Key{ID: "3fZ9q0LmA1bc", Owner: "acme", Scopes: []string{"billing:read"}}, nil
		}
		return nil, apikey.ErrInvalidKey
	})
	auth, err := apikeygin.Middleware(verifier, apikeyhttp.Config{})
	if err != nil {
		log.Fatal(err)
	}

	r := gin.New()
	api := r.Group("/api", auth)
	api.GET("/invoices", apikeygin.RequireScopes("billing:read"), func(c *gin.Context) {
		k, _ := apikeygin.Key(c)
		c.String(http.StatusOK, "invoices of %s\n", k.Owner)
	})
	api.GET("/admin", apikeygin.RequireScopes("admin"), func(c *gin.Context) {})

	for _, req := range []struct{ path, key string }{
		{"/api/invoices", "ak_example"},
		{"/api/invoices", ""},
		{"/api/admin", "ak_example"},
	} {
		r2 := httptest.NewRequest(http.MethodGet, req.path, nil)
		if req.key != "" {
			r2.Header.Set("Authorization", "Bearer "+req.key)
		}
		w := httptest.NewRecorder()
		r.ServeHTTP(w, r2)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 invoices of acme
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request carries no API key.","code":"missing_key"}
	// 403 {"type":"about:blank","title":"Forbidden","status":403,"detail":"The API key needs the scope admin.","code":"insufficient_scope","required_scopes":["admin"]}
}

package apikeyecho_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/labstack/echo/v4"

	"github.com/go-apikey/apikey"
	apikeyecho "github.com/go-apikey/apikey/adapters/echo"
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
	auth, err := apikeyecho.Middleware(verifier, apikeyhttp.Config{})
	if err != nil {
		log.Fatal(err)
	}

	e := echo.New()
	api := e.Group("/api", auth)
	api.GET("/invoices", func(c echo.Context) error {
		k, _ := apikeyecho.Key(c)
		return c.String(http.StatusOK, "invoices of "+k.Owner+"\n")
	}, apikeyecho.RequireScopes("billing:read"))
	api.GET("/admin", func(c echo.Context) error { return nil }, apikeyecho.RequireScopes("admin"))

	for _, req := range []struct{ path, key string }{
		{"/api/invoices", "ak_example"},
		{"/api/invoices", ""},
		{"/api/admin", "ak_example"},
	} {
		r := httptest.NewRequest(http.MethodGet, req.path, nil)
		if req.key != "" {
			r.Header.Set("Authorization", "Bearer "+req.key)
		}
		w := httptest.NewRecorder()
		e.ServeHTTP(w, r)
		fmt.Print(w.Code, " ", w.Body.String())
	}
	// Output:
	// 200 invoices of acme
	// 401 {"type":"about:blank","title":"Unauthorized","status":401,"detail":"The request carries no API key.","code":"missing_key"}
	// 403 {"type":"about:blank","title":"Forbidden","status":403,"detail":"The API key needs the scope admin.","code":"insufficient_scope","required_scopes":["admin"]}
}

// Package apikeyecho protects echo routes with API keys.
//
// It adapts the net/http middleware of package apikeyhttp, so requests are
// read, verified and refused exactly as there: the same credential
// sources, the same statuses and application/problem+json bodies
// (missing_key, invalid_key, key_expired, key_revoked, insufficient_scope,
// unavailable, ...), the same logs. Refusals are written directly, not
// returned to echo's HTTPErrorHandler. Any apikey.Verifier works: an
// *apikey.Manager, an *apikeyclient.Client for a remote apikey service, or
// a cache in front of either.
//
//	auth, err := apikeyecho.Middleware(manager, apikeyhttp.Config{})
//	e := echo.New()
//	api := e.Group("/api", auth)
//	api.GET("/invoices", listInvoices, apikeyecho.RequireScopes("billing:read"))
//
// Handlers find the verified key with Key(c). This package is a nested
// module so that echo never enters the dependencies of
// github.com/go-apikey/apikey.
package apikeyecho

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Middleware returns echo middleware that verifies the API key of each
// request with v, configured by cfg as apikeyhttp.New documents. A request
// with a verified key (or, with cfg.Optional, without any credential)
// continues to the next handler with the key in its context; any other
// request is answered by the apikeyhttp error writer and goes no further.
// The error names the first bad setting in cfg. The middleware is safe for
// concurrent use.
func Middleware(v apikey.Verifier, cfg apikeyhttp.Config) (echo.MiddlewareFunc, error) {
	mw, err := apikeyhttp.New(v, cfg)
	if err != nil {
		return nil, err
	}
	return wrap(mw.Handler), nil
}

// RequireScopes returns echo middleware that lets a request through only
// if the key verified upstream (by Middleware) grants every one of scopes,
// as apikeyhttp.RequireScopes does: 403 insufficient_scope if a scope is
// missing, 401 missing_key if there is no key. It panics if a scope is
// empty.
func RequireScopes(scopes ...string) echo.MiddlewareFunc {
	return wrap(apikeyhttp.RequireScopes(scopes...))
}

// RequireAnyScope is like RequireScopes but lets a request through if the
// key grants at least one of scopes.
func RequireAnyScope(scopes ...string) echo.MiddlewareFunc {
	return wrap(apikeyhttp.RequireAnyScope(scopes...))
}

// Key returns the key verified for the request of c, and whether there is
// one (there is none in Optional mode without a credential, or without
// Middleware upstream).
func Key(c echo.Context) (*apikey.Key, bool) {
	r := c.Request()
	if r == nil {
		return nil, false
	}
	return apikey.FromContext(r.Context())
}

// wrap turns net/http middleware into echo middleware: the middleware runs
// around a handler that only records the request it was given. If it was
// reached, that request (whose context now carries the key) replaces the
// context's request and next runs; otherwise the middleware has written
// its refusal. Unlike echo.WrapMiddleware it keeps c.Response(), with any
// hooks registered on it.
func wrap(mw func(http.Handler) http.Handler) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			var reached *http.Request
			mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				reached = r
			})).ServeHTTP(c.Response(), c.Request())
			if reached == nil {
				return nil
			}
			c.SetRequest(reached)
			return next(c)
		}
	}
}

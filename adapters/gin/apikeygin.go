// Package apikeygin protects gin routes with API keys.
//
// It adapts the net/http middleware of package apikeyhttp, so requests are
// read, verified and refused exactly as there: the same credential
// sources, the same statuses and application/problem+json bodies
// (missing_key, invalid_key, key_expired, key_revoked, insufficient_scope,
// unavailable, ...), the same logs. Any apikey.Verifier works: an
// *apikey.Manager, an *apikeyclient.Client for a remote apikey service, or
// a cache in front of either.
//
//	auth, err := apikeygin.Middleware(manager, apikeyhttp.Config{})
//	r := gin.New()
//	api := r.Group("/api", auth)
//	api.GET("/invoices", apikeygin.RequireScopes("billing:read"), listInvoices)
//
// Handlers find the verified key with Key(c). This package is a nested
// module so that gin never enters the dependencies of
// github.com/go-apikey/apikey.
package apikeygin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Middleware returns gin middleware that verifies the API key of each
// request with v, configured by cfg as apikeyhttp.New documents. A request
// with a verified key (or, with cfg.Optional, without any credential)
// continues to the next handlers with the key in its context; any other
// request is answered by the apikeyhttp error writer and aborted. The error
// names the first bad setting in cfg. The middleware is safe for concurrent
// use.
func Middleware(v apikey.Verifier, cfg apikeyhttp.Config) (gin.HandlerFunc, error) {
	mw, err := apikeyhttp.New(v, cfg)
	if err != nil {
		return nil, err
	}
	return wrap(mw.Handler), nil
}

// RequireScopes returns gin middleware that lets a request through only if
// the key verified upstream (by Middleware) grants every one of scopes, as
// apikeyhttp.RequireScopes does: 403 insufficient_scope if a scope is
// missing, 401 missing_key if there is no key. It panics if a scope is
// empty.
func RequireScopes(scopes ...string) gin.HandlerFunc {
	return wrap(apikeyhttp.RequireScopes(scopes...))
}

// RequireAnyScope is like RequireScopes but lets a request through if the
// key grants at least one of scopes.
func RequireAnyScope(scopes ...string) gin.HandlerFunc {
	return wrap(apikeyhttp.RequireAnyScope(scopes...))
}

// Key returns the key verified for the request of c, and whether there is
// one (there is none in Optional mode without a credential, or without
// Middleware upstream).
func Key(c *gin.Context) (*apikey.Key, bool) {
	if c.Request == nil {
		return nil, false
	}
	return apikey.FromContext(c.Request.Context())
}

// wrap turns net/http middleware into a gin handler: the middleware runs
// around a handler that only records the request it was given. If it was
// reached, the request (whose context now carries the key) replaces
// c.Request and the chain goes on; otherwise the middleware has written
// its refusal and the chain is aborted.
func wrap(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		var reached *http.Request
		mw(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			reached = r
		})).ServeHTTP(c.Writer, c.Request)
		if reached == nil {
			c.Abort()
			return
		}
		c.Request = reached
		c.Next()
	}
}

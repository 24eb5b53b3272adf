// Package apikeyclient is a Go client for the apikey service ("apikey
// serve"): it verifies keys remotely and drives the management API.
//
// A Client is an apikey.Verifier, so the apikeyhttp middleware (and the gin
// and echo adapters) can protect a Go service against a remote apikey
// service exactly as against a local *apikey.Manager:
//
//	c, err := apikeyclient.New("https://keys.example.com", os.Getenv("APIKEY_TOKEN"))
//	mw, err := apikeyhttp.New(c, apikeyhttp.Config{})
//	http.Handle("/", mw.Handler(app))
//
// The management methods (Create, Get, List, Update, Revoke, Roll, Delete,
// Events, Usage, Whoami) mirror those of *apikey.Manager and take the same
// argument types; Health, Ready and OpenAPI read the service's probes and
// its API document. Every route of the API has a method, except POST
// /v1/leaks (called by GitHub's secret scanning, signed with GitHub's
// keys) and GET /metrics (scraped by Prometheus). The client's token needs the scope apikey:admin for them;
// apikey:verify suffices for Verify and VerifyScopes.
//
// # Errors
//
// Problem answers come back as the errors of package apikey, so the same
// errors.Is tests work against a Manager and against the service: not_found
// is apikey.ErrNotFound, invalid_input an *apikey.ValidationError naming
// the field, and so on (see Error). A transport failure, a 5xx answer or an
// answer that does not decode matches apikey.ErrUnavailable and never
// yields a key. No error contains the client's token or a verified key.
//
// Verify keeps to the apikey.Verifier contract: its errors match
// apikey.ErrInvalidKey, apikey.ErrExpired, apikey.ErrRevoked or, when the
// service could not or would not decide, apikey.ErrUnavailable, which the
// middleware answers with 503.
//
// A Client caches nothing: each Verify is one round trip.
package apikeyclient

// Package apikeyhttp protects net/http handlers with API keys.
//
// A Middleware, built by New from any apikey.Verifier (an *apikey.Manager,
// a remote client, a cache) and a Config, reads the key from the request,
// verifies it once and puts the verified *apikey.Key in the request
// context, where handlers find it with apikey.FromContext. Its Handler
// method has the standard func(http.Handler) http.Handler shape, so it
// works with http.ServeMux and with any router built on net/http (chi,
// gorilla/mux, ...). RequireScopes and RequireAnyScope guard single routes
// by scope.
//
// # Credentials
//
// By default a key is read from
//
//	Authorization: Api-Key <key>
//	Authorization: Bearer <key>
//	X-Api-Key: <key>
//
// Scheme words are matched case-insensitively as whole words ("XApi-Key" is
// not "Api-Key"); any run of spaces or tabs may separate the scheme from
// the key, and surrounding spaces and tabs are ignored. An Authorization
// header with another scheme (Basic, ...) is not an API key credential and
// is left for other authenticators. Custom schemes and header names, a
// cookie and (off by default) a query parameter can be configured.
//
// Empty values count as absent. The same key presented in several places
// (or in a repeated header) counts once; two different keys are refused with
// 400 conflicting_credentials, never silently picked from. A key longer than
// apikey.MaxTokenLength or containing anything but visible ASCII (control
// characters, spaces, non-ASCII bytes) is refused as invalid_key before the
// verifier is called.
//
// # Responses
//
// Refusals are RFC 9457 application/problem+json bodies with Cache-Control:
// no-store and a machine-readable code:
//
//	401 missing_key, invalid_key, key_expired, key_revoked  (with WWW-Authenticate)
//	400 conflicting_credentials, bad_forwarded_for
//	403 insufficient_scope, forbidden, wrong_environment, ip_not_allowed
//	503 unavailable                                          (with Retry-After)
//
// A verifier that cannot decide (apikey.ErrUnavailable, or any unexpected
// error) yields 503: never a grant, never a 500, never internal error text.
// One table maps errors to statuses, codes and detail sentences: Status
// reads it, ProblemOf, WriteError and Problem.Write let other handlers (such
// as the apikey service) answer in the same format, ErrorFor maps an answer
// back to its sentinel error for clients, and Config.ErrorWriter replaces
// the writer. The codes are apikey.Code values: those of package apikey
// and this package's CodeMissingKey, CodeConflictingCredentials,
// CodeInsufficientScope, CodeForbidden and CodeBadForwardedFor.
//
// # Environments and network allowlists
//
// Config.Environment makes the routes accept the keys of one environment
// only (apikey.EnvLive or apikey.EnvTest): another key is refused with 403
// wrong_environment. A key with a network allowlist (apikey.Key.AllowedCIDRs)
// is accepted only from its ranges, else 403 ip_not_allowed: the client is
// the request's RemoteAddr, or, when that is one of Config.TrustedProxies,
// the right-most X-Forwarded-For entry that is not (see ClientAddr). Both
// checks run right after verification, before scopes, Authorize, limits
// and credits; the client address is worked out only for keys that have an
// allowlist.
//
// # Logging
//
// Each request yields one log/slog record naming the outcome, the
// credential source and the key id, never the key.
package apikeyhttp

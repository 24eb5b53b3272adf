// Package server is the HTTP service behind "apikey serve": a JSON API over
// an *apikey.Manager that issues, lists, changes, revokes, rolls and
// deletes keys, and verifies keys on behalf of backends written in other
// languages.
//
// # Routes
//
// Every /v1 route except the OpenAPI document and the leak reports is
// protected by apikeyhttp middleware over the same Manager:
//
//	POST   /v1/keys              apikey:admin   create; 201 with the plaintext as "key", once
//	GET    /v1/keys              apikey:admin   list (owner, state, search, limit, cursor)
//	GET    /v1/keys/{id}         apikey:admin   show
//	PATCH  /v1/keys/{id}         apikey:admin   change name, scopes, metadata, expiry
//	POST   /v1/keys/{id}/revoke  apikey:admin   revoke (idempotent)
//	POST   /v1/keys/{id}/roll    apikey:admin   new secret, same id; the plaintext as "key", once
//	GET    /v1/keys/{id}/usage   apikey:admin   verification counts by outcome (from, to, granularity)
//	DELETE /v1/keys/{id}         apikey:admin   delete for good; 204
//	POST   /v1/verify            apikey:admin or apikey:verify
//	GET    /v1/whoami            any valid key  the calling key's record
//	GET    /v1/events            apikey:admin   the audit log (key_id, actor, type, limit, cursor)
//	POST   /v1/webhooks          apikey:admin   register an endpoint (url, events); 201 with its "secret", once
//	GET    /v1/webhooks          apikey:admin   the endpoints, never their secrets
//	GET    /v1/webhooks/{id}     apikey:admin   show; PATCH changes url, events, enabled, rotate_secret; DELETE; 204
//	GET    /v1/webhooks/{id}/deliveries                    apikey:admin  newest first (state, limit, cursor)
//	GET    /v1/webhooks/{id}/deliveries/{delivery}         apikey:admin  one delivery and its attempts
//	POST   /v1/webhooks/{id}/deliveries/{delivery}/resend  apikey:admin  queue it again, same webhook-id
//	POST   /v1/leaks             signed         a leak report of GitHub's secret scanning (Config.LeakKeys)
//	GET    /v1/openapi.json      public         the OpenAPI 3.1 document
//	GET    /healthz              public         the process is up
//	GET    /readyz               public         the store answers
//	GET    /metrics              public         Prometheus metrics (Config.Metrics; 404 without)
//
// Routes lists the same table; it is the one place routes are declared.
//
// # Errors
//
// Every error is an RFC 9457 application/problem+json body with a
// machine-readable "code" (see the Code constants here and in apikeyhttp),
// and, for bad input, a "field" member naming the offending field. Client
// input never yields a 5xx: 503 means the store could not be reached (with
// Retry-After) and 500 only a recovered panic. Internal error text is logged,
// never sent.
//
// # Logs
//
// One log/slog record per request names the method, the path (with
// anything shaped like a key cut to its id), the status, the duration, the
// problem code and the id of the calling key. Tokens, query strings and
// bodies are never logged.
package server

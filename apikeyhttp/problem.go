package apikeyhttp

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/go-apikey/apikey"
)

// Errors produced by the middleware itself. Together with the sentinel
// errors of package apikey they are what an ErrorWriter receives; Status
// maps all of them.
var (
	// ErrMissingKey reports a request that presents no API key in any
	// configured source. Empty values count as absent.
	ErrMissingKey = errors.New("apikeyhttp: missing key")

	// ErrConflictingCredentials reports a request that presents two
	// different API keys, for example in Authorization and X-Api-Key. The
	// middleware refuses it rather than picking one.
	ErrConflictingCredentials = errors.New("apikeyhttp: conflicting credentials")

	// ErrInsufficientScope reports a valid key that lacks a required scope.
	// The error is usually a *ScopeError that names the scopes.
	ErrInsufficientScope = errors.New("apikeyhttp: insufficient scope")

	// ErrForbidden reports a valid key that the Config.Authorize hook
	// refused. The hook's own error is wrapped beside it.
	ErrForbidden = errors.New("apikeyhttp: forbidden")
)

// ScopeError reports the scopes a request needed and the key did not have.
// It matches ErrInsufficientScope with errors.Is.
type ScopeError struct {
	// Required are the scopes the route asked for.
	Required []string
	// Any is true when one of Required sufficed (RequireAnyScope) and false
	// when all of them were needed (RequireScopes).
	Any bool
}

// Error implements error.
func (e *ScopeError) Error() string {
	if e.Any {
		return "apikeyhttp: insufficient scope: need one of " + strings.Join(e.Required, ", ")
	}
	return "apikeyhttp: insufficient scope: need " + strings.Join(e.Required, ", ")
}

// Is reports whether target is ErrInsufficientScope.
func (e *ScopeError) Is(target error) bool { return target == ErrInsufficientScope }

// Codes of the middleware's own refusals. The codes of package apikey
// (apikey.CodeInvalidKey, apikey.CodeUnavailable, ...) complete the
// vocabulary of the "code" member of every error body. Clients branch on
// codes; they never change meaning.
const (
	// CodeMissingKey stands for ErrMissingKey (401).
	CodeMissingKey apikey.Code = "missing_key"
	// CodeConflictingCredentials stands for ErrConflictingCredentials (400).
	CodeConflictingCredentials apikey.Code = "conflicting_credentials"
	// CodeInsufficientScope stands for ErrInsufficientScope (403).
	CodeInsufficientScope apikey.Code = "insufficient_scope"
	// CodeForbidden stands for ErrForbidden (403).
	CodeForbidden apikey.Code = "forbidden"
)

// problemRow is one line of the table from errors to answers.
type problemRow struct {
	err    error
	status int
	code   apikey.Code
	detail string // a fixed, client-safe sentence
}

// problems is the one table from errors to HTTP answers. Status, ErrorFor,
// ProblemOf and WriteError read it; the middleware, the apikey service, the
// admin site, the portal and apikeyclient go through them. The first row
// whose error matches wins; an error that matches none is answered like
// apikey.ErrUnavailable (the second row, after the request that no one
// waits for any more). Internal error text never reaches a client: the
// detail is always the fixed sentence of the row.
var problems = [...]problemRow{
	{ErrClientClosed, StatusClientClosed, CodeClientClosed, "The client closed the request before the answer."},
	{apikey.ErrUnavailable, http.StatusServiceUnavailable, apikey.CodeUnavailable, "API keys cannot be verified at the moment; retry later."},
	{ErrConflictingCredentials, http.StatusBadRequest, CodeConflictingCredentials, "The request carries more than one API key, and they differ."},
	{ErrInsufficientScope, http.StatusForbidden, CodeInsufficientScope, "The API key lacks a required scope."},
	{ErrForbidden, http.StatusForbidden, CodeForbidden, "The API key is not allowed to make this request."},
	{apikey.ErrWrongEnvironment, http.StatusForbidden, apikey.CodeWrongEnvironment, "The API key belongs to another environment (live or test) than the one accepted here."},
	{apikey.ErrIPNotAllowed, http.StatusForbidden, apikey.CodeIPNotAllowed, "The API key may not be used from this network address."},
	{ErrBadForwardedFor, http.StatusBadRequest, CodeBadForwardedFor, "The X-Forwarded-For header is malformed."},
	{apikey.ErrRateLimited, http.StatusTooManyRequests, apikey.CodeRateLimited, "The API key has exceeded a rate limit; retry after the delay in Retry-After."},
	{apikey.ErrUsageExceeded, http.StatusTooManyRequests, apikey.CodeUsageExceeded, "The API key has not enough usage credits left for this request."},
	{ErrMissingKey, http.StatusUnauthorized, CodeMissingKey, "The request carries no API key."},
	{apikey.ErrInvalidKey, http.StatusUnauthorized, apikey.CodeInvalidKey, "The API key is not valid."},
	{apikey.ErrExpired, http.StatusUnauthorized, apikey.CodeKeyExpired, "The API key has expired."},
	{apikey.ErrRevoked, http.StatusUnauthorized, apikey.CodeKeyRevoked, "The API key has been revoked."},
	{apikey.ErrDisabled, http.StatusForbidden, apikey.CodeKeyDisabled, "The API key is disabled; its owner can enable it again."},
	{apikey.ErrFrozen, http.StatusConflict, apikey.CodeKeyRevoked, "The key has been revoked; a revoked key cannot be changed or rolled."},
	{apikey.ErrInvalidInput, http.StatusBadRequest, apikey.CodeInvalidInput, "The request is not valid."},
	{apikey.ErrNotFound, http.StatusNotFound, apikey.CodeNotFound, "The key does not exist."},
	{apikey.ErrWebhookNotFound, http.StatusNotFound, apikey.CodeNotFound, "The webhook endpoint does not exist."},
	{apikey.ErrDeliveryNotFound, http.StatusNotFound, apikey.CodeNotFound, "The webhook endpoint has no such delivery."},
	{apikey.ErrTooManyKeys, http.StatusConflict, apikey.CodeTooManyKeys, "The owner already holds the maximum number of keys."},
	{apikey.ErrNotAcknowledged, http.StatusGatewayTimeout, apikey.CodeNotAcknowledged, "The change is applied, but not every instance acknowledged it in time."},
}

// row returns the row of the table that answers err.
func row(err error) *problemRow {
	for i := range problems {
		if errors.Is(err, problems[i].err) {
			return &problems[i]
		}
	}
	return &problems[1] // apikey.ErrUnavailable
}

// Status maps an error to an HTTP status and a problem code. It is the one
// place where errors become statuses: the middleware, WriteError, the
// apikey service, its admin site and apikeyportal all use it.
//
//	nil                                   200 ""
//	ErrClientClosed                       499 client_closed_request
//	apikey.ErrUnavailable                 503 unavailable
//	ErrConflictingCredentials             400 conflicting_credentials
//	ErrInsufficientScope (*ScopeError)    403 insufficient_scope
//	ErrForbidden                          403 forbidden
//	apikey.ErrWrongEnvironment            403 wrong_environment
//	apikey.ErrIPNotAllowed                403 ip_not_allowed
//	ErrBadForwardedFor                    400 bad_forwarded_for
//	apikey.ErrRateLimited                 429 rate_limited
//	apikey.ErrUsageExceeded               429 usage_exceeded
//	ErrMissingKey                         401 missing_key
//	apikey.ErrInvalidKey                  401 invalid_key
//	apikey.ErrExpired                     401 key_expired
//	apikey.ErrRevoked                     401 key_revoked
//	apikey.ErrDisabled                    403 key_disabled
//	apikey.ErrFrozen                      409 key_revoked
//	apikey.ErrInvalidInput                400 invalid_input
//	apikey.ErrNotFound                    404 not_found
//	apikey.ErrWebhookNotFound             404 not_found
//	apikey.ErrDeliveryNotFound            404 not_found
//	apikey.ErrTooManyKeys                 409 too_many_keys
//	apikey.ErrNotAcknowledged             504 not_acknowledged
//	anything else                         503 unavailable
//
// An unknown error is treated as a failure to decide, never as a grant and
// never as a 500: the client may retry. The first matching row wins: an
// error that matches ErrUnavailable is a 503 whatever else it wraps, and an
// Authorize refusal that wraps, say, apikey.ErrRevoked stays 403 forbidden.
// apikey.ErrRevoked (the presented key is revoked) and apikey.ErrFrozen (a
// management call asked to change a revoked key) share the code
// key_revoked and differ by status. A disabled key (apikey.ErrDisabled) is
// a 403, not a 401: its secret matched and the key is known, but it may
// not be used until it is enabled again, so a client should keep it rather
// than discard it as a bad credential. For the errors of package apikey the
// code is the one apikey.CodeOf gives.
func Status(err error) (status int, code apikey.Code) {
	if err == nil {
		return http.StatusOK, ""
	}
	r := row(err)
	return r.status, r.code
}

// ErrorFor returns the sentinel error that an answer with this status and
// problem code stands for: the inverse of Status, for clients. The row
// with both the status and the code is preferred; failing that, the first
// row with the code, so that key_revoked is apikey.ErrFrozen with 409 and
// apikey.ErrRevoked otherwise (a 401, or the 200 answer of a verification
// endpoint). It returns nil for a code outside the table. The errors are
// sentinels: a client that wants a *ScopeError or an
// *apikey.ValidationError builds it from the problem's other members.
func ErrorFor(status int, code apikey.Code) error {
	var first error
	for _, r := range problems {
		if r.code != code {
			continue
		}
		if r.status == status {
			return r.err
		}
		if first == nil {
			first = r.err
		}
	}
	return first
}

// Problem is an RFC 9457 problem details object, the body of every error
// response, served as application/problem+json. Its Code member is the
// machine-readable outcome; Detail is a human sentence that never contains
// internal error text.
type Problem struct {
	// Type is a URI naming the problem type; "about:blank" when the Code
	// member says everything.
	Type string `json:"type"`
	// Title is the HTTP status text for "about:blank".
	Title string `json:"title"`
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Detail explains this occurrence in one sentence.
	Detail string `json:"detail,omitempty"`
	// Code is an apikey.Code: one of package apikey's, one of the Code
	// constants of this package, or a code of the caller's own.
	Code apikey.Code `json:"code"`
	// RequiredScopes, for insufficient_scope, lists the scopes the route
	// asked for.
	RequiredScopes []string `json:"required_scopes,omitempty"`
	// Field, for invalid_input and other answers about a request's input,
	// names the offending field of the body or query.
	Field string `json:"field,omitempty"`
	// Offset, for a request body that is not valid JSON, is the byte
	// offset at which decoding failed.
	Offset *int64 `json:"offset,omitempty"`
	// Instances, for not_acknowledged, names the instances that had not
	// applied the change when the wait ended.
	Instances []string `json:"instances,omitempty"`
}

// scopeWord is the possessive of a limit's scope in a problem's detail.
func scopeWord(scope string) string {
	if scope == "owner" {
		return "owner's"
	}
	return "key's"
}

// ProblemOf returns the Problem that answers err, as Status maps it, with
// the fixed detail sentence of its code. For a *ScopeError the detail names
// the required scopes and RequiredScopes lists them; for an
// *apikey.ValidationError the detail gives the field and the reason and
// Field names the field; for an *apikey.NotAcknowledgedError Instances
// names the instances; for an *apikey.LimiterError (503) the detail names
// the rate limit that could not be checked. The text of err is never used otherwise. A nil err
// is answered as a failure to decide (503 unavailable), never as a success.
func ProblemOf(err error) *Problem {
	r := row(err) // nil matches no row: unavailable
	p := &Problem{Status: r.status, Code: r.code, Detail: r.detail}
	var se *ScopeError
	var ve *apikey.ValidationError
	var na *apikey.NotAcknowledgedError
	var ae *apikey.AddrError
	var fe *ForwardedForError
	var le *apikey.LimiterError
	switch {
	case r.code == apikey.CodeUnavailable && errors.As(err, &le) && apikey.ValidLimitName(le.Limit):
		p.Detail = "The " + scopeWord(le.Scope) + " rate limit \"" + le.Limit + "\" cannot be checked at the moment: the rate limiter does not answer; retry later."
	case r.code == CodeInsufficientScope && errors.As(err, &se) && len(se.Required) > 0:
		p.RequiredScopes = se.Required
		switch {
		case len(se.Required) == 1:
			p.Detail = "The API key needs the scope " + se.Required[0] + "."
		case se.Any:
			p.Detail = "The API key needs one of the scopes " + strings.Join(se.Required, ", ") + "."
		default:
			p.Detail = "The API key needs the scopes " + strings.Join(se.Required, ", ") + "."
		}
	case r.code == apikey.CodeInvalidInput && errors.As(err, &ve):
		p.Field = ve.Field
		p.Detail = "Invalid " + ve.Field + ": " + ve.Reason + "."
	case r.code == apikey.CodeNotAcknowledged && errors.As(err, &na):
		p.Instances = na.Instances
	case r.code == apikey.CodeIPNotAllowed && errors.As(err, &ae) && ae.Addr.IsValid():
		p.Detail = "The API key may not be used from " + ae.Addr.String() + "."
	case r.code == CodeBadForwardedFor && errors.As(err, &fe):
		p.Detail = "The X-Forwarded-For header is malformed: " + fe.Reason + "."
	}
	return p
}

// Default challenge and retry delay of Problem.Write when the response has
// none.
const (
	defaultChallenge  = `Api-Key realm="api", Bearer realm="api"`
	defaultRetryAfter = "5"
)

// Write writes p as the response: status p.Status, Content-Type
// application/problem+json, Cache-Control: no-store, and the JSON of p. An
// empty Type becomes "about:blank" and an empty Title the status text. A 401
// without a WWW-Authenticate header gets `Api-Key realm="api", Bearer
// realm="api"`, and a 503 without Retry-After gets 5 seconds; other headers
// already set on w are left alone. The middleware and every error page of
// the apikey service write their problems with it.
func (p *Problem) Write(w http.ResponseWriter) {
	if p.Type == "" {
		p.Type = "about:blank"
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen for this struct
		body = []byte(`{"type":"about:blank","status":500}`)
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	switch p.Status {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", defaultChallenge)
		}
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", defaultRetryAfter)
		}
	}
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// WriteProblem writes an RFC 9457 problem body with the given status, code
// and detail, of type "about:blank" and the status text as title, as
// Problem.Write does. r may be nil.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, code apikey.Code, detail string) {
	(&Problem{Status: status, Code: code, Detail: detail}).Write(w)
}

// WriteError is the default ErrorWriter: it writes ProblemOf(err) with
// Problem.Write. The text of err is never sent. The middleware sets its
// configured WWW-Authenticate and Retry-After values before it calls the
// writer; without them a 401 and a 503 get the defaults of Problem.Write.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ProblemOf(err).Write(w)
}

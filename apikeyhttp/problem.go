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

// Problem codes: the "code" member of every error body, one per outcome.
// Clients branch on them; they never change meaning.
const (
	CodeMissingKey             = "missing_key"             // 401
	CodeInvalidKey             = "invalid_key"             // 401
	CodeKeyExpired             = "key_expired"             // 401
	CodeKeyRevoked             = "key_revoked"             // 401
	CodeConflictingCredentials = "conflicting_credentials" // 400
	CodeInsufficientScope      = "insufficient_scope"      // 403
	CodeForbidden              = "forbidden"               // 403
	CodeInvalidInput           = "invalid_input"           // 400
	CodeNotFound               = "not_found"               // 404
	CodeTooManyKeys            = "too_many_keys"           // 409
	CodeUnavailable            = "unavailable"             // 503
)

// Status maps an error to an HTTP status and a problem code. It is the one
// place where errors become statuses: the middleware, WriteError and the
// apikey service all use it.
//
//	nil                                   200 ""
//	apikey.ErrUnavailable                 503 unavailable
//	ErrConflictingCredentials             400 conflicting_credentials
//	ErrInsufficientScope (*ScopeError)    403 insufficient_scope
//	ErrForbidden                          403 forbidden
//	ErrMissingKey                         401 missing_key
//	apikey.ErrInvalidKey                  401 invalid_key
//	apikey.ErrExpired                     401 key_expired
//	apikey.ErrRevoked                     401 key_revoked
//	apikey.ErrFrozen                      409 key_revoked
//	apikey.ErrInvalidInput                400 invalid_input
//	apikey.ErrNotFound                    404 not_found
//	apikey.ErrTooManyKeys                 409 too_many_keys
//	anything else                         503 unavailable
//
// An unknown error is treated as a failure to decide, never as a grant and
// never as a 500: the client may retry. The first matching row wins: an
// error that matches ErrUnavailable is a 503 whatever else it wraps, and an
// Authorize refusal that wraps, say, apikey.ErrRevoked stays 403 forbidden.
// apikey.ErrRevoked (the presented key is revoked) and apikey.ErrFrozen (a
// management call asked to change a revoked key) share the code
// key_revoked and differ by status.
func Status(err error) (status int, code string) {
	switch {
	case err == nil:
		return http.StatusOK, ""
	case errors.Is(err, apikey.ErrUnavailable):
		return http.StatusServiceUnavailable, CodeUnavailable
	case errors.Is(err, ErrConflictingCredentials):
		return http.StatusBadRequest, CodeConflictingCredentials
	case errors.Is(err, ErrInsufficientScope):
		return http.StatusForbidden, CodeInsufficientScope
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, CodeForbidden
	case errors.Is(err, ErrMissingKey):
		return http.StatusUnauthorized, CodeMissingKey
	case errors.Is(err, apikey.ErrInvalidKey):
		return http.StatusUnauthorized, CodeInvalidKey
	case errors.Is(err, apikey.ErrExpired):
		return http.StatusUnauthorized, CodeKeyExpired
	case errors.Is(err, apikey.ErrRevoked):
		return http.StatusUnauthorized, CodeKeyRevoked
	case errors.Is(err, apikey.ErrFrozen):
		return http.StatusConflict, CodeKeyRevoked
	case errors.Is(err, apikey.ErrInvalidInput):
		return http.StatusBadRequest, CodeInvalidInput
	case errors.Is(err, apikey.ErrNotFound):
		return http.StatusNotFound, CodeNotFound
	case errors.Is(err, apikey.ErrTooManyKeys):
		return http.StatusConflict, CodeTooManyKeys
	default:
		return http.StatusServiceUnavailable, CodeUnavailable
	}
}

// details are the fixed, client-safe sentences of the default error
// bodies. Internal error text never reaches a client.
var details = map[string]string{
	CodeMissingKey:             "The request carries no API key.",
	CodeInvalidKey:             "The API key is not valid.",
	CodeKeyExpired:             "The API key has expired.",
	CodeKeyRevoked:             "The API key has been revoked.",
	CodeConflictingCredentials: "The request carries more than one API key, and they differ.",
	CodeInsufficientScope:      "The API key lacks a required scope.",
	CodeForbidden:              "The API key is not allowed to make this request.",
	CodeInvalidInput:           "The request is not valid.",
	CodeNotFound:               "The key does not exist.",
	CodeTooManyKeys:            "The owner already holds the maximum number of keys.",
	CodeUnavailable:            "API keys cannot be verified at the moment; retry later.",
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
	// Code is one of the Code constants (or a code of the caller's own).
	Code string `json:"code"`
	// RequiredScopes, for insufficient_scope, lists the scopes the route
	// asked for.
	RequiredScopes []string `json:"required_scopes,omitempty"`
}

// WriteProblem writes an RFC 9457 problem body with the given status, code
// and detail, of type "about:blank" and the status text as title. It sets
// Content-Type: application/problem+json and Cache-Control: no-store, and
// leaves any other header already set on w (such as WWW-Authenticate) alone.
// r may be nil.
func WriteProblem(w http.ResponseWriter, r *http.Request, status int, code, detail string) {
	writeProblem(w, &Problem{Status: status, Code: code, Detail: detail})
}

func writeProblem(w http.ResponseWriter, p *Problem) {
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
	w.WriteHeader(p.Status)
	_, _ = w.Write(body)
}

// Default challenge and retry delay of WriteError when the caller set none.
const (
	defaultChallenge  = `Api-Key realm="api", Bearer realm="api"`
	defaultRetryAfter = "5"
)

// WriteError is the default ErrorWriter. It maps err with Status and
// writes a Problem whose Detail is a fixed sentence for the code (for a
// *ScopeError it names the required scopes and fills RequiredScopes; for an
// *apikey.ValidationError it names the field and the reason). The text of
// err is never sent. A 401 without a WWW-Authenticate header gets
// `Api-Key realm="api", Bearer realm="api"`, and a 503 without Retry-After
// gets 5 seconds; the middleware sets its configured values before it calls
// the writer.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := Status(err)
	if status == http.StatusOK {
		status, code = http.StatusServiceUnavailable, CodeUnavailable
	}
	p := &Problem{Status: status, Code: code, Detail: details[code]}
	var se *ScopeError
	var ve *apikey.ValidationError
	switch {
	case code == CodeInsufficientScope && errors.As(err, &se) && len(se.Required) > 0:
		p.RequiredScopes = se.Required
		switch {
		case len(se.Required) == 1:
			p.Detail = "The API key needs the scope " + se.Required[0] + "."
		case se.Any:
			p.Detail = "The API key needs one of the scopes " + strings.Join(se.Required, ", ") + "."
		default:
			p.Detail = "The API key needs the scopes " + strings.Join(se.Required, ", ") + "."
		}
	case code == CodeInvalidInput && errors.As(err, &ve):
		p.Detail = "Invalid " + ve.Field + ": " + ve.Reason + "."
	}
	h := w.Header()
	switch status {
	case http.StatusUnauthorized:
		if h.Get("WWW-Authenticate") == "" {
			h.Set("WWW-Authenticate", defaultChallenge)
		}
	case http.StatusServiceUnavailable:
		if h.Get("Retry-After") == "" {
			h.Set("Retry-After", defaultRetryAfter)
		}
	}
	writeProblem(w, p)
}

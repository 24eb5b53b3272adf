package apikeyclient

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Error is an answer of the service that is not a success: an RFC 9457
// problem, or any other non-2xx response. It wraps the error that its
// status and Code stand for in apikeyhttp's table (apikeyhttp.ErrorFor, the
// inverse of the mapping the service answers with), so callers test for
// outcomes with errors.Is and errors.As:
//
//	not_found               apikey.ErrNotFound
//	too_many_keys           apikey.ErrTooManyKeys
//	invalid_input           *apikey.ValidationError (matches apikey.ErrInvalidInput)
//	key_revoked             apikey.ErrRevoked; with 409, apikey.ErrFrozen (changing a revoked key)
//	invalid_key             apikey.ErrInvalidKey
//	key_expired             apikey.ErrExpired
//	missing_key             apikeyhttp.ErrMissingKey
//	insufficient_scope      *apikeyhttp.ScopeError (matches apikeyhttp.ErrInsufficientScope)
//	forbidden               apikeyhttp.ErrForbidden
//	conflicting_credentials apikeyhttp.ErrConflictingCredentials
//	not_acknowledged        apikey.ErrNotAcknowledged (504: the change is applied)
//	rate_limited            apikey.ErrRateLimited (429)
//	usage_exceeded          apikey.ErrUsageExceeded (429)
//	unavailable, any 5xx    apikey.ErrUnavailable
//
// Other answers (invalid_json, body_too_large, a 404 from a proxy, ...)
// wrap nothing. On management calls, 401 and 403 answers describe the
// client's own token. An Error never contains the token.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Code is the problem's code member; empty if the answer was not a
	// problem.
	Code apikey.Code
	// Detail is the problem's human-readable detail; empty if none.
	Detail string
	// RetryAfter is the delay of the answer's Retry-After header (whole
	// seconds), on a 429 or a 503; zero when absent.
	RetryAfter time.Duration

	err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apikeyclient: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" " + string(e.Code))
	} else if t := http.StatusText(e.Status); t != "" {
		b.WriteString(" " + t)
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// Unwrap returns the error that e's code stands for, or nil.
func (e *Error) Unwrap() error { return e.err }

// sentinel returns the error that a problem stands for: the sentinel that
// apikeyhttp.ErrorFor maps its status and code back to, made precise with
// the problem's field or required scopes where it has them; for a 5xx
// outside the table, apikey.ErrUnavailable.
func sentinel(e *Error, p *problem) error {
	err := apikeyhttp.ErrorFor(e.Status, e.Code)
	switch {
	case err == apikey.ErrInvalidInput:
		return &apikey.ValidationError{Field: p.Field, Reason: reason(e.Detail, p.Field)}
	case err == apikeyhttp.ErrInsufficientScope:
		return &apikeyhttp.ScopeError{Required: p.RequiredScopes}
	case err == nil && e.Status >= 500:
		return apikey.ErrUnavailable
	}
	return err
}

// reason recovers the reason of a validation problem from its detail
// without the "Invalid <field>: " opening and the final period that
// apikeyhttp.ProblemOf adds.
func reason(detail, field string) string {
	if field != "" {
		detail = strings.TrimPrefix(detail, "Invalid "+field+": ")
	}
	return strings.TrimSuffix(detail, ".")
}

package apikeyclient

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Error is an answer of the service that is not a success: an RFC 9457
// problem, or any other non-2xx response. It wraps the error that its Code
// stands for, so callers test for outcomes with errors.Is and errors.As:
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
	Code string
	// Detail is the problem's human-readable detail; empty if none.
	Detail string

	err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("apikeyclient: ")
	b.WriteString(strconv.Itoa(e.Status))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
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

// sentinel returns the error that a problem stands for.
func sentinel(e *Error, p *problem) error {
	switch e.Code {
	case apikeyhttp.CodeNotFound:
		return apikey.ErrNotFound
	case apikeyhttp.CodeTooManyKeys:
		return apikey.ErrTooManyKeys
	case apikeyhttp.CodeInvalidInput:
		return &apikey.ValidationError{Field: p.Field, Reason: reason(p)}
	case apikeyhttp.CodeKeyRevoked:
		if e.Status == http.StatusConflict {
			return apikey.ErrFrozen
		}
		return apikey.ErrRevoked
	case apikeyhttp.CodeInvalidKey:
		return apikey.ErrInvalidKey
	case apikeyhttp.CodeKeyExpired:
		return apikey.ErrExpired
	case apikeyhttp.CodeMissingKey:
		return apikeyhttp.ErrMissingKey
	case apikeyhttp.CodeInsufficientScope:
		return &apikeyhttp.ScopeError{Required: p.RequiredScopes}
	case apikeyhttp.CodeForbidden:
		return apikeyhttp.ErrForbidden
	case apikeyhttp.CodeConflictingCredentials:
		return apikeyhttp.ErrConflictingCredentials
	case apikeyhttp.CodeUnavailable:
		return apikey.ErrUnavailable
	}
	if e.Status >= 500 {
		return apikey.ErrUnavailable
	}
	return nil
}

// reason recovers the reason of a validation problem: its reason member if
// it has one, else its detail without the "Invalid <field>: " opening and
// the final period that apikeyhttp.WriteError adds.
func reason(p *problem) string {
	if p.Reason != "" {
		return p.Reason
	}
	r := p.Detail
	if p.Field != "" {
		r = strings.TrimPrefix(r, "Invalid "+p.Field+": ")
	}
	return strings.TrimSuffix(r, ".")
}

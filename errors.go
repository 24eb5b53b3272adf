package apikey

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is; every error the
// Manager returns wraps at most one of them.
var (
	// ErrInvalidKey reports a token that is malformed, has a bad checksum,
	// names an unknown key id or carries the wrong secret. These cases are
	// deliberately indistinguishable so that a caller without the secret
	// learns nothing about which keys exist.
	ErrInvalidKey = errors.New("apikey: invalid key")

	// ErrExpired reports a key whose secret matched but whose ExpiresAt has
	// been reached.
	ErrExpired = errors.New("apikey: key expired")

	// ErrRevoked reports a key whose secret matched but which has been
	// revoked. Only verification returns it: it describes the presented
	// key. A management call refused because the key it names is revoked
	// returns ErrFrozen instead.
	ErrRevoked = errors.New("apikey: key revoked")

	// ErrDisabled reports a key whose secret matched but which is disabled
	// (Manager.Disable). Unlike ErrRevoked it may pass again: Manager.Enable
	// undoes it.
	ErrDisabled = errors.New("apikey: key disabled")

	// ErrFrozen reports a management call (Update, Roll) that asked to
	// change a revoked key. Revocation is final and freezes the record, so
	// nothing was changed. Stores return it from Update. It does not match
	// ErrRevoked: it says nothing about the caller's own credentials.
	ErrFrozen = errors.New("apikey: key revoked: a revoked key cannot be changed")

	// ErrNotFound reports that no key has the id given to a management call
	// (Get, Update, Revoke, Delete).
	ErrNotFound = errors.New("apikey: key not found")

	// ErrTooManyKeys reports that creating a key would take its owner past
	// the Manager's MaxKeysPerOwner.
	ErrTooManyKeys = errors.New("apikey: too many keys for owner")

	// ErrInvalidInput reports a bad argument: an empty name, a malformed
	// scope, an expiry in the past, a bad cursor. The error is usually a
	// *ValidationError that names the field.
	ErrInvalidInput = errors.New("apikey: invalid input")

	// ErrUnavailable reports that the store (or another dependency) failed,
	// so the Manager could not decide. It never means the key is bad, and a
	// verification that fails with it must be treated as a denial that may
	// be retried.
	ErrUnavailable = errors.New("apikey: store unavailable")

	// ErrDuplicateID is returned by a Store whose Insert met an existing id.
	// The Manager retries with a fresh id, so callers of the Manager never
	// see it.
	ErrDuplicateID = errors.New("apikey: duplicate key id")

	// ErrRateLimited reports a valid key refused by one of its rate limits
	// or its owner's. The error is a *LimitError that says when to retry.
	ErrRateLimited = errors.New("apikey: rate limited")

	// ErrUsageExceeded reports a valid key refused because its balance of
	// credits, or its owner's, is below the cost of the request. The error
	// is a *LimitError.
	ErrUsageExceeded = errors.New("apikey: usage credits exhausted")

	// ErrWebhookNotFound reports that no webhook endpoint has the id given
	// (package outbox). It does not match ErrNotFound, which is about keys;
	// both are answered 404 not_found.
	ErrWebhookNotFound = errors.New("apikey: webhook endpoint not found")

	// ErrDeliveryNotFound reports that the endpoint has no delivery with
	// the id given.
	ErrDeliveryNotFound = errors.New("apikey: webhook delivery not found")
)

// ValidationError describes one bad argument. It matches ErrInvalidInput
// with errors.Is.
type ValidationError struct {
	// Field is the snake_case name of the argument, as in the JSON shape of
	// Key (for example "name", "scopes", "expires_at").
	Field string
	// Reason says what is wrong, in lowercase words, without the field name.
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("apikey: invalid %s: %s", e.Field, e.Reason)
}

// Is reports whether target is ErrInvalidInput.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidInput }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// unavailable wraps a store failure so that it matches ErrUnavailable while
// keeping the cause for logs.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

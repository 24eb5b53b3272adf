package apikey

import "errors"

// Code is the machine-readable name of an outcome: the result of a
// verification as counted by Metrics and usage tracking, the Reason of a
// rejected verification in the audit log, and the "code" member of the
// error bodies of the HTTP packages. Codes are stable: once published, a
// code never changes meaning. Packages that add outcomes of their own (such
// as apikeyhttp's missing_key) define further Codes.
type Code string

// The codes of this package's outcomes. CodeOf maps errors to them.
const (
	// CodeValid is the outcome of a successful verification (a nil error).
	CodeValid Code = "valid"
	// CodeInvalidKey stands for ErrInvalidKey.
	CodeInvalidKey Code = "invalid_key"
	// CodeKeyExpired stands for ErrExpired.
	CodeKeyExpired Code = "key_expired"
	// CodeKeyRevoked stands for ErrRevoked, and also for ErrFrozen: both
	// say that the key is revoked. Over HTTP they differ by status (401 for
	// the presented key, 409 for a refused change).
	CodeKeyRevoked Code = "key_revoked"
	// CodeKeyDisabled stands for ErrDisabled.
	CodeKeyDisabled Code = "key_disabled"
	// CodeValidPrevious is the usage outcome of a successful verification
	// with the previous secret of a key during its grace window (see
	// RollOptions); CodeOf never returns it.
	CodeValidPrevious Code = "valid_previous"
	// CodeInvalidInput stands for ErrInvalidInput.
	CodeInvalidInput Code = "invalid_input"
	// CodeNotFound stands for ErrNotFound.
	CodeNotFound Code = "not_found"
	// CodeTooManyKeys stands for ErrTooManyKeys.
	CodeTooManyKeys Code = "too_many_keys"
	// CodeNotAcknowledged stands for ErrNotAcknowledged: a strict
	// revocation is applied, but not every instance acknowledged it in
	// time.
	CodeNotAcknowledged Code = "not_acknowledged"
	// CodeRateLimited stands for ErrRateLimited.
	CodeRateLimited Code = "rate_limited"
	// CodeUsageExceeded stands for ErrUsageExceeded.
	CodeUsageExceeded Code = "usage_exceeded"
	// CodeWrongEnvironment stands for ErrWrongEnvironment: a genuine key
	// of the environment that is not accepted here.
	CodeWrongEnvironment Code = "wrong_environment"
	// CodeIPNotAllowed stands for ErrIPNotAllowed: a genuine key used
	// from an address outside its network allowlist.
	CodeIPNotAllowed Code = "ip_not_allowed"
	// CodeUnavailable stands for ErrUnavailable and for any error that is
	// not one of this package's answers: a failure to decide, never a
	// denial.
	CodeUnavailable Code = "unavailable"
)

// CodeOf returns the code of err: CodeValid for nil, the code of the
// sentinel error err matches, and CodeUnavailable for anything else. The
// first match in this order wins: ErrUnavailable, ErrInvalidKey,
// ErrExpired, ErrRevoked, ErrFrozen, ErrDisabled, ErrInvalidInput, ErrNotFound,
// ErrTooManyKeys, ErrNotAcknowledged, ErrRateLimited, ErrUsageExceeded,
// ErrWrongEnvironment, ErrIPNotAllowed. So a store failure is unavailable whatever else it wraps,
// and a key the Usable hook rejected (ErrInvalidKey, wrapping the hook's
// error) is invalid_key even if the hook's error wraps ErrRevoked.
// ErrDuplicateID, which the Manager never returns, is unavailable.
func CodeOf(err error) Code {
	switch {
	case err == nil:
		return CodeValid
	case errors.Is(err, ErrUnavailable):
		return CodeUnavailable
	case errors.Is(err, ErrInvalidKey):
		return CodeInvalidKey
	case errors.Is(err, ErrExpired):
		return CodeKeyExpired
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrFrozen):
		return CodeKeyRevoked
	case errors.Is(err, ErrDisabled):
		return CodeKeyDisabled
	case errors.Is(err, ErrInvalidInput):
		return CodeInvalidInput
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrWebhookNotFound), errors.Is(err, ErrDeliveryNotFound):
		return CodeNotFound
	case errors.Is(err, ErrTooManyKeys):
		return CodeTooManyKeys
	case errors.Is(err, ErrNotAcknowledged):
		return CodeNotAcknowledged
	case errors.Is(err, ErrRateLimited):
		return CodeRateLimited
	case errors.Is(err, ErrUsageExceeded):
		return CodeUsageExceeded
	case errors.Is(err, ErrWrongEnvironment):
		return CodeWrongEnvironment
	case errors.Is(err, ErrIPNotAllowed):
		return CodeIPNotAllowed
	default:
		return CodeUnavailable
	}
}

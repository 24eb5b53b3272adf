package apikey_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/go-apikey/apikey"
)

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want apikey.Code
	}{
		{nil, "valid"},
		{apikey.ErrInvalidKey, "invalid_key"},
		{fmt.Errorf("%w: bad checksum", apikey.ErrInvalidKey), "invalid_key"},
		{apikey.ErrExpired, "key_expired"},
		{apikey.ErrRevoked, "key_revoked"},
		{apikey.ErrFrozen, "key_revoked"},
		{apikey.ErrInvalidInput, "invalid_input"},
		{&apikey.ValidationError{Field: "name", Reason: "is required"}, "invalid_input"},
		{apikey.ErrNotFound, "not_found"},
		{apikey.ErrTooManyKeys, "too_many_keys"},
		{apikey.ErrNotAcknowledged, "not_acknowledged"},
		{&apikey.NotAcknowledgedError{Instances: []string{"a"}, Err: context.DeadlineExceeded}, "not_acknowledged"},
		{apikey.ErrRateLimited, "rate_limited"},
		{&apikey.LimitError{Err: apikey.ErrRateLimited}, "rate_limited"},
		{apikey.ErrUsageExceeded, "usage_exceeded"},
		{&apikey.LimitError{Err: apikey.ErrUsageExceeded}, "usage_exceeded"},
		{apikey.ErrUnavailable, "unavailable"},
		{fmt.Errorf("%w: lookup: %w", apikey.ErrUnavailable, apikey.ErrNotFound), "unavailable"},
		// A Usable hook's refusal is ErrInvalidKey whatever the hook wrapped.
		{fmt.Errorf("%w: %w", apikey.ErrInvalidKey, apikey.ErrRevoked), "invalid_key"},
		{apikey.ErrDuplicateID, "unavailable"},
		{errors.New("boom"), "unavailable"},
		{context.DeadlineExceeded, "unavailable"},
	}
	for _, tt := range tests {
		if got := apikey.CodeOf(tt.err); got != tt.want {
			t.Errorf("CodeOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestCodesDistinct checks that the sentinel errors callers branch on have
// codes of their own, except ErrFrozen, which shares key_revoked with
// ErrRevoked by design.
func TestCodesDistinct(t *testing.T) {
	seen := map[apikey.Code]error{apikey.CodeOf(nil): nil}
	for _, err := range []error{apikey.ErrInvalidKey, apikey.ErrExpired, apikey.ErrRevoked, apikey.ErrInvalidInput,
		apikey.ErrNotFound, apikey.ErrTooManyKeys, apikey.ErrNotAcknowledged, apikey.ErrRateLimited, apikey.ErrUsageExceeded, apikey.ErrUnavailable} {
		c := apikey.CodeOf(err)
		if prev, dup := seen[c]; dup {
			t.Errorf("CodeOf(%v) = %q, the code of %v too", err, c, prev)
		}
		seen[c] = err
	}
}

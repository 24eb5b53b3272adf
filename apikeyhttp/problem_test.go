package apikeyhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   string
	}{
		{nil, 200, ""},
		{apikeyhttp.ErrMissingKey, 401, "missing_key"},
		{apikey.ErrInvalidKey, 401, "invalid_key"},
		{fmt.Errorf("%w: bad checksum", apikey.ErrInvalidKey), 401, "invalid_key"},
		{apikey.ErrExpired, 401, "key_expired"},
		{apikey.ErrRevoked, 401, "key_revoked"},
		{apikeyhttp.ErrConflictingCredentials, 400, "conflicting_credentials"},
		{apikeyhttp.ErrInsufficientScope, 403, "insufficient_scope"},
		{&apikeyhttp.ScopeError{Required: []string{"a"}}, 403, "insufficient_scope"},
		{apikeyhttp.ErrForbidden, 403, "forbidden"},
		{fmt.Errorf("%w: %w", apikeyhttp.ErrForbidden, apikey.ErrRevoked), 403, "forbidden"},
		{apikey.ErrUnavailable, 503, "unavailable"},
		{fmt.Errorf("%w: %w", apikey.ErrUnavailable, apikey.ErrInvalidKey), 503, "unavailable"},
		{errors.New("boom"), 503, "unavailable"},
		{context.Canceled, 503, "unavailable"},
		{apikey.ErrInvalidInput, 400, "invalid_input"},
		{&apikey.ValidationError{Field: "name", Reason: "must not be empty"}, 400, "invalid_input"},
		{apikey.ErrNotFound, 404, "not_found"},
		{apikey.ErrTooManyKeys, 409, "too_many_keys"},
	}
	for _, tt := range tests {
		status, code := apikeyhttp.Status(tt.err)
		if status != tt.status || code != tt.code {
			t.Errorf("Status(%v) = %d, %q; want %d, %q", tt.err, status, code, tt.status, tt.code)
		}
	}
}

func TestWriteError(t *testing.T) {
	tests := []struct {
		err              error
		status           int
		detail           string
		challenge, retry bool
	}{
		{apikey.ErrExpired, 401, "The API key has expired.", true, false},
		{errors.New("pq: password authentication failed for user apikey"), 503, "API keys cannot be verified at the moment; retry later.", false, true},
		{&apikey.ValidationError{Field: "name", Reason: "must not be empty"}, 400, "Invalid name: must not be empty.", false, false},
		{&apikeyhttp.ScopeError{Required: []string{"a"}, Any: true}, 403, "The API key needs the scope a.", false, false},
		{&apikeyhttp.ScopeError{Required: []string{"a", "b"}, Any: true}, 403, "The API key needs one of the scopes a, b.", false, false},
		{nil, 503, "API keys cannot be verified at the moment; retry later.", false, true},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		apikeyhttp.WriteError(w, httptest.NewRequest("GET", "/", nil), tt.err)
		if w.Code != tt.status {
			t.Errorf("%v: status = %d, want %d", tt.err, w.Code, tt.status)
			continue
		}
		p := problem(t, w)
		if p.Detail != tt.detail {
			t.Errorf("%v: detail = %q, want %q", tt.err, p.Detail, tt.detail)
		}
		if got := w.Header().Get("WWW-Authenticate") != ""; got != tt.challenge {
			t.Errorf("%v: WWW-Authenticate set = %v, want %v", tt.err, got, tt.challenge)
		}
		if got := w.Header().Get("Retry-After") != ""; got != tt.retry {
			t.Errorf("%v: Retry-After set = %v, want %v", tt.err, got, tt.retry)
		}
		if strings.Contains(w.Body.String(), "pq:") {
			t.Errorf("%v: body leaks error text: %s", tt.err, w.Body)
		}
	}
}

func TestWriteProblem(t *testing.T) {
	w := httptest.NewRecorder()
	w.Header().Set("Content-Length", "3")
	apikeyhttp.WriteProblem(w, nil, 404, "not_found", "No key has id x.")
	want := `{"type":"about:blank","title":"Not Found","status":404,"detail":"No key has id x.","code":"not_found"}` + "\n"
	if got := w.Body.String(); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if w.Header().Get("Content-Length") != "" {
		t.Error("stale Content-Length kept")
	}
	problem(t, w)
}

package apikeyhttp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

func TestStatus(t *testing.T) {
	tests := []struct {
		err    error
		status int
		code   apikey.Code
	}{
		{nil, 200, ""},
		{apikeyhttp.ErrMissingKey, 401, "missing_key"},
		{apikey.ErrInvalidKey, 401, "invalid_key"},
		{fmt.Errorf("%w: bad checksum", apikey.ErrInvalidKey), 401, "invalid_key"},
		{apikey.ErrExpired, 401, "key_expired"},
		{apikey.ErrRevoked, 401, "key_revoked"},
		{apikey.ErrFrozen, 409, "key_revoked"},
		{apikey.ErrDisabled, 403, "key_disabled"},
		{fmt.Errorf("%w: %w", apikey.ErrInvalidKey, apikey.ErrRevoked), 401, "invalid_key"},
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
		{apikey.ErrNotAcknowledged, 504, "not_acknowledged"},
		{&apikey.NotAcknowledgedError{Instances: []string{"a"}, Err: context.DeadlineExceeded}, 504, "not_acknowledged"},
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

// sentinels are every error Status maps, with the status its doc comment
// documents.
var sentinels = []struct {
	err    error
	status int
	root   bool // an error of package apikey, which apikey.CodeOf knows
}{
	{apikey.ErrUnavailable, 503, true},
	{apikeyhttp.ErrConflictingCredentials, 400, false},
	{apikeyhttp.ErrInsufficientScope, 403, false},
	{apikeyhttp.ErrForbidden, 403, false},
	{apikeyhttp.ErrMissingKey, 401, false},
	{apikey.ErrInvalidKey, 401, true},
	{apikey.ErrExpired, 401, true},
	{apikey.ErrRevoked, 401, true},
	{apikey.ErrFrozen, 409, true},
	{apikey.ErrDisabled, 403, true},
	{apikey.ErrInvalidInput, 400, true},
	{apikey.ErrNotFound, 404, true},
	{apikey.ErrTooManyKeys, 409, true},
	{apikey.ErrNotAcknowledged, 504, true},
}

// TestProblemTable checks the one table from errors to answers: every
// sentinel has its documented status, a code of its own (ErrRevoked and
// ErrFrozen share key_revoked and differ by status), the code package
// apikey gives it, and ErrorFor maps the answer back to it.
func TestProblemTable(t *testing.T) {
	byCode := map[apikey.Code]error{}
	for _, s := range sentinels {
		status, code := apikeyhttp.Status(s.err)
		if status != s.status {
			t.Errorf("Status(%v) = %d, want %d", s.err, status, s.status)
		}
		if prev, dup := byCode[code]; dup && !(errors.Is(prev, apikey.ErrRevoked) && errors.Is(s.err, apikey.ErrFrozen)) {
			t.Errorf("Status(%v) gives the code %q of %v too", s.err, code, prev)
		}
		byCode[code] = s.err
		if s.root {
			if want := apikey.CodeOf(s.err); code != want {
				t.Errorf("Status(%v) code = %q, apikey.CodeOf says %q", s.err, code, want)
			}
		}
		if got := apikeyhttp.ErrorFor(status, code); got != s.err {
			t.Errorf("ErrorFor(%d, %q) = %v, want %v", status, code, got, s.err)
		}
		p := apikeyhttp.ProblemOf(s.err)
		if p.Status != status || p.Code != code || p.Detail == "" {
			t.Errorf("ProblemOf(%v) = %+v, want status %d, code %q and a detail", s.err, p, status, code)
		}
	}
	if _, ok := byCode[apikey.CodeKeyRevoked]; !ok {
		t.Error("no sentinel maps to key_revoked")
	}
}

func TestErrorFor(t *testing.T) {
	tests := []struct {
		status int
		code   apikey.Code
		want   error
	}{
		{200, "key_revoked", apikey.ErrRevoked}, // a verification endpoint's answer
		{401, "key_revoked", apikey.ErrRevoked},
		{409, "key_revoked", apikey.ErrFrozen},
		{200, "key_expired", apikey.ErrExpired},
		{502, "unavailable", apikey.ErrUnavailable},
		{400, "invalid_input", apikey.ErrInvalidInput},
		{403, "insufficient_scope", apikeyhttp.ErrInsufficientScope},
		{400, "invalid_json", nil},
		{404, "", nil},
	}
	for _, tt := range tests {
		if got := apikeyhttp.ErrorFor(tt.status, tt.code); got != tt.want {
			t.Errorf("ErrorFor(%d, %q) = %v, want %v", tt.status, tt.code, got, tt.want)
		}
	}
}

func TestProblemOfValidation(t *testing.T) {
	p := apikeyhttp.ProblemOf(fmt.Errorf("create: %w", &apikey.ValidationError{Field: "name", Reason: "must not be empty"}))
	if p.Status != 400 || p.Code != "invalid_input" || p.Field != "name" || p.Detail != "Invalid name: must not be empty." {
		t.Errorf("ProblemOf(a ValidationError) = %+v", p)
	}
}

func TestProblemOfNotAcknowledged(t *testing.T) {
	err := fmt.Errorf("revoke: %w", &apikey.NotAcknowledgedError{Instances: []string{"api-2", "api-3"}, Err: errors.New("internal text")})
	p := apikeyhttp.ProblemOf(err)
	if p.Status != 504 || p.Code != "not_acknowledged" || !slices.Equal(p.Instances, []string{"api-2", "api-3"}) ||
		p.Detail != "The change is applied, but not every instance acknowledged it in time." {
		t.Errorf("ProblemOf(a NotAcknowledgedError) = %+v", p)
	}
}

// TestProblemWrite checks the members and headers every writer shares:
// the JSON members in their order, and the 401 and 503 header defaults.
func TestProblemWrite(t *testing.T) {
	off := int64(7)
	w := httptest.NewRecorder()
	(&apikeyhttp.Problem{Status: 400, Code: "invalid_json", Detail: "Bad.", Field: "name", Offset: &off}).Write(w)
	want := `{"type":"about:blank","title":"Bad Request","status":400,"detail":"Bad.","code":"invalid_json","field":"name","offset":7}` + "\n"
	if got := w.Body.String(); got != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if w.Header().Get("WWW-Authenticate") != "" || w.Header().Get("Retry-After") != "" {
		t.Errorf("a 400 got a challenge or a retry delay: %v", w.Header())
	}
	w = httptest.NewRecorder()
	w.Header().Set("Retry-After", "30")
	(&apikeyhttp.Problem{Status: 503, Code: "unavailable"}).Write(w)
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want the 30 already set", got)
	}
	w = httptest.NewRecorder()
	(&apikeyhttp.Problem{Status: 401, Code: "invalid_key"}).Write(w)
	if w.Header().Get("WWW-Authenticate") == "" {
		t.Error("a 401 without a challenge")
	}
}

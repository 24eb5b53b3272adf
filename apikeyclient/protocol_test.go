package apikeyclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyclient"
	"github.com/go-apikey/apikey/apikeyhttp"
)

const secretToken = "ak_secretSecret_doNotLeak"

func TestNew(t *testing.T) {
	for _, tt := range []struct {
		base, token, want string // want: BaseURL, or "" for an error
	}{
		{"http://127.0.0.1:8080", secretToken, "http://127.0.0.1:8080"},
		{"https://keys.example.com/", secretToken, "https://keys.example.com"},
		{"https://example.com/apikey//", secretToken, "https://example.com/apikey"},
		{"ftp://example.com", secretToken, ""},
		{"example.com", secretToken, ""},
		{"/v1", secretToken, ""},
		{"http://", secretToken, ""},
		{"http://user:pw@example.com", secretToken, ""},
		{"http://example.com?x=1", secretToken, ""},
		{"http://example.com#top", secretToken, ""},
		{"http://exa mple.com", secretToken, ""},
		{"http://example.com", "", ""},
		{"http://example.com", secretToken + " x", ""},
		{"http://example.com", secretToken + "\n", ""},
	} {
		c, err := apikeyclient.New(tt.base, tt.token)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("New(%q, %q): no error", tt.base, tt.token)
		case tt.want != "" && err != nil:
			t.Errorf("New(%q): %v", tt.base, err)
		case err == nil && c.BaseURL() != tt.want:
			t.Errorf("New(%q).BaseURL() = %q, want %q", tt.base, c.BaseURL(), tt.want)
		case err != nil && strings.Contains(err.Error(), "doNotLeak"):
			t.Errorf("New(%q, ...): error %q contains the token", tt.base, err)
		}
	}
}

// stub answers every request with status, content type and body. These
// tests cover answers the real service never gives; the behaviour with the
// service is tested in client_test.go.
func stub(t *testing.T, status int, contentType, body string) *apikeyclient.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Authorization"); got != "Bearer "+secretToken {
			t.Errorf("Authorization %q, want the client's token as Bearer", got)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		if status == http.StatusFound {
			w.Header().Set("Location", "/elsewhere")
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(ts.Close)
	c, err := apikeyclient.New(ts.URL, secretToken)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// presented is a well-formed token (shape and checksum) for the stubs.
const presented = "ak_mkjf9uxpvv7K_yH5c2WBNqdLL2jatJfmUBs1LIN4hhcQS3LDQUo"

func TestMalformedAnswers(t *testing.T) {
	ctx := context.Background()
	if _, err := apikey.ParseToken(presented); err != nil {
		t.Fatalf("the test token is malformed: %v", err)
	}
	const keyJSON = `{"id":"3fZ9q0LmA1bc","name":"x","scopes":[],"created_at":"2030-01-01T00:00:00Z","state":"active"}`
	for _, tt := range []struct {
		name        string
		status      int
		contentType string
		body        string
		want        error // for Verify; nil means a key
		status2     int   // of the *Error, 0 for none
	}{
		{"valid", 200, "application/json", `{"valid":true,"code":"","key":` + keyJSON + `}`, nil, 0},
		{"not JSON", 200, "application/json", `<html>`, apikey.ErrUnavailable, 0},
		{"empty object", 200, "application/json", `{}`, apikey.ErrUnavailable, 0},
		{"valid without key", 200, "application/json", `{"valid":true,"code":"","key":null}`, apikey.ErrUnavailable, 0},
		{"valid with a code", 200, "application/json", `{"valid":true,"code":"key_revoked","key":` + keyJSON + `}`, apikey.ErrUnavailable, 0},
		{"unknown code", 200, "application/json", `{"valid":false,"code":"key_sleeping","key":null}`, apikey.ErrUnavailable, 0},
		{"scope refusal without scopes", 200, "application/json", `{"valid":false,"code":"insufficient_scope","key":null}`, apikey.ErrUnavailable, 0},
		{"expired", 200, "application/json", `{"valid":false,"code":"key_expired","key":null}`, apikey.ErrExpired, 0},
		{"500 text", 500, "text/plain", "boom " + secretToken, apikey.ErrUnavailable, 500},
		{"502 html", 502, "text/html", "<html>bad gateway</html>", apikey.ErrUnavailable, 502},
		{"503 problem", 503, "application/problem+json", `{"status":503,"code":"unavailable","detail":"down"}`, apikey.ErrUnavailable, 503},
		{"redirect", 302, "", "", apikey.ErrUnavailable, 302},
		{"404 of a proxy", 404, "text/plain", "404 page not found", apikey.ErrUnavailable, 404},
		{"invalid key field", 400, "application/problem+json", `{"status":400,"code":"invalid_input","field":"key","detail":"Invalid key: is required."}`, apikey.ErrInvalidKey, 0},
		{"detail echoing the token", 401, "application/problem+json", `{"status":401,"code":"invalid_key","detail":"bad ` + secretToken + ` and ` + presented + `"}`, apikey.ErrUnavailable, 401},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := stub(t, tt.status, tt.contentType, tt.body)
			k, err := c.Verify(ctx, presented)
			if tt.want == nil {
				if err != nil || k == nil || k.ID != "3fZ9q0LmA1bc" {
					t.Fatalf("Verify: got %+v, %v", k, err)
				}
				return
			}
			if k != nil {
				t.Errorf("Verify returned a key with %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify: got %v, want %v", err, tt.want)
			}
			var e *apikeyclient.Error
			if tt.status2 != 0 && (!errors.As(err, &e) || e.Status != tt.status2) {
				t.Errorf("Verify: got %v, want an *Error with status %d", err, tt.status2)
			}
			if msg := err.Error(); strings.Contains(msg, secretToken) || strings.Contains(msg, presented) {
				t.Errorf("error %q contains a token", msg)
			}

			// The management calls treat undecodable and 5xx answers alike.
			if tt.status >= 500 || tt.body == `<html>` {
				if _, err := c.Whoami(ctx); !errors.Is(err, apikey.ErrUnavailable) {
					t.Errorf("Whoami: got %v, want ErrUnavailable", err)
				}
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	c := stub(t, 404, "application/problem+json", `{"status":404,"code":"not_found","detail":"The key does not exist."}`)
	_, err := c.Get(context.Background(), "3fZ9q0LmA1bc")
	if got, want := err.Error(), "apikeyclient: 404 not_found: The key does not exist."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c = stub(t, 418, "text/plain", "short and stout")
	_, err = c.Get(context.Background(), "3fZ9q0LmA1bc")
	var e *apikeyclient.Error
	if !errors.As(err, &e) || e.Unwrap() != nil || err.Error() != "apikeyclient: 418 I'm a teapot" {
		t.Errorf("got %v, want a bare *Error 418", err)
	}
}

// problemStub answers every request with the problem that the service's
// writer (apikeyhttp.ProblemOf, then Problem.Write) gives for err: real
// problem bodies, status, code and members included.
func problemStub(t *testing.T, err error) *apikeyclient.Client {
	t.Helper()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		apikeyhttp.ProblemOf(err).Write(w)
	}))
	t.Cleanup(ts.Close)
	c, cerr := apikeyclient.New(ts.URL, secretToken)
	if cerr != nil {
		t.Fatal(cerr)
	}
	return c
}

// TestProblemAnswers checks that every sentinel the service answers with
// comes back as itself: the client reads the problem's code (and status)
// and maps them back through apikeyhttp's table, so errors.Is works on the
// client side as it does against a Manager.
func TestProblemAnswers(t *testing.T) {
	ctx := context.Background()
	sentinels := []error{
		apikey.ErrInvalidKey, apikey.ErrExpired, apikey.ErrRevoked, apikey.ErrFrozen,
		apikey.ErrInvalidInput, apikey.ErrNotFound, apikey.ErrTooManyKeys, apikey.ErrUnavailable, apikey.ErrNotAcknowledged,
		apikeyhttp.ErrMissingKey, apikeyhttp.ErrConflictingCredentials, apikeyhttp.ErrInsufficientScope, apikeyhttp.ErrForbidden,
	}
	for _, sent := range sentinels {
		c := problemStub(t, fmt.Errorf("internal text %s: %w", secretToken, sent))
		_, err := c.Get(ctx, "3fZ9q0LmA1bc")
		for _, other := range sentinels {
			if got := errors.Is(err, other); got != (other == sent) {
				t.Errorf("answer for %v: errors.Is(%v, %v) = %v, want %v", sent, err, other, got, other == sent)
			}
		}
		status, code := apikeyhttp.Status(sent)
		var e *apikeyclient.Error
		if !errors.As(err, &e) || e.Status != status || e.Code != code {
			t.Errorf("answer for %v: got %#v, want an *Error %d %s", sent, err, status, code)
		}
		if strings.Contains(err.Error(), secretToken) || strings.Contains(err.Error(), "internal text") {
			t.Errorf("answer for %v: error %q carries internal text", sent, err)
		}
	}

	// The refusal of a change to a revoked key is not a bad credential.
	_, err := problemStub(t, apikey.ErrFrozen).Update(ctx, "3fZ9q0LmA1bc", apikey.KeyUpdate{Name: new(string)})
	if !errors.Is(err, apikey.ErrFrozen) || errors.Is(err, apikey.ErrRevoked) {
		t.Errorf("Update of a revoked key: got %v, want ErrFrozen and not ErrRevoked", err)
	}

	// The members that make the sentinel precise come back too.
	_, err = problemStub(t, &apikey.ValidationError{Field: "name", Reason: "must not be empty"}).Get(ctx, "3fZ9q0LmA1bc")
	var ve *apikey.ValidationError
	if !errors.As(err, &ve) || ve.Field != "name" || ve.Reason != "must not be empty" {
		t.Errorf("validation problem: got %v (%+v), want name / must not be empty", err, ve)
	}
	_, err = problemStub(t, &apikeyhttp.ScopeError{Required: []string{"keys:write"}}).Get(ctx, "3fZ9q0LmA1bc")
	var se *apikeyhttp.ScopeError
	if !errors.As(err, &se) || len(se.Required) != 1 || se.Required[0] != "keys:write" {
		t.Errorf("scope problem: got %v (%+v), want keys:write", err, se)
	}
}

// TestVerifySendsDRFKeys checks that a key in DRF API Key's form (a key
// imported from it) reaches the service, while other malformed tokens are
// refused before any request.
func TestVerifySendsDRFKeys(t *testing.T) {
	const keyJSON = `{"id":"drf8AbCd1234","prefix":"drf.","name":"x","scopes":[],"created_at":"2030-01-01T00:00:00Z","state":"active"}`
	c := stub(t, 200, "application/json", `{"valid":true,"code":"","key":`+keyJSON+`}`)
	k, err := c.Verify(context.Background(), "AbCd1234.Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq")
	if err != nil || k.ID != "drf8AbCd1234" {
		t.Fatalf("Verify of a DRF key: %+v, %v", k, err)
	}
	if _, err := c.Verify(context.Background(), "AbCd1234-Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq"); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify of a malformed key: %v, want ErrInvalidKey", err)
	}
}

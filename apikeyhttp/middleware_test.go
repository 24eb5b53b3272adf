package apikeyhttp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeytest"
)

func TestCredentialForms(t *testing.T) {
	long256 := strings.Repeat("a", apikey.MaxTokenLength)
	long300 := strings.Repeat("a", 300)
	type header struct{ name, value string }
	tests := []struct {
		name    string
		cfg     apikeyhttp.Config
		target  string // default "/x"
		headers []header
		status  int
		code    apikey.Code // for refusals
		calls   []string
	}{
		// Accepted forms.
		{name: "Api-Key", headers: []header{{"Authorization", "Api-Key k"}}, status: 200, calls: []string{"k"}},
		{name: "api-key lower", headers: []header{{"Authorization", "api-key k"}}, status: 200, calls: []string{"k"}},
		{name: "API-KEY upper", headers: []header{{"Authorization", "API-KEY k"}}, status: 200, calls: []string{"k"}},
		{name: "Bearer", headers: []header{{"Authorization", "Bearer k"}}, status: 200, calls: []string{"k"}},
		{name: "bearer lower", headers: []header{{"Authorization", "bearer k"}}, status: 200, calls: []string{"k"}},
		{name: "X-Api-Key", headers: []header{{"X-Api-Key", "k"}}, status: 200, calls: []string{"k"}},
		{name: "custom header", cfg: apikeyhttp.Config{Headers: []string{"X-Api-Authorization"}},
			headers: []header{{"X-Api-Authorization", "k"}}, status: 200, calls: []string{"k"}},
		{name: "custom header not configured", headers: []header{{"X-Api-Authorization", "k"}},
			status: 401, code: "missing_key"},
		{name: "X-Api-Key off when Headers replaced", cfg: apikeyhttp.Config{Headers: []string{"X-Api-Authorization"}},
			headers: []header{{"X-Api-Key", "k"}}, status: 401, code: "missing_key"},
		{name: "custom scheme", cfg: apikeyhttp.Config{Schemes: []string{"Token"}},
			headers: []header{{"Authorization", "token k"}}, status: 200, calls: []string{"k"}},
		{name: "custom scheme replaces defaults", cfg: apikeyhttp.Config{Schemes: []string{"Token"}},
			headers: []header{{"Authorization", "Api-Key k"}}, status: 401, code: "missing_key"},
		{name: "Authorization off", cfg: apikeyhttp.Config{Schemes: []string{}},
			headers: []header{{"Authorization", "Api-Key k"}}, status: 401, code: "missing_key"},
		{name: "query enabled", cfg: apikeyhttp.Config{QueryParam: "api_key"}, target: "/x?api_key=k",
			status: 200, calls: []string{"k"}},
		{name: "query disabled", target: "/x?api_key=k", status: 401, code: "missing_key"},
		{name: "query repeated identical", cfg: apikeyhttp.Config{QueryParam: "api_key"},
			target: "/x?api_key=k&api_key=k", status: 200, calls: []string{"k"}},
		{name: "cookie enabled", cfg: apikeyhttp.Config{Cookie: "apikey"},
			headers: []header{{"Cookie", "session=s; apikey=k"}}, status: 200, calls: []string{"k"}},
		{name: "cookie disabled", headers: []header{{"Cookie", "apikey=k"}}, status: 401, code: "missing_key"},

		// Absent or empty.
		{name: "no credential", status: 401, code: "missing_key"},
		{name: "empty X-Api-Key", headers: []header{{"X-Api-Key", ""}}, status: 401, code: "missing_key"},
		{name: "blank X-Api-Key", headers: []header{{"X-Api-Key", "  \t "}}, status: 401, code: "missing_key"},
		{name: "empty Authorization", headers: []header{{"Authorization", ""}}, status: 401, code: "missing_key"},
		{name: "scheme only", headers: []header{{"Authorization", "Api-Key"}}, status: 401, code: "missing_key"},
		{name: "scheme and space", headers: []header{{"Authorization", "Api-Key "}}, status: 401, code: "missing_key"},
		{name: "empty query", cfg: apikeyhttp.Config{QueryParam: "api_key"}, target: "/x?api_key=",
			status: 401, code: "missing_key"},

		// Scheme words.
		{name: "longer word", headers: []header{{"Authorization", "XApi-Key k"}}, status: 401, code: "missing_key"},
		{name: "no separator", headers: []header{{"Authorization", "Api-Keyk"}}, status: 401, code: "missing_key"},
		{name: "prefix of scheme", headers: []header{{"Authorization", "Api k"}}, status: 401, code: "missing_key"},
		{name: "Basic alone", headers: []header{{"Authorization", "Basic dXNlcjpwYXNz"}}, status: 401, code: "missing_key"},
		{name: "Basic beside X-Api-Key", headers: []header{{"Authorization", "Basic dXNlcjpwYXNz"}, {"X-Api-Key", "k"}},
			status: 200, calls: []string{"k"}},

		// Whitespace.
		{name: "several spaces", headers: []header{{"Authorization", "Api-Key    k"}}, status: 200, calls: []string{"k"}},
		{name: "tab", headers: []header{{"Authorization", "Api-Key\tk"}}, status: 200, calls: []string{"k"}},
		{name: "surrounding whitespace", headers: []header{{"Authorization", " \tApi-Key k \t"}}, status: 200, calls: []string{"k"}},
		{name: "X-Api-Key surrounding whitespace", headers: []header{{"X-Api-Key", "  k\t"}}, status: 200, calls: []string{"k"}},
		{name: "space inside key", headers: []header{{"Authorization", "Api-Key k k2"}}, status: 401, code: "invalid_key"},
		{name: "tab inside key", headers: []header{{"X-Api-Key", "k\tk2"}}, status: 401, code: "invalid_key"},

		// Duplicates and conflicts.
		{name: "same key in Authorization and X-Api-Key",
			headers: []header{{"Authorization", "Api-Key k"}, {"X-Api-Key", "k"}}, status: 200, calls: []string{"k"}},
		{name: "same X-Api-Key twice", headers: []header{{"X-Api-Key", "k"}, {"X-Api-Key", "k"}},
			status: 200, calls: []string{"k"}},
		{name: "same Authorization twice, two schemes",
			headers: []header{{"Authorization", "Api-Key k"}, {"Authorization", "Bearer k"}}, status: 200, calls: []string{"k"}},
		{name: "Authorization and X-Api-Key differ",
			headers: []header{{"Authorization", "Api-Key k"}, {"X-Api-Key", "k2"}}, status: 400, code: "conflicting_credentials"},
		{name: "two Authorization headers differ",
			headers: []header{{"Authorization", "Api-Key k"}, {"Authorization", "Bearer k2"}}, status: 400, code: "conflicting_credentials"},
		{name: "X-Api-Key repeated with different values",
			headers: []header{{"X-Api-Key", "k"}, {"X-Api-Key", "k2"}}, status: 400, code: "conflicting_credentials"},
		{name: "header and query differ", cfg: apikeyhttp.Config{QueryParam: "api_key"}, target: "/x?api_key=k2",
			headers: []header{{"X-Api-Key", "k"}}, status: 400, code: "conflicting_credentials"},
		{name: "header and cookie differ", cfg: apikeyhttp.Config{Cookie: "apikey"},
			headers: []header{{"X-Api-Key", "k"}, {"Cookie", "apikey=k2"}}, status: 400, code: "conflicting_credentials"},
		{name: "conflict with bad key still 400",
			headers: []header{{"X-Api-Key", "k"}, {"Authorization", "Api-Key bad\x00"}}, status: 400, code: "conflicting_credentials"},
		{name: "empty value beside a key is not a conflict",
			headers: []header{{"Authorization", "Api-Key"}, {"X-Api-Key", "k"}}, status: 200, calls: []string{"k"}},

		// Malformed values never reach the verifier.
		{name: "oversized 300 bytes", headers: []header{{"X-Api-Key", long300}}, status: 401, code: "invalid_key"},
		{name: "oversized in Authorization", headers: []header{{"Authorization", "Api-Key " + long300}}, status: 401, code: "invalid_key"},
		{name: "MaxTokenLength reaches verifier", headers: []header{{"X-Api-Key", long256}}, status: 401, code: "invalid_key",
			calls: []string{long256}},
		{name: "NUL", headers: []header{{"X-Api-Key", "k\x00"}}, status: 401, code: "invalid_key"},
		{name: "DEL", headers: []header{{"Authorization", "Api-Key k\x7f"}}, status: 401, code: "invalid_key"},
		{name: "newline", headers: []header{{"X-Api-Key", "k\nX-Evil: 1"}}, status: 401, code: "invalid_key"},
		{name: "carriage return", headers: []header{{"Authorization", "Api-Key k\r"}}, status: 401, code: "invalid_key"},
		{name: "non-ASCII", headers: []header{{"Authorization", "Api-Key ключ"}}, status: 401, code: "invalid_key"},
		{name: "high byte", headers: []header{{"X-Api-Key", "k\xff"}}, status: 401, code: "invalid_key"},
		{name: "control char in query", cfg: apikeyhttp.Config{QueryParam: "api_key"}, target: "/x?api_key=k%00",
			status: 401, code: "invalid_key"},

		// Well-formed but unknown.
		{name: "unknown key", headers: []header{{"X-Api-Key", "nope"}}, status: 401, code: "invalid_key", calls: []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newFake()
			h := mustNew(t, v, tt.cfg).Handler(echo)
			target := tt.target
			if target == "" {
				target = "/x"
			}
			r := httptest.NewRequest("GET", target, nil)
			for _, hd := range tt.headers {
				r.Header[hd.name] = append(r.Header[hd.name], hd.value) // raw, unvalidated
			}
			w := serve(h, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tt.status, w.Body)
			}
			if got := v.called(); !slices.Equal(got, tt.calls) {
				t.Errorf("verifier calls = %q, want %q", got, tt.calls)
			}
			if tt.status == 200 {
				if got, want := w.Body.String(), "key:id_k"; got != want {
					t.Errorf("body = %q, want %q", got, want)
				}
				return
			}
			if p := problem(t, w); p.Code != tt.code {
				t.Errorf("code = %q, want %q", p.Code, tt.code)
			}
			challenge := w.Header().Get("WWW-Authenticate")
			if tt.status == 401 && challenge == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			if tt.status != 401 && challenge != "" {
				t.Errorf("%d with WWW-Authenticate %q", tt.status, challenge)
			}
		})
	}
}

func TestVerifierErrors(t *testing.T) {
	const secret = "internal: dial tcp 10.0.0.7:5432: connection refused"
	tests := []struct {
		name   string
		err    error
		status int
		code   apikey.Code
	}{
		{"invalid", fmt.Errorf("%w: bad checksum (%s)", apikey.ErrInvalidKey, secret), 401, "invalid_key"},
		{"expired", apikey.ErrExpired, 401, "key_expired"},
		{"revoked", apikey.ErrRevoked, 401, "key_revoked"},
		{"unavailable", fmt.Errorf("%w: lookup: %s", apikey.ErrUnavailable, secret), 503, "unavailable"},
		{"unexpected", errors.New(secret), 503, "unavailable"},
		{"context deadline", context.DeadlineExceeded, 503, "unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &fakeVerifier{err: tt.err}
			h := mustNew(t, v, apikeyhttp.Config{Realm: "billing", Logger: discard()}).Handler(echo)
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set("Authorization", "Api-Key k")
			w := serve(h, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if p := problem(t, w); p.Code != tt.code {
				t.Errorf("code = %q, want %q", p.Code, tt.code)
			}
			if strings.Contains(w.Body.String(), "10.0.0.7") || strings.Contains(w.Body.String(), "apikey:") {
				t.Errorf("body leaks internal error text: %s", w.Body)
			}
			switch tt.status {
			case 401:
				if got, want := w.Header().Get("WWW-Authenticate"), `Api-Key realm="billing", Bearer realm="billing"`; got != want {
					t.Errorf("WWW-Authenticate = %q, want %q", got, want)
				}
				if got := w.Header().Get("Retry-After"); got != "" {
					t.Errorf("401 with Retry-After %q", got)
				}
			case 503:
				if got, want := w.Header().Get("Retry-After"), "5"; got != want {
					t.Errorf("Retry-After = %q, want %q", got, want)
				}
			}
		})
	}
}

func TestVerifierReturnsNothing(t *testing.T) {
	v := apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) { return nil, nil })
	h := mustNew(t, v, apikeyhttp.Config{Logger: discard()}).Handler(echo)
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Api-Key", "k")
	w := serve(h, r)
	if w.Code != 503 {
		t.Fatalf("status = %d, want 503: a verifier returning (nil, nil) must never grant", w.Code)
	}
}

func TestRetryAfter(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "5"}, {time.Second, "1"}, {1500 * time.Millisecond, "2"}, {time.Millisecond, "1"}, {2 * time.Minute, "120"}} {
		v := &fakeVerifier{err: apikey.ErrUnavailable}
		h := mustNew(t, v, apikeyhttp.Config{RetryAfter: tt.d, Logger: discard()}).Handler(echo)
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Api-Key", "k")
		if got := serve(h, r).Header().Get("Retry-After"); got != tt.want {
			t.Errorf("RetryAfter %v: Retry-After = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestChallengeFollowsSchemes(t *testing.T) {
	for _, tt := range []struct {
		cfg  apikeyhttp.Config
		want string
	}{
		{apikeyhttp.Config{}, `Api-Key realm="api", Bearer realm="api"`},
		{apikeyhttp.Config{Schemes: []string{"Token"}, Realm: "x y"}, `Token realm="x y"`},
		{apikeyhttp.Config{Schemes: []string{}}, `Api-Key realm="api"`},
	} {
		h := mustNew(t, newFake(), tt.cfg).Handler(echo)
		w := serve(h, httptest.NewRequest("GET", "/x", nil))
		if got := w.Header().Get("WWW-Authenticate"); got != tt.want {
			t.Errorf("%+v: WWW-Authenticate = %q, want %q", tt.cfg, got, tt.want)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	v := newFake()
	tests := []struct {
		name string
		v    apikey.Verifier
		cfg  apikeyhttp.Config
	}{
		{"nil verifier", nil, apikeyhttp.Config{}},
		{"nil VerifierFunc", apikey.VerifierFunc(nil), apikeyhttp.Config{}},
		{"empty scheme", v, apikeyhttp.Config{Schemes: []string{""}}},
		{"scheme with space", v, apikeyhttp.Config{Schemes: []string{"Api Key"}}},
		{"duplicate scheme", v, apikeyhttp.Config{Schemes: []string{"Api-Key", "api-key"}}},
		{"empty header", v, apikeyhttp.Config{Headers: []string{""}}},
		{"header with colon", v, apikeyhttp.Config{Headers: []string{"X-Api-Key:"}}},
		{"header with newline", v, apikeyhttp.Config{Headers: []string{"X-Api\nKey"}}},
		{"Authorization as header", v, apikeyhttp.Config{Headers: []string{"authorization"}}},
		{"Cookie as header", v, apikeyhttp.Config{Headers: []string{"Cookie"}}},
		{"duplicate header", v, apikeyhttp.Config{Headers: []string{"X-Api-Key", "x-api-key"}}},
		{"query with equals", v, apikeyhttp.Config{QueryParam: "a=b"}},
		{"query with space", v, apikeyhttp.Config{QueryParam: "api key"}},
		{"bad cookie name", v, apikeyhttp.Config{Cookie: "api;key"}},
		{"no source", v, apikeyhttp.Config{Schemes: []string{}, Headers: []string{}}},
		{"realm with quote", v, apikeyhttp.Config{Realm: `a"b`}},
		{"realm with backslash", v, apikeyhttp.Config{Realm: `a\b`}},
		{"realm with newline", v, apikeyhttp.Config{Realm: "a\nb"}},
		{"negative RetryAfter", v, apikeyhttp.Config{RetryAfter: -time.Second}},
	}
	for _, tt := range tests {
		if m, err := apikeyhttp.New(tt.v, tt.cfg); err == nil || m != nil {
			t.Errorf("%s: New = %v, %v; want nil and an error", tt.name, m, err)
		}
	}
	if _, err := apikeyhttp.New(v, apikeyhttp.Config{Schemes: []string{}, Headers: []string{}, Cookie: "k"}); err != nil {
		t.Errorf("cookie as the only source: %v", err)
	}
}

func TestOptional(t *testing.T) {
	v := newFake()
	h := mustNew(t, v, apikeyhttp.Config{Optional: true}).Handler(echo)
	tests := []struct {
		name   string
		header [2]string
		status int
		body   string
		code   apikey.Code
	}{
		{"no credential passes anonymously", [2]string{}, 200, "anonymous", ""},
		{"other scheme passes anonymously", [2]string{"Authorization", "Basic dXNlcjpwYXNz"}, 200, "anonymous", ""},
		{"empty value passes anonymously", [2]string{"X-Api-Key", ""}, 200, "anonymous", ""},
		{"valid key", [2]string{"X-Api-Key", "k"}, 200, "key:id_k", ""},
		{"bad key is refused", [2]string{"X-Api-Key", "nope"}, 401, "", "invalid_key"},
		{"malformed key is refused", [2]string{"X-Api-Key", "k\x00"}, 401, "", "invalid_key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/x", nil)
			if tt.header[0] != "" {
				r.Header[tt.header[0]] = []string{tt.header[1]}
			}
			w := serve(h, r)
			if w.Code != tt.status {
				t.Fatalf("status = %d, want %d", w.Code, tt.status)
			}
			if tt.status == 200 {
				if got := w.Body.String(); got != tt.body {
					t.Errorf("body = %q, want %q", got, tt.body)
				}
				return
			}
			if p := problem(t, w); p.Code != tt.code {
				t.Errorf("code = %q, want %q", p.Code, tt.code)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	errOrg := errors.New("owner is not the organisation in the path")
	authorize := func(r *http.Request, k *apikey.Key) error {
		if got, ok := apikey.FromContext(r.Context()); !ok || got.ID != k.ID {
			t.Errorf("Authorize: context key = %v, %v; want %s", got, ok, k.ID)
		}
		switch r.URL.Path {
		case "/orgs/acme":
			if k.Owner == "acme" {
				return nil
			}
			return errOrg
		case "/down":
			return fmt.Errorf("org lookup: %w", apikey.ErrUnavailable)
		case "/scope":
			return &apikeyhttp.ScopeError{Required: []string{"orgs:admin"}}
		case "/revoked":
			return apikey.ErrRevoked // a hook refusal is never a 401
		}
		return nil
	}
	v := newFake()
	v.keys["acme"] = &apikey.Key{ID: "id_acme", Owner: "acme"}
	var gotErr error
	h := mustNew(t, v, apikeyhttp.Config{
		Authorize: authorize,
		Logger:    discard(),
		ErrorWriter: func(w http.ResponseWriter, r *http.Request, err error) {
			gotErr = err
			apikeyhttp.WriteError(w, r, err)
		},
	}).Handler(echo)
	tests := []struct {
		path, key string
		status    int
		code      apikey.Code
	}{
		{"/orgs/acme", "acme", 200, ""},
		{"/orgs/acme", "k", 403, "forbidden"},
		{"/down", "k", 503, "unavailable"},
		{"/scope", "k", 403, "insufficient_scope"},
		{"/revoked", "k", 403, "forbidden"},
	}
	for _, tt := range tests {
		gotErr = nil
		r := httptest.NewRequest("GET", tt.path, nil)
		r.Header.Set("X-Api-Key", tt.key)
		w := serve(h, r)
		if w.Code != tt.status {
			t.Errorf("%s with %s: status = %d, want %d", tt.path, tt.key, w.Code, tt.status)
			continue
		}
		if tt.status == 200 {
			continue
		}
		p := problem(t, w)
		if p.Code != tt.code {
			t.Errorf("%s: code = %q, want %q", tt.path, p.Code, tt.code)
		}
		if strings.Contains(w.Body.String(), "organisation") {
			t.Errorf("%s: body leaks the hook's error text: %s", tt.path, w.Body)
		}
	}
	// The hook's own error reaches a custom ErrorWriter.
	r := httptest.NewRequest("GET", "/orgs/acme", nil)
	r.Header.Set("X-Api-Key", "k")
	serve(h, r)
	if !errors.Is(gotErr, errOrg) || !errors.Is(gotErr, apikeyhttp.ErrForbidden) {
		t.Errorf("ErrorWriter got %v, want an error matching both the hook's error and ErrForbidden", gotErr)
	}
}

func TestStripCredentials(t *testing.T) {
	v := newFake()
	var seen *http.Request
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r })
	cfg := apikeyhttp.Config{StripCredentials: true, QueryParam: "api_key", Cookie: "apikey"}
	h := mustNew(t, v, cfg).Handler(next)

	r := httptest.NewRequest("GET", "/x?api_key=k&page=2", nil)
	r.Header.Add("Authorization", "Api-Key k")
	r.Header.Add("Authorization", "Basic dXNlcjpwYXNz")
	r.Header.Set("X-Api-Key", "k")
	r.Header.Set("Cookie", "session=s; apikey=k")
	r.Header.Set("Accept", "application/json")
	before := r.Header.Clone()
	if w := serve(h, r); w.Code != 200 {
		t.Fatalf("status = %d", w.Code)
	}
	if seen == nil {
		t.Fatal("next not called")
	}
	if got, want := seen.Header.Values("Authorization"), []string{"Basic dXNlcjpwYXNz"}; !slices.Equal(got, want) {
		t.Errorf("Authorization = %q, want %q (other schemes kept)", got, want)
	}
	if got := seen.Header.Get("X-Api-Key"); got != "" {
		t.Errorf("X-Api-Key = %q, want it removed", got)
	}
	if got, want := seen.Header.Get("Cookie"), "session=s"; got != want {
		t.Errorf("Cookie = %q, want %q", got, want)
	}
	if got, want := seen.Header.Get("Accept"), "application/json"; got != want {
		t.Errorf("Accept = %q, want %q", got, want)
	}
	if got, want := seen.URL.RawQuery, "page=2"; got != want {
		t.Errorf("RawQuery = %q, want %q", got, want)
	}
	if got, want := seen.RequestURI, "/x?page=2"; got != want {
		t.Errorf("RequestURI = %q, want %q", got, want)
	}
	if k, ok := apikey.FromContext(seen.Context()); !ok || k.ID != "id_k" {
		t.Errorf("context key = %v, %v", k, ok)
	}
	// The caller's request is untouched.
	for name, vs := range before {
		if !slices.Equal(r.Header[name], vs) {
			t.Errorf("original %s = %q, want %q", name, r.Header[name], vs)
		}
	}
	if got, want := r.URL.RawQuery, "api_key=k&page=2"; got != want {
		t.Errorf("original RawQuery = %q, want %q", got, want)
	}

	// Without the option, next sees everything.
	h = mustNew(t, v, apikeyhttp.Config{}).Handler(next)
	r = httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Api-Key", "k")
	serve(h, r)
	if got := seen.Header.Get("X-Api-Key"); got != "k" {
		t.Errorf("without StripCredentials X-Api-Key = %q, want k", got)
	}
}

func TestCustomErrorWriter(t *testing.T) {
	var got []error
	ew := func(w http.ResponseWriter, r *http.Request, err error) {
		got = append(got, err)
		status, code := apikeyhttp.Status(err)
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(code))
	}
	v := newFake()
	h := mustNew(t, v, apikeyhttp.Config{ErrorWriter: ew}).Handler(apikeyhttp.RequireScopes("admin")(echo))

	w := serve(h, httptest.NewRequest("GET", "/x", nil))
	if w.Code != 401 || w.Body.String() != "missing_key" {
		t.Errorf("missing: %d %q", w.Code, w.Body)
	}
	if w.Header().Get("WWW-Authenticate") == "" {
		t.Error("custom writer: 401 without WWW-Authenticate set by the middleware")
	}
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("X-Api-Key", "k")
	w = serve(h, r)
	if w.Code != 403 || w.Body.String() != "insufficient_scope" {
		t.Errorf("scope (via RequireScopes): %d %q", w.Code, w.Body)
	}
	if len(got) != 2 || !errors.Is(got[0], apikeyhttp.ErrMissingKey) || !errors.Is(got[1], apikeyhttp.ErrInsufficientScope) {
		t.Errorf("writer got %v", got)
	}
}

func TestContextCarriesKey(t *testing.T) {
	v := newFake()
	var got *apikey.Key
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = apikey.FromContext(r.Context())
	})
	h := mustNew(t, v, apikeyhttp.Config{}).Handler(next)
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Bearer k2")
	serve(h, r)
	if got == nil || got.ID != "id_k2" || !slices.Equal(got.Scopes, []string{"users:read"}) {
		t.Errorf("FromContext = %+v, want key id_k2", got)
	}
	if _, ok := apikey.FromContext(r.Context()); ok {
		t.Error("the caller's request context was modified")
	}
}

func TestLogsNeverContainTheKey(t *testing.T) {
	token := apikeytest.ForgeToken("ak", "3fZ9q0LmA1bc", "Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3C")
	secretPart := "Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3C"
	outcomes := []struct {
		name string
		v    apikey.Verifier
		want string // an outcome that must appear in the log
	}{
		{"granted", apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) {
			return &apikey.Key{ID: "3fZ9q0LmA1bc"}, nil
		}), "granted"},
		{"invalid", &fakeVerifier{err: apikey.ErrInvalidKey}, "invalid_key"},
		{"revoked", &fakeVerifier{err: apikey.ErrRevoked}, "key_revoked"},
		{"unavailable quoting the key", apikey.VerifierFunc(func(_ context.Context, tok string) (*apikey.Key, error) {
			return nil, fmt.Errorf("%w: query failed for token %s", apikey.ErrUnavailable, tok)
		}), "unavailable"},
		{"unexpected error quoting the key", apikey.VerifierFunc(func(_ context.Context, tok string) (*apikey.Key, error) {
			return nil, errors.New("boom " + tok)
		}), "unavailable"},
	}
	for _, o := range outcomes {
		for _, form := range [][2]string{{"Authorization", "Api-Key " + token}, {"X-Api-Key", token}} {
			var buf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := mustNew(t, o.v, apikeyhttp.Config{Logger: logger}).Handler(echo)
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header.Set(form[0], form[1])
			serve(h, r)
			out := buf.String()
			if contains(out, token) || contains(out, secretPart) {
				t.Errorf("%s via %s: log contains the key:\n%s", o.name, form[0], out)
			}
			if !strings.Contains(out, "outcome="+o.want) || !strings.Contains(out, "key_id=3fZ9q0LmA1bc") {
				t.Errorf("%s via %s: log lacks outcome=%s or key_id:\n%s", o.name, form[0], o.want, out)
			}
		}
	}
	// Conflicting credentials: neither key is logged.
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h := mustNew(t, newFake(), apikeyhttp.Config{Logger: logger}).Handler(echo)
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Api-Key "+token)
	r.Header.Set("X-Api-Key", token+"x")
	serve(h, r)
	if out := buf.String(); contains(out, secretPart) || !strings.Contains(out, "conflicting_credentials") {
		t.Errorf("conflict log:\n%s", out)
	}
}

func TestDisabledLevelsAreQuiet(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	h := mustNew(t, newFake(), apikeyhttp.Config{Logger: logger}).Handler(echo)
	for _, key := range []string{"k", "nope"} {
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("X-Api-Key", key)
		serve(h, r)
	}
	if buf.Len() != 0 {
		t.Errorf("grant and refusal logged above their levels:\n%s", &buf)
	}
}

func TestHandlerPanicsOnNil(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handler(nil) did not panic")
		}
	}()
	mustNew(t, newFake(), apikeyhttp.Config{}).Handler(nil)
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestEveryByte checks, for every byte value at every offset of a key, that
// exactly the visible ASCII bytes reach the verifier.
func TestEveryByte(t *testing.T) {
	var n int
	v := apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) {
		n++
		return &apikey.Key{ID: "x"}, nil
	})
	h := mustNew(t, v, apikeyhttp.Config{}).Handler(echo)
	for b := 0; b < 256; b++ {
		for pos := 0; pos < 19; pos++ {
			key := []byte("abcdefghijklmnopqrs")
			key[pos] = byte(b)
			if pos == 0 && (b == ' ' || b == '\t') {
				continue // leading whitespace is trimmed, not refused
			}
			if pos == len(key)-1 && (b == ' ' || b == '\t') {
				continue // so is trailing whitespace
			}
			n = 0
			r := httptest.NewRequest("GET", "/x", nil)
			r.Header["X-Api-Key"] = []string{string(key)}
			w := serve(h, r)
			want := b > 0x20 && b < 0x7f
			if got := n == 1; got != want {
				t.Errorf("byte %#x at %d: verifier called = %v, want %v (status %d)", b, pos, got, want, w.Code)
			}
		}
	}
}

func TestSilentErrorWriterStillRefuses(t *testing.T) {
	silent := func(http.ResponseWriter, *http.Request, error) {}
	h := mustNew(t, newFake(), apikeyhttp.Config{ErrorWriter: silent}).Handler(echo)
	if w := serve(h, httptest.NewRequest("GET", "/x", nil)); w.Code != 401 {
		t.Errorf("status = %d, want 401", w.Code)
	}
}

func TestNewRefusesTypedNilVerifier(t *testing.T) {
	if _, err := apikeyhttp.New((*apikey.Manager)(nil), apikeyhttp.Config{}); err == nil {
		t.Error("New accepted a nil *apikey.Manager")
	}
}

// TestLogsRedactKeysInThePath pastes a key into the path during a store
// outage (and on a grant, at Debug): the refusal record names the path, and
// must cut the key there to its id.
func TestLogsRedactKeysInThePath(t *testing.T) {
	const id, secret = "3fZ9q0LmA1bc", "Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3C"
	token := apikeytest.ForgeToken("ak", id, secret)
	for _, o := range []struct {
		name string
		v    apikey.Verifier
		want string
	}{
		{"store outage", &fakeVerifier{err: fmt.Errorf("%w: lookup: connection refused", apikey.ErrUnavailable)}, "outcome=unavailable"},
		{"granted", apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) {
			return &apikey.Key{ID: id}, nil
		}), "outcome=granted"},
	} {
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		h := mustNew(t, o.v, apikeyhttp.Config{Logger: logger}).Handler(echo)
		r := httptest.NewRequest("GET", "/v1/keys/"+token+"/usage", nil)
		r.Header.Set("X-Api-Key", token)
		serve(h, r)
		out := buf.String()
		if contains(out, token) || contains(out, secret) || contains(out, secret[:16]) {
			t.Errorf("%s: the log holds the key from the path:\n%s", o.name, out)
		}
		if !strings.Contains(out, o.want) || !strings.Contains(out, "path=/v1/keys/ak_"+id+"_…/usage") {
			t.Errorf("%s: log lacks %s or the redacted path:\n%s", o.name, o.want, out)
		}
	}
}

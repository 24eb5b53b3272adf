package server_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
)

// The admin site answers NUL, invalid UTF-8 and years outside 1 to 9999
// with a form error or a failed login, on either backend; PostgreSQL,
// which refuses NUL, used to answer 503 and not count such logins.
func TestSiteBadInput(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			f := newFixture(t, options{http: true, backend: backend, admin: true})
			site := f.signIn(t)
			get := func(path string) int {
				t.Helper()
				status, body, err := f.send(request{method: "GET", path: path, site: true}, nil, site)
				if err != nil {
					t.Fatal(err)
				}
				if status >= 500 {
					t.Errorf("GET %s: %d %.300s", path, status, body)
				}
				return status
			}
			for _, path := range []string{
				"/admin/keys?q=a%00b", "/admin/keys?q=%ff", "/admin/keys?owner=%00", "/admin/keys?created_from=0000-01-01",
				"/admin/events?actor=%00", "/admin/events?actor=%c3", "/admin/events?key_id=%00",
			} {
				if got := get(path); got != http.StatusBadRequest {
					t.Errorf("GET %s: status %d, want 400", path, got)
				}
			}
			if got := get("/admin/keys?created_to=9999-12-31"); got != http.StatusOK {
				t.Errorf("GET /admin/keys?created_to=9999-12-31: status %d, want 200", got)
			}
			login := func(email, password string) int {
				t.Helper()
				form := url.Values{"email": {email}, "password": {password}}
				status, body, err := f.send(request{method: "POST", path: "/admin/login", ct: "application/x-www-form-urlencoded", body: form.Encode()}, f.ts.Client(), site)
				if err != nil {
					t.Fatal(err)
				}
				if status >= 500 {
					t.Errorf("login %q: %d %.300s", email, status, body)
				}
				return status
			}
			// Every malformed login counts against the address: after
			// DefaultAddressFailures of them even the right password waits.
			for i := range admin.DefaultAddressFailures {
				email := strconv.Itoa(i) + []string{"a\x00@example.com", "\xff@example.com", strings.Repeat("e", 400)}[i%3]
				if got := login(email, "whatever password"); got != http.StatusBadRequest {
					t.Errorf("login %q: status %d, want 400", email, got)
				}
			}
			if got := login(adminEmail, adminPassword); got != http.StatusTooManyRequests {
				t.Errorf("login after %d malformed ones: status %d, want 429", admin.DefaultAddressFailures, got)
			}
		})
	}
}

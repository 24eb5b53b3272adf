package admin_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
)

// Logins with input no account can have (not text, too long) fail like a
// wrong password, are counted by the throttle, and are not shown back.
func TestLoginMalformedInputCounted(t *testing.T) {
	s := newSite(t, func(c *admin.Config) { c.AddressFailures = 4 })
	b := s.browser()
	for _, form := range []url.Values{
		{"email": {"a\x00@example.com"}, "password": {"whatever password"}},
		{"email": {"\xff@example.com"}, "password": {"whatever password"}},
		{"email": {strings.Repeat("e", 400) + "@example.com"}, "password": {"whatever password"}},
		{"email": {adminEmail}, "password": {strings.Repeat("p", 1025)}},
	} {
		r := b.post("/admin/login", form)
		wantStatus(t, r, http.StatusBadRequest)
		if !strings.Contains(r.body, "Invalid email or password.") {
			t.Errorf("login %q: the page lacks the message:\n%s", form.Get("email"), r.body)
		}
		if strings.Contains(r.body, "\x00") || strings.Contains(r.body, "eeeeeeeeee") {
			t.Errorf("login %q: the page shows the malformed email back", form.Get("email"))
		}
	}
	// The address has used its 4 attempts: even the right password waits.
	wantStatus(t, b.login(adminEmail, adminPassword), http.StatusTooManyRequests)
}

// A password too long to be anyone's counts against the account it names.
func TestLoginOverlongPasswordCountsForAccount(t *testing.T) {
	s := newSite(t)
	b := s.browser()
	for range admin.DefaultAccountFailures {
		wantStatus(t, b.login(adminEmail, strings.Repeat("p", 1025)), http.StatusBadRequest)
	}
	wantStatus(t, b.login(adminEmail, adminPassword), http.StatusTooManyRequests)
}

// Filters and forms refuse times outside the years 1 to 9999 and text no
// store keeps with a form error (4xx), and accept the last day of 9999.
func TestAdminRefusesBadTimesAndText(t *testing.T) {
	s := newSite(t)
	b := s.loggedIn()
	for _, tc := range []struct {
		path, msg string
		status    int
	}{
		{"/admin/keys?q=a%00b", "Contains a control character.", http.StatusBadRequest},
		{"/admin/keys?q=%ff", "Not valid UTF-8.", http.StatusBadRequest},
		{"/admin/keys?owner=o%00", "Contains a control character.", http.StatusBadRequest},
		{"/admin/keys?created_from=0000-01-01", "Enter a date between the years 1 and 9999.", http.StatusBadRequest},
		{"/admin/keys?created_to=0000-12-31", "Enter a date between the years 1 and 9999.", http.StatusBadRequest},
		{"/admin/keys?created_from=0001-01-01&created_to=9999-12-31", "", http.StatusOK},
		{"/admin/events?actor=a%00", "Contains a control character.", http.StatusBadRequest},
		{"/admin/events?key_id=nope", "Not a key id", http.StatusBadRequest},
	} {
		r := b.get(tc.path)
		if r.status != tc.status || !strings.Contains(r.body, tc.msg) {
			t.Errorf("GET %s: status %d, want %d with %q; body:\n%s", tc.path, r.status, tc.status, tc.msg, r.body)
		}
	}
	for _, exp := range []string{"9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00"} {
		r := b.post("/admin/keys", url.Values{"name": {"far"}, "expires_at": {exp}})
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if !strings.Contains(r.body, "between the years 1 and 9999") {
			t.Errorf("create with expiry %s: the form lacks the error:\n%s", exp, r.body)
		}
	}
}

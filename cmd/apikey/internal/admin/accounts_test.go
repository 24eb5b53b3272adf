package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/sqlite"
)

// accounts adapts the SQLite admin store to admin.AccountStore, as the
// command does.
type accounts struct{ *sqlite.AdminStore }

func (a accounts) Users(ctx context.Context) ([]admin.User, error) {
	us, err := a.AdminStore.Users(ctx)
	out := make([]admin.User, len(us))
	for i, u := range us {
		out[i] = admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}
	}
	return out, err
}

func (a accounts) User(ctx context.Context, email string) (admin.User, error) {
	u, err := a.AdminStore.User(ctx, email)
	return admin.User{Email: u.Email, Role: u.Role, CreatedAt: u.CreatedAt, DisabledAt: u.DisabledAt, TOTPSecret: u.TOTPSecret, TwoFactor: u.TOTPSecret != "", UnlockedAt: u.UnlockedAt}, err
}

// accountSite is a site with account management, and a second user, bob,
// a viewer.
func accountSite(t *testing.T, configure ...func(*admin.Config)) (*site, accounts) {
	t.Helper()
	var acc accounts
	s := newSite(t, append([]func(*admin.Config){func(c *admin.Config) {
		acc = accounts{c.Store.(*sqlite.AdminStore)}
		c.Accounts = acc
	}}, configure...)...)
	ctx := context.Background()
	if err := admin.CreateUser(ctx, s.store.Admin(), "bob@example.com", adminPassword, fastParams, s.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := acc.SetRole(ctx, "bob@example.com", admin.RoleViewer); err != nil {
		t.Fatal(err)
	}
	return s, acc
}

func (s *site) as(email string) *browser {
	s.t.Helper()
	b := s.browser()
	if r := b.login(email, adminPassword); r.status != http.StatusSeeOther {
		s.t.Fatalf("login of %s: status %d: %s", email, r.status, r.body)
	}
	return b
}

// TestViewer checks the read-only role: every page, no change.
func TestViewer(t *testing.T) {
	s, _ := accountSite(t)
	k, _, err := s.m.Create(context.Background(), apikey.CreateParams{Name: "seen"})
	if err != nil {
		t.Fatal(err)
	}
	bob := s.as("bob@example.com")
	for _, path := range []string{"/admin/", "/admin/keys", "/admin/keys/" + k.ID, "/admin/events", "/admin/account"} {
		if r := bob.get(path); r.status != http.StatusOK {
			t.Errorf("viewer GET %s: %d", path, r.status)
		}
	}
	if r := bob.get("/admin/keys"); strings.Contains(r.body, `href="/admin/keys/new"`) || strings.Contains(r.body, "Revoke selected") {
		t.Errorf("the viewer is offered changes:\n%s", r.body)
	}
	if r := bob.get("/admin/keys/" + k.ID); strings.Contains(r.body, "/revoke\"") || !strings.Contains(r.body, "Read-only account") {
		t.Errorf("the key page offers a viewer to revoke")
	}
	for path, form := range map[string]url.Values{
		"/admin/keys":                     {"name": {"x"}},
		"/admin/keys/" + k.ID + "/revoke": {},
		"/admin/keys/revoke-selected":     {"id": {k.ID}},
		"/admin/users":                    {"email": {"eve@example.com"}, "password": {adminPassword}, "role": {"admin"}},
	} {
		if r := bob.post(path, form); r.status != http.StatusForbidden {
			t.Errorf("viewer POST %s: %d, want 403", path, r.status)
		}
	}
	if got, _ := s.m.Get(context.Background(), k.ID); got.Revoked() {
		t.Fatal("a viewer revoked a key")
	}
	if r := bob.get("/admin/users"); r.status != http.StatusForbidden {
		t.Errorf("viewer GET /admin/users: %d, want 403", r.status)
	}
}

// TestUserManagement drives the users page: create, disable (which ends
// the sessions and refuses logins), enable, reset a password, change a
// role; an admin cannot disable or demote themselves.
func TestUserManagement(t *testing.T) {
	s, acc := accountSite(t)
	ada := s.loggedIn()
	if r := ada.get("/admin/users"); r.status != http.StatusOK || !strings.Contains(r.body, "bob@example.com") {
		t.Fatalf("users page: %d", r.status)
	}
	if r := ada.post("/admin/users", url.Values{"email": {"Carol@Example.com"}, "password": {adminPassword}, "role": {"viewer"}}); r.status != http.StatusSeeOther {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	if u, err := acc.User(context.Background(), "carol@example.com"); err != nil || u.Role != admin.RoleViewer {
		t.Errorf("carol: %+v, %v", u, err)
	}
	if r := ada.post("/admin/users", url.Values{"email": {"carol@example.com"}, "password": {"short"}, "role": {"root"}}); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, "already exists") && !strings.Contains(r.body, "12") || !strings.Contains(r.body, "Choose admin or viewer") {
		t.Errorf("bad create: %d", r.status)
	}

	bob := s.as("bob@example.com")
	if r := ada.post("/admin/users/bob@example.com/disable", nil); r.status != http.StatusSeeOther {
		t.Fatalf("disable: %d", r.status)
	}
	wantRedirect(t, bob.get("/admin/keys"), "/admin/login")
	if r := s.browser().login("bob@example.com", adminPassword); r.status != http.StatusForbidden || !strings.Contains(r.body, "disabled") {
		t.Errorf("login of a disabled user: %d", r.status)
	}
	if r := s.browser().login("bob@example.com", "wrong password!"); strings.Contains(r.body, "disabled") {
		t.Error("a wrong password learns that the account is disabled")
	}
	ada.post("/admin/users/bob@example.com/enable", nil)
	bob = s.as("bob@example.com")

	if r := ada.post("/admin/users/bob@example.com/password", url.Values{"password": {"a brand new password"}}); r.status != http.StatusSeeOther {
		t.Fatalf("reset: %d", r.status)
	}
	wantRedirect(t, bob.get("/admin/keys"), "/admin/login")
	if r := s.browser().login("bob@example.com", "a brand new password"); r.status != http.StatusSeeOther {
		t.Errorf("login with the reset password: %d", r.status)
	}
	ada.post("/admin/users/bob@example.com/role", url.Values{"role": {"admin"}})
	if u, _ := acc.User(context.Background(), "bob@example.com"); u.Role != admin.RoleAdmin {
		t.Errorf("bob's role: %s", u.Role)
	}
	for _, a := range []struct {
		path string
		form url.Values
	}{{"/admin/users/" + adminEmail + "/disable", nil}, {"/admin/users/" + adminEmail + "/role", url.Values{"role": {"viewer"}}}} {
		if r := ada.post(a.path, a.form); r.status != http.StatusConflict {
			t.Errorf("%s on oneself: %d, want 409", a.path, r.status)
		}
	}
	if r := ada.post("/admin/users/nobody@example.com/disable", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown user: %d", r.status)
	}
	if r := ada.post("/admin/users/bob@example.com/explode", nil); r.status != http.StatusNotFound {
		t.Errorf("unknown action: %d", r.status)
	}
}

// TestOwnPasswordAndTwoFactor changes one's own password, then sets up
// TOTP codes, which the next login requires.
func TestOwnPasswordAndTwoFactor(t *testing.T) {
	s, acc := accountSite(t)
	ada := s.loggedIn()
	r := ada.post("/admin/account/password", url.Values{"current": {"wrong"}, "new": {"short"}, "again": {"x"}})
	if r.status != http.StatusBadRequest || !strings.Contains(r.body, "not your current password") || !strings.Contains(r.body, "at least 12") {
		t.Errorf("bad change: %d", r.status)
	}
	const next = "an entirely new password"
	r = ada.post("/admin/account/password", url.Values{"current": {adminPassword}, "new": {next}, "again": {next}})
	wantRedirect(t, r, "/admin/login?changed=1")
	if r := s.browser().login(adminEmail, adminPassword); r.status == http.StatusSeeOther {
		t.Fatal("the old password still signs in")
	}
	ada = s.browser()
	if r := ada.login(adminEmail, next); r.status != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", r.status)
	}

	page := ada.get("/admin/account")
	m := regexp.MustCompile(`name="secret" value="([A-Z2-7]{32})"`).FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no secret on the account page:\n%s", page.body)
	}
	secret := m[1]
	if r := ada.post("/admin/account/two-factor", url.Values{"secret": {secret}, "code": {"000000"}}); r.status != http.StatusBadRequest {
		t.Errorf("wrong setup code: %d", r.status)
	}
	code, _ := admin.TOTPCode(secret, s.clock.Now())
	if r := ada.post("/admin/account/two-factor", url.Values{"secret": {secret}, "code": {code}}); r.status != http.StatusSeeOther {
		t.Fatalf("setup: %d %s", r.status, r.body)
	}
	if u, _ := acc.User(context.Background(), adminEmail); !u.TwoFactor {
		t.Fatal("two-factor not stored")
	}
	b := s.browser()
	if r := b.login(adminEmail, next); r.status != http.StatusOK || !strings.Contains(r.body, "6-digit code") {
		t.Errorf("login without a code: %d", r.status)
	}
	r = b.post("/admin/login", url.Values{"email": {adminEmail}, "password": {next}, "code": {code}})
	if r.status != http.StatusSeeOther {
		t.Errorf("login with password and code: %d", r.status)
	}
}

// TestRequireTwoFactor checks that, when required, a user without codes
// reaches only their account page until they set them up.
func TestRequireTwoFactor(t *testing.T) {
	s, _ := accountSite(t, func(c *admin.Config) { c.RequireTwoFactor = true })
	ada := s.loggedIn()
	wantRedirect(t, ada.get("/admin/keys"), "/admin/account?two_factor=required")
	if r := ada.get("/admin/account"); r.status != http.StatusOK || !strings.Contains(r.body, "requires two-factor") {
		t.Errorf("account page: %d", r.status)
	}
	if r := ada.post("/admin/account/two-factor", url.Values{"action": {"off"}}); r.status != http.StatusConflict {
		t.Errorf("turning off a required two-factor: %d", r.status)
	}
	if _, err := admin.New(admin.Config{Manager: s.m, Store: s.store.Admin(), RequireTwoFactor: true}); err == nil {
		t.Error("RequireTwoFactor without Accounts was accepted")
	}
}

// TestUnlock locks an account out with 5 wrong passwords from one address,
// then has an admin unlock it on the users page: the right password gets
// in at once from that address, later failures count again, and the limit
// per address is untouched. A viewer and a cross-origin form are refused.
func TestUnlock(t *testing.T) {
	s, acc := accountSite(t, fromAddress)
	ada, bob := s.loggedIn(), s.as("bob@example.com")
	const addr = "198.51.100.7"
	lock := func() {
		t.Helper()
		for i := range admin.DefaultAccountFailures {
			wantStatus(t, s.browser().loginFrom(addr, "bob@example.com", "guess "+strconv.Itoa(i)), http.StatusOK)
		}
		wantStatus(t, s.browser().loginFrom(addr, "bob@example.com", adminPassword), http.StatusTooManyRequests)
	}
	lock()
	s.clock.Add(time.Second)

	// A viewer may not unlock, not even themselves; nor may a cross-origin
	// form.
	wantStatus(t, bob.post("/admin/users/bob@example.com/unlock", nil), http.StatusForbidden)
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/admin/users/bob@example.com/unlock", nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	wantStatus(t, ada.do(req), http.StatusForbidden)
	wantStatus(t, s.browser().loginFrom(addr, "bob@example.com", adminPassword), http.StatusTooManyRequests)
	if u, _ := acc.User(context.Background(), "bob@example.com"); u.UnlockedAt != nil {
		t.Fatalf("refused unlocks were recorded: %v", u.UnlockedAt)
	}

	if r := ada.get("/admin/users"); !strings.Contains(r.body, `action="/admin/users/bob@example.com/unlock"`) {
		t.Errorf("the users page offers no unlock:\n%s", r.body)
	}
	wantRedirect(t, ada.post("/admin/users/bob@example.com/unlock", nil), "/admin/users")
	if u, err := acc.User(context.Background(), "bob@example.com"); err != nil || u.UnlockedAt == nil || !u.UnlockedAt.Equal(s.clock.Now().UTC().Truncate(time.Microsecond)) {
		t.Errorf("unlocked_at after the unlock: %+v, %v", u, err)
	}
	if r := ada.get("/admin/users?done=user_unlock"); !strings.Contains(r.body, "unlocked") {
		t.Errorf("no notice after the unlock")
	}
	wantRedirect(t, s.browser().loginFrom(addr, "bob@example.com", adminPassword), "/admin/keys")

	// Failures after the unlock count again.
	s.clock.Add(time.Second)
	lock()

	if r := ada.post("/admin/users/nobody@example.com/unlock", nil); r.status != http.StatusNotFound {
		t.Errorf("unlock of an unknown user: %d, want 404", r.status)
	}
}

// TestDeleteOwner drives the owner page's delete button over HTTP: a
// viewer is not offered it and is refused (403), a cross-origin POST is
// refused, an admin deletes the record (the owner's keys stay), and a
// second delete finds nothing (404).
func TestDeleteOwner(t *testing.T) {
	s, _ := accountSite(t)
	ctx := context.Background()
	if _, err := s.m.SetOwner(ctx, "acme corp", apikey.OwnerUpdate{Credits: &apikey.Credits{Remaining: 9}}); err != nil {
		t.Fatal(err)
	}
	k, _, err := s.m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme corp"})
	if err != nil {
		t.Fatal(err)
	}
	const page, action = "/admin/owners/acme%20corp", "/admin/owners/acme%20corp/delete"
	bob := s.as("bob@example.com")
	if r := bob.get(page); r.status != http.StatusOK || strings.Contains(r.body, `id="delete-owner"`) {
		t.Errorf("viewer's owner page: %d, offers the delete button: %v", r.status, strings.Contains(r.body, `id="delete-owner"`))
	}
	wantStatus(t, bob.post(action, nil), http.StatusForbidden)

	ada := s.loggedIn()
	if r := ada.get(page); !strings.Contains(r.body, `action="`+action+`"`) {
		t.Errorf("the admin's owner page has no delete form:\n%s", r.body)
	}
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+action, nil)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "http://evil.example")
	wantStatus(t, ada.do(req), http.StatusForbidden)
	if _, err := s.m.Owner(ctx, "acme corp"); err != nil {
		t.Fatalf("the owner after a viewer's and a cross-origin delete: %v", err)
	}

	wantRedirect(t, ada.post(action, nil), page+"?done=owner-deleted")
	if _, err := s.m.Owner(ctx, "acme corp"); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("the owner after delete: %v, want ErrNotFound", err)
	}
	if r := ada.get(page + "?done=owner-deleted"); !strings.Contains(r.body, "limits and credits were deleted") || strings.Contains(r.body, `id="delete-owner"`) {
		t.Errorf("owner page after delete:\n%s", r.body)
	}
	if got, err := s.m.Get(ctx, k.ID); err != nil || got.Owner != "acme corp" {
		t.Errorf("the owner's key after delete: %+v, %v", got, err)
	}
	r := ada.post(action, nil)
	wantStatus(t, r, http.StatusNotFound)
	if !strings.Contains(r.body, "no limits or credits of its own") {
		t.Errorf("second delete:\n%s", r.body)
	}
	page2, err := s.m.Events(ctx, apikey.EventFilter{Type: apikey.EventOwnerDeleted})
	if err != nil || len(page2.Events) != 1 || page2.Events[0].Actor != "admin:"+adminEmail {
		t.Errorf("owner.deleted entries: %+v, %v", page2, err)
	}
}

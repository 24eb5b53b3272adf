package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-apikey/apikey"
)

// accountRoutes registers the pages of account management, when the site
// has an AccountStore.
func (h *handler) accountRoutes(mux *http.ServeMux) {
	if h.acct == nil {
		return
	}
	mux.HandleFunc("GET /admin/account", h.authed(h.accountPage))
	mux.HandleFunc("POST /admin/account/password", h.authed(h.changeOwnPassword))
	mux.HandleFunc("POST /admin/account/two-factor", h.authed(h.setupTwoFactor))
	mux.HandleFunc("GET /admin/users", h.authed(h.adminsOnly(h.usersPage)))
	mux.HandleFunc("POST /admin/users", h.authed(h.adminsOnly(h.createUser)))
	mux.HandleFunc("POST /admin/users/{email}/{action}", h.authed(h.adminsOnly(h.userAction)))
}

// adminsOnly refuses the pages of user management to viewers.
func (h *handler) adminsOnly(next func(http.ResponseWriter, *http.Request, *session)) func(http.ResponseWriter, *http.Request, *session) {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		if s.role != RoleAdmin {
			h.errorPage(w, r, s, http.StatusForbidden, "Admins only", "Only admins may manage the users of the admin site.")
			return
		}
		next(w, r, s)
	}
}

// accountData is the page of one's own account.
type accountData struct {
	User     User
	Errors   map[string]string
	Required bool   // two-factor is required and not set up yet
	Secret   string // a new two-factor secret to confirm
	URI      string // its otpauth:// URI
}

func (h *handler) accountPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.renderAccount(w, r, s, http.StatusOK, map[string]string{}, "")
}

func (h *handler) renderAccount(w http.ResponseWriter, r *http.Request, s *session, status int, errs map[string]string, secret string) {
	u, err := h.acct.User(r.Context(), s.email)
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d := accountData{User: u, Errors: errs, Required: h.require2 && !u.TwoFactor}
	if !u.TwoFactor {
		if secret == "" {
			if secret, err = NewTOTPSecret(); err != nil {
				h.fail(w, r, s, err)
				return
			}
		}
		d.Secret, d.URI = secret, TOTPURI(u.Email, secret)
	}
	h.render(w, r, status, "account", view{Title: "Your account", User: s.email, Nav: "account", Notice: accountNotice(r.URL.Query()), Data: d})
}

// changeOwnPassword changes the signed-in user's password, given the
// current one, and signs them out everywhere (this browser included).
func (h *handler) changeOwnPassword(w http.ResponseWriter, r *http.Request, s *session) {
	current, next, again := r.PostFormValue("current"), r.PostFormValue("new"), r.PostFormValue("again")
	errs := map[string]string{}
	ok, err := h.checkLogin(r.Context(), s.email, current)
	switch {
	case err != nil:
		h.fail(w, r, s, err)
		return
	case !ok:
		errs["current"] = "This is not your current password."
	}
	if err := CheckPasswordRules(next); err != nil {
		errs["new"] = "The password must be " + strings.TrimPrefix(err.Error(), ErrBadUser.Error()+": the password must be ") + "."
	} else if next != again {
		errs["again"] = "The two new passwords differ."
	}
	if len(errs) > 0 {
		h.renderAccount(w, r, s, http.StatusBadRequest, errs, "")
		return
	}
	if err := SetPassword(r.Context(), h.acct, s.email, next, h.params); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.log.Info("admin: password changed", "email", s.email)
	h.clearCookie(w, r)
	http.Redirect(w, r, "/admin/login?changed=1", http.StatusSeeOther)
}

// setupTwoFactor turns two-factor codes on (with the secret shown on the
// account page, confirmed by a code from the app) or off.
func (h *handler) setupTwoFactor(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	if r.PostFormValue("action") == "off" {
		if h.require2 {
			h.renderAccount(w, r, s, http.StatusConflict, map[string]string{"two_factor": "Two-factor sign-in is required on this site."}, "")
			return
		}
		if err := h.acct.SetTOTPSecret(ctx, s.email, ""); err != nil {
			h.fail(w, r, s, err)
			return
		}
		http.Redirect(w, r, "/admin/account?done=two_factor_off", http.StatusSeeOther)
		return
	}
	secret := r.PostFormValue("secret")
	if _, err := TOTPCode(secret, h.now()); err != nil || len(secret) != 32 {
		h.renderAccount(w, r, s, http.StatusBadRequest, map[string]string{"code": "The form was changed: start again."}, "")
		return
	}
	if !CheckTOTP(secret, r.PostFormValue("code"), h.now()) {
		h.renderAccount(w, r, s, http.StatusBadRequest, map[string]string{"code": "This code does not match: enter the 6 digits your app shows now."}, secret)
		return
	}
	if err := h.acct.SetTOTPSecret(ctx, s.email, secret); err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.log.Info("admin: two-factor sign-in set up", "email", s.email)
	http.Redirect(w, r, "/admin/account?done=two_factor_on", http.StatusSeeOther)
}

// usersData is the users page.
type usersData struct {
	Users  []User
	Self   string
	Form   newUserForm
	Errors map[string]string
}

type newUserForm struct {
	Email, Role string
}

func (h *handler) usersPage(w http.ResponseWriter, r *http.Request, s *session) {
	h.renderUsers(w, r, s, http.StatusOK, newUserForm{Role: RoleAdmin}, map[string]string{})
}

func (h *handler) renderUsers(w http.ResponseWriter, r *http.Request, s *session, status int, f newUserForm, errs map[string]string) {
	users, err := h.acct.Users(r.Context())
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.render(w, r, status, "users", view{Title: "Users", User: s.email, Nav: "users", Notice: accountNotice(r.URL.Query()),
		Data: usersData{Users: users, Self: s.email, Form: f, Errors: errs}})
}

// createUser makes a user with the password the admin typed (to be
// changed by its owner on their account page).
func (h *handler) createUser(w http.ResponseWriter, r *http.Request, s *session) {
	f := newUserForm{Email: strings.ToLower(strings.TrimSpace(r.PostFormValue("email"))), Role: r.PostFormValue("role")}
	errs := map[string]string{}
	if CheckRole(f.Role) != nil {
		errs["role"] = "Choose admin or viewer."
	}
	if err := CheckEmail(f.Email); err != nil {
		errs["email"] = "Enter an email address such as alice@example.com."
	}
	password := r.PostFormValue("password")
	if err := CheckPasswordRules(password); err != nil {
		errs["password"] = "The password must be " + strings.TrimPrefix(err.Error(), ErrBadUser.Error()+": the password must be ") + "."
	}
	if len(errs) == 0 {
		err := CreateUser(r.Context(), h.store, f.Email, password, h.params, h.now())
		switch {
		case errors.Is(err, ErrUserExists):
			errs["email"] = "A user with this email already exists."
		case err != nil:
			h.fail(w, r, s, err)
			return
		}
	}
	if len(errs) > 0 {
		h.renderUsers(w, r, s, http.StatusBadRequest, f, errs)
		return
	}
	if f.Role != RoleAdmin {
		if err := h.acct.SetRole(r.Context(), f.Email, f.Role); err != nil {
			h.fail(w, r, s, err)
			return
		}
	}
	h.log.Info("admin: user created", "email", f.Email, "role", f.Role, "by", s.email)
	http.Redirect(w, r, "/admin/users?done=user_created", http.StatusSeeOther)
}

// userAction disables, enables, unlocks or resets the password of a user,
// or changes their role. An admin cannot disable or demote themselves, so
// that the site always keeps an admin who can undo it.
func (h *handler) userAction(w http.ResponseWriter, r *http.Request, s *session) {
	email, action := strings.ToLower(r.PathValue("email")), r.PathValue("action")
	ctx := r.Context()
	if _, err := h.acct.User(ctx, email); errors.Is(err, apikey.ErrNotFound) {
		h.errorPage(w, r, s, http.StatusNotFound, "No such user", "There is no admin user with this email.")
		return
	} else if err != nil {
		h.fail(w, r, s, err)
		return
	}
	self := email == s.email
	var err error
	switch action {
	case "disable":
		if self {
			h.renderUsers(w, r, s, http.StatusConflict, newUserForm{Role: RoleAdmin}, map[string]string{"": "You cannot disable your own account."})
			return
		}
		now := h.now().UTC()
		err = h.acct.SetDisabled(ctx, email, &now)
	case "enable":
		err = h.acct.SetDisabled(ctx, email, nil)
	case "unlock":
		// Servers on this database stop counting the account's failed
		// logins before now (the per-address limit stays).
		err = h.acct.Unlock(ctx, email, h.now().UTC())
	case "role":
		role := r.PostFormValue("role")
		if CheckRole(role) != nil || self && role != RoleAdmin {
			h.renderUsers(w, r, s, http.StatusConflict, newUserForm{Role: RoleAdmin}, map[string]string{"": "Choose admin or viewer; you cannot demote yourself."})
			return
		}
		err = h.acct.SetRole(ctx, email, role)
	case "password":
		p := r.PostFormValue("password")
		if perr := CheckPasswordRules(p); perr != nil {
			h.renderUsers(w, r, s, http.StatusBadRequest, newUserForm{Role: RoleAdmin}, map[string]string{"": "The new password of " + email + " must be " + strings.TrimPrefix(perr.Error(), ErrBadUser.Error()+": the password must be ") + "."})
			return
		}
		err = SetPassword(ctx, h.acct, email, p, h.params)
	default:
		h.errorPage(w, r, s, http.StatusNotFound, "Page not found", "There is no page at this address.")
		return
	}
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	h.log.Info("admin: user changed", "email", email, "action", action, "by", s.email)
	http.Redirect(w, r, "/admin/users?done=user_"+action, http.StatusSeeOther)
}

// accountNotice is the notice of the account and users pages after a
// change.
func accountNotice(q url.Values) string {
	return map[string]string{
		"two_factor_on":  "Two-factor sign-in is on: from now on, sign in with a code from your app.",
		"two_factor_off": "Two-factor sign-in is off.",
		"user_created":   "The user was created. Give them their password by a safe channel; they can change it on their account page.",
		"user_disable":   "The user was disabled and signed out.",
		"user_enable":    "The user was enabled.",
		"user_unlock":    "The user was unlocked: their failed sign-ins so far no longer count (the limit per address stays).",
		"user_role":      "The role was changed.",
		"user_password":  "The password was reset and the user signed out.",
	}[q.Get("done")]
}

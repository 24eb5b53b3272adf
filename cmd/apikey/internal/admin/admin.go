// Package admin is the server-rendered admin site of the apikey command:
// key list with search and filters, create (the key shown once), detail,
// edit, revoke, roll, bulk revoke, the audit log and the leaks reported,
// behind a login with server-side sessions.
//
// The site is an http.Handler that serves paths under /admin/; mount it
// as it is, without stripping the prefix:
//
//	h, err := admin.New(admin.Config{Manager: m, Store: store})
//	mux.Handle("/admin/", h)
//
// Pages are html/template files embedded in the binary; they work without
// JavaScript (a small embedded script adds copy-to-clipboard buttons) and
// load nothing from other origins.
//
// Security: passwords are hashed with argon2id; a session is a random
// 32-byte token in an HttpOnly, SameSite=Lax cookie, of which the database
// keeps only the SHA-256; every login creates a new session; idle and
// absolute timeouts are enforced on the server. Failed logins are
// throttled per account and client address pair, and per client address
// (see Config.AccountFailures): a stranger's failures lock nobody else out.
// Every state-changing
// request passes http.CrossOriginProtection, and every page is sent with a
// strict Content-Security-Policy and Cache-Control: no-store. Every
// Manager call is made with apikey.WithActor(ctx, "admin:"+email) so that
// the audit log names the admin.
package admin

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/outbox"
)

// Store persists admin users and sessions. sqlite.Store and postgres.Store
// implement it. Emails are compared case-insensitively (stores keep them
// lower-cased); sessions are stored under the hex SHA-256 of their token.
// Implementations must be safe for concurrent use.
type Store interface {
	// CreateUser stores a user; an existing email yields an error
	// matching apikey.ErrDuplicateID.
	CreateUser(ctx context.Context, email, passwordHash string, at time.Time) error
	// PasswordHash returns the user's password hash, or
	// apikey.ErrNotFound.
	PasswordHash(ctx context.Context, email string) (string, error)
	// CreateSession stores a session, last seen at created.
	CreateSession(ctx context.Context, idHash, email string, created, expires time.Time) error
	// Session returns a stored session, or apikey.ErrNotFound.
	Session(ctx context.Context, idHash string) (email string, created, lastSeen, expires time.Time, err error)
	// TouchSession sets the session's last activity.
	TouchSession(ctx context.Context, idHash string, at time.Time) error
	// DeleteSession removes a session; a missing one is not an error.
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteExpiredSessions removes sessions ending at or before now
	// and those last seen before idleSince.
	DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) error
}

// CookieSecurity says when the session cookie carries the Secure attribute.
type CookieSecurity int

const (
	// SecureAuto, the zero value, marks the cookie Secure when the request
	// came over TLS (r.TLS != nil). Behind a proxy that terminates TLS,
	// use SecureAlways.
	SecureAuto CookieSecurity = iota
	// SecureAlways always marks the cookie Secure.
	SecureAlways
	// SecureNever never does: for plain-HTTP development only.
	SecureNever
)

// Default settings; see Config.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	DefaultAccountFailures = 5
	DefaultAddressFailures = 100
	DefaultFailureWindow   = 15 * time.Minute
	DefaultPageSize        = 50
)

// Config configures the admin site. Manager and Store are required; every
// other field has a documented zero value.
type Config struct {
	// Manager performs every key operation.
	Manager *apikey.Manager
	// Store keeps admin users and sessions.
	Store Store
	// Logger receives store failures and security events (failed logins,
	// throttling). Nil means slog.Default().
	Logger *slog.Logger

	// IdleTimeout ends a session after this long without a request. Zero
	// means DefaultIdleTimeout (30 minutes).
	IdleTimeout time.Duration
	// AbsoluteTimeout ends a session this long after login, whatever the
	// activity. Zero means DefaultAbsoluteTimeout (12 hours).
	AbsoluteTimeout time.Duration
	// SecureCookies says when the session cookie is marked Secure. Zero
	// means SecureAuto.
	SecureCookies CookieSecurity

	// AccountFailures is how many failed logins one account may have from
	// one client address within FailureWindow before further attempts on
	// that account from that address get 429, the right password
	// included. Zero means 5. The limit counts per (account, address) pair
	// on purpose: failures from elsewhere never lock the account's owner
	// out, whoever makes them.
	AccountFailures int
	// AddressFailures is how many failed logins one client address may
	// have within FailureWindow, whatever the accounts, before all its
	// attempts get 429. Zero means 100. With the defaults, one address gets
	// at most 5 guesses at one account and 100 in all per 15 minutes (480
	// and 9,600 a day); guessing from many addresses is bounded only by
	// their number, so passwords must be long (admin create-user asks for
	// 12 characters or more) and a proxy in front may add its own limits.
	AddressFailures int
	// FailureWindow is the sliding window of both limits. Zero means 15
	// minutes.
	FailureWindow time.Duration
	// ClientAddress returns the address that AddressFailures counts. Nil
	// means the host part of r.RemoteAddr; behind a reverse proxy, return
	// the address it reports instead.
	ClientAddress func(r *http.Request) string

	// PasswordParams are the argon2id parameters of the hash checked when
	// the email is unknown, so that an unknown user costs as much time as
	// a wrong password; use the parameters users are created with. Zero
	// means DefaultPasswordParams.
	PasswordParams PasswordParams
	// PageSize is the number of keys and events per page. Zero means 50.
	PageSize int
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time

	// Accounts, when set, enables account management: roles (a viewer
	// sees every page and changes nothing), disabled accounts (refused at
	// login, their sessions ended), two-factor codes (TOTP) at login, the
	// page of one's own account (/admin/account: password, two-factor)
	// and, for admins, the users page (/admin/users). Nil means every user
	// is an admin without two-factor.
	Accounts AccountStore
	// RequireTwoFactor sends a user without two-factor codes to their
	// account page, and nowhere else, until they have set them up. It
	// needs Accounts.
	RequireTwoFactor bool

	// Webhooks, when set, enables the webhook pages (/admin/webhooks):
	// endpoints, their deliveries and attempts, resend. Nil hides them.
	Webhooks *outbox.Service
}

// Path is where the site lives; every route is under it.
const Path = "/admin/"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

type handler struct {
	m        *apikey.Manager
	store    Store
	acct     AccountStore // nil: no account management
	require2 bool         // RequireTwoFactor
	log      *slog.Logger
	idle     time.Duration
	absolute time.Duration
	secure   CookieSecurity
	accounts int
	addrs    int
	addrOf   func(*http.Request) string
	params   PasswordParams
	pageSize int
	now      func() time.Time
	hooks    *outbox.Service

	pages    map[string]*template.Template
	throttle *throttle
	reveals  *reveals

	dummyOnce sync.Once
	dummyHash string
	// hashing bounds concurrent argon2 computations, each of which takes
	// Memory KiB.
	hashing chan struct{}

	mux     *http.ServeMux
	handler http.Handler
}

// New returns the admin site, or an error naming a missing dependency or a
// bad setting. The handler is safe for concurrent use. Throttling counters
// and the keys waiting to be shown once live in its memory: run one
// instance, or route each admin to the same one.
func New(cfg Config) (http.Handler, error) {
	if cfg.Manager == nil {
		return nil, errors.New("admin: Config.Manager is required")
	}
	if cfg.Store == nil {
		return nil, errors.New("admin: Config.Store is required")
	}
	if cfg.RequireTwoFactor && cfg.Accounts == nil {
		return nil, errors.New("admin: Config.RequireTwoFactor needs Config.Accounts")
	}
	if cfg.IdleTimeout < 0 || cfg.AbsoluteTimeout < 0 || cfg.FailureWindow < 0 ||
		cfg.AccountFailures < 0 || cfg.AddressFailures < 0 || cfg.PageSize < 0 || cfg.PageSize > apikey.MaxPageSize {
		return nil, errors.New("admin: timeouts, limits and page size must not be negative (page size at most apikey.MaxPageSize)")
	}
	h := &handler{
		m:        cfg.Manager,
		store:    cfg.Store,
		acct:     cfg.Accounts,
		require2: cfg.RequireTwoFactor,
		log:      cfg.Logger,
		idle:     or(cfg.IdleTimeout, DefaultIdleTimeout),
		absolute: or(cfg.AbsoluteTimeout, DefaultAbsoluteTimeout),
		secure:   cfg.SecureCookies,
		accounts: or(cfg.AccountFailures, DefaultAccountFailures),
		addrs:    or(cfg.AddressFailures, DefaultAddressFailures),
		addrOf:   cfg.ClientAddress,
		params:   or(cfg.PasswordParams, DefaultPasswordParams),
		pageSize: or(cfg.PageSize, DefaultPageSize),
		now:      cfg.Now,
		hooks:    cfg.Webhooks,
		hashing:  make(chan struct{}, 4),
		reveals:  newReveals(),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.addrOf == nil {
		h.addrOf = remoteHost
	}
	h.throttle = newThrottle(or(cfg.FailureWindow, DefaultFailureWindow))
	if err := h.parseTemplates(); err != nil {
		return nil, err
	}
	h.routes()
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(h.crossOrigin))
	h.handler = cop.Handler(h.mux)
	return h, nil
}

func or[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func (h *handler) routes() {
	mux := http.NewServeMux()
	h.mux = mux
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/admin/static/", http.FileServerFS(static))
	mux.Handle("GET /admin/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
	mux.HandleFunc("GET /admin/login", h.loginForm)
	mux.HandleFunc("POST /admin/login", h.login)
	mux.HandleFunc("POST /admin/logout", h.logout)
	mux.HandleFunc("GET /admin/{$}", h.authed(h.home))
	mux.HandleFunc("GET /admin/keys", h.authed(h.listKeys))
	mux.HandleFunc("GET /admin/keys/new", h.authed(h.newKeyForm))
	mux.HandleFunc("POST /admin/keys", h.authed(h.createKey))
	mux.HandleFunc("POST /admin/keys/revoke-selected", h.authed(h.bulkRevoke))
	mux.HandleFunc("GET /admin/keys/{id}", h.authed(h.showKey))
	mux.HandleFunc("GET /admin/keys/{id}/reveal", h.authed(h.reveal))
	mux.HandleFunc("GET /admin/keys/{id}/edit", h.authed(h.editKeyForm))
	mux.HandleFunc("POST /admin/keys/{id}/edit", h.authed(h.editKey))
	mux.HandleFunc("GET /admin/keys/{id}/revoke", h.authed(h.revokeForm))
	mux.HandleFunc("POST /admin/keys/{id}/revoke", h.authed(h.revokeKey))
	mux.HandleFunc("GET /admin/keys/{id}/roll", h.authed(h.rollForm))
	mux.HandleFunc("POST /admin/keys/{id}/roll", h.authed(h.rollKey))
	mux.HandleFunc("POST /admin/keys/{id}/disable", h.authed(h.disableKey))
	mux.HandleFunc("POST /admin/keys/{id}/enable", h.authed(h.enableKey))
	mux.HandleFunc("GET /admin/keys/{id}/limits", h.authed(h.keyLimitsForm))
	mux.HandleFunc("POST /admin/keys/{id}/limits", h.authed(h.editKeyLimits))
	mux.HandleFunc("POST /admin/keys/{id}/credits", h.authed(h.adjustKeyCredits))
	mux.HandleFunc("GET /admin/owners", h.authed(h.findOwner))
	mux.HandleFunc("GET /admin/owners/{owner}", h.authed(h.showOwner))
	mux.HandleFunc("POST /admin/owners/{owner}", h.authed(h.editOwner))
	mux.HandleFunc("POST /admin/owners/{owner}/credits", h.authed(h.adjustOwnerCredits))
	mux.HandleFunc("POST /admin/owners/{owner}/delete", h.authed(h.deleteOwner))
	mux.HandleFunc("GET /admin/events", h.authed(h.listEvents))
	mux.HandleFunc("GET /admin/leaks", h.authed(h.listLeaks))
	mux.HandleFunc("GET /admin/webhooks", h.authed(h.listWebhooks))
	mux.HandleFunc("POST /admin/webhooks", h.authed(h.createWebhook))
	mux.HandleFunc("GET /admin/webhooks/{id}", h.authed(h.showWebhook))
	mux.HandleFunc("GET /admin/webhooks/{id}/secret", h.authed(h.webhookSecret))
	mux.HandleFunc("POST /admin/webhooks/{id}/enabled", h.authed(h.toggleWebhook))
	mux.HandleFunc("POST /admin/webhooks/{id}/rotate", h.authed(h.rotateWebhook))
	mux.HandleFunc("POST /admin/webhooks/{id}/delete", h.authed(h.deleteWebhook))
	mux.HandleFunc("GET /admin/webhooks/{id}/deliveries/{delivery}", h.authed(h.showDelivery))
	mux.HandleFunc("POST /admin/webhooks/{id}/deliveries/{delivery}/resend", h.authed(h.resendDelivery))
	h.accountRoutes(mux)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) {
		h.errorPage(w, r, nil, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
}

// ServeHTTP sets the security headers of every response and serves r.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
	h.handler.ServeHTTP(w, r)
}

// crossOrigin answers a state-changing request that
// http.CrossOriginProtection refused.
func (h *handler) crossOrigin(w http.ResponseWriter, r *http.Request) {
	h.log.Warn("admin: cross-origin request refused", "method", r.Method, "path", apikey.Redact(r.URL.Path),
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	h.errorPage(w, r, nil, http.StatusForbidden, "Request refused",
		"This form was submitted from another site, so it was refused. Reload the page and try again from this site.")
}

// actor returns ctx naming the admin for the audit log.
func actor(ctx context.Context, s *session) context.Context {
	return apikey.WithActor(ctx, "admin:"+s.email)
}

// view is what every page template receives.
type view struct {
	Title string
	User  string // the signed-in admin, empty on the login page
	// ReadOnly hides the buttons of changes from a viewer (the server
	// refuses the changes all the same); Accounts shows the links of
	// account management.
	ReadOnly, IsAdmin, Accounts bool
	Webhooks                    bool   // show the link to the webhook pages
	Nav                         string // the current section: "keys", "new", "events", "leaks"
	Notice                      string
	Data                        any
}

func (h *handler) parseTemplates() error {
	h.pages = map[string]*template.Template{}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	for _, name := range names {
		page := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if page == "base" || page == "usage" || strings.HasPrefix(page, "_") { // parts of other pages
			continue
		}
		files := []string{"templates/base.html", "templates/usage.html", name}
		if page == "owner" || page == "limits" {
			files = append(files, "templates/_limitsform.html")
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS, files...)
		if err != nil {
			return fmt.Errorf("admin: template %s: %w", name, err)
		}
		h.pages[page] = t
	}
	return nil
}

// render writes a page with status.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, page string, v view) {
	t := h.pages[page]
	if s, ok := r.Context().Value(sessionKey{}).(*session); ok && v.User != "" {
		v.ReadOnly, v.IsAdmin, v.Accounts = s.role == RoleViewer, s.role != RoleViewer, h.acct != nil
		v.Webhooks = h.hooks != nil
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "base", v); err != nil {
		h.log.Error("admin: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

type errorData struct {
	Heading, Message string
	Status           int
}

// errorPage writes an error page. s may be nil.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, heading, message string) {
	v := view{Title: heading, Data: errorData{Heading: heading, Message: message, Status: status}}
	if s != nil {
		v.User = s.email
	}
	h.render(w, r, status, "error", v)
}

// fail answers an error that is not the user's with the status
// apikeyhttp.Status maps it to: a missing key (404), a revoked key that
// cannot be changed (409), a store failure or anything unexpected (503,
// logged), or another refusal of the Manager (logged, since the forms
// should have caught it).
func (h *handler) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, code := apikeyhttp.Status(err)
	switch code {
	case apikey.CodeNotFound:
		h.errorPage(w, r, s, status, "Key not found", "No key has this id. It may have been deleted.")
	case apikey.CodeKeyRevoked:
		h.errorPage(w, r, s, status, "Key revoked", "A revoked key cannot be changed or regenerated.")
	case apikey.CodeUnavailable:
		h.log.Error("admin: store unavailable", "path", apikey.Redact(r.URL.Path), "err", err)
		w.Header().Set("Retry-After", "30")
		h.errorPage(w, r, s, status, "Service unavailable",
			"The database could not be reached. Nothing was changed by this request unless the page says so. Try again in a moment.")
	default:
		h.log.Error("admin: unexpected error", "path", apikey.Redact(r.URL.Path), "err", err)
		h.errorPage(w, r, s, status, http.StatusText(status), "The request could not be completed.")
	}
}

// localPath returns p if it is a path of this site, else "".
func localPath(p string) string {
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || !strings.HasPrefix(u.Path, Path) ||
		strings.HasPrefix(p, "//") || strings.Contains(p, `\`) {
		return ""
	}
	return u.RequestURI()
}

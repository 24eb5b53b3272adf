package apikeyportal

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// Config configures the portal. Owner is required; every other field has a
// documented zero value. The portal reads the time from the Manager
// (apikey.Manager.Now), so expiry dates follow the Manager's clock.
type Config struct {
	// Owner returns the current user of the host application, which is
	// used as the apikey owner of the keys they manage. It is called on
	// every request except for the portal's static files. An empty owner
	// or an error means nobody is signed in: the request is redirected to
	// LoginURL, or answered with a 401 page. Errors are logged at Warn.
	Owner func(r *http.Request) (owner string, err error)

	// LoginURL, when set, is where requests without an owner are sent, with
	// a 303 redirect. It is used as is, so give an absolute path ("/login")
	// or a full URL. Empty means such requests get a 401 page.
	LoginURL string

	// Title names the portal in headings and page titles. Empty means
	// "API keys".
	Title string

	// AllowedScopes are the scopes an owner may grant to a new key, offered
	// as checkboxes; a form that names any other scope is refused. Nil
	// means the form offers no scopes and every key gets exactly
	// DefaultScopes.
	AllowedScopes []string

	// DefaultScopes are the scopes checked when the creation form opens,
	// or, without AllowedScopes, the scopes every new key gets. Each must
	// be one of AllowedScopes when those are set. Nil means none: with
	// both fields nil, portal keys have no scopes, which passes apikeyhttp
	// on every route that does not require a scope.
	DefaultScopes []string

	// MaxExpiry, when positive, is the longest lifetime an owner may give a
	// key: the form offers only the lifetimes up to it (and MaxExpiry
	// itself) and never "Never". Zero means keys may also never expire.
	// The form offers 7, 30, 90 and 365 days and, without MaxExpiry,
	// "Never"; it preselects 90 days when offered, else the longest.
	MaxExpiry time.Duration

	// Logger receives a record for every request that failed inside the
	// portal (store errors) and for Owner errors. Nil means slog.Default(),
	// looked up at each record.
	Logger *slog.Logger
}

// RevealTTL is how long the plaintext of a new key waits in memory for the
// one page view that shows it.
const RevealTTL = 10 * time.Minute

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// portal serves the pages.
type portal struct {
	m         *apikey.Manager
	cfg       Config
	title     string
	allowed   []string
	defaults  []string
	expiry    []expiryChoice
	expiryDef string
	pages     map[string]*template.Template
	reveals   *reveals
}

// New returns the portal over m, wrapped in http.CrossOriginProtection and
// the security headers described in the package documentation, or an error
// naming the first bad setting in cfg.
func New(m *apikey.Manager, cfg Config) (http.Handler, error) {
	if m == nil {
		return nil, errors.New("apikeyportal: New needs a manager")
	}
	if cfg.Owner == nil {
		return nil, errors.New("apikeyportal: Config.Owner is required: it tells the portal who is signed in")
	}
	for _, s := range cfg.AllowedScopes {
		if !apikey.ValidScope(s) {
			return nil, fmt.Errorf("apikeyportal: AllowedScopes: %q is not a valid scope", s)
		}
	}
	for _, s := range cfg.DefaultScopes {
		if !apikey.ValidScope(s) {
			return nil, fmt.Errorf("apikeyportal: DefaultScopes: %q is not a valid scope", s)
		}
		if cfg.AllowedScopes != nil && !slices.Contains(cfg.AllowedScopes, s) {
			return nil, fmt.Errorf("apikeyportal: DefaultScopes: %q is not one of AllowedScopes", s)
		}
	}
	if cfg.MaxExpiry < 0 {
		return nil, fmt.Errorf("apikeyportal: MaxExpiry must not be negative, got %v", cfg.MaxExpiry)
	}
	if cfg.MaxExpiry > 0 && cfg.MaxExpiry < time.Minute {
		return nil, fmt.Errorf("apikeyportal: MaxExpiry %v is shorter than a minute", cfg.MaxExpiry)
	}
	p := &portal{
		m:        m,
		cfg:      cfg,
		title:    cmp(cfg.Title, "API keys"),
		allowed:  slices.Clone(cfg.AllowedScopes),
		defaults: slices.Clone(cfg.DefaultScopes),
		reveals:  newReveals(),
	}
	p.expiry, p.expiryDef = expiryChoices(cfg.MaxExpiry)
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	p.pages = pages

	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	files := http.StripPrefix("/static/", http.FileServerFS(static))

	mux := http.NewServeMux()
	mux.Handle("GET /static/portal.css", files)
	mux.Handle("GET /static/copy.js", files)
	mux.Handle("GET /{$}", p.owned(p.list))
	mux.Handle("GET /new", p.owned(p.newForm))
	mux.Handle("POST /new", p.owned(p.create))
	mux.Handle("GET /{id}", p.owned(p.show))
	mux.Handle("GET /{id}/created", p.owned(p.created))
	mux.Handle("GET /{id}/revoke", p.owned(p.confirmRevoke))
	mux.Handle("POST /{id}/revoke", p.owned(p.revoke))
	mux.Handle("/", p.owned(func(w http.ResponseWriter, r *http.Request, owner string) {
		p.notFound(w, r, owner)
	}))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.errorPage(w, r, "", http.StatusForbidden, "Request refused",
			"This form was sent from another site, so it was not accepted. Go back to the portal and try again.")
	}))
	return headers(normalize(cop.Handler(mux))), nil
}

func cmp(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// normalize gives the request a path that starts with a slash, so that the
// portal works under http.StripPrefix("/keys") and StripPrefix("/keys/").
func normalize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/") {
			r2 := new(http.Request)
			*r2 = *r
			u := *r.URL
			u.Path = "/" + u.Path
			if u.RawPath != "" {
				u.RawPath = "/" + u.RawPath
			}
			r2.URL = &u
			r = r2
		}
		next.ServeHTTP(w, r)
	})
}

// headers sets the security headers of every response.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// ownedHandler is a page handler that knows the signed-in owner.
type ownedHandler func(w http.ResponseWriter, r *http.Request, owner string)

// owned runs h with the owner of the request, or sends the request to the
// login.
func (p *portal) owned(h ownedHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		owner, err := p.cfg.Owner(r)
		if err != nil {
			p.log().LogAttrs(r.Context(), slog.LevelWarn, "apikeyportal: Owner failed", slog.String("error", err.Error()))
			owner = ""
		}
		if owner == "" {
			if p.cfg.LoginURL != "" {
				http.Redirect(w, r, p.cfg.LoginURL, http.StatusSeeOther)
				return
			}
			p.errorPage(w, r, "", http.StatusUnauthorized, "Sign in required",
				"You need to be signed in to manage your API keys.")
			return
		}
		ctx := apikey.WithActor(r.Context(), "owner:"+owner)
		h(w, r.WithContext(ctx), owner)
	})
}

func (p *portal) log() *slog.Logger {
	if p.cfg.Logger != nil {
		return p.cfg.Logger
	}
	return slog.Default()
}

// errNotYours stands for "unknown id" and "another owner's key" alike.
var errNotYours = apikey.ErrNotFound

// load returns the key with id if owner owns it, and otherwise
// apikey.ErrNotFound, whether the key does not exist or is someone else's.
func (p *portal) load(ctx context.Context, owner, id string) (*apikey.Key, error) {
	k, err := p.m.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if k.Owner != owner {
		return nil, errNotYours
	}
	return k, nil
}

// base returns the relative path from the page at r to the portal root,
// ending in a slash: "./" for top-level pages, "../" one level down.
func base(r *http.Request) string {
	n := strings.Count(r.URL.EscapedPath(), "/") - 1
	if n <= 0 {
		return "./"
	}
	return strings.Repeat("../", n)
}

// redirect answers with a 303 to a location relative to the portal root.
// http.Redirect is not used because it would resolve the location against
// the path that StripPrefix already shortened.
func redirect(w http.ResponseWriter, r *http.Request, rel string) {
	w.Header().Set("Location", base(r)+rel)
	w.WriteHeader(http.StatusSeeOther)
}

// view is the data of every page.
type view struct {
	Title   string // the portal's title
	Heading string // the page's heading
	Base    string // relative path to the portal root
	Owner   string

	Notice  string
	Message string     // the body of an error page
	AtLimit string     // why the owner may not create a key now, or ""
	Usage   *usageView // the chart of the page, if any

	Keys       []*apikey.Key
	NextCursor string
	Key        *apikey.Key
	Token      string
	Form       *form
	Fixed      []string // the scopes of every new key, when owners cannot choose
	Expiry     []expiryChoice
	Scopes     []string
	Now        time.Time
}

func (p *portal) view(r *http.Request, owner, heading string) *view {
	return &view{Title: p.title, Heading: heading, Base: base(r), Owner: owner, Now: p.m.Now()}
}

// render executes a page into a buffer, so that a template error never
// sends half a page.
func (p *portal) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	var buf bytes.Buffer
	if err := p.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		p.log().LogAttrs(r.Context(), slog.LevelError, "apikeyportal: rendering a page",
			slog.String("page", page), slog.String("error", err.Error()))
		http.Error(w, "Internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage shows a short page with a heading and a sentence.
func (p *portal) errorPage(w http.ResponseWriter, r *http.Request, owner string, status int, heading, msg string) {
	v := p.view(r, owner, heading)
	v.Message = msg
	p.render(w, r, status, "error.html", v)
}

func (p *portal) notFound(w http.ResponseWriter, r *http.Request, owner string) {
	p.errorPage(w, r, owner, http.StatusNotFound, "Not found",
		"There is no such page or key among yours.")
}

// fail answers a request whose Manager call failed, with the status
// apikeyhttp.Status maps the error to: 404 for a missing key, 400 for bad
// input, and 503 for anything else. Internal error text is logged, never
// shown.
func (p *portal) fail(w http.ResponseWriter, r *http.Request, owner string, err error) {
	switch status, _ := apikeyhttp.Status(err); status {
	case http.StatusNotFound:
		p.notFound(w, r, owner)
	case http.StatusBadRequest:
		p.errorPage(w, r, owner, status, "Bad request", "The request was not understood.")
	default:
		p.log().LogAttrs(r.Context(), slog.LevelError, "apikeyportal: request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		p.errorPage(w, r, owner, http.StatusServiceUnavailable, "Temporarily unavailable",
			"Your keys cannot be reached right now. Please try again in a moment.")
	}
}

var funcs = template.FuncMap{
	"when": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"iso": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	},
	"ptr": func(t time.Time) *time.Time { return &t },
}

// parsePages parses each page together with the layout.
func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		page := strings.TrimPrefix(name, "templates/")
		if page == "layout.html" || page == "usage.html" { // partials
			continue
		}
		t, err := template.New(page).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/usage.html", name)
		if err != nil {
			return nil, fmt.Errorf("apikeyportal: %w", err)
		}
		pages[page] = t
	}
	return pages, nil
}

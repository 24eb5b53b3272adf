// Command portal is a demo host application with the apikeyportal
// self-service portal mounted at /keys/ behind a trivial login, and an API
// endpoint, /api/hello, that only answers requests carrying one of the
// portal's keys.
//
// The login is for demonstration only: it believes any user name typed into
// it and keeps it in a plain cookie. A real application plugs its own login
// into apikeyportal.Config.Owner.
//
// Usage:
//
//	go run ./examples/portal [--addr 127.0.0.1:8081] [--db FILE]
//
// The database defaults to apikey-portal-demo.db in the temporary
// directory, so that running the demo leaves nothing in the checkout.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeyportal"
	"github.com/go-apikey/apikey/sqlite"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "address to listen on")
	db := flag.String("db", filepath.Join(os.TempDir(), "apikey-portal-demo.db"), "SQLite database file, created if missing")
	flag.Parse()
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *addr, *db, logger, nil); err != nil {
		logger.Error("portal demo stopped", "error", err)
		os.Exit(1)
	}
}

// run opens the database, serves the demo on addr until ctx is done, and
// then shuts down. It logs the bound address and, when ready is not nil,
// passes the base URL to it once the server accepts connections.
func run(ctx context.Context, addr, dbPath string, logger *slog.Logger, ready func(baseURL string)) error {
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	m, err := apikey.NewManager(store, apikey.Config{MaxKeysPerOwner: 3})
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(cctx)
	}()
	h, err := newHandler(m, logger)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	base := "http://" + ln.Addr().String()
	logger.Info("portal demo listening", "addr", ln.Addr().String(), "url", base+"/")
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(base)
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// userCookie holds the demo login. DEMO ONLY: a plain, unsigned cookie that
// anyone can set to any name. Never identify users like this.
const userCookie = "demo_user"

var validUser = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// currentUser is the demo's "login system": the user name in the cookie.
func currentUser(r *http.Request) string {
	c, err := r.Cookie(userCookie)
	if err != nil || !validUser.MatchString(c.Value) {
		return ""
	}
	return c.Value
}

// newHandler returns the demo application: a home page, the demo login at
// /login, the portal at /keys/ and the key-protected /api/hello.
func newHandler(m *apikey.Manager, logger *slog.Logger) (http.Handler, error) {
	portal, err := apikeyportal.New(m, apikeyportal.Config{
		Owner: func(r *http.Request) (string, error) {
			return currentUser(r), nil
		},
		LoginURL:      "/login",
		Title:         "Demo API keys",
		AllowedScopes: []string{"hello:read", "hello:write"},
		DefaultScopes: []string{"hello:read"},
		Logger:        logger,
	})
	if err != nil {
		return nil, err
	}
	auth, err := apikeyhttp.New(m, apikeyhttp.Config{Logger: logger})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("/keys/", http.StripPrefix("/keys", portal))
	mux.Handle("GET /api/hello", auth.Handler(http.HandlerFunc(hello)))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		page(w, http.StatusOK, homePage, currentUser(r))
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		page(w, http.StatusOK, loginPage, "")
	})
	mux.HandleFunc("POST /login", login)
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: userCookie, Path: "/", MaxAge: -1})
		http.Redirect(w, r, "/", http.StatusSeeOther)
	})
	return http.NewCrossOriginProtection().Handler(mux), nil
}

// login signs in whoever claims a user name. DEMO ONLY: no password.
func login(w http.ResponseWriter, r *http.Request) {
	user := r.PostFormValue("username")
	if !validUser.MatchString(user) {
		page(w, http.StatusUnprocessableEntity, loginPage, "Use 1 to 64 letters, digits, dots, dashes or underscores.")
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: userCookie, Value: user, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
	http.Redirect(w, r, "/keys/", http.StatusSeeOther)
}

// hello greets the owner of the verified key.
func hello(w http.ResponseWriter, r *http.Request) {
	k, _ := apikey.FromContext(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Hello, %s! You called with the key %q (%s).\n", k.Owner, k.Name, k.ID)
}

func page(w http.ResponseWriter, status int, t *template.Template, data string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	t.Execute(w, data)
}

const style = `<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;font-weight:600}input{font:inherit;padding:.4rem;margin:.3rem 0 1rem}
button{font:inherit;padding:.4rem 1rem}.error{color:#b3261e;font-weight:600}.demo{background:#fff4e5;border-left:4px solid #b35c00;padding:.5rem 1rem}</style>`

var homePage = template.Must(template.New("home").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>apikey portal demo</title>` + style + `</head><body>
<h1>apikey portal demo</h1>
{{if .}}<p>Signed in as <strong>{{.}}</strong>.</p>
<p><a href="/keys/">Manage your API keys</a></p>
<p>Then call the API with one of them:</p>
<pre>curl -H "Authorization: Api-Key YOUR_KEY" http://HOST/api/hello</pre>
<form method="post" action="/logout"><button type="submit">Sign out</button></form>
{{else}}<p><a href="/login">Sign in</a> to manage your API keys.</p>{{end}}
</body></html>`))

var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in · apikey portal demo</title>` + style + `</head><body>
<h1>Sign in</h1>
<p class="demo"><strong>Demo only:</strong> this login trusts any user name and keeps it in a plain cookie.</p>
{{with .}}<p class="error" id="username-error">{{.}}</p>{{end}}
<form method="post" action="/login">
<label for="username">User name</label>
<input id="username" name="username" required maxlength="64" autocomplete="username">
<button type="submit">Sign in</button>
</form>
</body></html>`))

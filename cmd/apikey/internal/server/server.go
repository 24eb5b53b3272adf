package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/outbox"
)

// Scopes that grant access to the API.
const (
	// ScopeAdmin grants every route.
	ScopeAdmin = "apikey:admin"
	// ScopeVerify grants POST /v1/verify only.
	ScopeVerify = "apikey:verify"
)

// Limits of the service.
const (
	// MaxBodyBytes is the largest request body accepted (1 MiB); a larger
	// one gets 413 body_too_large.
	MaxBodyBytes = 1 << 20
	// MaxHeaderBytes is the header size limit of HTTPServer (64 KiB); a
	// larger header block gets 431 from net/http.
	MaxHeaderBytes = 64 << 10
)

// Timeouts of HTTPServer.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = 30 * time.Second
	IdleTimeout       = 120 * time.Second
)

// readyTimeout bounds the store ping of /readyz.
const readyTimeout = 3 * time.Second

// Pinger reports whether a dependency answers. sqlite.Store and
// postgres.Store satisfy it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config configures a Server.
type Config struct {
	// Manager holds the keys; it both protects the API and is what the API
	// manages. Required.
	Manager *apikey.Manager

	// Verifier, when set, checks the keys presented to the API and to
	// POST /v1/verify instead of the Manager: for example the Manager
	// wrapped by apikeyotel.NewVerifier. Nil means the Manager.
	Verifier apikey.Verifier

	// Pinger is checked by /readyz, usually the Manager's store. Nil means
	// /readyz reports ready whenever the process answers.
	Pinger Pinger

	// Logger receives one record per request, and the failures of the
	// store. Nil means slog.Default().
	Logger *slog.Logger

	// Metrics serves GET /metrics, usually promhttp.HandlerFor over the
	// registry of an apikeyprom.Metrics. It is public, like /healthz: bind
	// the server to a private address or filter /metrics at the proxy if
	// the counters must stay private. Nil means /metrics answers 404.
	Metrics http.Handler

	// Admin serves the admin site under /admin/ (see internal/admin). Nil
	// means no admin site: /admin/ answers 404.
	Admin http.Handler

	// LeakKeys are the public keys whose signatures POST /v1/leaks
	// accepts (see ParseLeakKeys). None means that every leak report is
	// refused (401).
	LeakKeys LeakKeys

	// LeakPolicy says what a confirmed leak does to its key. The zero
	// value revokes it.
	LeakPolicy apikey.LeakPolicy

	// KeyHeaders are the headers that carry a raw key to the API, as
	// apikeyhttp.Config.Headers: nil means X-Api-Key, empty means none.
	KeyHeaders []string

	// Webhooks manages the webhook endpoints of /v1/webhooks. Nil means
	// that the store keeps none: those routes answer 404.
	Webhooks *outbox.Service

	// KeySchemes are the Authorization schemes of a key, as
	// apikeyhttp.Config.Schemes: nil means Api-Key and Bearer, empty
	// means that Authorization is not read.
	KeySchemes []string

	// TrustedProxies are the networks of the reverse proxies in front of
	// the service, as apikeyhttp.Config.TrustedProxies: the client address
	// that the network allowlists of the calling keys are held against is
	// read from their X-Forwarded-For. Nil means none.
	TrustedProxies []netip.Prefix
}

// Server is the HTTP handler of the apikey service. Create one with New;
// it is safe for concurrent use.
type Server struct {
	m      *apikey.Manager
	v      apikey.Verifier // checks presented keys: the Manager, or Config.Verifier
	pinger Pinger
	log    *slog.Logger
	mux    *http.ServeMux

	metricsHandler http.Handler
	leakKeys       LeakKeys
	leakPolicy     apikey.LeakPolicy
	hooks          *outbox.Service
}

// access says who may call a route.
type access int

const (
	public   access = iota // anyone
	anyKey                 // any valid key
	admin                  // a key with ScopeAdmin
	verifier               // a key with ScopeAdmin or ScopeVerify
)

// route is one entry of the routing table.
type route struct {
	pattern string // an http.ServeMux pattern with a method
	access  access
	handle  func(*Server, http.ResponseWriter, *http.Request)
}

// routes is the one place where routes are declared: New registers them
// and Routes lists them (the OpenAPI test checks the document against it).
var routes = []route{
	{"POST /v1/keys", admin, (*Server).createKey},
	{"GET /v1/keys", admin, (*Server).listKeys},
	{"GET /v1/keys/{id}", admin, (*Server).getKey},
	{"PATCH /v1/keys/{id}", admin, (*Server).updateKey},
	{"DELETE /v1/keys/{id}", admin, (*Server).deleteKey},
	{"POST /v1/keys/{id}/revoke", admin, (*Server).revokeKey},
	{"POST /v1/keys/{id}/roll", admin, (*Server).rollKey},
	{"POST /v1/keys/{id}/disable", admin, (*Server).disableKey},
	{"POST /v1/keys/{id}/enable", admin, (*Server).enableKey},
	{"GET /v1/keys/{id}/usage", admin, (*Server).keyUsage},
	{"POST /v1/keys/{id}/credits", admin, (*Server).keyCredits},
	{"GET /v1/owners/{owner}", admin, (*Server).getOwner},
	{"PUT /v1/owners/{owner}", admin, (*Server).putOwner},
	{"PATCH /v1/owners/{owner}", admin, (*Server).patchOwner},
	{"DELETE /v1/owners/{owner}", admin, (*Server).deleteOwner},
	{"POST /v1/owners/{owner}/credits", admin, (*Server).ownerCredits},
	{"GET /v1/events", admin, (*Server).listEvents},
	{"POST /v1/webhooks", admin, (*Server).createWebhook},
	{"GET /v1/webhooks", admin, (*Server).listWebhooks},
	{"GET /v1/webhooks/{id}", admin, (*Server).getWebhook},
	{"PATCH /v1/webhooks/{id}", admin, (*Server).updateWebhook},
	{"DELETE /v1/webhooks/{id}", admin, (*Server).deleteWebhook},
	{"GET /v1/webhooks/{id}/deliveries", admin, (*Server).listDeliveries},
	{"GET /v1/webhooks/{id}/deliveries/{delivery}", admin, (*Server).getDelivery},
	{"POST /v1/webhooks/{id}/deliveries/{delivery}/resend", admin, (*Server).resendDelivery},
	{"POST /v1/leaks", public, (*Server).reportLeaks}, // signed instead
	{"POST /v1/verify", verifier, (*Server).verify},
	{"GET /v1/whoami", anyKey, (*Server).whoami},
	{"GET /v1/openapi.json", public, (*Server).openAPI},
	{"GET /healthz", public, (*Server).healthz},
	{"GET /readyz", public, (*Server).readyz},
	{"GET /metrics", public, (*Server).metrics},
}

// Routes returns the patterns the server registers, such as
// "POST /v1/keys", in the http.ServeMux syntax (a GET pattern also serves
// HEAD).
func Routes() []string {
	out := make([]string, len(routes))
	for i, rt := range routes {
		out[i] = rt.pattern
	}
	return out
}

// New returns a Server over cfg.Manager, or an error naming the first bad
// setting in cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Manager == nil {
		return nil, errors.New("server: New needs a Manager")
	}
	if err := cfg.LeakPolicy.Check(); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s := &Server{m: cfg.Manager, pinger: cfg.Pinger, log: cfg.Logger, mux: http.NewServeMux(), metricsHandler: cfg.Metrics,
		leakKeys: cfg.LeakKeys, leakPolicy: cfg.LeakPolicy, hooks: cfg.Webhooks}
	if s.log == nil {
		s.log = slog.Default()
	}
	// The request record says everything about a refusal; from the
	// middleware only its store failures are worth a line of their own.
	s.v = cfg.Manager
	// The key of a protected request is only read (the handlers answer
	// it, check its scopes, name it in records): the middleware may hand
	// out the cache's own record rather than a copy.
	var authV apikey.Verifier = apikey.VerifierFunc(cfg.Manager.VerifyShared)
	if cfg.Verifier != nil {
		s.v = cfg.Verifier
		authV = cfg.Verifier
	}
	auth, err := apikeyhttp.New(authV, apikeyhttp.Config{
		Logger:           slog.New(minLevel{s.log.Handler(), slog.LevelError}),
		ErrorWriter:      authError,
		StripCredentials: true,
		// The calling key's "requests" limit (and its owner's) applies to
		// every protected route, before the route's scopes are checked: a
		// key cannot probe the API faster than its limit by asking for
		// what it may not do. The Manager enforces even when Verifier
		// wraps it.
		Enforcer:       cfg.Manager,
		Headers:        cfg.KeyHeaders,
		Schemes:        cfg.KeySchemes,
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	for _, rt := range routes {
		handle := rt.handle
		var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handle(s, w, r) })
		switch rt.access {
		case admin:
			h = apikeyhttp.RequireScopes(ScopeAdmin)(h)
		case verifier:
			h = apikeyhttp.RequireAnyScope(ScopeAdmin, ScopeVerify)(h)
		}
		if rt.access != public {
			h = auth.Handler(noteKey(h))
		}
		s.mux.Handle(rt.pattern, h)
	}
	if cfg.Admin != nil {
		s.mux.Handle("/admin/", cfg.Admin)
		// A person who opens the server's address lands on the admin site.
		s.mux.Handle("GET /{$}", http.RedirectHandler("/admin/", http.StatusFound))
	}
	return s, nil
}

// HTTPServer returns an http.Server that serves s with the timeouts and
// the header limit of this package, logging its own errors to the
// Server's logger. Set Addr, or call Serve with a listener.
func (s *Server) HTTPServer() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// requestInfo collects what the request record needs from deeper
// handlers.
type requestInfo struct {
	keyID string
	code  apikey.Code
}

type infoKey struct{}

// requestState is what ServeHTTP keeps about one request.
type requestState struct {
	recorder recorder
	info     requestInfo
}

func info(r *http.Request) *requestInfo {
	if i, ok := r.Context().Value(infoKey{}).(*requestInfo); ok {
		return i
	}
	return &requestInfo{}
}

// noteKey records the id of the verified key for the request record, and
// names the key as the actor of the Manager calls the handler makes, so
// that events and the audit log say which key did what.
func noteKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k, ok := apikey.FromContext(r.Context()); ok {
			info(r).keyID = k.ID
			r = r.WithContext(apikey.WithActor(r.Context(), "key:"+k.ID))
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP routes the request, answers unknown paths and methods with
// problems, recovers panics and logs one record.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &requestState{recorder: recorder{ResponseWriter: w}} // one allocation for both
	ri, rw := &st.info, &st.recorder
	r = r.WithContext(context.WithValue(r.Context(), infoKey{}, ri))
	defer func() {
		v := recover()
		if v != nil && v != http.ErrAbortHandler {
			// A bug: log it, answer 500 if nothing was written yet, and
			// keep serving.
			s.log.LogAttrs(r.Context(), slog.LevelError, "apikey: panic serving request",
				slog.String("method", sanitize(r.Method, 20)), slog.String("path", logPath(r.URL.Path)),
				slog.String("panic", fmt.Sprint(v)), slog.String("stack", string(debug.Stack())))
			if rw.status == 0 {
				writeProblem(rw, r, &apikeyhttp.Problem{Status: http.StatusInternalServerError, Code: CodeInternal,
					Detail: "The server failed to handle the request."})
			} else {
				rw.status = http.StatusInternalServerError // for the record; the client got a cut response
			}
		}
		s.logRequest(r, rw.status, time.Since(start), ri)
		if v == http.ErrAbortHandler {
			panic(v)
		}
	}()
	s.route(rw, r)
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		s.mux.ServeHTTP(w, r) // sets the path values, which Handler does not
		return
	}
	// No route: ServeMux would answer in plain text. Ask it which of 404
	// and 405 applies, and with which Allow header.
	c := &capture{header: http.Header{}}
	h.ServeHTTP(c, r)
	if c.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", c.header.Get("Allow"))
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Detail: "The method " + sanitize(r.Method, 20) + " is not allowed here; see the Allow header."})
		return
	}
	writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusNotFound, Code: apikey.CodeNotFound,
		Detail: "No such route; see /v1/openapi.json."})
}

func (s *Server) logRequest(r *http.Request, status int, d time.Duration, ri *requestInfo) {
	if status == 0 {
		status = http.StatusOK
	}
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("method", sanitize(r.Method, 20)),
		slog.String("path", logPath(r.URL.Path)),
		slog.Int("status", status),
		slog.Duration("duration", d))
	if ri.code != "" {
		attrs = append(attrs, slog.String("code", string(ri.code)))
	}
	if ri.keyID != "" {
		attrs = append(attrs, slog.String("key_id", ri.keyID))
	}
	s.log.LogAttrs(ctx, level, "apikey: request", attrs...)
}

// logPath is the path as logged: at most 200 bytes, with anything shaped
// like a key cut to its id (a key pasted where an id belongs).
func logPath(p string) string {
	return sanitize(apikey.Redact(p), 200)
}

// sanitize cuts s to n bytes.
func sanitize(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// recorder remembers the status written through it.
type recorder struct {
	http.ResponseWriter
	status int
}

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// capture is a ResponseWriter that keeps the header and status and drops
// the body.
type capture struct {
	header http.Header
	status int
}

func (c *capture) Header() http.Header         { return c.header }
func (c *capture) Write(b []byte) (int, error) { return len(b), nil }
func (c *capture) WriteHeader(status int)      { c.status = status }

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

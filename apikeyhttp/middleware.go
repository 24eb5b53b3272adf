package apikeyhttp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// Config configures a Middleware. The zero value is usable: it reads
// `Authorization: Api-Key <key>`, `Authorization: Bearer <key>` and
// `X-Api-Key: <key>`, requires a key on every request and logs to
// slog.Default().
type Config struct {
	// Schemes are the Authorization scheme words that introduce an API key,
	// matched case-insensitively as whole words. Nil means
	// {"Api-Key", "Bearer"}; an empty non-nil slice means the Authorization
	// header is not read. An Authorization header with any other scheme
	// (Basic, Digest, ...) is not an API key credential: it is ignored, so
	// another authenticator may handle it. If your users also log in with
	// Bearer tokens (OAuth, JWT) in Optional mode, set Schemes to
	// {"Api-Key"}.
	Schemes []string

	// Headers are header names that carry the raw key, without a scheme
	// word (django-apikey used "X-Api-Authorization"). Nil means
	// {"X-Api-Key"}; an empty non-nil slice means none. Authorization may
	// not be listed here.
	Headers []string

	// QueryParam, when set, is a query parameter that may carry the key.
	// Empty (the default) means keys in URLs are not accepted: URLs end up
	// in logs, browser histories and Referer headers.
	QueryParam string

	// Cookie, when set, is the name of a cookie that may carry the key.
	// Empty (the default) means cookies are not read.
	Cookie string

	// StripCredentials removes the credentials from the request the next
	// handler sees: the Authorization values that use one of Schemes, the
	// Headers, the QueryParam (from URL, RequestURI and a parsed Form) and
	// the Cookie. Other Authorization schemes are kept. False (the default)
	// passes the request on unchanged apart from its context.
	StripCredentials bool

	// Optional lets a request that presents no key at all reach the next
	// handler without a key in its context, so that "API key or logged-in
	// user" can be composed downstream. A request that presents a key is
	// still refused if the key is bad. False (the default) answers 401
	// missing_key to such requests.
	Optional bool

	// Authorize, when set, is called after a key has been verified, with the
	// request whose context already carries the key. A non-nil error refuses
	// the request: with 503 unavailable if it matches apikey.ErrUnavailable,
	// with 403 insufficient_scope if it matches ErrInsufficientScope, and
	// otherwise with 403 forbidden (the error is wrapped with ErrForbidden,
	// so a custom ErrorWriter still sees it). This is the place for rules
	// such as "the key's owner must be the organisation in the path". Nil
	// means every verified key passes.
	Authorize func(r *http.Request, k *apikey.Key) error

	// ErrorWriter writes every refusal. Before it is called, the middleware
	// sets WWW-Authenticate on 401s and Retry-After on 503s; use Status to
	// map err. If it writes nothing, the middleware sends the bare status,
	// so a refusal never turns into an empty 200. RequireScopes and
	// RequireAnyScope downstream use it too. Nil means WriteError.
	ErrorWriter func(w http.ResponseWriter, r *http.Request, err error)

	// Logger receives one record per request: at Debug for a grant or an
	// anonymous pass-through, at Info for a refusal and at Error when the
	// key could not be verified. Records name the key id (for a refused key,
	// the id the token claims, if it is well formed), the outcome code and
	// the credential source and the path, never the key: a key pasted into
	// the path is cut to its id (see apikey.Redact). Nil means slog.Default(),
	// looked up at each record.
	Logger *slog.Logger

	// Realm is the realm of the WWW-Authenticate challenges. Empty means
	// "api". It may not contain quotes, backslashes or control characters.
	Realm string

	// RetryAfter is the delay announced in the Retry-After header of 503
	// responses, rounded up to whole seconds. Zero means 5 seconds.
	RetryAfter time.Duration

	// Scopes, when set, are required of every key, with the wildcard rules
	// of apikey.Key.HasScope, right after verification: before Authorize,
	// the rate limits and the credits, so that a request refused for its
	// scopes (403 insufficient_scope) spends nothing. RequireScopes
	// downstream runs after them instead. Nil means none.
	Scopes []string

	// RateLimit names the rate limit that the requests of this middleware's
	// routes count against, besides "requests", which every request counts
	// against (see apikey.CheckOptions). Empty means "requests" only.
	// Limits apply only when the verifier is an Enforcer (an
	// apikey.Manager) or Enforcer is set; a refusal is 429 rate_limited
	// with Retry-After, and every response where a limit applied carries
	// the RateLimit-Policy and RateLimit fields.
	RateLimit string

	// Cost is the weight of a request against RateLimit. Zero means 1.
	Cost int64

	// Credits is what a request spends from the key's (and its owner's)
	// balance of credits; zero spends nothing. A request may carry an
	// Idempotency-Key header (1 to 255 bytes of printable ASCII, else 400
	// invalid_input) so that a retry within 24 hours spends nothing more.
	// A refusal for want of credits is 429 usage_exceeded. WithLimit
	// overrides RateLimit, Cost and Credits per request.
	Credits int64

	// Enforcer applies rate limits and credits. Nil means the verifier
	// itself when it is an Enforcer (apikey.Manager is), and otherwise no
	// limits.
	Enforcer Enforcer

	// Environment, when set, is the only environment whose keys these
	// routes accept (apikey.EnvLive or apikey.EnvTest): a key of the other
	// is refused with 403 wrong_environment right after verification,
	// before scopes, Authorize, limits and credits. Empty means both (the
	// verifier may still accept one only: apikey.Config.Environment).
	Environment apikey.Environment

	// TrustedProxies are the networks of the reverse proxies in front of
	// the service, whose X-Forwarded-For entries are believed when the
	// client's address is checked against a key's network allowlist (see
	// ClientAddr). A key with an allowlist used from outside it is refused
	// with 403 ip_not_allowed, and a malformed X-Forwarded-For from a
	// trusted proxy with 400 bad_forwarded_for, both before scopes,
	// Authorize, limits and credits. Nil means none: the client is
	// RemoteAddr, and X-Forwarded-For is never read. The client address
	// is worked out only for keys that have an allowlist.
	TrustedProxies []netip.Prefix
}

// Middleware authenticates requests with API keys. Create one with New; it
// is safe for concurrent use and may wrap any number of handlers.
type Middleware struct {
	v          apikey.Verifier
	schemes    []string
	headers    []string // canonical
	query      string
	cookie     string
	strip      bool
	optional   bool
	authorize  func(*http.Request, *apikey.Key) error
	writeError func(http.ResponseWriter, *http.Request, error)
	logger     *slog.Logger
	challenge  string
	retryAfter string
	// carry is whether m rides along in the request context so that
	// RequireScopes uses m's ErrorWriter and Logger.
	carry bool
	// scopes are Config.Scopes; enforcer and limits apply the limits.
	scopes   []string
	enforcer Enforcer
	limits   apikey.CheckOptions
	// env and proxies are Config.Environment and Config.TrustedProxies.
	env     apikey.Environment
	proxies []netip.Prefix
}

// New returns a Middleware that verifies keys with v, or an error naming
// the first bad setting in cfg.
func New(v apikey.Verifier, cfg Config) (*Middleware, error) {
	if err := checkVerifier(v); err != nil {
		return nil, err
	}
	m := &Middleware{
		v:          v,
		query:      cfg.QueryParam,
		cookie:     cfg.Cookie,
		strip:      cfg.StripCredentials,
		optional:   cfg.Optional,
		authorize:  cfg.Authorize,
		writeError: cfg.ErrorWriter,
		logger:     cfg.Logger,
		carry:      cfg.ErrorWriter != nil || cfg.Logger != nil,
		scopes:     slices.Clone(cfg.Scopes),
		enforcer:   cfg.Enforcer,
		limits:     apikey.CheckOptions{RateLimit: cfg.RateLimit, Cost: cfg.Cost, Credits: cfg.Credits},
	}
	if err := checkLimits(cfg); err != nil {
		return nil, err
	}
	if cfg.Environment != "" && !cfg.Environment.Valid() {
		return nil, fmt.Errorf("apikeyhttp: Environment must be live, test or empty (both), got %q", cfg.Environment)
	}
	m.env = cfg.Environment
	var err error
	if m.proxies, err = trustedProxiesOf(cfg.TrustedProxies); err != nil {
		return nil, err
	}
	if m.enforcer == nil {
		m.enforcer, _ = v.(Enforcer)
	}
	if m.writeError == nil {
		m.writeError = WriteError
	}
	if m.schemes, err = schemesOf(cfg.Schemes); err != nil {
		return nil, err
	}
	if m.headers, err = headersOf(cfg.Headers); err != nil {
		return nil, err
	}
	if err := checkQueryAndCookie(cfg.QueryParam, cfg.Cookie); err != nil {
		return nil, err
	}
	if len(m.schemes) == 0 && len(m.headers) == 0 && m.query == "" && m.cookie == "" {
		return nil, errors.New("apikeyhttp: no credential source: Schemes, Headers, QueryParam and Cookie are all off")
	}
	if m.challenge, err = challengeOf(m.schemes, cfg.Realm); err != nil {
		return nil, err
	}
	if m.retryAfter, err = retryAfterOf(cfg.RetryAfter); err != nil {
		return nil, err
	}
	return m, nil
}

// checkVerifier refuses a nil verifier, including a typed nil.
func checkVerifier(v apikey.Verifier) error {
	if v == nil {
		return errors.New("apikeyhttp: New needs a verifier")
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Func, reflect.Map, reflect.Chan, reflect.Interface, reflect.Slice:
		if rv.IsNil() {
			return fmt.Errorf("apikeyhttp: New needs a verifier, got a nil %T", v)
		}
	}
	return nil
}

// schemesOf returns the Authorization schemes of Config.Schemes (the
// defaults when nil), checked to be distinct scheme words.
func schemesOf(in []string) ([]string, error) {
	if in == nil {
		in = []string{"Api-Key", "Bearer"}
	}
	schemes := append([]string(nil), in...)
	for i, s := range schemes {
		if !isToken(s) {
			return nil, fmt.Errorf("apikeyhttp: scheme %q is not a valid scheme word", s)
		}
		for _, t := range schemes[:i] {
			if strings.EqualFold(s, t) {
				return nil, fmt.Errorf("apikeyhttp: scheme %q is listed twice", s)
			}
		}
	}
	return schemes, nil
}

// headersOf returns the canonical names of Config.Headers (the default
// when nil), checked to be distinct header names other than Authorization
// and Cookie.
func headersOf(in []string) ([]string, error) {
	if in == nil {
		in = []string{"X-Api-Key"}
	}
	var headers []string
	for _, h := range in {
		if !isToken(h) {
			return nil, fmt.Errorf("apikeyhttp: header %q is not a valid header name", h)
		}
		c := http.CanonicalHeaderKey(h)
		switch c {
		case "Authorization":
			return nil, errors.New("apikeyhttp: Authorization is read through Schemes, not Headers")
		case "Cookie":
			return nil, errors.New("apikeyhttp: use Cookie, not Headers, to read a cookie")
		}
		if slices.Contains(headers, c) {
			return nil, fmt.Errorf("apikeyhttp: header %q is listed twice", h)
		}
		headers = append(headers, c)
	}
	return headers, nil
}

// checkQueryAndCookie checks the names of Config.QueryParam and
// Config.Cookie; empty names are off.
func checkQueryAndCookie(query, cookie string) error {
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c >= 0x7f || c == '&' || c == '=' || c == '#' || c == '%' || c == '+' || c == ';' {
			return fmt.Errorf("apikeyhttp: query parameter %q contains a reserved character", query)
		}
	}
	if cookie != "" && !isToken(cookie) {
		return fmt.Errorf("apikeyhttp: cookie %q is not a valid cookie name", cookie)
	}
	return nil
}

// challengeOf returns the WWW-Authenticate value of a 401: one challenge
// per scheme (Api-Key when there is none), in realm ("api" when empty).
func challengeOf(schemes []string, realm string) (string, error) {
	realm = cmp.Or(realm, "api")
	for i := 0; i < len(realm); i++ {
		if c := realm[i]; c < ' ' || c == 0x7f || c == '"' || c == '\\' {
			return "", fmt.Errorf("apikeyhttp: realm %q contains a quote, a backslash or a control character", realm)
		}
	}
	if len(schemes) == 0 {
		schemes = []string{"Api-Key"} // a 401 needs a challenge
	}
	var b strings.Builder
	for i, s := range schemes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(s + ` realm="` + realm + `"`)
	}
	return b.String(), nil
}

// retryAfterOf returns the Retry-After value of a 503 for
// Config.RetryAfter, in whole seconds rounded up.
func retryAfterOf(d time.Duration) (string, error) {
	switch {
	case d < 0:
		return "", fmt.Errorf("apikeyhttp: negative RetryAfter %v", d)
	case d == 0:
		return defaultRetryAfter, nil
	}
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10), nil
}

// Handler returns next wrapped by m: a request reaches next only with a
// verified key in its context (apikey.FromContext), or, in Optional mode,
// with no credential at all. It panics if next is nil.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	if next == nil {
		panic("apikeyhttp: Handler needs a handler")
	}
	return &handler{m: m, next: next}
}

type handler struct {
	m    *Middleware
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.m.serve(w, r, h.next) }

type middlewareKey struct{}

// fromContext returns the Middleware that handled the request, if it rode
// along in the context.
func fromContext(ctx context.Context) *Middleware {
	m, _ := ctx.Value(middlewareKey{}).(*Middleware)
	return m
}

// errNoKey reports a verifier that broke its contract by returning neither
// a key nor an error. It is a failure to decide, never a grant.
var errNoKey = fmt.Errorf("%w: verifier returned no key and no error", apikey.ErrUnavailable)

func (m *Middleware) serve(w http.ResponseWriter, r *http.Request, next http.Handler) {
	c := m.extract(r)
	if c.conflict {
		m.deny(w, r, ErrConflictingCredentials, c, "")
		return
	}
	if c.value == "" {
		if m.optional {
			m.logDebug(r, "anonymous", "", "")
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middlewareKey{}, m)))
			return
		}
		m.deny(w, r, ErrMissingKey, c, "")
		return
	}
	if !wellFormed(c.value) {
		// Oversized values, control characters, spaces and non-ASCII bytes
		// never reach the verifier.
		m.deny(w, r, apikey.ErrInvalidKey, c, "")
		return
	}
	k, err := m.v.Verify(r.Context(), c.value)
	if err == nil && k == nil {
		err = errNoKey
	}
	if err != nil {
		m.deny(w, r, err, c, c.value)
		return
	}
	ctx := apikey.NewContext(r.Context(), k)
	if m.carry {
		ctx = context.WithValue(ctx, middlewareKey{}, m)
	}
	r = r.WithContext(ctx)
	if m.env != "" || len(k.AllowedCIDRs) > 0 {
		if err := m.permit(r, k); err != nil {
			m.denyKey(w, r, err, c.source, k.ID, c.value)
			return
		}
	}
	if !covers(k, m.scopes, false) {
		m.denyKey(w, r, &ScopeError{Required: slices.Clone(m.scopes)}, c.source, k.ID, c.value)
		return
	}
	if m.authorize != nil {
		if err := m.authorize(r, k); err != nil {
			if !errors.Is(err, apikey.ErrUnavailable) && !errors.Is(err, ErrInsufficientScope) && !errors.Is(err, ErrForbidden) {
				err = fmt.Errorf("%w: %w", ErrForbidden, err)
			}
			m.denyKey(w, r, err, c.source, k.ID, c.value)
			return
		}
	}
	if m.enforcer != nil {
		var ok bool
		if r, ok = m.enforce(w, r, k, c.source, c.value); !ok {
			return
		}
	}
	if m.strip {
		m.stripCredentials(r)
	}
	m.logDebug(r, "granted", c.source, k.ID)
	next.ServeHTTP(w, r)
}

// permit applies the route's environment and the key's network allowlist
// (apikey.Key.Permits) with the client's address (ClientAddr).
func (m *Middleware) permit(r *http.Request, k *apikey.Key) error {
	if m.env != "" && k.Env() != m.env {
		return apikey.ErrWrongEnvironment
	}
	if len(k.AllowedCIDRs) == 0 {
		return nil
	}
	addr, err := ClientAddr(r, m.proxies)
	if err != nil {
		return err
	}
	return k.Permits("", addr)
}

// credential is what extract found: the first non-empty value and its
// source, and whether another source held a different value.
type credential struct {
	value, source string
	conflict      bool
	other         string // source of the conflicting value
}

func (c *credential) add(v, source string) {
	switch {
	case v == "":
	case c.value == "":
		c.value, c.source = v, source
	case v != c.value && !c.conflict:
		c.conflict, c.other = true, source
	}
}

// extract reads every configured source. Values are trimmed of surrounding
// spaces and tabs; empty values count as absent; identical values in
// several sources count as one.
func (m *Middleware) extract(r *http.Request) credential {
	var c credential
	if len(m.schemes) > 0 {
		for _, v := range r.Header["Authorization"] {
			if key, ok := m.parseAuthorization(v); ok {
				c.add(key, "Authorization")
			}
		}
	}
	for _, name := range m.headers {
		for _, v := range r.Header[name] {
			c.add(trim(v), name)
		}
	}
	if m.query != "" && r.URL != nil && r.URL.RawQuery != "" {
		for _, v := range r.URL.Query()[m.query] {
			c.add(trim(v), "query")
		}
	}
	if m.cookie != "" && len(r.Header["Cookie"]) > 0 {
		for _, ck := range r.CookiesNamed(m.cookie) {
			c.add(trim(ck.Value), "cookie")
		}
	}
	return c
}

// parseAuthorization splits an Authorization value into its scheme word
// and the rest. It reports ok only for one of m's schemes, matched
// case-insensitively as a whole word. Any run of spaces and tabs separates
// the scheme from the key (RFC 9110 allows 1*SP; tabs are tolerated).
func (m *Middleware) parseAuthorization(v string) (key string, ok bool) {
	v = trim(v)
	scheme, rest := v, ""
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' || v[i] == '\t' {
			scheme, rest = v[:i], trim(v[i+1:])
			break
		}
	}
	for _, s := range m.schemes {
		if strings.EqualFold(scheme, s) {
			return rest, true
		}
	}
	return "", false
}

// trim removes leading and trailing spaces and tabs (HTTP's OWS).
func trim(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// wellFormed reports whether s may be a key: at most apikey.MaxTokenLength
// bytes, all visible ASCII (0x21 to 0x7e).
func wellFormed(s string) bool {
	if len(s) > apikey.MaxTokenLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// isToken reports whether s is a non-empty RFC 9110 token, the syntax of
// scheme words, header names and cookie names.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// stripCredentials removes every credential source from r, a shallow copy
// made by WithContext, without touching the caller's request. The header
// map is copied, not its values: they are shared with the caller's request,
// capped so that an append downstream copies them (Header.Clone, which
// copies every value, cost a tenth of a protected request's allocations).
func (m *Middleware) stripCredentials(r *http.Request) {
	h := make(http.Header, len(r.Header))
	for name, vs := range r.Header {
		h[name] = vs[:len(vs):len(vs)]
	}
	if vs := h["Authorization"]; len(vs) > 0 && len(m.schemes) > 0 {
		var keep []string
		for _, v := range vs {
			if _, ours := m.parseAuthorization(v); !ours {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			delete(h, "Authorization")
		} else {
			h["Authorization"] = keep
		}
	}
	for _, name := range m.headers {
		delete(h, name)
	}
	if m.cookie != "" && len(h["Cookie"]) > 0 {
		var keep []string
		for _, ck := range r.Cookies() {
			if ck.Name != m.cookie {
				keep = append(keep, ck.String())
			}
		}
		if len(keep) == 0 {
			delete(h, "Cookie")
		} else {
			h["Cookie"] = []string{strings.Join(keep, "; ")}
		}
	}
	r.Header = h
	if m.query != "" && r.URL != nil && r.URL.RawQuery != "" {
		q := r.URL.Query()
		if _, ok := q[m.query]; ok {
			q.Del(m.query)
			u := *r.URL
			u.RawQuery = q.Encode()
			r.URL = &u
			if r.RequestURI != "" {
				r.RequestURI = u.RequestURI()
			}
		}
		if r.Form != nil {
			r.Form = maps.Clone(r.Form)
			r.Form.Del(m.query)
		}
	}
}

// deny refuses a request whose credential was not verified.
func (m *Middleware) deny(w http.ResponseWriter, r *http.Request, err error, c credential, token string) {
	source := c.source
	if c.conflict {
		source += "," + c.other
	}
	m.denyKey(w, r, err, source, "", token)
}

// denyKey logs and writes a refusal. token, when set, is the presented key:
// it is used to name the claimed key id and to scrub the error text in the
// log, and is itself never logged.
func (m *Middleware) denyKey(w http.ResponseWriter, r *http.Request, err error, source, keyID, token string) {
	err = ClientClosed(r, err)
	status, code := Status(err)
	switch status {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", m.challenge)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", m.retryAfter)
	}
	m.logRefusal(r, status, code, source, keyID, token, err)
	g := &guard{ResponseWriter: w}
	m.writeError(g, r, err)
	if !g.wrote {
		// A custom ErrorWriter that wrote nothing must not leave an empty
		// 200 behind.
		w.WriteHeader(status)
	}
}

// guard records whether an ErrorWriter wrote a response.
type guard struct {
	http.ResponseWriter
	wrote bool
}

func (g *guard) WriteHeader(status int) {
	g.wrote = true
	g.ResponseWriter.WriteHeader(status)
}

func (g *guard) Write(b []byte) (int, error) {
	g.wrote = true
	return g.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (g *guard) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (m *Middleware) log() *slog.Logger {
	if m == nil || m.logger == nil {
		return slog.Default()
	}
	return m.logger
}

func (m *Middleware) logDebug(r *http.Request, outcome, source, keyID string) {
	l := m.log()
	ctx := r.Context()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.LogAttrs(ctx, slog.LevelDebug, "apikey: request authenticated", requestAttrs(r, outcome, source, keyID)...)
}

// requestAttrs are the attributes of every record the middleware logs about
// a request: its outcome, method and path (any key in it cut to its id, see
// apikey.Redact), and where the credential came from and whose it is.
func requestAttrs(r *http.Request, outcome, source, keyID string, more ...slog.Attr) []slog.Attr {
	attrs := append([]slog.Attr{
		slog.String("outcome", outcome),
		slog.String("method", r.Method),
		slog.String("path", apikey.Redact(r.URL.Path)),
	}, more...)
	if source != "" {
		attrs = append(attrs, slog.String("source", source))
	}
	if keyID != "" {
		attrs = append(attrs, slog.String("key_id", keyID))
	}
	return attrs
}

func (m *Middleware) logRefusal(r *http.Request, status int, code apikey.Code, source, keyID, token string, err error) {
	l := m.log()
	ctx := r.Context()
	level := slog.LevelInfo
	if status >= 500 {
		level = slog.LevelError
	}
	if !l.Enabled(ctx, level) {
		return
	}
	if keyID == "" && token != "" {
		if t, perr := apikey.ParseAnyToken(token); perr == nil {
			keyID = t.ID
		}
	}
	attrs := requestAttrs(r, string(code), source, keyID, slog.Int("status", status))
	if status >= 500 || code == CodeForbidden {
		attrs = append(attrs, slog.String("error", scrub(err.Error(), token)))
	}
	l.LogAttrs(ctx, level, "apikey: request refused", attrs...)
}

// scrub replaces every occurrence of token in s, in case a verifier quoted
// the key in its error.
func scrub(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "[REDACTED]")
}

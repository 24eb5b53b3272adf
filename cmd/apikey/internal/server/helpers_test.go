package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/cmd/apikey/internal/admin"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
	"github.com/go-apikey/apikey/outbox"
	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/postgres/pgtest"
	"github.com/go-apikey/apikey/sqlite"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// logBuffer collects log output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// fixture is a server over a fresh store (SQLite unless options.backend
// says postgres), with keys made directly through the Manager.
type fixture struct {
	store  *sqlite.Store // nil on PostgreSQL
	db     backendStore  // the store, whichever it is
	m      *apikey.Manager
	srv    *server.Server
	ts     *httptest.Server // nil for in-process fixtures
	clock  *apikeytest.Clock
	logs   *logBuffer
	admin  string // a key with apikey:admin
	verify string // a key with apikey:verify only
	hooks  *outbox.Service
}

// webhookStore returns the outbox.Store of the fixture's database.
func webhookStore(db backendStore) outbox.Store {
	switch s := db.(type) {
	case *sqlite.Store:
		return s.Webhooks()
	case *postgres.Store:
		return s.Webhooks()
	}
	return nil
}

type options struct {
	cfg  apikey.Config
	http bool // start an httptest.Server
	// logTo, when set, receives the logs instead of fixture.logs.
	logTo io.Writer
	// backend is "sqlite" (the default) or "postgres" (a fresh schema of
	// APIKEY_TEST_POSTGRES_DSN; the test skips when it is not set).
	backend string
	// admin mounts the admin site under /admin/, with the user adminEmail.
	admin bool
	// leakKeys and leakPolicy configure POST /v1/leaks.
	leakKeys   server.LeakKeys
	leakPolicy apikey.LeakPolicy
}

// backendStore is what the fixture needs of a store: sqlite.Store and
// postgres.Store are both.
type backendStore interface {
	apikey.Store
	server.Pinger
}

// Admin user of fixtures with options.admin.
const (
	adminEmail    = "alice@example.com"
	adminPassword = "correct horse battery"
)

// openBackend returns a fresh, migrated store of the backend with its
// admin-site store, and the SQLite store when it is one.
func openBackend(t testing.TB, backend string) (backendStore, admin.Store, *sqlite.Store) {
	t.Helper()
	ctx := context.Background()
	switch backend {
	case "", "sqlite":
	case "postgres":
		pg := pgtest.NewStore(t)
		return pg, pg.Admin(), nil
	default:
		t.Fatalf("unknown backend %q", backend)
	}
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "apikey.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store, store.Admin(), store
}

func newFixture(t testing.TB, o options) *fixture {
	t.Helper()
	ctx := context.Background()
	db, adminStore, store := openBackend(t, o.backend)
	c := apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	cfg := o.cfg
	cfg.Now = c.Now
	// Metrics as apikey serve has them, on a registry of the fixture's own.
	reg := prometheus.NewRegistry()
	pm, err := apikeyprom.New(reg, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = pm
	}
	m, err := apikey.NewManager(db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = m.Close(cctx)
		if store != nil {
			store.Close()
		}
	})
	logs := &logBuffer{}
	var logTo io.Writer = logs
	if o.logTo != nil {
		logTo = o.logTo
	}
	log := slog.New(slog.NewTextHandler(logTo, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var site http.Handler
	if o.admin {
		params := admin.PasswordParams{Memory: 64, Time: 1, Threads: 1} // cheap in tests
		if err := admin.CreateUser(ctx, adminStore, adminEmail, adminPassword, params, c.Now()); err != nil {
			t.Fatal(err)
		}
		site, err = admin.New(admin.Config{Manager: m, Store: adminStore, Now: c.Now, PasswordParams: params, Logger: log})
		if err != nil {
			t.Fatal(err)
		}
	}
	hooks := &outbox.Service{Store: webhookStore(db), Now: c.Now}
	srv, err := server.New(server.Config{
		Webhooks:   hooks,
		Manager:    m,
		Pinger:     db,
		Logger:     log,
		Metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Admin:      site,
		LeakKeys:   o.leakKeys,
		LeakPolicy: o.leakPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{store: store, db: db, m: m, srv: srv, clock: c, logs: logs, hooks: hooks}
	_, f.admin, err = m.Create(ctx, apikey.CreateParams{Name: "admin", Scopes: []string{server.ScopeAdmin}})
	if err != nil {
		t.Fatal(err)
	}
	_, f.verify, err = m.Create(ctx, apikey.CreateParams{Name: "verifier", Scopes: []string{server.ScopeVerify}})
	if err != nil {
		t.Fatal(err)
	}
	if o.http {
		ts := httptest.NewUnstartedServer(srv)
		ts.Config = srv.HTTPServer()
		ts.Start()
		t.Cleanup(ts.Close)
		f.ts = ts
	}
	return f
}

// response is what a request got.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into v, failing the test if it is not JSON.
func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("body %q: %v", r.body, err)
	}
}

// problem is the body of an error answer.
type problem struct {
	Type           string   `json:"type"`
	Title          string   `json:"title"`
	Status         int      `json:"status"`
	Detail         string   `json:"detail"`
	Code           string   `json:"code"`
	Field          string   `json:"field"`
	Offset         *int64   `json:"offset"`
	RequiredScopes []string `json:"required_scopes"`
	Instances      []string `json:"instances"`
}

func (r response) problem(t *testing.T) problem {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type %q, want application/problem+json (status %d, body %q)", ct, r.status, r.body)
	}
	var p problem
	r.json(t, &p)
	if p.Status != r.status {
		t.Errorf("problem status %d, response status %d", p.Status, r.status)
	}
	return p
}

// key is the JSON of a key record, plaintext included when there is one.
type key struct {
	Token      string            `json:"key"`
	ID         string            `json:"id"`
	Prefix     string            `json:"prefix"`
	Name       string            `json:"name"`
	Owner      string            `json:"owner"`
	Scopes     []string          `json:"scopes"`
	Metadata   map[string]string `json:"metadata"`
	CreatedAt  time.Time         `json:"created_at"`
	ExpiresAt  *time.Time        `json:"expires_at"`
	RevokedAt  *time.Time        `json:"revoked_at"`
	LastUsedAt *time.Time        `json:"last_used_at"`
	State      string            `json:"state"`
}

// req describes one request.
type req struct {
	method, path string
	token        string // sent as Authorization: Api-Key unless header is set
	header       http.Header
	body         string
	contentType  string // default application/json when body is set
}

// do sends rq, over HTTP when the fixture has a server, else in process.
func (f *fixture) do(t *testing.T, rq req) response {
	t.Helper()
	var body io.Reader = http.NoBody
	if rq.body != "" {
		body = strings.NewReader(rq.body)
	}
	target := rq.path
	if f.ts != nil {
		target = f.ts.URL + rq.path
	} else {
		target = "http://apikey.test" + rq.path
	}
	r, err := http.NewRequest(rq.method, target, body)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	for name, values := range rq.header {
		r.Header[name] = values
	}
	if rq.token != "" {
		r.Header.Set("Authorization", "Api-Key "+rq.token)
	}
	_, explicit := rq.header["Content-Type"]
	switch {
	case explicit:
	case rq.contentType != "":
		r.Header.Set("Content-Type", rq.contentType)
	case rq.body != "":
		r.Header.Set("Content-Type", "application/json")
	}
	if f.ts == nil {
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, r)
		return response{status: w.Code, header: w.Result().Header, body: w.Body.Bytes()}
	}
	resp, err := f.ts.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.method, rq.path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// mustStatus fails the test unless r has the status.
func mustStatus(t *testing.T, r response, status int, what string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
}

// wantProblem checks that r is a problem with the status and code.
func wantProblem(t *testing.T, r response, status int, code, what string) problem {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
	}
	p := r.problem(t)
	if p.Code != code {
		t.Errorf("%s: code %q, want %q (%s)", what, p.Code, code, p.Detail)
	}
	return p
}

// create makes a key through the API.
func (f *fixture) create(t *testing.T, body string) key {
	t.Helper()
	r := f.do(t, req{method: "POST", path: "/v1/keys", token: f.admin, body: body})
	mustStatus(t, r, http.StatusCreated, "create "+body)
	var k key
	r.json(t, &k)
	return k
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

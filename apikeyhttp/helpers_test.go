package apikeyhttp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// fakeVerifier grants the tokens in keys and refuses everything else with
// apikey.ErrInvalidKey, recording what it was asked.
type fakeVerifier struct {
	mu    sync.Mutex
	keys  map[string]*apikey.Key
	err   error // returned for every token when set
	calls []string
}

func (f *fakeVerifier) Verify(_ context.Context, token string) (*apikey.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, token)
	if f.err != nil {
		return nil, f.err
	}
	if k, ok := f.keys[token]; ok {
		return k.Clone(), nil
	}
	return nil, apikey.ErrInvalidKey
}

func (f *fakeVerifier) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func newFake() *fakeVerifier {
	return &fakeVerifier{keys: map[string]*apikey.Key{
		"k":  {ID: "id_k", Scopes: []string{"billing:*", "users:read"}},
		"k2": {ID: "id_k2", Scopes: []string{"users:read"}},
	}}
}

// echo is the protected handler: it answers 200 with the id of the key in
// the context, or "anonymous".
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	if k, ok := apikey.FromContext(r.Context()); ok {
		_, _ = w.Write([]byte("key:" + k.ID))
		return
	}
	_, _ = w.Write([]byte("anonymous"))
})

func mustNew(t testing.TB, v apikey.Verifier, cfg apikeyhttp.Config) *apikeyhttp.Middleware {
	t.Helper()
	m, err := apikeyhttp.New(v, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// problem decodes an error body, failing the test if it is not a
// well-formed problem+json document matching the status.
func problem(t *testing.T, w *httptest.ResponseRecorder) apikeyhttp.Problem {
	t.Helper()
	if got, want := w.Header().Get("Content-Type"), "application/problem+json"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("Cache-Control"), "no-store"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	var p apikeyhttp.Problem
	if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	if p.Status != w.Code {
		t.Errorf("problem status = %d, response status %d", p.Status, w.Code)
	}
	if p.Type == "" || p.Title == "" || p.Code == "" || p.Detail == "" {
		t.Errorf("problem %+v lacks type, title, code or detail", p)
	}
	return p
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }

package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/ottercache"
)

// BenchmarkServer compares, in one run and in process, the protected
// POST /v1/verify (the caller's key is verified by the middleware, then
// the key in the body by the handler: two verifications and a JSON
// round trip) with the unprotected /healthz, and GET /v1/whoami (one
// verification), with the verification cache on, as apikey serve runs.
func BenchmarkServer(b *testing.B) {
	cache, err := ottercache.New(ottercache.Config{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(cache.Close)
	// Request records are formatted as in production, then dropped.
	f := newFixture(b, options{logTo: io.Discard, cfg: apikey.Config{Cache: cache}})
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/v1/keys", strings.NewReader(`{"name":"bench"}`))
	r.Header.Set("Authorization", "Api-Key "+f.admin)
	r.Header.Set("Content-Type", "application/json")
	f.srv.ServeHTTP(w, r)
	var created struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil {
		b.Fatal(err)
	}
	verifyBody := `{"key":"` + created.Key + `"}`

	run := func(b *testing.B, method, path, token, body string) {
		b.ReportAllocs()
		for b.Loop() {
			var r *http.Request
			if body == "" {
				r = httptest.NewRequest(method, path, nil)
			} else {
				r = httptest.NewRequest(method, path, strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
			}
			if token != "" {
				r.Header.Set("Authorization", "Api-Key "+token)
			}
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("%s %s: %d %s", method, path, w.Code, w.Body)
			}
		}
	}
	b.Run("healthz", func(b *testing.B) { run(b, "GET", "/healthz", "", "") })
	b.Run("whoami", func(b *testing.B) { run(b, "GET", "/v1/whoami", f.verify, "") })
	b.Run("verify", func(b *testing.B) { run(b, "POST", "/v1/verify", f.verify, verifyBody) })
}

package apikeyhttp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// BenchmarkMiddleware compares a trivial handler with the same handler
// behind the middleware. The verifier returns a pre-built key at once, as a
// cache in front of the Manager would, so the difference is the cost of the
// middleware itself: extraction, checks, context and logging decisions.
func BenchmarkMiddleware(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})
	key := &apikey.Key{ID: "3fZ9q0LmA1bc", Scopes: []string{"billing:*"}}
	cached := apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) { return key, nil })
	mw, err := apikeyhttp.New(cached, apikeyhttp.Config{})
	if err != nil {
		b.Fatal(err)
	}
	const token = "ak_3fZ9q0LmA1bc_Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3CAbCdEf"

	run := func(b *testing.B, h http.Handler, header string) {
		r := httptest.NewRequest("GET", "/x", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	}
	b.Run("Unprotected", func(b *testing.B) { run(b, ok, "") })
	b.Run("Protected", func(b *testing.B) { run(b, mw.Handler(ok), "Api-Key "+token) })
	// ContextOnly is the floor for any middleware that hands the key to the
	// handler through the request context: one context value and one
	// shallow copy of the request, nothing else.
	b.Run("ContextOnly", func(b *testing.B) {
		run(b, &contextOnly{next: ok, key: key}, "Api-Key "+token)
	})
	// ProtectedAllowlist10 is Protected with a key that carries a network
	// allowlist of 10 ranges, the request's address in the last one:
	// the cost of the client address and the range checks.
	b.Run("ProtectedAllowlist10", func(b *testing.B) {
		fenced := key.Clone()
		for i := range 9 {
			fenced.AllowedCIDRs = append(fenced.AllowedCIDRs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
		}
		fenced.AllowedCIDRs = append(fenced.AllowedCIDRs, netip.MustParsePrefix("192.0.2.0/24")) // httptest's RemoteAddr
		v := apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) { return fenced, nil })
		mw, err := apikeyhttp.New(v, apikeyhttp.Config{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, mw.Handler(ok), "Api-Key "+token)
	})
	b.Run("ProtectedScope", func(b *testing.B) {
		run(b, mw.Handler(apikeyhttp.RequireScopes("billing:read")(ok)), "Api-Key "+token)
	})
	// Uncached verifies with a Manager over an in-memory store: parsing,
	// hashing and a lookup that costs nothing, so a lower bound for a real
	// database.
	b.Run("Uncached", func(b *testing.B) {
		m, err := apikey.NewManager(&memStore{recs: map[string]apikey.Record{}}, apikey.Config{UsageFlushInterval: -1})
		if err != nil {
			b.Fatal(err)
		}
		_, tok, err := m.Create(context.Background(), apikey.CreateParams{Name: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		mw, err := apikeyhttp.New(m, apikeyhttp.Config{})
		if err != nil {
			b.Fatal(err)
		}
		run(b, mw.Handler(ok), "Api-Key "+tok)
	})
	b.Run("Refused", func(b *testing.B) {
		h := mw.Handler(ok)
		r := httptest.NewRequest("GET", "/x", nil)
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
		}
	})
}

// contextOnly puts a fixed key in the request context and calls next.
type contextOnly struct {
	next http.Handler
	key  *apikey.Key
}

//go:noinline
func (h *contextOnly) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.next.ServeHTTP(w, r.WithContext(apikey.NewContext(r.Context(), h.key)))
}

// memStore is the least Store a Manager needs to create and verify keys;
// the embedded nil Store would panic on any other call, which the benchmark
// never makes.
type memStore struct {
	apikey.Store
	mu   sync.Mutex
	recs map[string]apikey.Record
}

func (s *memStore) Insert(_ context.Context, rec *apikey.Record, _ int, _ *apikey.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.recs[rec.ID]; ok {
		return apikey.ErrDuplicateID
	}
	s.recs[rec.ID] = *rec
	return nil
}

func (s *memStore) Lookup(_ context.Context, id string) (*apikey.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.recs[id]
	if !ok {
		return nil, apikey.ErrNotFound
	}
	return &rec, nil
}

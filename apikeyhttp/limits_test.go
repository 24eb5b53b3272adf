package apikeyhttp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/memstore"
)

// limitedManager returns a Manager over memstore on a fake clock.
func limitedManager(t *testing.T, cfg apikey.Config) (*apikey.Manager, *apikeytest.Clock) {
	t.Helper()
	clock := apikeytest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg.Now, cfg.UsageFlushInterval = clock.Now, -1
	m, err := apikey.NewManager(memstore.New(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return m, clock
}

func createKey(t *testing.T, m *apikey.Manager, p apikey.CreateParams) (*apikey.Key, string) {
	t.Helper()
	if p.Name == "" {
		p.Name = "k"
	}
	k, tok, err := m.Create(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return k, tok
}

func call(h http.Handler, token string, header ...string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("GET", "/x", nil)
	r.Header.Set("Authorization", "Api-Key "+token)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Add(header[i], header[i+1])
	}
	return serve(h, r)
}

func TestRateLimitHeaders(t *testing.T) {
	m, clock := limitedManager(t, apikey.Config{})
	_, tok := createKey(t, m, apikey.CreateParams{RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 2, Period: time.Minute}}})
	h := mustNew(t, m, apikeyhttp.Config{}).Handler(echo)
	for i, want := range []string{`"requests";r=1;t=30`, `"requests";r=0;t=60`} {
		w := call(h, tok)
		if w.Code != 200 {
			t.Fatalf("request %d: %d %s", i, w.Code, w.Body)
		}
		if got := w.Header().Get("RateLimit-Policy"); got != `"requests";q=2;w=60` {
			t.Errorf("request %d: RateLimit-Policy = %q", i, got)
		}
		if got := w.Header().Get("RateLimit"); got != want {
			t.Errorf("request %d: RateLimit = %q, want %q", i, got, want)
		}
	}
	w := call(h, tok)
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("third request: %d, want 429", w.Code)
	}
	if p := problem(t, w); p.Code != apikey.CodeRateLimited {
		t.Errorf("code = %q", p.Code)
	}
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
	if got := w.Header().Get("RateLimit"); got != `"requests";r=0;t=60` {
		t.Errorf("RateLimit of the refusal = %q", got)
	}
	clock.Add(30 * time.Second)
	if w := call(h, tok); w.Code != 200 {
		t.Fatalf("after Retry-After: %d", w.Code)
	}
	// A key without limits gets no RateLimit fields.
	_, free := createKey(t, m, apikey.CreateParams{})
	if w := call(h, free); w.Code != 200 || w.Header().Get("RateLimit") != "" || w.Header().Get("RateLimit-Policy") != "" {
		t.Errorf("unlimited key: %d, RateLimit %q", w.Code, w.Header().Get("RateLimit"))
	}
}

func TestRouteLimitAndCost(t *testing.T) {
	m, _ := limitedManager(t, apikey.Config{})
	_, tok := createKey(t, m, apikey.CreateParams{Owner: "acme", RateLimits: []apikey.RateLimit{
		{Name: "requests", Limit: 100, Period: time.Minute},
		{Name: "search", Limit: 10, Period: time.Second},
	}})
	if _, err := m.SetOwner(context.Background(), "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "search", Limit: 100, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	search := mustNew(t, m, apikeyhttp.Config{RateLimit: "search", Cost: 4}).Handler(echo)
	w := call(search, tok)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if got, want := w.Header().Get("RateLimit"), `"requests";r=99;t=1, "search";r=6;t=1, "owner:search";r=96;t=144`; got != want {
		t.Errorf("RateLimit = %q, want %q", got, want)
	}
	if got, want := w.Header().Get("RateLimit-Policy"), `"requests";q=100;w=60, "search";q=10;w=1, "owner:search";q=100;w=3600`; got != want {
		t.Errorf("RateLimit-Policy = %q, want %q", got, want)
	}
	call(search, tok)
	if w := call(search, tok); w.Code != 429 || w.Header().Get("Retry-After") != "1" {
		t.Errorf("third search of cost 4 against 10: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	// WithLimit chooses per request.
	pick := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			next.ServeHTTP(w, apikeyhttp.WithLimit(r, apikey.CheckOptions{RateLimit: "requests", Cost: 50}))
		})
	}
	if w := call(pick(search), tok); w.Code != 200 || w.Header().Get("RateLimit") != `"requests";r=47;t=32` {
		t.Errorf("WithLimit: %d, RateLimit %q", w.Code, w.Header().Get("RateLimit"))
	}
}

func TestCreditsOverHTTP(t *testing.T) {
	m, _ := limitedManager(t, apikey.Config{})
	k, tok := createKey(t, m, apikey.CreateParams{Scopes: []string{"read"}, Credits: &apikey.Credits{Remaining: 2}})
	h := mustNew(t, m, apikeyhttp.Config{Credits: 1}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, ok := apikeyhttp.ResultFrom(r.Context())
		if !ok || res.Credits == nil {
			t.Error("no result in the context")
			return
		}
		w.Header().Set("X-Remaining", string(rune('0'+res.Credits.Remaining)))
	}))
	for i := 0; i < 3; i++ {
		if w := call(h, tok, "Idempotency-Key", "order-1"); w.Code != 200 || w.Header().Get("X-Remaining") != "1" {
			t.Fatalf("retry %d: %d, remaining %q", i, w.Code, w.Header().Get("X-Remaining"))
		}
	}
	for _, bad := range [][]string{{"Idempotency-Key", "a\x01b"}, {"Idempotency-Key", "a", "Idempotency-Key", "b"}} {
		w := call(h, tok, bad...)
		if w.Code != 400 {
			t.Fatalf("bad idempotency key %q: %d", bad, w.Code)
		}
		if p := problem(t, w); p.Code != apikey.CodeInvalidInput || p.Field != "Idempotency-Key" {
			t.Errorf("bad idempotency key: %+v", p)
		}
	}
	if w := call(h, tok); w.Code != 200 {
		t.Fatalf("second spend: %d", w.Code)
	}
	w := call(h, tok)
	if w.Code != 429 {
		t.Fatalf("spend with nothing left: %d", w.Code)
	}
	if p := problem(t, w); p.Code != apikey.CodeUsageExceeded {
		t.Errorf("code = %q", p.Code)
	}
	// Scopes are checked first: a refused request spends nothing.
	if _, err := m.AdjustCredits(context.Background(), apikey.CreditAdjustment{KeyID: k.ID, Op: apikey.CreditSet, Amount: 1}); err != nil {
		t.Fatal(err)
	}
	scoped := mustNew(t, m, apikeyhttp.Config{Credits: 1, Scopes: []string{"write"}}).Handler(echo)
	if w := call(scoped, tok); w.Code != 403 {
		t.Fatalf("missing scope: %d", w.Code)
	}
	if got, _ := m.Get(context.Background(), k.ID); got.Credits.Remaining != 1 {
		t.Errorf("balance after a scope refusal = %d, want 1", got.Credits.Remaining)
	}
}

// failingLimiter always fails.
type failingLimiter struct{}

func (failingLimiter) Allow(context.Context, string, apikey.RateLimit, int64) (apikey.LimitResult, error) {
	return apikey.LimitResult{}, errors.New("redis down")
}

func TestLimiterFailure(t *testing.T) {
	m, _ := limitedManager(t, apikey.Config{Limiter: failingLimiter{}})
	_, closed := createKey(t, m, apikey.CreateParams{RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 2, Period: time.Minute}}})
	_, open := createKey(t, m, apikey.CreateParams{RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 2, Period: time.Minute, FailOpen: true}}})
	h := mustNew(t, m, apikeyhttp.Config{}).Handler(echo)
	w := call(h, closed)
	if w.Code != 503 {
		t.Fatalf("fail closed: %d", w.Code)
	}
	if p := problem(t, w); p.Code != apikey.CodeUnavailable || p.Detail != `The key's rate limit "requests" cannot be checked at the moment: the rate limiter does not answer; retry later.` {
		t.Errorf("fail closed: code %q, detail %q; want unavailable naming the limit", p.Code, p.Detail)
	}
	if strings.Contains(w.Body.String(), "redis down") {
		t.Errorf("fail closed: the limiter's error reached the client: %s", w.Body)
	}
	if w := call(h, open); w.Code != 200 {
		t.Errorf("fail open: %d", w.Code)
	}
}

func TestNoEnforcer(t *testing.T) {
	// A verifier that is not an Enforcer applies no limits.
	v := apikey.VerifierFunc(func(context.Context, string) (*apikey.Key, error) {
		return &apikey.Key{ID: "id", RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 1, Period: time.Hour}}}, nil
	})
	h := mustNew(t, v, apikeyhttp.Config{}).Handler(echo)
	for i := 0; i < 3; i++ {
		if w := call(h, "k"); w.Code != 200 || w.Header().Get("RateLimit") != "" {
			t.Fatalf("request %d: %d", i, w.Code)
		}
	}
	for _, cfg := range []apikeyhttp.Config{{RateLimit: "Bad"}, {Cost: -1}, {Credits: -1}, {Scopes: []string{""}}} {
		if _, err := apikeyhttp.New(v, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

package redislimit_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/memstore"
	"github.com/go-apikey/apikey/redislimit"
)

func newManager(t *testing.T, store apikey.Store, l apikey.Limiter) *apikey.Manager {
	t.Helper()
	m, err := apikey.NewManager(store, apikey.Config{Limiter: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close(context.Background()) })
	return m
}

func createKey(t *testing.T, m *apikey.Manager, limits ...apikey.RateLimit) string {
	t.Helper()
	_, token, err := m.Create(context.Background(), apikey.CreateParams{Name: "limited", RateLimits: limits})
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// Two Managers over one store, each with its own client of the same Redis,
// admit exactly the limit between them.
func TestManagersShareLimits(t *testing.T) {
	addr := redisAddr(t)
	p := uniquePrefix(t)
	store := memstore.New()
	ms := []*apikey.Manager{
		newManager(t, store, newLimiter(t, newClient(t, addr), p)),
		newManager(t, store, newLimiter(t, newClient(t, addr), p)),
	}
	token := createKey(t, ms[0], apikey.RateLimit{Name: apikey.DefaultRateLimit, Limit: 50, Period: time.Hour})
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for range 20 {
				_, err := ms[w%2].Check(context.Background(), token, apikey.CheckOptions{})
				switch {
				case err == nil:
					allowed.Add(1)
				case errors.Is(err, apikey.ErrRateLimited):
					limited.Add(1)
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != 50 || limited.Load() != 110 {
		t.Errorf("allowed %d, limited %d; want 50 and 110", allowed.Load(), limited.Load())
	}
}

// With Redis down, a limit fails closed (ErrUnavailable, 503) unless it
// says FailOpen; a key with both kinds is refused.
func TestManagerRedisDown(t *testing.T) {
	addr, proc := ownRedis(t)
	l, err := redislimit.New(newClient(t, addr), redislimit.Config{Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	m := newManager(t, memstore.New(), l)
	closed := createKey(t, m, apikey.RateLimit{Name: apikey.DefaultRateLimit, Limit: 100, Period: time.Minute})
	open := createKey(t, m, apikey.RateLimit{Name: apikey.DefaultRateLimit, Limit: 100, Period: time.Minute, FailOpen: true})
	both := createKey(t, m,
		apikey.RateLimit{Name: apikey.DefaultRateLimit, Limit: 100, Period: time.Minute, FailOpen: true},
		apikey.RateLimit{Name: "search", Limit: 100, Period: time.Minute})
	ctx := context.Background()
	searching := apikey.CheckOptions{RateLimit: "search"}
	for _, token := range []string{closed, open, both} {
		res, err := m.Check(ctx, token, searching)
		if err != nil {
			t.Fatalf("Redis up: %v", err)
		}
		if len(res.RateLimits) == 0 || res.RateLimits[0].Remaining != 99 {
			t.Fatalf("Redis up: limits %+v, want 99 remaining", res.RateLimits)
		}
	}

	proc.Kill()
	proc.Wait()
	_, err = m.Check(ctx, closed, apikey.CheckOptions{})
	if !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("fail-closed limit with Redis down: %v, want ErrUnavailable", err)
	}
	if status, code := apikeyhttp.Status(err); status != http.StatusServiceUnavailable || code != apikey.CodeUnavailable {
		t.Errorf("fail-closed limit with Redis down answers %d %s, want 503 unavailable", status, code)
	}
	res, err := m.Check(ctx, open, apikey.CheckOptions{})
	if err != nil {
		t.Errorf("fail-open limit with Redis down: %v, want a pass", err)
	} else if len(res.RateLimits) != 0 {
		t.Errorf("fail-open limit with Redis down reports %+v, want no outcome (none was decided)", res.RateLimits)
	}
	if _, err := m.Check(ctx, both, searching); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("a fail-open and a fail-closed limit with Redis down: %v, want ErrUnavailable", err)
	}
	// The key itself is still checked first: a bad token is a bad token.
	if _, err := m.Check(ctx, "ak_AAAAAAAAAAAA_nope", apikey.CheckOptions{}); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("bad token with Redis down: %v, want ErrInvalidKey", err)
	}
}

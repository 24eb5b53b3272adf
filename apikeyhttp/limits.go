package apikeyhttp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
)

// Enforcer applies the rate limits and credits of a verified key; the
// apikey.Manager implements it. When the verifier given to New is also an
// Enforcer (or Config.Enforcer is set), the middleware calls it after the
// key, its scopes (Config.Scopes) and Config.Authorize have passed, with
// the limit and cost of the route (Config.RateLimit, Config.Cost,
// Config.Credits, WithLimit), so that a limit named "requests" on a key
// limits every request with it.
type Enforcer interface {
	Enforce(ctx context.Context, k *apikey.Key, opts apikey.CheckOptions) (*apikey.Result, error)
}

// IdempotencyKeyHeader is the request header whose value makes a spend of
// credits idempotent (apikey.CheckOptions.IdempotencyKey).
const IdempotencyKeyHeader = "Idempotency-Key"

type limitKey struct{}

// WithLimit returns a shallow copy of r whose context asks the middleware
// to apply opts instead of the route's configured limit, cost and credits
// (the IdempotencyKey of opts is ignored: the header gives it). Call it in
// a handler or middleware that runs before the apikeyhttp middleware, to
// choose the limit per request.
func WithLimit(r *http.Request, opts apikey.CheckOptions) *http.Request {
	opts.IdempotencyKey = ""
	return r.WithContext(context.WithValue(r.Context(), limitKey{}, opts))
}

type resultKey struct{}

// ResultFrom returns the outcome of the limits and credits applied to the
// request (the remaining credits among them), when the middleware applied
// any.
func ResultFrom(ctx context.Context) (*apikey.Result, bool) {
	res, ok := ctx.Value(resultKey{}).(*apikey.Result)
	return res, ok
}

// limitOptions returns the options of the request: those of WithLimit, or
// the route's, with the idempotency key of the header.
func (m *Middleware) limitOptions(r *http.Request) (apikey.CheckOptions, error) {
	opts := m.limits
	if o, ok := r.Context().Value(limitKey{}).(apikey.CheckOptions); ok {
		opts = o
	}
	if opts.Credits > 0 {
		if vs := r.Header.Values(IdempotencyKeyHeader); len(vs) > 0 {
			if len(vs) > 1 || !apikey.ValidIdempotencyKey(vs[0]) {
				return opts, &apikey.ValidationError{Field: "Idempotency-Key", Reason: "must be one header of 1 to 255 bytes of printable ASCII"}
			}
			opts.IdempotencyKey = vs[0]
		}
	}
	return opts, nil
}

// enforce applies the limits to k and sets the RateLimit headers. It
// returns the request to pass on, or false after writing the refusal.
func (m *Middleware) enforce(w http.ResponseWriter, r *http.Request, k *apikey.Key, source, token string) (*http.Request, bool) {
	opts, err := m.limitOptions(r)
	if err != nil {
		m.denyKey(w, r, err, source, k.ID, token)
		return r, false
	}
	res, err := m.enforcer.Enforce(r.Context(), k, opts)
	if err != nil {
		var le *apikey.LimitError
		if errors.As(err, &le) {
			SetRateLimitHeaders(w.Header(), le.RateLimits)
			if le.RetryAfter > 0 {
				w.Header().Set("Retry-After", strconv.FormatInt(apikey.Seconds(le.RetryAfter), 10))
			}
		}
		m.denyKey(w, r, err, source, k.ID, token)
		return r, false
	}
	if res == nil {
		return r, true
	}
	SetRateLimitHeaders(w.Header(), res.RateLimits)
	return r.WithContext(context.WithValue(r.Context(), resultKey{}, res)), true
}

// SetRateLimitHeaders sets the RateLimit-Policy and RateLimit fields of
// draft-ietf-httpapi-ratelimit-headers (structured-field lists, one item
// per limit that applied) when any did: the policy's quota q and window w
// in seconds, and the remaining quota r and the seconds t until it is
// replenished. An owner's limits are named "owner:<name>", so that they
// never clash with the key's. The middleware sets them on every response
// where a limit applied; a handler that runs Manager.Check itself (such as
// a verification service) calls it with the results.
func SetRateLimitHeaders(h http.Header, results []apikey.LimitResult) {
	if len(results) == 0 {
		return
	}
	var policy, state strings.Builder
	for i, r := range results {
		if i > 0 {
			policy.WriteString(", ")
			state.WriteString(", ")
		}
		name := r.Name
		if r.Scope == "owner" {
			name = "owner:" + name
		}
		fmt.Fprintf(&policy, "%q;q=%d;w=%d", name, r.Limit, apikey.Seconds(r.Period))
		fmt.Fprintf(&state, "%q;r=%d;t=%d", name, r.Remaining, apikey.Seconds(r.Reset))
	}
	h.Set("RateLimit-Policy", policy.String())
	h.Set("RateLimit", state.String())
}

// checkLimits checks the limit settings of cfg.
func checkLimits(cfg Config) error {
	switch {
	case cfg.RateLimit != "" && !apikey.ValidLimitName(cfg.RateLimit):
		return fmt.Errorf("apikeyhttp: RateLimit %q is not a valid limit name", cfg.RateLimit)
	case cfg.Cost < 0:
		return fmt.Errorf("apikeyhttp: negative Cost %d", cfg.Cost)
	case cfg.Credits < 0:
		return fmt.Errorf("apikeyhttp: negative Credits %d", cfg.Credits)
	}
	for _, s := range cfg.Scopes {
		if s == "" {
			return errors.New("apikeyhttp: empty scope in Scopes")
		}
	}
	return nil
}

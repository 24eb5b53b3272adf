// Package redislimit keeps rate limits in Redis, so that every instance of
// a service that shares one Redis counts against the same buckets.
//
// A Limiter implements the Manager's limiter seam with the generic cell
// rate algorithm (GCRA) of github.com/go-redis/redis_rate: each bucket is
// one Redis string holding its "theoretical arrival time", read and
// written by one Lua script, so that a decision is atomic across all
// instances and costs one round trip. A limit of N per period with burst
// B admits B requests at once and then one every period/N; Redis's own
// clock is used, so the instances' clocks do not matter.
//
//	client := redis.NewClient(&redis.Options{
//		Addr:                  "127.0.0.1:6379",
//		ContextTimeoutEnabled: true,
//	})
//	limiter, err := redislimit.New(client, redislimit.Config{})
//	...
//	m, err := apikey.NewManager(store, apikey.Config{Limiter: limiter})
//
// Decisions made at the same time by many goroutines are sent to Redis
// together, in one pipeline of EVALSHAs (at most 4 pipelines in flight),
// so that a busy instance pays one round trip for many requests; each
// decision stays its own script call, atomic in Redis.
//
// With Config.Lease, a decision for a bucket busy on this instance also
// leases a few cells of it, which the bucket's next requests here take in
// memory until the lease ends; Redis counts them as arriving at that end,
// so that no window lets through more than the limit (see lease.go).
//
// When Redis is down or slow, Allow returns an error within
// Config.Timeout; it never guesses. The Manager then refuses the request
// (apikey.ErrUnavailable) unless the limit says FailOpen.
package redislimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds one Allow when Config.Timeout is zero. A loopback
// Redis answers in well under a millisecond; the margin is for a loaded
// machine, where a shorter bound refuses requests that Redis would have
// admitted.
const DefaultTimeout = 250 * time.Millisecond

// DefaultPrefix starts the name of every bucket when Config.Prefix is
// empty. redis_rate adds its own "rate:" in front of it.
const DefaultPrefix = "apikey:"

// Config tunes a Limiter. The zero value is ready to use.
type Config struct {
	// Prefix starts the Redis key of every bucket, so that several
	// deployments can share one Redis. Zero means DefaultPrefix.
	Prefix string
	// Timeout bounds each Allow, retries included. Zero means
	// DefaultTimeout. It takes effect only if the client honours context
	// deadlines, which New checks.
	Timeout time.Duration
	// Lease is how long this Limiter may hold cells of a bucket that it
	// took from Redis ahead of its requests: a decision in Redis may take
	// a few more cells, which the bucket's next requests here take in
	// memory, without a round trip, until Lease has passed. Zero (the
	// default) makes every decision in Redis. A lease never lets more
	// through than the limit allows, across all instances; it is granted
	// only for a bucket busy here, with room to spare and a limit that
	// refills at least two cells in Lease, and what is not used in time is
	// forfeited. See lease.go, and docs/limits.md for the trade-offs:
	// 10 to 100 milliseconds suits a busy service.
	Lease time.Duration
}

// Limiter decides rate limits in Redis. It is safe for concurrent use, and
// any number of Limiters on any number of clients that reach the same
// Redis (with the same Prefix) share their buckets exactly.
type Limiter struct {
	rate    *redis_rate.Limiter
	client  *batcher // the client of rate, for the lease script
	prefix  string
	timeout time.Duration
	leases  *leases // nil without Config.Lease
}

// redisRatePrefix is the prefix redis_rate puts before every bucket's
// Redis key; the lease script, which shares the buckets, adds it too.
const redisRatePrefix = "rate:"

var _ apikey.Limiter = (*Limiter)(nil)

// New returns a Limiter on client, which may be shared with other uses. A
// *redis.Client or *redis.ClusterClient must have ContextTimeoutEnabled set:
// otherwise go-redis ignores the deadline of Config.Timeout and a Redis
// that hangs would hold every request for the client's read timeout
// (3 seconds by default) with its retries.
func New(client redis.UniversalClient, cfg Config) (*Limiter, error) {
	if client == nil {
		return nil, errors.New("redislimit: New needs a client")
	}
	switch c := client.(type) {
	case *redis.Client:
		if !c.Options().ContextTimeoutEnabled {
			return nil, errors.New("redislimit: the client must have ContextTimeoutEnabled so that Timeout bounds a call")
		}
	case *redis.ClusterClient:
		if !c.Options().ContextTimeoutEnabled {
			return nil, errors.New("redislimit: the client must have ContextTimeoutEnabled so that Timeout bounds a call")
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("redislimit: negative Timeout %v", cfg.Timeout)
	}
	if cfg.Lease < 0 {
		return nil, fmt.Errorf("redislimit: negative Lease %v", cfg.Lease)
	}
	b := &batcher{UniversalClient: client, timeout: cmpOr(cfg.Timeout, DefaultTimeout)}
	l := &Limiter{
		rate:    redis_rate.NewLimiter(b),
		client:  b,
		prefix:  cmpOr(cfg.Prefix, DefaultPrefix),
		timeout: cmpOr(cfg.Timeout, DefaultTimeout),
	}
	if cfg.Lease > 0 {
		l.leases = &leases{hold: cfg.Lease, base: time.Now()}
	}
	return l, nil
}

// Allow implements apikey.Limiter: it takes cost from the bucket named
// bucket, which holds limit, and reports the outcome, as
// apikey.MemoryLimiter would. A request that does not fit takes nothing. It
// returns an error, and no result, when Redis does not answer within the
// Limiter's Timeout or when limit is not a valid limit (Limit and Period
// must be positive, Burst and cost not negative). A zero Burst means a
// burst of Limit.
func (l *Limiter) Allow(ctx context.Context, bucket string, limit apikey.RateLimit, cost int64) (apikey.LimitResult, error) {
	rl, err := toRate(limit)
	if err != nil {
		return apikey.LimitResult{}, err
	}
	if cost < 0 || cost > maxExact {
		return apikey.LimitResult{}, fmt.Errorf("redislimit: cost %d out of range", cost)
	}
	if l.leases != nil {
		return l.allowLeased(ctx, bucket, limit, rl, cost)
	}
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	res, err := l.rate.AllowN(ctx, l.prefix+bucket, rl, int(cost))
	if err != nil {
		return apikey.LimitResult{}, wrap(err)
	}
	// The script answers a retry time of -1 exactly when it admitted the
	// request (even at cost 0, where res.Allowed is 0).
	return result(limit, rl, res.RetryAfter < 0, int64(res.Remaining), res.RetryAfter, res.ResetAfter), nil
}

// result is the outcome of a decision of the GCRA script: allowed or not,
// the remaining count it gave (0 on a refusal), the retry time and the
// time until the bucket is full.
func result(limit apikey.RateLimit, rl redis_rate.Limit, allowed bool, remaining int64, retryAfter, resetAfter time.Duration) apikey.LimitResult {
	out := apikey.LimitResult{
		Name:      limit.Name,
		Limit:     limit.Limit,
		Period:    limit.Period,
		Remaining: remaining,
		Reset:     max(resetAfter, 0),
		Allowed:   allowed,
	}
	if !out.Allowed {
		out.RetryAfter = retryAfter
		out.Remaining = 0
		return out
	}
	// The script counts time in seconds as doubles, about 10^-7 s apart at
	// today's dates, and truncates its remaining count: 99 left can come
	// back as 98.9999999, so 98. Count again from Reset, to within a
	// microsecond, as the in-process limiter (integer nanoseconds) does.
	emission := float64(rl.Period) / float64(rl.Rate)
	rem := math.Floor((float64(rl.Burst)*emission - float64(out.Reset) + float64(time.Microsecond)) / emission)
	out.Remaining = min(max(int64(rem), out.Remaining), int64(rl.Burst))
	return out
}

// errUnexpected reports an answer of Redis that the script cannot give.
var errUnexpected = errors.New("unexpected answer of the rate limit script")

// wrap prefixes err with the package's name.
func wrap(err error) error { return fmt.Errorf("redislimit: %w", err) }

// Reset empties the bucket, as if it had never been used, and forfeits
// what this Limiter leased of it. Another Limiter's lease of the bucket is
// spent until it ends (Config.Lease at most), counted in no bucket.
func (l *Limiter) Reset(ctx context.Context, bucket string) error {
	ctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	if err := l.rate.Reset(ctx, l.prefix+bucket); err != nil {
		return wrap(err)
	}
	if l.leases != nil {
		// After the bucket is gone, so that no lease is counted in it.
		l.leases.forfeit(bucket)
	}
	return nil
}

// maxExact bounds limits, bursts and costs: the script computes in Lua
// numbers (doubles), exact for integers up to 2^53.
const maxExact = 1 << 53

// toRate converts limit to redis_rate's terms.
func toRate(limit apikey.RateLimit) (redis_rate.Limit, error) {
	if limit.Limit <= 0 || limit.Limit > maxExact {
		return redis_rate.Limit{}, fmt.Errorf("redislimit: limit %q: limit %d out of range", limit.Name, limit.Limit)
	}
	if limit.Period <= 0 {
		return redis_rate.Limit{}, fmt.Errorf("redislimit: limit %q: period %v not positive", limit.Name, limit.Period)
	}
	if limit.Burst < 0 || limit.Burst > maxExact {
		return redis_rate.Limit{}, fmt.Errorf("redislimit: limit %q: burst %d out of range", limit.Name, limit.Burst)
	}
	burst := limit.Burst
	if burst == 0 {
		burst = limit.Limit
	}
	return redis_rate.Limit{Rate: int(limit.Limit), Burst: int(burst), Period: limit.Period}, nil
}

func cmpOr[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}

package apikey

import (
	"errors"
	"time"
)

// Metrics receives measurements from a Manager; package apikeyprom
// implements it for Prometheus. Methods are called on hot paths and must be
// cheap and safe for concurrent use.
type Metrics interface {
	// Verified counts one verification by outcome (CodeOf its error:
	// CodeValid, CodeInvalidKey, CodeKeyExpired, CodeKeyRevoked,
	// CodeKeyDisabled or CodeUnavailable) and its duration. A verification
	// with the previous secret of a grace window is CodeValid.
	Verified(outcome Code, d time.Duration)
	// CacheHit and CacheMiss count verification cache lookups.
	CacheHit()
	CacheMiss()
	// StoreLookup observes one store lookup made by Verify.
	StoreLookup(d time.Duration, err error)
	// Invalidated counts cache invalidations (local and received).
	Invalidated()
}

// metricsHook calls a Metrics if there is one, and its LimitMetrics if it
// implements them.
type metricsHook struct {
	m  Metrics
	lm LimitMetrics
}

func newMetricsHook(m Metrics) metricsHook {
	lm, _ := m.(LimitMetrics)
	return metricsHook{m: m, lm: lm}
}

func (h metricsHook) cacheHit() {
	if h.m != nil {
		h.m.CacheHit()
	}
}

func (h metricsHook) cacheMiss() {
	if h.m != nil {
		h.m.CacheMiss()
	}
}

func (h metricsHook) storeStart() time.Time {
	if h.m == nil {
		return time.Time{}
	}
	return time.Now()
}

func (h metricsHook) storeDone(start time.Time, err error) {
	if h.m != nil {
		if isNotFound(err) {
			err = nil
		}
		h.m.StoreLookup(time.Since(start), err)
	}
}

func (h metricsHook) invalidated() {
	if h.m != nil {
		h.m.Invalidated()
	}
}

// verifiedSince counts a verification that started at start, a reading
// of time.Now.
func (h metricsHook) verifiedSince(start time.Time, err error) {
	if h.m != nil {
		h.m.Verified(CodeOf(err), time.Since(start))
	}
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// LimitMetrics is the optional interface of a Metrics that also counts
// rate limiting and credits; the Manager uses it when Config.Metrics
// implements it (apikeyprom's does). Its methods are called on the hot
// path of Check and Enforce, once per limit decided and once per spend:
// they must be cheap, safe for concurrent use and, to keep a cached Check
// free of allocations, allocate nothing. Their labels are bounded: a scope
// is "key" or "owner", a limit name is a valid one (ValidLimitName, chosen
// by operators), never a key id or owner.
type LimitMetrics interface {
	// RateLimitDecided counts one decision of the rate limit named name,
	// of a key's limits or its owner's (scope "key" or "owner").
	RateLimitDecided(scope, name string, outcome LimitOutcome)
	// CreditsSpent counts one spend of credits by outcome; cost is what
	// it took from the balances (zero unless outcome is SpendSpent, or
	// when no balance applied).
	CreditsSpent(outcome SpendOutcome, cost int64)
}

// LimitOutcome is the outcome of one rate-limit decision, as counted by
// LimitMetrics.
type LimitOutcome string

// The outcomes of rate-limit decisions.
const (
	// LimitAllowed: the limit let the request through.
	LimitAllowed LimitOutcome = "allowed"
	// LimitLimited: the limit refused the request (ErrRateLimited).
	LimitLimited LimitOutcome = "limited"
	// LimitFailed: the Limiter failed and the limit, which does not fail
	// open, refused the request (ErrUnavailable).
	LimitFailed LimitOutcome = "error"
	// LimitFailOpen: the Limiter failed and the limit, which fails open,
	// let the request through.
	LimitFailOpen LimitOutcome = "fail_open"
)

// LimitOutcomes returns every LimitOutcome, for implementations that
// resolve their counters in advance.
func LimitOutcomes() []LimitOutcome {
	return []LimitOutcome{LimitAllowed, LimitLimited, LimitFailed, LimitFailOpen}
}

// SpendOutcome is the outcome of one spend of credits, as counted by
// LimitMetrics.
type SpendOutcome string

// The outcomes of spends of credits.
const (
	// SpendSpent: the cost was spent (or no balance applied).
	SpendSpent SpendOutcome = "spent"
	// SpendExceeded: a balance was short; nothing was spent
	// (ErrUsageExceeded).
	SpendExceeded SpendOutcome = "exceeded"
	// SpendReplayed: an idempotent retry; nothing more was spent.
	SpendReplayed SpendOutcome = "replayed"
	// SpendError: the store failed (ErrUnavailable) or the key was gone.
	SpendError SpendOutcome = "error"
)

// SpendOutcomes returns every SpendOutcome, for implementations that
// resolve their counters in advance.
func SpendOutcomes() []SpendOutcome {
	return []SpendOutcome{SpendSpent, SpendExceeded, SpendReplayed, SpendError}
}

// rateLimitDecided counts a rate-limit decision if there are limit
// metrics.
func (h metricsHook) rateLimitDecided(scope, name string, o LimitOutcome) {
	if h.lm != nil {
		h.lm.RateLimitDecided(scope, name, o)
	}
}

// creditsSpent counts a spend if there are limit metrics.
func (h metricsHook) creditsSpent(o SpendOutcome, cost int64) {
	if h.lm != nil {
		h.lm.CreditsSpent(o, cost)
	}
}

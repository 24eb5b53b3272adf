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

// metricsHook calls a Metrics if there is one.
type metricsHook struct{ m Metrics }

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

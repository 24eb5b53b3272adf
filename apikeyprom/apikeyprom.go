// Package apikeyprom is an apikey.Metrics for Prometheus. It exports, under
// a namespace that defaults to "apikey":
//
//	apikey_verifications_total{outcome}       counter: valid, invalid_key, key_expired, key_revoked, key_disabled, unavailable
//	apikey_verify_duration_seconds            histogram of Manager.Verify
//	apikey_cache_requests_total{result}       counter: hit, miss
//	apikey_store_lookup_duration_seconds      histogram of the store lookups made by Verify
//	apikey_store_errors_total                 counter of failed store lookups
//	apikey_cache_invalidations_total          counter of cache evictions, local and received
//	apikey_events_dropped_total               counter, once WatchDroppedEvents is called
//
// Wire it into a Manager through apikey.Config.Metrics:
//
//	reg := prometheus.NewRegistry()
//	metrics, err := apikeyprom.New(reg, "")
//	...
//	m, err := apikey.NewManager(store, apikey.Config{Metrics: metrics})
//	...
//	err = metrics.WatchDroppedEvents(m.DroppedEvents)
//	http.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
package apikeyprom

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultNamespace prefixes every metric name when New is given none.
const DefaultNamespace = "apikey"

// VerifyBuckets are the bounds, in seconds, of the verification latency
// histogram: from a microsecond (a cache hit is a few hundred nanoseconds)
// to a second (a struggling store).
var VerifyBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 1,
}

// StoreBuckets are the bounds, in seconds, of the store lookup latency
// histogram: from 10µs (an embedded SQLite read) to 2.5s.
var StoreBuckets = []float64{
	10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3, 500e-3, 1, 2.5,
}

// outcomes are the verification outcomes the Manager reports; their
// counters are resolved once so that counting one allocates nothing.
var outcomes = [...]apikey.Code{apikey.CodeValid, apikey.CodeInvalidKey, apikey.CodeKeyExpired, apikey.CodeKeyRevoked, apikey.CodeUnavailable,
	apikey.CodeKeyDisabled}

// Metrics implements apikey.Metrics with Prometheus collectors. It is safe
// for concurrent use; its methods do not allocate. Create one with New.
type Metrics struct {
	reg       prometheus.Registerer
	namespace string

	verifications *prometheus.CounterVec
	byOutcome     [len(outcomes)]prometheus.Counter
	verifyTime    prometheus.Histogram
	cacheHits     prometheus.Counter
	cacheMisses   prometheus.Counter
	storeTime     prometheus.Histogram
	storeErrors   prometheus.Counter
	invalidations prometheus.Counter
}

var _ apikey.Metrics = (*Metrics)(nil)

// New creates the collectors and registers them with reg. namespace
// prefixes every metric name; empty means DefaultNamespace ("apikey"). It
// fails when reg is nil or already holds collectors of the same names.
func New(reg prometheus.Registerer, namespace string) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("apikeyprom: New needs a Registerer (prometheus.DefaultRegisterer for the global one)")
	}
	if namespace == "" {
		namespace = DefaultNamespace
	}
	m := &Metrics{reg: reg, namespace: namespace}
	m.verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "verifications_total",
		Help: "Key verifications by outcome: valid, invalid_key, key_expired, key_revoked, key_disabled or unavailable.",
	}, []string{"outcome"})
	for i, o := range outcomes {
		m.byOutcome[i] = m.verifications.WithLabelValues(string(o))
	}
	m.verifyTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "verify_duration_seconds",
		Help:    "Time taken by key verifications, cache hits and store lookups alike.",
		Buckets: VerifyBuckets,
	})
	cache := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "cache_requests_total",
		Help: "Verification cache lookups by result: hit or miss (a miss reads the store).",
	}, []string{"result"})
	m.cacheHits = cache.WithLabelValues("hit")
	m.cacheMisses = cache.WithLabelValues("miss")
	m.storeTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace, Name: "store_lookup_duration_seconds",
		Help:    "Time taken by the store lookups of verifications.",
		Buckets: StoreBuckets,
	})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "store_errors_total",
		Help: "Store lookups of verifications that failed (an unknown key is not a failure).",
	})
	m.invalidations = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "cache_invalidations_total",
		Help: "Keys evicted from the verification cache, by local changes or received invalidations.",
	})
	for _, c := range []prometheus.Collector{m.verifications, m.verifyTime, cache, m.storeTime, m.storeErrors, m.invalidations} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("apikeyprom: %w", err)
		}
	}
	return m, nil
}

// Verified counts one verification and observes its duration.
func (m *Metrics) Verified(outcome apikey.Code, d time.Duration) {
	m.outcome(outcome).Inc()
	m.verifyTime.Observe(d.Seconds())
}

func (m *Metrics) outcome(o apikey.Code) prometheus.Counter {
	switch o {
	case apikey.CodeValid:
		return m.byOutcome[0]
	case apikey.CodeInvalidKey:
		return m.byOutcome[1]
	case apikey.CodeKeyExpired:
		return m.byOutcome[2]
	case apikey.CodeKeyRevoked:
		return m.byOutcome[3]
	case apikey.CodeUnavailable:
		return m.byOutcome[4]
	case apikey.CodeKeyDisabled:
		return m.byOutcome[5]
	}
	return m.verifications.WithLabelValues(string(o)) // an outcome added later: slower, still counted
}

// CacheHit counts a verification answered from the cache.
func (m *Metrics) CacheHit() { m.cacheHits.Inc() }

// CacheMiss counts a verification that had to read the store.
func (m *Metrics) CacheMiss() { m.cacheMisses.Inc() }

// StoreLookup observes one store lookup and counts it as an error when
// err is not nil.
func (m *Metrics) StoreLookup(d time.Duration, err error) {
	m.storeTime.Observe(d.Seconds())
	if err != nil {
		m.storeErrors.Inc()
	}
}

// Invalidated counts one cache invalidation.
func (m *Metrics) Invalidated() { m.invalidations.Inc() }

// WatchDroppedEvents registers apikey_events_dropped_total, read from
// dropped at every scrape; pass Manager.DroppedEvents. It is separate from
// New because the Manager is created after its Metrics. It fails when
// called twice.
func (m *Metrics) WatchDroppedEvents(dropped func() int64) error {
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Namespace: m.namespace, Name: "events_dropped_total",
		Help: "Events dropped because the OnEvent subscriber fell behind.",
	}, func() float64 { return float64(dropped()) })
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("apikeyprom: %w", err)
	}
	return nil
}

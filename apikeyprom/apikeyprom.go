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
//	apikey_ratelimit_decisions_total{scope,limit,outcome}
//	                                          counter: scope key or owner, limit the limit's name,
//	                                          outcome allowed, limited, error (the limiter failed, the
//	                                          request was refused) or fail_open (failed, let through)
//	apikey_credit_spends_total{outcome}       counter: spent, exceeded, replayed, error
//	apikey_credits_spent_total                counter: the credits spent, the sum of their costs
//
// The limit label takes the names of the limits (apikey.ValidLimitName,
// chosen by operators), never a key id or an owner; past MaxLimitLabels
// distinct scope and name pairs, further names are counted under the
// limit "(other)", so that the series stay bounded whatever is configured.
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
	"sync"
	"sync/atomic"
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

	decisions *prometheus.CounterVec
	// limits maps a scope and limit name to its counters, one per
	// outcome; it is replaced, never changed, so that reading it takes no
	// lock and allocates nothing. mu serialises its replacements.
	limits      atomic.Pointer[map[limitLabel]*limitCounters]
	mu          sync.Mutex
	spends      [len(spendOutcomes)]prometheus.Counter
	spendVec    *prometheus.CounterVec
	creditsUsed prometheus.Counter
}

var (
	_ apikey.Metrics      = (*Metrics)(nil)
	_ apikey.LimitMetrics = (*Metrics)(nil)
)

// MaxLimitLabels bounds the distinct scope and limit name pairs that
// apikey_ratelimit_decisions_total counts apart; the decisions of any
// further limit are counted under the limit name OtherLimit.
const MaxLimitLabels = 256

// OtherLimit is the limit label of the decisions past MaxLimitLabels. It
// is not a valid limit name, so it never stands for one.
const OtherLimit = "(other)"

// limitOutcomes and spendOutcomes are the outcomes whose counters are
// resolved in advance, in the order of their indexes.
var (
	limitOutcomes = [...]apikey.LimitOutcome{apikey.LimitAllowed, apikey.LimitLimited, apikey.LimitFailed, apikey.LimitFailOpen}
	spendOutcomes = [...]apikey.SpendOutcome{apikey.SpendSpent, apikey.SpendExceeded, apikey.SpendReplayed, apikey.SpendError}
)

type limitLabel struct{ scope, name string }

type limitCounters [len(limitOutcomes)]prometheus.Counter

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
	m.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "ratelimit_decisions_total",
		Help: "Rate-limit decisions by scope (key or owner), limit name and outcome: allowed, limited, error (the limiter failed and the request was refused) or fail_open (failed and let through).",
	}, []string{"scope", "limit", "outcome"})
	empty := map[limitLabel]*limitCounters{}
	m.limits.Store(&empty)
	m.spendVec = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "credit_spends_total",
		Help: "Spends of credits by outcome: spent, exceeded (a balance was short), replayed (an idempotent retry) or error.",
	}, []string{"outcome"})
	for i, o := range spendOutcomes {
		m.spends[i] = m.spendVec.WithLabelValues(string(o))
	}
	m.creditsUsed = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace, Name: "credits_spent_total",
		Help: "Credits spent: the sum of the costs of the spends that took from a balance.",
	})
	for _, c := range []prometheus.Collector{m.verifications, m.verifyTime, cache, m.storeTime, m.storeErrors, m.invalidations,
		m.decisions, m.spendVec, m.creditsUsed} {
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

// RateLimitDecided counts one rate-limit decision. Once a limit has been
// counted, counting it again takes no lock and allocates nothing.
func (m *Metrics) RateLimitDecided(scope, name string, outcome apikey.LimitOutcome) {
	c, ok := (*m.limits.Load())[limitLabel{scope, name}]
	if !ok {
		c = m.addLimit(scope, name)
	}
	switch outcome {
	case apikey.LimitAllowed:
		c[0].Inc()
	case apikey.LimitLimited:
		c[1].Inc()
	case apikey.LimitFailed:
		c[2].Inc()
	case apikey.LimitFailOpen:
		c[3].Inc()
	default: // an outcome added later: slower, still counted
		m.decisions.WithLabelValues(scope, name, string(outcome)).Inc()
	}
}

// addLimit resolves the counters of a limit not counted yet, or of
// OtherLimit once MaxLimitLabels are.
func (m *Metrics) addLimit(scope, name string) *limitCounters {
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.limits.Load()
	if c, ok := old[limitLabel{scope, name}]; ok {
		return c
	}
	label := name
	if len(old) >= MaxLimitLabels {
		if c, ok := old[limitLabel{scope, OtherLimit}]; ok {
			return c
		}
		label = OtherLimit
	}
	c := new(limitCounters)
	for i, o := range limitOutcomes {
		c[i] = m.decisions.WithLabelValues(scope, label, string(o))
	}
	next := make(map[limitLabel]*limitCounters, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[limitLabel{scope, label}] = c
	m.limits.Store(&next)
	return c
}

// CreditsSpent counts one spend of credits, and adds cost to the credits
// spent.
func (m *Metrics) CreditsSpent(outcome apikey.SpendOutcome, cost int64) {
	switch outcome {
	case apikey.SpendSpent:
		m.spends[0].Inc()
	case apikey.SpendExceeded:
		m.spends[1].Inc()
	case apikey.SpendReplayed:
		m.spends[2].Inc()
	case apikey.SpendError:
		m.spends[3].Inc()
	default:
		m.spendVec.WithLabelValues(string(outcome)).Inc()
	}
	if cost > 0 {
		m.creditsUsed.Add(float64(cost))
	}
}

// WatchLeases registers the gauges of what an instance holds in leases,
// read at every scrape: credits from credits (pass Manager.LeasedCredits)
// as apikey_credit_lease_keys and apikey_credits_leased, and rate-limit
// cells from cells (pass redislimit's Limiter.Leased) as
// apikey_ratelimit_lease_buckets and apikey_ratelimit_cells_leased. Either
// may be nil, and its gauges are then left out. It is separate from New
// because the Manager is created after its Metrics. It fails when called
// twice.
func (m *Metrics) WatchLeases(credits, cells func() (int, int64)) error {
	c := &leaseCollector{}
	if credits != nil {
		c.sources = append(c.sources, leaseSource{read: credits,
			count: prometheus.NewDesc(prometheus.BuildFQName(m.namespace, "", "credit_lease_keys"),
				"Keys with credits leased by this instance (Config.CreditLease).", nil, nil),
			held: prometheus.NewDesc(prometheus.BuildFQName(m.namespace, "", "credits_leased"),
				"Credits this instance holds in leases, which the stored balances lack until they come back.", nil, nil)})
	}
	if cells != nil {
		c.sources = append(c.sources, leaseSource{read: cells,
			count: prometheus.NewDesc(prometheus.BuildFQName(m.namespace, "", "ratelimit_lease_buckets"),
				"Rate-limit buckets with cells leased by this instance from Redis (--limit-lease).", nil, nil),
			held: prometheus.NewDesc(prometheus.BuildFQName(m.namespace, "", "ratelimit_cells_leased"),
				"Rate-limit cells this instance holds in leases that have not ended.", nil, nil)})
	}
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("apikeyprom: %w", err)
	}
	return nil
}

// leaseCollector reads each of its sources once a scrape, for both of its
// gauges.
type leaseCollector struct{ sources []leaseSource }

type leaseSource struct {
	read        func() (int, int64)
	count, held *prometheus.Desc
}

func (c *leaseCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, s := range c.sources {
		ch <- s.count
		ch <- s.held
	}
}

func (c *leaseCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.sources {
		n, held := s.read()
		ch <- prometheus.MustNewConstMetric(s.count, prometheus.GaugeValue, float64(n))
		ch <- prometheus.MustNewConstMetric(s.held, prometheus.GaugeValue, float64(held))
	}
}

// WatchLeasedDecisions registers apikey_ratelimit_leased_decisions_total,
// read from decisions at every scrape; pass redislimit's
// Limiter.LeasedDecisions. It fails when called twice.
func (m *Metrics) WatchLeasedDecisions(decisions func() int64) error {
	return m.watchCounter("ratelimit_leased_decisions_total",
		"Rate-limit decisions made from cells this instance leased, without a trip to Redis (--limit-lease).", decisions)
}

// WatchDroppedEvents registers apikey_events_dropped_total, read from
// dropped at every scrape; pass Manager.DroppedEvents. It is separate from
// New because the Manager is created after its Metrics. It fails when
// called twice.
func (m *Metrics) WatchDroppedEvents(dropped func() int64) error {
	return m.watchCounter("events_dropped_total", "Events dropped because the OnEvent subscriber fell behind.", dropped)
}

// watchCounter registers the counter name, read from read at every scrape.
func (m *Metrics) watchCounter(name, help string, read func() int64) error {
	c := prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: m.namespace, Name: name, Help: help},
		func() float64 { return float64(read()) })
	if err := m.reg.Register(c); err != nil {
		return fmt.Errorf("apikeyprom: %w", err)
	}
	return nil
}

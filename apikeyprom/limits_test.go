package apikeyprom_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/go-apikey/apikey/memstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestLimitCounters checks the limit and credit counters as exported.
func TestLimitCounters(t *testing.T) {
	m, reg := newMetrics(t)
	m.RateLimitDecided("key", "requests", apikey.LimitAllowed)
	m.RateLimitDecided("key", "requests", apikey.LimitAllowed)
	m.RateLimitDecided("key", "requests", apikey.LimitLimited)
	m.RateLimitDecided("owner", "search", apikey.LimitFailOpen)
	m.RateLimitDecided("owner", "search", apikey.LimitFailed)
	m.CreditsSpent(apikey.SpendSpent, 5)
	m.CreditsSpent(apikey.SpendSpent, 3)
	m.CreditsSpent(apikey.SpendExceeded, 0)
	m.CreditsSpent(apikey.SpendReplayed, 0)
	m.CreditsSpent(apikey.SpendError, 0)
	want := `
# HELP apikey_ratelimit_decisions_total Rate-limit decisions by scope (key or owner), limit name and outcome: allowed, limited, error (the limiter failed and the request was refused) or fail_open (failed and let through).
# TYPE apikey_ratelimit_decisions_total counter
apikey_ratelimit_decisions_total{limit="requests",outcome="allowed",scope="key"} 2
apikey_ratelimit_decisions_total{limit="requests",outcome="error",scope="key"} 0
apikey_ratelimit_decisions_total{limit="requests",outcome="fail_open",scope="key"} 0
apikey_ratelimit_decisions_total{limit="requests",outcome="limited",scope="key"} 1
apikey_ratelimit_decisions_total{limit="search",outcome="allowed",scope="owner"} 0
apikey_ratelimit_decisions_total{limit="search",outcome="error",scope="owner"} 1
apikey_ratelimit_decisions_total{limit="search",outcome="fail_open",scope="owner"} 1
apikey_ratelimit_decisions_total{limit="search",outcome="limited",scope="owner"} 0
# HELP apikey_credit_spends_total Spends of credits by outcome: spent, exceeded (a balance was short), replayed (an idempotent retry) or error.
# TYPE apikey_credit_spends_total counter
apikey_credit_spends_total{outcome="error"} 1
apikey_credit_spends_total{outcome="exceeded"} 1
apikey_credit_spends_total{outcome="replayed"} 1
apikey_credit_spends_total{outcome="spent"} 2
# HELP apikey_credits_spent_total Credits spent: the sum of the costs of the spends that took from a balance.
# TYPE apikey_credits_spent_total counter
apikey_credits_spent_total 8
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"apikey_ratelimit_decisions_total", "apikey_credit_spends_total", "apikey_credits_spent_total"); err != nil {
		t.Fatal(err)
	}
}

// TestLimitLabelsBounded checks that limit names past MaxLimitLabels are
// counted under OtherLimit rather than as series of their own.
func TestLimitLabelsBounded(t *testing.T) {
	m, reg := newMetrics(t)
	for i := range apikeyprom.MaxLimitLabels + 50 {
		m.RateLimitDecided("key", fmt.Sprintf("l%d", i), apikey.LimitAllowed)
	}
	n, err := testutil.GatherAndCount(reg, "apikey_ratelimit_decisions_total")
	if err != nil {
		t.Fatal(err)
	}
	if want := (apikeyprom.MaxLimitLabels + 1) * len(apikey.LimitOutcomes()); n != want {
		t.Fatalf("series = %d, want %d (MaxLimitLabels names and %s, 4 outcomes each)", n, want, apikeyprom.OtherLimit)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var other float64
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "limit" && l.GetValue() == apikeyprom.OtherLimit && mf.GetName() == "apikey_ratelimit_decisions_total" {
					other += s.GetCounter().GetValue()
				}
			}
		}
	}
	if other != 50 {
		t.Fatalf("decisions under %s = %v, want 50", apikeyprom.OtherLimit, other)
	}
}

func TestLimitHotPathAllocations(t *testing.T) {
	m, _ := newMetrics(t)
	m.RateLimitDecided("key", "requests", apikey.LimitAllowed) // resolve once
	m.RateLimitDecided("owner", "requests", apikey.LimitAllowed)
	n := testing.AllocsPerRun(1000, func() {
		m.RateLimitDecided("key", "requests", apikey.LimitAllowed)
		m.RateLimitDecided("owner", "requests", apikey.LimitLimited)
		m.CreditsSpent(apikey.SpendSpent, 2)
		m.CreditsSpent(apikey.SpendExceeded, 0)
	})
	if n != 0 {
		t.Fatalf("limit metrics allocate %v times per run, want 0", n)
	}
}

// failingLimiter is a Limiter that cannot decide while down is set, as
// a limiter whose Redis is gone; otherwise it allows everything.
type failingLimiter struct{ down atomic.Bool }

func (l *failingLimiter) Allow(ctx context.Context, bucket string, rl apikey.RateLimit, cost int64) (apikey.LimitResult, error) {
	if l.down.Load() {
		return apikey.LimitResult{}, errors.New("limiter down")
	}
	return apikey.LimitResult{Name: rl.Name, Limit: rl.Limit, Allowed: true, Remaining: rl.Limit}, nil
}

// TestManagerCountsLimits runs real Checks on a Manager wired to a real
// registry, and reads the counters back as Prometheus exports them.
func TestManagerCountsLimits(t *testing.T) {
	ctx := context.Background()
	metrics, reg := newMetrics(t)
	get := func(name string, labels ...string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		series:
			for _, s := range mf.GetMetric() {
				for i := 0; i < len(labels); i += 2 {
					found := false
					for _, l := range s.GetLabel() {
						if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
							found = true
						}
					}
					if !found {
						continue series
					}
				}
				return s.GetCounter().GetValue()
			}
		}
		return 0
	}
	m, err := apikey.NewManager(memstore.New(), apikey.Config{Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(ctx)
	if _, err := m.SetOwner(ctx, "acme", apikey.OwnerUpdate{RateLimits: &[]apikey.RateLimit{{Name: "requests", Limit: 3, Period: time.Hour}}}); err != nil {
		t.Fatal(err)
	}
	_, tok, err := m.Create(ctx, apikey.CreateParams{Name: "k", Owner: "acme",
		RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 2, Period: time.Hour}},
		Credits:    &apikey.Credits{Remaining: 10}})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		m.Check(ctx, tok, apikey.CheckOptions{})
	}
	for _, c := range []struct {
		scope, outcome string
		want           float64
	}{{"key", "allowed", 2}, {"key", "limited", 1}, {"owner", "allowed", 2}, {"owner", "limited", 0}} {
		if got := get("apikey_ratelimit_decisions_total", "scope", c.scope, "limit", "requests", "outcome", c.outcome); got != c.want {
			t.Errorf("decisions{scope=%s,limit=requests,outcome=%s} = %v, want %v", c.scope, c.outcome, got, c.want)
		}
	}

	// Credits: a spend of 4, its replay, a spend of 7 that the 6 left do
	// not cover.
	_, tok2, err := m.Create(ctx, apikey.CreateParams{Name: "k2", Credits: &apikey.Credits{Remaining: 10}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok2, apikey.CheckOptions{Credits: 4, IdempotencyKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok2, apikey.CheckOptions{Credits: 4, IdempotencyKey: "a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(ctx, tok2, apikey.CheckOptions{Credits: 7}); !errors.Is(err, apikey.ErrUsageExceeded) {
		t.Fatalf("Check of 7 credits of 6: %v, want ErrUsageExceeded", err)
	}
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"spent", 1}, {"replayed", 1}, {"exceeded", 1}, {"error", 0}} {
		if got := get("apikey_credit_spends_total", "outcome", c.outcome); got != c.want {
			t.Errorf("credit_spends_total{outcome=%s} = %v, want %v", c.outcome, got, c.want)
		}
	}
	if got := get("apikey_credits_spent_total"); got != 4 {
		t.Errorf("credits_spent_total = %v, want 4", got)
	}

	// A limiter that fails: the fail-open limit lets the request through
	// and counts fail_open, the other refuses it and counts error.
	reg2metrics, reg2 := newMetrics(t)
	lim := &failingLimiter{}
	m2, err := apikey.NewManager(memstore.New(), apikey.Config{Metrics: reg2metrics, Limiter: lim})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close(ctx)
	_, open, err := m2.Create(ctx, apikey.CreateParams{Name: "open", RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Minute, FailOpen: true}}})
	if err != nil {
		t.Fatal(err)
	}
	_, closed, err := m2.Create(ctx, apikey.CreateParams{Name: "closed", RateLimits: []apikey.RateLimit{{Name: "requests", Limit: 5, Period: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m2.Check(ctx, closed, apikey.CheckOptions{}); err != nil {
		t.Fatal(err)
	}
	lim.down.Store(true)
	if _, err := m2.Check(ctx, open, apikey.CheckOptions{}); err != nil {
		t.Fatalf("fail-open key with the limiter down: %v", err)
	}
	if _, err := m2.Check(ctx, closed, apikey.CheckOptions{}); !errors.Is(err, apikey.ErrUnavailable) {
		t.Fatalf("fail-closed key with the limiter down: %v, want ErrUnavailable", err)
	}
	reg = reg2
	for _, c := range []struct {
		outcome string
		want    float64
	}{{"allowed", 1}, {"fail_open", 1}, {"error", 1}, {"limited", 0}} {
		if got := get("apikey_ratelimit_decisions_total", "scope", "key", "limit", "requests", "outcome", c.outcome); got != c.want {
			t.Errorf("decisions{outcome=%s} with a failing limiter = %v, want %v", c.outcome, got, c.want)
		}
	}
}

// BenchmarkRateLimitDecided measures one counted decision of a limit
// already seen, beside one CacheHit (a bare counter increment).
func BenchmarkRateLimitDecided(b *testing.B) {
	m, err := apikeyprom.New(prometheus.NewRegistry(), "")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 8 { // a few other limits in the map
		m.RateLimitDecided("key", fmt.Sprintf("l%d", i), apikey.LimitAllowed)
	}
	b.Run("CacheHit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.CacheHit()
		}
	})
	b.Run("RateLimitDecided", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.RateLimitDecided("key", "requests", apikey.LimitAllowed)
		}
	})
}

// TestLeaseGauges checks the gauges of WatchLeases: read from a leasing
// Manager's LeasedCredits, and from a function standing for a Limiter's
// Leased, at each scrape.
func TestLeaseGauges(t *testing.T) {
	ctx := context.Background()
	m, reg := newMetrics(t)
	mgr, err := apikey.NewManager(memstore.New(), apikey.Config{CreditLease: 100})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mgr.Close(context.Background()) })
	var buckets, cells atomic.Int64
	if err := m.WatchLeases(mgr.LeasedCredits, func() (int, int64) { return int(buckets.Load()), cells.Load() }); err != nil {
		t.Fatal(err)
	}
	gauges := func(keys, credits, buckets, cells int) string {
		return fmt.Sprintf(`
# HELP apikey_credit_lease_keys Keys with credits leased by this instance (Config.CreditLease).
# TYPE apikey_credit_lease_keys gauge
apikey_credit_lease_keys %d
# HELP apikey_credits_leased Credits this instance holds in leases, which the stored balances lack until they come back.
# TYPE apikey_credits_leased gauge
apikey_credits_leased %d
# HELP apikey_ratelimit_lease_buckets Rate-limit buckets with cells leased by this instance from Redis (--limit-lease).
# TYPE apikey_ratelimit_lease_buckets gauge
apikey_ratelimit_lease_buckets %d
# HELP apikey_ratelimit_cells_leased Rate-limit cells this instance holds in leases that have not ended.
# TYPE apikey_ratelimit_cells_leased gauge
apikey_ratelimit_cells_leased %d
`, keys, credits, buckets, cells)
	}
	names := []string{"apikey_credit_lease_keys", "apikey_credits_leased", "apikey_ratelimit_lease_buckets", "apikey_ratelimit_cells_leased"}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(gauges(0, 0, 0, 0)), names...); err != nil {
		t.Fatal(err)
	}
	_, tok, err := mgr.Create(ctx, apikey.CreateParams{Name: "k", Credits: &apikey.Credits{Remaining: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Check(ctx, tok, apikey.CheckOptions{Credits: 1}); err != nil {
		t.Fatal(err)
	}
	// The first spend leases a sixteenth of the 999 left: 62.
	keys, held := mgr.LeasedCredits()
	if keys != 1 || held != 62 {
		t.Fatalf("LeasedCredits = %d, %d; want 1, 62", keys, held)
	}
	buckets.Store(3)
	cells.Store(41)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(gauges(1, 62, 3, 41)), names...); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchLeases(mgr.LeasedCredits, nil); err == nil {
		t.Fatal("second WatchLeases succeeded, want an already-registered error")
	}
	var local atomic.Int64
	if err := m.WatchLeasedDecisions(local.Load); err != nil {
		t.Fatal(err)
	}
	local.Store(1234)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP apikey_ratelimit_leased_decisions_total Rate-limit decisions made from cells this instance leased, without a trip to Redis (--limit-lease).
# TYPE apikey_ratelimit_leased_decisions_total counter
apikey_ratelimit_leased_decisions_total 1234
`), "apikey_ratelimit_leased_decisions_total"); err != nil {
		t.Fatal(err)
	}
	if err := m.WatchLeasedDecisions(local.Load); err == nil {
		t.Fatal("second WatchLeasedDecisions succeeded, want an already-registered error")
	}

	// A source left out leaves its gauges out.
	m2, reg2 := newMetrics(t)
	if err := m2.WatchLeases(mgr.LeasedCredits, nil); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg2, names...); n != 2 {
		t.Errorf("gauges collected without a cell source = %d, want 2", n)
	}
}

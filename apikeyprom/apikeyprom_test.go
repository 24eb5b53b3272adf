package apikeyprom_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey/apikeyprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newMetrics(t *testing.T) (*apikeyprom.Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := apikeyprom.New(reg, "")
	if err != nil {
		t.Fatal(err)
	}
	return m, reg
}

func TestCounters(t *testing.T) {
	m, reg := newMetrics(t)
	m.Verified("valid", 300*time.Nanosecond)
	m.Verified("valid", 2*time.Millisecond)
	m.Verified("key_revoked", time.Microsecond)
	m.Verified("something_new", time.Microsecond)
	m.CacheHit()
	m.CacheHit()
	m.CacheMiss()
	m.StoreLookup(100*time.Microsecond, nil)
	m.StoreLookup(time.Second, errors.New("down"))
	m.Invalidated()
	var dropped int64 = 7
	if err := m.WatchDroppedEvents(func() int64 { return dropped }); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP apikey_verifications_total Key verifications by outcome: valid, invalid_key, key_expired, key_revoked, key_disabled or unavailable.
# TYPE apikey_verifications_total counter
apikey_verifications_total{outcome="invalid_key"} 0
apikey_verifications_total{outcome="key_disabled"} 0
apikey_verifications_total{outcome="key_expired"} 0
apikey_verifications_total{outcome="key_revoked"} 1
apikey_verifications_total{outcome="something_new"} 1
apikey_verifications_total{outcome="unavailable"} 0
apikey_verifications_total{outcome="valid"} 2
# HELP apikey_cache_requests_total Verification cache lookups by result: hit or miss (a miss reads the store).
# TYPE apikey_cache_requests_total counter
apikey_cache_requests_total{result="hit"} 2
apikey_cache_requests_total{result="miss"} 1
# HELP apikey_store_errors_total Store lookups of verifications that failed (an unknown key is not a failure).
# TYPE apikey_store_errors_total counter
apikey_store_errors_total 1
# HELP apikey_cache_invalidations_total Keys evicted from the verification cache, by local changes or received invalidations.
# TYPE apikey_cache_invalidations_total counter
apikey_cache_invalidations_total 1
# HELP apikey_events_dropped_total Events dropped because the OnEvent subscriber fell behind.
# TYPE apikey_events_dropped_total counter
apikey_events_dropped_total 7
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"apikey_verifications_total", "apikey_cache_requests_total", "apikey_store_errors_total",
		"apikey_cache_invalidations_total", "apikey_events_dropped_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(reg, "apikey_verify_duration_seconds", "apikey_store_lookup_duration_seconds"); n != 2 {
		t.Fatalf("histograms collected = %d, want 2", n)
	}
	if err := m.WatchDroppedEvents(func() int64 { return 0 }); err == nil {
		t.Fatal("second WatchDroppedEvents succeeded, want an already-registered error")
	}
}

func TestHistogramBuckets(t *testing.T) {
	m, reg := newMetrics(t)
	m.Verified("valid", 300*time.Nanosecond) // in the first bucket (1µs)
	m.Verified("valid", 3*time.Millisecond)  // in 5ms
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "apikey_verify_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 {
			t.Fatalf("sample count = %d, want 2", h.GetSampleCount())
		}
		for _, b := range h.GetBucket() {
			want := uint64(0)
			switch {
			case b.GetUpperBound() >= 5e-3:
				want = 2
			case b.GetUpperBound() >= 1e-6:
				want = 1
			}
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%g: count %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		}
		return
	}
	t.Fatal("apikey_verify_duration_seconds not gathered")
}

func TestNamespace(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := apikeyprom.New(reg, "myapp")
	if err != nil {
		t.Fatal(err)
	}
	m.CacheHit()
	if n, err := testutil.GatherAndCount(reg, "myapp_cache_requests_total"); err != nil || n != 2 {
		t.Fatalf("myapp_cache_requests_total series = %d, %v; want 2", n, err)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := apikeyprom.New(nil, ""); err == nil {
		t.Error("New(nil) succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := apikeyprom.New(reg, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := apikeyprom.New(reg, ""); err == nil {
		t.Error("second New on one registry succeeded, want an already-registered error")
	}
}

func TestHotPathAllocations(t *testing.T) {
	m, _ := newMetrics(t)
	n := testing.AllocsPerRun(1000, func() {
		m.Verified("valid", time.Microsecond)
		m.Verified("key_expired", time.Microsecond)
		m.CacheHit()
		m.CacheMiss()
		m.StoreLookup(time.Microsecond, nil)
		m.Invalidated()
	})
	if n != 0 {
		t.Fatalf("hot-path methods allocate %v times per run, want 0", n)
	}
}

func BenchmarkVerified(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, _ := apikeyprom.New(reg, "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.CacheHit()
			m.Verified("valid", time.Microsecond)
		}
	})
}

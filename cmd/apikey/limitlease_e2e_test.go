package main

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeLimitLeases: two apikey serve processes on one database and
// one Redis, with leases of rate-limit cells (--limit-lease, 50ms by
// default), share a key's limit of 1000 a second with a burst of 3000
// under 32 clients for 1.5 s. Together they never let through more than
// the burst plus one a millisecond, they let through most of it, and
// while the burst lasts they hold leases (the gauges of /metrics show
// them).
func TestServeLimitLeases(t *testing.T) {
	t.Parallel()
	p := redisPair(t)
	urls := []string{p.a.url, p.b.url}
	c := call(t, "POST", p.a.url+"/v1/keys", "api-key", p.admin,
		`{"name":"busy","ratelimits":[{"name":"requests","limit":1000,"period":"1s","burst":3000}]}`)
	expect(t, "create", c, 201, "")
	body := `{"key":"` + c.str("key") + `"}`

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	defer client.CloseIdleConnections()
	var allowed, refused atomic.Int64
	var failed atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The gauges, read every 50ms on both servers while the load runs.
	var leasedBuckets atomic.Int64
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, u := range urls {
				leasedBuckets.Store(max(leasedBuckets.Load(), int64(metric(t, u, "apikey_ratelimit_lease_buckets"))))
			}
		}
	})
	start := time.Now()
	deadline := start.Add(1500 * time.Millisecond)
	var load sync.WaitGroup
	for w := range 32 {
		load.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				req, err := http.NewRequest("POST", urls[(w+i)%2]+"/v1/verify", strings.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Api-Key "+p.admin)
				resp, err := client.Do(req)
				if err != nil {
					if !failed.Swap(true) {
						t.Error(err)
					}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					allowed.Add(1)
				case resp.StatusCode == 429 && strings.Contains(string(b), `"rate_limited"`):
					refused.Add(1)
				default:
					if !failed.Swap(true) {
						t.Errorf("status %d: %s", resp.StatusCode, b)
					}
					return
				}
			}
		})
	}
	load.Wait()
	elapsed := time.Since(start)
	close(stop)
	wg.Wait()

	got, tries := allowed.Load(), allowed.Load()+refused.Load()
	bound := 3000 + int64(elapsed/time.Millisecond) + 1
	t.Logf("%d of %d allowed in %v (bound %d); at most %d buckets leased at a scrape", got, tries, elapsed, bound, leasedBuckets.Load())
	if got > bound {
		t.Fatalf("%d allowed in %v: more than the burst of 3000 plus one a millisecond (%d)", got, elapsed, bound)
	}
	if want := min(bound, tries) / 2; got < want {
		t.Errorf("%d of %d allowed in %v: fewer than %d, half of what the limit allows", got, tries, elapsed, want)
	}
	if leasedBuckets.Load() < 1 {
		t.Error("no server held a lease of cells at any scrape of apikey_ratelimit_lease_buckets")
	}
}

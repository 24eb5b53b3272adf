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
// default), under 32 clients:
//   - a key of 1000 a second with a burst of 3000, for 1.5 s: the servers
//     hold leases while the burst lasts (apikey_ratelimit_leased_decisions_total
//     counts the decisions made from them),
//     and let through no more than the burst plus one a millisecond;
//   - a key of 100 a second with a burst of 200, until the limit has
//     refused requests for a while: between them the servers let through
//     no more than the burst plus one every 10 ms, and most of that.
func TestServeLimitLeases(t *testing.T) {
	t.Parallel()
	p := redisPair(t)
	l := &leaseLoad{t: t, urls: []string{p.a.url, p.b.url}, admin: p.admin,
		client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 32}}}
	defer l.client.CloseIdleConnections()
	create := func(limit string) string {
		c := call(t, "POST", p.a.url+"/v1/keys", "api-key", p.admin, `{"name":"busy","ratelimits":[`+limit+`]}`)
		expect(t, "create", c, 201, "")
		return `{"key":"` + c.str("key") + `"}`
	}

	// Leases held.
	busy := create(`{"name":"requests","limit":1000,"period":"1s","burst":3000}`)
	var leased atomic.Int64
	stop := make(chan struct{})
	var scraper sync.WaitGroup
	scraper.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			for _, u := range l.urls {
				leased.Store(max(leased.Load(), int64(metric(t, u, "apikey_ratelimit_lease_buckets"))))
			}
		}
	})
	const decisions = "apikey_ratelimit_leased_decisions_total"
	before := metric(t, l.urls[0], decisions) + metric(t, l.urls[1], decisions)
	got, tries, elapsed := l.run(busy, 1500*time.Millisecond, nil)
	close(stop)
	scraper.Wait()
	local := metric(t, l.urls[0], decisions) + metric(t, l.urls[1], decisions) - before
	bound := 3000 + int64(elapsed/time.Millisecond) + 1
	t.Logf("1000/s, burst 3000: %d of %d allowed in %v (bound %d), %v from leases; at most %d buckets leased at a scrape", got, tries, elapsed, bound, local, leased.Load())
	if got > bound {
		t.Errorf("%d allowed in %v: more than the burst of 3000 plus one a millisecond (%d)", got, elapsed, bound)
	}
	// The gauges are read every 50ms, and a busy server holds a lease
	// nearly always; a server slowed down (-race, a loaded machine) may
	// hold it only between scrapes: the count of decisions says it leased.
	if local < 1 {
		t.Errorf("%s grew by %v over %d requests: no decision was made from a lease", decisions, local, tries)
	}

	// The limit reached: run until it has refused as many requests as its
	// burst, so that the bound is what stops them (8 s at most).
	tight := create(`{"name":"requests","limit":100,"period":"1s","burst":200}`)
	got, tries, elapsed = l.run(tight, 1500*time.Millisecond, func(allowed, refused int64) bool { return refused >= 200 })
	bound = 200 + int64(elapsed/(10*time.Millisecond)) + 1
	t.Logf("100/s, burst 200: %d of %d allowed in %v (bound %d)", got, tries, elapsed, bound)
	if got > bound {
		t.Errorf("%d allowed in %v: more than the burst of 200 plus one every 10ms (%d)", got, elapsed, bound)
	}
	if tries-got < 200 {
		t.Errorf("only %d of %d refused in %v: the limit was not reached", tries-got, tries, elapsed)
	} else if got < bound*3/4 {
		t.Errorf("%d allowed in %v: the leases starved the limit (bound %d)", got, elapsed, bound)
	}
}

// leaseLoad sends POST /v1/verify from 32 clients, alternating between
// servers.
type leaseLoad struct {
	t      *testing.T
	urls   []string
	admin  string
	client *http.Client
}

// run sends body for at least least, then until done (nil: at once) says
// enough, 8 s at most, and returns the requests allowed, the requests
// answered and the time taken. Any answer but 200 and 429 rate_limited
// fails the test.
func (l *leaseLoad) run(body string, least time.Duration, done func(allowed, refused int64) bool) (allowed, tries int64, elapsed time.Duration) {
	var ok, refused atomic.Int64
	var failed atomic.Bool
	start := time.Now()
	enough := func() bool {
		d := time.Since(start)
		return failed.Load() || d >= 8*time.Second || d >= least && (done == nil || done(ok.Load(), refused.Load()))
	}
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := 0; !enough(); i++ {
				req, err := http.NewRequest("POST", l.urls[(w+i)%len(l.urls)]+"/v1/verify", strings.NewReader(body))
				if err != nil {
					l.t.Error(err)
					return
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Api-Key "+l.admin)
				resp, err := l.client.Do(req)
				if err != nil {
					if !failed.Swap(true) {
						l.t.Error(err)
					}
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					ok.Add(1)
				case resp.StatusCode == 429 && strings.Contains(string(b), `"rate_limited"`):
					refused.Add(1)
				default:
					if !failed.Swap(true) {
						l.t.Errorf("status %d: %s", resp.StatusCode, b)
					}
					return
				}
			}
		})
	}
	wg.Wait()
	return ok.Load(), ok.Load() + refused.Load(), time.Since(start)
}

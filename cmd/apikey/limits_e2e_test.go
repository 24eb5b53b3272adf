package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// redisPair starts two servers over one PostgreSQL schema and one Redis
// (APIKEY_TEST_REDIS_ADDR), with a Redis timeout that a loaded machine
// does not reach.
func redisPair(t *testing.T) *pair {
	t.Helper()
	addr := os.Getenv("APIKEY_TEST_REDIS_ADDR")
	if addr == "" {
		t.Skip("set APIKEY_TEST_REDIS_ADDR (for example 127.0.0.1:6379) to run the Redis tests")
	}
	return startPair(t, postgresURL(t), "--redis", addr, "--redis-timeout", "10s")
}

// TestServeLimitsAcrossInstances runs two servers over one PostgreSQL
// schema and one Redis and sends 64 concurrent clients at them, half to
// each: a rate limit admits exactly its burst between the two, credits are
// spent exactly, down to zero and never below, and an idempotency key
// replayed three times spends once.
func TestServeLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	p := redisPair(t)
	urls := []string{p.a.url, p.b.url}
	create := func(body string) (token, id string) {
		t.Helper()
		c := call(t, "POST", p.a.url+"/v1/keys", "api-key", p.admin, body)
		expect(t, "create", c, 201, "")
		return c.str("key"), c.str("id")
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	// verify makes one POST /v1/verify on server i and returns its status,
	// code and credits left.
	verify := func(i int, body string) (int, string, int64, bool, error) {
		req, err := http.NewRequest("POST", urls[i%2]+"/v1/verify", strings.NewReader(body))
		if err != nil {
			return 0, "", 0, false, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Api-Key "+p.admin)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", 0, false, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, "", 0, false, err
		}
		var v struct {
			Code    string `json:"code"`
			Valid   bool   `json:"valid"`
			Credits *struct {
				Remaining int64 `json:"remaining"`
				Replayed  bool  `json:"replayed"`
			} `json:"credits"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			return 0, "", 0, false, fmt.Errorf("status %d, body %q: %v", resp.StatusCode, b, err)
		}
		if resp.StatusCode == 200 && (!v.Valid || v.Credits == nil) {
			return 0, "", 0, false, fmt.Errorf("verify: %s", b)
		}
		if v.Credits == nil {
			return resp.StatusCode, v.Code, -1, false, nil
		}
		return resp.StatusCode, v.Code, v.Credits.Remaining, v.Credits.Replayed, nil
	}
	// hammer sends tries requests from each of 64 clients, alternating
	// between the servers, and counts the answers by status and code.
	hammer := func(tries int, body func(client, try int) string) map[string]int {
		t.Helper()
		var mu sync.Mutex
		counts := map[string]int{}
		var wg sync.WaitGroup
		var failed atomic.Bool
		for c := range 64 {
			wg.Go(func() {
				for i := range tries {
					status, code, _, replayed, err := verify(c+i, body(c, i))
					if err != nil {
						if !failed.Swap(true) {
							t.Error(err)
						}
						return
					}
					k := fmt.Sprintf("%d %s", status, code)
					if replayed {
						k += " replayed"
					}
					mu.Lock()
					counts[k]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		return counts
	}
	balance := func(id string) int64 {
		t.Helper()
		c := call(t, "GET", p.b.url+"/v1/keys/"+id, "api-key", p.admin, "")
		expect(t, "get", c, 200, "")
		credits, _ := c.body["credits"].(map[string]any)
		n, _ := credits["remaining"].(float64)
		return int64(n)
	}
	// settled waits for the balance of id to be want: the servers lease
	// credits (--credit-lease) and give back what is left within their
	// TTL (1s) and a sweep (250ms). Meanwhile the balance is never above
	// want: a lease is taken out of it, never added.
	settled := func(id string, want int64) int64 {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for {
			b := balance(id)
			if b > want {
				t.Errorf("balance %d above %d while leases are out", b, want)
			}
			if b == want || time.Now().After(deadline) {
				return b
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	// 100 an hour (the test's seconds refill none) and 1000 credits: the
	// limit binds, and a refused request spends nothing.
	const limit, plenty = 100, 1000
	token, id := create(fmt.Sprintf(`{"name":"limited","ratelimits":[{"name":"requests","limit":%d,"period":"1h"}],"credits":{"remaining":%d}}`, limit, plenty))
	start := time.Now()
	got := hammer(4, func(int, int) string { return `{"key":"` + token + `","credits":1}` })
	if want := map[string]int{"200 ": limit, "429 rate_limited": 256 - limit}; !equalCounts(got, want) {
		t.Errorf("a limit of %d over 256 requests: %v, want %v", limit, got, want)
	}
	if b := settled(id, plenty-limit); b != plenty-limit {
		t.Errorf("credits left %d, want %d: exactly one per admitted request", b, plenty-limit)
	}

	// 150 credits, no limit: 256 requests spend exactly 150.
	const credits = 150
	token, id = create(fmt.Sprintf(`{"name":"metered","credits":{"remaining":%d}}`, credits))
	got = hammer(4, func(int, int) string { return `{"key":"` + token + `","credits":1}` })
	if want := map[string]int{"200 ": credits, "429 usage_exceeded": 256 - credits}; !equalCounts(got, want) {
		t.Errorf("%d credits over 256 requests: %v, want %v", credits, got, want)
	}
	if b := settled(id, 0); b != 0 {
		t.Errorf("credits left %d, want 0", b)
	}

	// 16 idempotency keys, each sent 4 times (by 4 clients at once, over
	// both servers): 16 spends of 2, and 48 replays.
	token, id = create(`{"name":"idempotent","credits":{"remaining":100}}`)
	got = hammer(1, func(c, _ int) string {
		return fmt.Sprintf(`{"key":"%s","credits":2,"idempotency_key":"order-%d"}`, token, c/4)
	})
	if want := map[string]int{"200 ": 16, "200  replayed": 48}; !equalCounts(got, want) {
		t.Errorf("16 idempotency keys sent 4 times each: %v, want %v", got, want)
	}
	if b := settled(id, 100-16*2); b != 100-16*2 {
		t.Errorf("credits left %d, want %d", b, 100-16*2)
	}
	t.Logf("768 concurrent verifications over two servers in %v", time.Since(start))
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

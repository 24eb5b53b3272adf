package main

import (
	"testing"
	"time"
)

// TestServeLimitMetrics checks that /metrics of the binary counts rate
// limiting and credits: after a key's limit of 2 refuses its third request,
// and after spends, replays and a refusal for want of credits.
func TestServeLimitMetrics(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	env := []string{"APIKEY_DB=" + databaseFor(t, "sqlite")}
	admin := adminToken(t, dir, env)
	s := startServe(t, dir, env)
	const (
		allowed  = `apikey_ratelimit_decisions_total{limit="requests",outcome="allowed",scope="key"}`
		limited  = `apikey_ratelimit_decisions_total{limit="requests",outcome="limited",scope="key"}`
		owner    = `apikey_ratelimit_decisions_total{limit="search",outcome="allowed",scope="owner"}`
		spent    = `apikey_credit_spends_total{outcome="spent"}`
		exceeded = `apikey_credit_spends_total{outcome="exceeded"}`
		replayed = `apikey_credit_spends_total{outcome="replayed"}`
		credits  = `apikey_credits_spent_total`
	)
	before := map[string]float64{}
	for _, series := range []string{allowed, limited, owner, spent, exceeded, replayed, credits} {
		before[series] = max(metric(t, s.url, series), 0) // -1: not exported yet
	}

	c := call(t, "PUT", s.url+"/v1/owners/acme", "api-key", admin, `{"ratelimits":[{"name":"search","limit":100,"period":"1h"}]}`)
	expect(t, "put owner", c, 200, "")
	c = call(t, "POST", s.url+"/v1/keys", "api-key", admin,
		`{"name":"limited","owner":"acme","ratelimits":[{"name":"requests","limit":2,"period":"1h"}],"credits":{"remaining":10}}`)
	expect(t, "create", c, 201, "")
	token := c.str("key")
	expect(t, "whoami 1", call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""), 200, "")
	expect(t, "whoami 2", call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""), 200, "")
	expect(t, "whoami 3", call(t, "GET", s.url+"/v1/whoami", "api-key", token, ""), 429, "rate_limited")

	// Credits, through POST /v1/verify of another key under the same
	// owner: a spend of 4 on its "search" limit, its replay, and a spend
	// of 7 of the 6 left.
	c = call(t, "POST", s.url+"/v1/keys", "api-key", admin, `{"name":"metered","owner":"acme","credits":{"remaining":10}}`)
	expect(t, "create metered", c, 201, "")
	metered := c.str("key")
	for i, body := range []string{
		`{"key":"` + metered + `","ratelimit":"search","credits":4,"idempotency_key":"a"}`,
		`{"key":"` + metered + `","ratelimit":"search","credits":4,"idempotency_key":"a"}`,
	} {
		c = call(t, "POST", s.url+"/v1/verify", "api-key", admin, body)
		expect(t, "verify", c, 200, "")
		if c.body["valid"] != true {
			t.Fatalf("verify %d: %s", i, c.raw)
		}
	}
	expect(t, "verify 7 of 6", call(t, "POST", s.url+"/v1/verify", "api-key", admin, `{"key":"`+metered+`","credits":7}`), 429, "usage_exceeded")

	for _, w := range []struct {
		series string
		delta  float64
	}{
		{allowed, 2}, {limited, 1},
		{owner, 2}, // the spend and its replay both pass the owner's limit
		{spent, 1}, {replayed, 1}, {exceeded, 1}, {credits, 4},
	} {
		if got := metric(t, s.url, w.series); got-before[w.series] != w.delta {
			t.Errorf("%s = %v, want %v more than %v", w.series, got, w.delta, before[w.series])
		}
	}

	// Leases: a spend of 1 of 1000 credits leases a sixteenth of the 999
	// left (--credit-lease 1000 by default), held by this server until it
	// comes back; without --redis no cells of limits are leased.
	// The lease comes back a second after the spend: the figures are
	// checked only when they were all read well within it.
	c = call(t, "POST", s.url+"/v1/keys", "api-key", admin, `{"name":"leased","credits":{"remaining":1000}}`)
	expect(t, "create leased", c, 201, "")
	start := time.Now()
	expect(t, "verify leased", call(t, "POST", s.url+"/v1/verify", "api-key", admin, `{"key":"`+c.str("key")+`","credits":1}`), 200, "")
	want := map[string]float64{
		"apikey_credit_lease_keys": 1, "apikey_credits_leased": 62,
		"apikey_ratelimit_lease_buckets": -1, "apikey_ratelimit_cells_leased": -1, // not exported
	}
	got := map[string]float64{}
	for series := range want {
		got[series] = metric(t, s.url, series)
	}
	if time.Since(start) > 800*time.Millisecond {
		t.Logf("the lease gauges were read %v after the spend: not checked", time.Since(start))
		return
	}
	for series, w := range want {
		if got[series] != w {
			t.Errorf("%s = %v, want %v", series, got[series], w)
		}
	}
}

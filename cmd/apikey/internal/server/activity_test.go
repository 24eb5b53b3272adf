package server_test

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/ottercache"
)

// metricValue returns the value of the sample whose name and labels are
// series (such as `apikey_cache_requests_total{result="hit"}`), or -1.
func metricValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", series, err)
	}
	return v
}

// TestMetrics scrapes GET /metrics over HTTP after verifications through
// a cached Manager.
func TestMetrics(t *testing.T) {
	f := newFixture(t, options{http: true})
	// The fixture's keys were made through the Manager; a cache is what
	// apikey serve runs with.
	cache, err := ottercache.New(ottercache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	f2 := newFixture(t, options{http: true, cfg: apikey.Config{Cache: cache}})

	k := f2.create(t, `{"name":"metered"}`)
	for range 5 {
		mustStatus(t, f2.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token}), http.StatusOK, "whoami")
	}
	wantProblem(t, f2.do(t, req{method: "GET", path: "/v1/whoami", token: apikeytest.WrongSecret(k.Token)}), http.StatusUnauthorized, "invalid_key", "wrong secret")
	mustStatus(t, f2.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: f2.admin}), http.StatusOK, "revoke")
	wantProblem(t, f2.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token}), http.StatusUnauthorized, "key_revoked", "revoked")

	r := f2.do(t, req{method: "GET", path: "/metrics"})
	mustStatus(t, r, http.StatusOK, "metrics")
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	body := string(r.body)
	for series, min := range map[string]float64{
		`apikey_verifications_total{outcome="valid"}`:       5,
		`apikey_verifications_total{outcome="invalid_key"}`: 1,
		`apikey_verifications_total{outcome="key_revoked"}`: 1,
		`apikey_cache_requests_total{result="hit"}`:         1,
		`apikey_cache_requests_total{result="miss"}`:        1,
		`apikey_cache_invalidations_total`:                  1,
		`apikey_verify_duration_seconds_count`:              7,
	} {
		if v := metricValue(t, body, series); v < min {
			t.Errorf("%s = %v, want at least %v", series, v, min)
		}
	}
	// The whoami calls after the first are hits: the fixture's admin key
	// verified for create and revoke adds to both.
	if hits := metricValue(t, body, `apikey_cache_requests_total{result="hit"}`); hits < 4 {
		t.Errorf("cache hits %v after 5 whoami calls, want at least 4", hits)
	}
	if metricValue(t, body, `apikey_verifications_total{outcome="unavailable"}`) != 0 {
		t.Errorf("unavailable verifications:\n%s", body)
	}
	if strings.Contains(body, k.Token) || strings.Contains(body, k.ID) {
		t.Error("the metrics name a key")
	}

	// Without a cache, every verification is a miss... and there are no
	// hits.
	r = f.do(t, req{method: "GET", path: "/metrics"})
	mustStatus(t, r, http.StatusOK, "metrics without a cache")
	if v := metricValue(t, string(r.body), `apikey_cache_requests_total{result="hit"}`); v != 0 {
		t.Errorf("hits without a cache: %v", v)
	}
}

// TestEventsEndpoint checks GET /v1/events: mutations made through the API
// are listed with the calling key as actor, filtered and paged.
func TestEventsEndpoint(t *testing.T) {
	f := newFixture(t, options{http: true})
	adminKey, err := f.m.Verify(context.Background(), f.admin)
	if err != nil {
		t.Fatal(err)
	}
	actor := "key:" + adminKey.ID
	k := f.create(t, `{"name":"audited"}`)
	other := f.create(t, `{"name":"other"}`)
	mustStatus(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: f.admin}), http.StatusOK, "revoke")

	type page struct {
		Events []struct {
			ID     int64  `json:"id"`
			Type   string `json:"type"`
			Actor  string `json:"actor"`
			KeyID  string `json:"key_id"`
			At     time.Time
			Change map[string]struct{ Before, After any } `json:"changes"`
		} `json:"events"`
		NextCursor string `json:"next_cursor"`
	}
	get := func(q string) page {
		t.Helper()
		r := f.do(t, req{method: "GET", path: "/v1/events" + q, token: f.admin})
		mustStatus(t, r, http.StatusOK, "events"+q)
		var p page
		r.json(t, &p)
		return p
	}

	p := get("?key_id=" + k.ID)
	if len(p.Events) != 2 || p.Events[0].Type != "key.revoked" || p.Events[1].Type != "key.created" {
		t.Fatalf("events of %s: %+v", k.ID, p)
	}
	for _, e := range p.Events {
		if e.Actor != actor || e.KeyID != k.ID || e.ID == 0 {
			t.Errorf("event %+v, want actor %s", e, actor)
		}
	}
	if ch := p.Events[0].Change["revoked_at"]; ch.Before != nil || ch.After == nil {
		t.Errorf("revoke changes: %+v", p.Events[0].Change)
	}
	if p := get("?type=key.revoked"); len(p.Events) != 1 || p.Events[0].KeyID != k.ID {
		t.Errorf("revoked events: %+v", p)
	}
	if p := get("?actor=" + actor + "&type=key.created"); len(p.Events) != 2 {
		t.Errorf("created by the admin key: %+v", p)
	}
	if p := get("?actor=cli"); len(p.Events) != 0 {
		t.Errorf("events by cli: %+v", p)
	}

	// Paging, newest first: the fixture's own two keys were created
	// without an actor.
	first := get("?limit=2")
	if len(first.Events) != 2 || first.NextCursor == "" || first.Events[0].KeyID != k.ID || first.Events[1].KeyID != other.ID {
		t.Fatalf("first page: %+v", first)
	}
	rest := get("?limit=2&cursor=" + first.NextCursor)
	if len(rest.Events) != 2 || rest.Events[0].ID >= first.Events[1].ID {
		t.Errorf("second page: %+v", rest)
	}

	// A verify-scoped key may not read the audit log.
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/events", token: f.verify}), http.StatusForbidden, "insufficient_scope", "verifier")
}

// TestUsageEndpoint checks GET /v1/keys/{id}/usage after a flush.
func TestUsageEndpoint(t *testing.T) {
	f := newFixture(t, options{http: true})
	k := f.create(t, `{"name":"used"}`)
	for range 3 {
		mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token}), http.StatusOK, "whoami")
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: apikeytest.WrongSecret(k.Token)}), http.StatusUnauthorized, "invalid_key", "wrong secret")
	f.clock.Add(time.Minute)
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: k.Token}), http.StatusOK, "whoami")
	if err := f.m.FlushUsage(context.Background()); err != nil {
		t.Fatal(err)
	}

	type usage struct {
		KeyID       string `json:"key_id"`
		Granularity string `json:"granularity"`
		From, To    time.Time
		Usage       []apikey.UsageCount `json:"usage"`
	}
	get := func(q string) usage {
		t.Helper()
		r := f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID + "/usage" + q, token: f.admin})
		mustStatus(t, r, http.StatusOK, "usage"+q)
		var u usage
		r.json(t, &u)
		return u
	}
	sum := func(u usage, outcome string) (n int64) {
		for _, c := range u.Usage {
			if c.Outcome == outcome {
				n += c.Count
			}
		}
		return n
	}

	u := get("")
	if u.KeyID != k.ID || u.Granularity != "hour" || !u.To.Equal(f.clock.Now()) || u.To.Sub(u.From) != 24*time.Hour {
		t.Errorf("defaults: %+v", u)
	}
	if sum(u, "valid") != 4 || sum(u, "invalid_key") != 1 {
		t.Errorf("hourly usage: %+v", u.Usage)
	}
	m := get("?granularity=minute")
	if sum(m, "valid") != 4 || len(m.Usage) != 3 { // valid and invalid_key in one minute, valid in the next
		t.Errorf("usage by minute: %+v", m.Usage)
	}
	d := get("?granularity=day&from=" + f.clock.Now().Add(-30*24*time.Hour).Format(time.RFC3339))
	if sum(d, "valid") != 4 || d.Granularity != "day" || len(d.Usage) == 0 || d.Usage[0].Bucket.Hour() != 0 || d.Usage[0].Bucket.Minute() != 0 {
		t.Errorf("usage by day over 30 days: %+v", d)
	}
	from := f.clock.Now().Add(-30 * time.Second).Format(time.RFC3339)
	if w := get("?granularity=minute&from=" + from); sum(w, "valid") != 1 || sum(w, "invalid_key") != 0 {
		t.Errorf("usage of the last minute: %+v", w.Usage)
	}
	if e := get("?to=2001-01-01T00:00:00Z"); len(e.Usage) != 0 {
		t.Errorf("usage in 2000: %+v", e.Usage)
	}
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/keys/AAAAAAAAAAAA/usage", token: f.admin}), http.StatusNotFound, "not_found", "unknown key")
}

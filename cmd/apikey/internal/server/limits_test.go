package server_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// limited is the JSON of a key's limits and credits.
type limited struct {
	ID         string `json:"id"`
	RateLimits []struct {
		Name     string `json:"name"`
		Limit    int64  `json:"limit"`
		Period   string `json:"period"`
		Burst    int64  `json:"burst"`
		FailOpen bool   `json:"fail_open"`
	} `json:"ratelimits"`
	Credits *struct {
		Remaining int64 `json:"remaining"`
		Refill    *struct {
			Interval string `json:"interval"`
			Amount   int64  `json:"amount"`
			Day      int    `json:"day"`
		} `json:"refill"`
		NextRefillAt *time.Time `json:"next_refill_at"`
	} `json:"credits"`
}

type verified struct {
	Valid      bool   `json:"valid"`
	Code       string `json:"code"`
	RateLimits []struct {
		Name      string `json:"name"`
		Scope     string `json:"scope"`
		Limit     int64  `json:"limit"`
		Remaining int64  `json:"remaining"`
		Reset     int64  `json:"reset"`
		Allowed   bool   `json:"allowed"`
	} `json:"ratelimits"`
	Credits *struct {
		Remaining int64 `json:"remaining"`
		Replayed  bool  `json:"replayed"`
	} `json:"credits"`
}

func (f *fixture) verifyWith(t *testing.T, body string) (response, verified) {
	t.Helper()
	r := f.do(t, req{method: "POST", path: "/v1/verify", token: f.verify, body: body})
	var v verified
	if r.status == http.StatusOK {
		r.json(t, &v)
	}
	return r, v
}

func TestKeyLimitsRoundTrip(t *testing.T) {
	f := newFixture(t, options{})
	k := f.create(t, `{"name":"partner","ratelimits":[{"name":"requests","limit":100,"period":"1m","burst":20},{"name":"search","limit":10,"period":"1s","fail_open":true}],
		"credits":{"remaining":1000,"refill":{"interval":"daily","amount":500}}}`)
	var got limited
	r := f.do(t, req{method: "GET", path: "/v1/keys/" + k.ID, token: f.admin})
	mustStatus(t, r, http.StatusOK, "get")
	r.json(t, &got)
	if len(got.RateLimits) != 2 || got.RateLimits[0].Name != "requests" || got.RateLimits[0].Limit != 100 || got.RateLimits[0].Period != "1m" ||
		got.RateLimits[0].Burst != 20 || got.RateLimits[1].Period != "1s" || !got.RateLimits[1].FailOpen {
		t.Errorf("ratelimits read back: %+v", got.RateLimits)
	}
	want := time.Date(2030, 1, 3, 0, 0, 0, 0, time.UTC) // the next midnight of the fixture's clock
	if c := got.Credits; c == nil || c.Remaining != 1000 || c.Refill == nil || c.Refill.Interval != "daily" || c.Refill.Amount != 500 ||
		c.NextRefillAt == nil || !c.NextRefillAt.Equal(want) {
		t.Errorf("credits read back: %+v", got.Credits)
	}

	// PATCH replaces the limits, and null removes the credits.
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{"ratelimits":[{"name":"requests","limit":5,"period":"1h"}],"credits":null}`})
	mustStatus(t, r, http.StatusOK, "patch")
	got = limited{}
	r.json(t, &got)
	if len(got.RateLimits) != 1 || got.RateLimits[0].Limit != 5 || got.RateLimits[0].Period != "1h" || got.Credits != nil {
		t.Errorf("after patch: %s", r.body)
	}
	r = f.do(t, req{method: "PATCH", path: "/v1/keys/" + k.ID, token: f.admin, body: `{"ratelimits":[]}`})
	mustStatus(t, r, http.StatusOK, "patch []")
	if !strings.Contains(string(r.body), `"ratelimits":[]`) {
		t.Errorf("after removing the limits: %s", r.body)
	}

	// Bad input names its field.
	for _, c := range []struct{ method, path, body, field string }{
		{"POST", "/v1/keys", `{"name":"x","ratelimits":[{"name":"requests","limit":0,"period":"1m"}]}`, "ratelimits"},
		{"POST", "/v1/keys", `{"name":"x","ratelimits":[{"name":"Bad Name","limit":1,"period":"1m"}]}`, "ratelimits"},
		{"POST", "/v1/keys", `{"name":"x","ratelimits":[{"name":"r","limit":1,"period":"soon"}]}`, "period"},
		{"POST", "/v1/keys", `{"name":"x","ratelimits":[{"name":"r","limit":1,"period":"1m"},{"name":"r","limit":2,"period":"1m"}]}`, "ratelimits"},
		{"POST", "/v1/keys", `{"name":"x","credits":{"remaining":-1}}`, "credits"},
		{"POST", "/v1/keys", `{"name":"x","credits":{"remaining":1,"refill":{"interval":"hourly","amount":1}}}`, "credits"},
		{"PATCH", "/v1/keys/" + k.ID, `{"ratelimits":null}`, "ratelimits"},
	} {
		r := f.do(t, req{method: c.method, path: c.path, token: f.admin, body: c.body})
		if p := wantProblem(t, r, http.StatusBadRequest, "invalid_input", c.body); p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
	}
}

func TestVerifyLimitsAndCredits(t *testing.T) {
	f := newFixture(t, options{})
	k := f.create(t, `{"name":"metered","ratelimits":[{"name":"requests","limit":100,"period":"1h"},{"name":"tokens","limit":10,"period":"1h"}],"credits":{"remaining":5}}`)
	body := func(extra string) string { return `{"key":` + jsonString(k.Token) + extra + `}` }

	r, v := f.verifyWith(t, body(`,"ratelimit":"tokens","cost":4,"credits":2,"idempotency_key":"order-1"`))
	mustStatus(t, r, http.StatusOK, "verify")
	if !v.Valid || len(v.RateLimits) != 2 || v.RateLimits[0].Name != "requests" || v.RateLimits[0].Remaining != 99 ||
		v.RateLimits[1].Name != "tokens" || v.RateLimits[1].Remaining != 6 || v.Credits == nil || v.Credits.Remaining != 3 || v.Credits.Replayed {
		t.Fatalf("first verify: %s", r.body)
	}
	if r.header.Get("RateLimit-Policy") != `"requests";q=100;w=3600, "tokens";q=10;w=3600` || !strings.HasPrefix(r.header.Get("RateLimit"), `"requests";r=99;t=`) {
		t.Errorf("headers: RateLimit-Policy %q, RateLimit %q", r.header.Get("RateLimit-Policy"), r.header.Get("RateLimit"))
	}
	// The same idempotency key three more times spends nothing.
	for range 3 {
		r, v = f.verifyWith(t, body(`,"credits":2,"idempotency_key":"order-1"`))
		if r.status != http.StatusOK || v.Credits == nil || v.Credits.Remaining != 3 || !v.Credits.Replayed {
			t.Fatalf("replay: %s", r.body)
		}
	}
	r, v = f.verifyWith(t, body(`,"credits":3`))
	if r.status != http.StatusOK || v.Credits.Remaining != 0 {
		t.Fatalf("spend the rest: %s", r.body)
	}
	r, _ = f.verifyWith(t, body(`,"credits":1`))
	wantProblem(t, r, http.StatusTooManyRequests, "usage_exceeded", "no credits left")
	if r.header.Get("Retry-After") != "" {
		t.Errorf("usage_exceeded without a refill has Retry-After %q", r.header.Get("Retry-After"))
	}
	// A verify that spends no credit still passes.
	if r, v = f.verifyWith(t, body(``)); r.status != http.StatusOK || !v.Valid {
		t.Fatalf("verify without credits: %s", r.body)
	}

	// The tokens limit: 6 left, then refused with Retry-After.
	r, _ = f.verifyWith(t, body(`,"ratelimit":"tokens","cost":7`))
	wantProblem(t, r, http.StatusTooManyRequests, "rate_limited", "tokens over the limit")
	if ra := r.header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("rate_limited: Retry-After %q", ra)
	}
	if !strings.Contains(r.header.Get("RateLimit"), `"tokens";r=0`) {
		t.Errorf("rate_limited: RateLimit %q", r.header.Get("RateLimit"))
	}

	// An invalid key spends nothing and is not limited; bad options are
	// refused before anything is spent.
	if r, v = f.verifyWith(t, `{"key":"ak_AAAAAAAAAAAA_nope","credits":1}`); r.status != http.StatusOK || v.Valid || v.Code != "invalid_key" {
		t.Errorf("invalid key: %s", r.body)
	}
	for _, c := range []struct{ extra, field string }{
		{`,"ratelimit":"Bad Name"`, "ratelimit"},
		{`,"cost":-1`, "cost"},
		{`,"credits":-1`, "credits"},
		{`,"idempotency_key":""`, ""},
		{`,"idempotency_key":"` + strings.Repeat("x", 256) + `"`, "idempotency_key"},
	} {
		r, _ := f.verifyWith(t, body(c.extra))
		if c.field == "" {
			mustStatus(t, r, http.StatusOK, c.extra) // empty means none
			continue
		}
		if p := wantProblem(t, r, http.StatusBadRequest, "invalid_input", c.extra); p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.extra, p.Field, c.field)
		}
	}
}

func TestCreditsRoute(t *testing.T) {
	f := newFixture(t, options{})
	k := f.create(t, `{"name":"metered","credits":{"remaining":10,"refill":{"interval":"monthly","day":15,"amount":10}}}`)
	post := func(path, body string) response {
		return f.do(t, req{method: "POST", path: path, token: f.admin, body: body})
	}
	credits := func(r response) (c struct {
		Remaining int64 `json:"remaining"`
		Refill    *struct {
			Interval string `json:"interval"`
		} `json:"refill"`
	}) {
		mustStatus(t, r, http.StatusOK, "credits")
		r.json(t, &c)
		return c
	}
	path := "/v1/keys/" + k.ID + "/credits"
	if c := credits(post(path, `{"op":"add","amount":5}`)); c.Remaining != 15 || c.Refill == nil || c.Refill.Interval != "monthly" {
		t.Errorf("add 5: %+v", c)
	}
	if c := credits(post(path, `{"op":"set","amount":3}`)); c.Remaining != 3 {
		t.Errorf("set 3: %+v", c)
	}
	_, v := f.verifyWith(t, `{"key":`+jsonString(k.Token)+`,"credits":2,"idempotency_key":"job-7"}`)
	if v.Credits == nil || v.Credits.Remaining != 1 {
		t.Fatalf("spend 2: %+v", v)
	}
	if c := credits(post(path, `{"op":"refund","idempotency_key":"job-7"}`)); c.Remaining != 3 {
		t.Errorf("refund: %+v", c)
	}
	if c := credits(post(path, `{"op":"refund","idempotency_key":"job-7"}`)); c.Remaining != 3 {
		t.Errorf("second refund of the same spend: %+v, want nothing more", c)
	}
	wantProblem(t, post(path, `{"op":"refund","idempotency_key":"never-spent"}`), http.StatusNotFound, "not_found", "refund of an unknown spend")
	wantProblem(t, post("/v1/keys/AAAAAAAAAAAA/credits", `{"op":"set","amount":1}`), http.StatusNotFound, "not_found", "unknown key")
	for _, c := range []struct{ body, field string }{
		{`{"op":"take","amount":1}`, "op"},
		{`{"op":"set"}`, "amount"},
		{`{"op":"set","amount":-1}`, "amount"},
		{`{"op":"refund","amount":1,"idempotency_key":"job-7"}`, "amount"},
		{`{"op":"refund"}`, "idempotency_key"},
		{`{"op":"add","amount":1,"idempotency_key":"x"}`, "idempotency_key"},
	} {
		if p := wantProblem(t, post(path, c.body), http.StatusBadRequest, "invalid_input", c.body); p.Field != c.field {
			t.Errorf("%s: field %q, want %q", c.body, p.Field, c.field)
		}
	}
	// A revoked key's balance is frozen.
	mustStatus(t, f.do(t, req{method: "POST", path: "/v1/keys/" + k.ID + "/revoke", token: f.admin}), http.StatusOK, "revoke")
	wantProblem(t, post(path, `{"op":"add","amount":1}`), http.StatusConflict, "key_revoked", "credits of a revoked key")
}

func TestOwners(t *testing.T) {
	f := newFixture(t, options{})
	do := func(method, path, body string) response {
		return f.do(t, req{method: method, path: path, token: f.admin, body: body})
	}
	wantProblem(t, do("GET", "/v1/owners/acme", ""), http.StatusNotFound, "not_found", "owner without a record")
	r := do("PUT", "/v1/owners/acme", `{"ratelimits":[{"name":"requests","limit":3,"period":"1h"}],"credits":{"remaining":100}}`)
	mustStatus(t, r, http.StatusOK, "put")
	var o struct {
		ID         string            `json:"id"`
		RateLimits []json.RawMessage `json:"ratelimits"`
		Credits    *struct {
			Remaining int64 `json:"remaining"`
		} `json:"credits"`
	}
	r.json(t, &o)
	if o.ID != "acme" || len(o.RateLimits) != 1 || o.Credits == nil || o.Credits.Remaining != 100 {
		t.Fatalf("put: %s", r.body)
	}
	// PATCH changes the credits only.
	r = do("PATCH", "/v1/owners/acme", `{"credits":{"remaining":50}}`)
	mustStatus(t, r, http.StatusOK, "patch")
	if !strings.Contains(string(r.body), `"remaining":50`) || !strings.Contains(string(r.body), `"limit":3`) {
		t.Errorf("patch: %s", r.body)
	}
	r = do("POST", "/v1/owners/acme/credits", `{"op":"add","amount":-20}`)
	mustStatus(t, r, http.StatusOK, "owner credits add")
	if !strings.Contains(string(r.body), `"remaining":30`) {
		t.Errorf("owner credits: %s", r.body)
	}
	if p := wantProblem(t, do("POST", "/v1/owners/acme/credits", `{"op":"add","amount":-31}`), http.StatusBadRequest, "invalid_input", "below zero"); p.Field != "amount" {
		t.Errorf("below zero: field %q", p.Field)
	}
	if p := wantProblem(t, do("POST", "/v1/owners/acme/credits", `{"op":"refund","idempotency_key":"x"}`), http.StatusBadRequest, "invalid_input", "owner refund"); p.Field != "op" {
		t.Errorf("owner refund: field %q", p.Field)
	}
	wantProblem(t, do("PATCH", "/v1/owners/acme", `{}`), http.StatusBadRequest, "invalid_input", "empty patch")

	// The owner's limit is shared by its keys: 3 requests an hour between
	// two keys, on POST /v1/verify and on the service's own routes.
	a := f.create(t, `{"name":"a","owner":"acme"}`)
	b := f.create(t, `{"name":"b","owner":"acme"}`)
	_, v := f.verifyWith(t, `{"key":`+jsonString(a.Token)+`,"credits":5}`)
	if len(v.RateLimits) != 1 || v.RateLimits[0].Scope != "owner" || v.RateLimits[0].Remaining != 2 || v.Credits == nil || v.Credits.Remaining != 25 {
		t.Fatalf("verify a: %+v", v)
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: b.Token}), http.StatusOK, "whoami b")
	r = f.do(t, req{method: "GET", path: "/v1/whoami", token: b.Token})
	mustStatus(t, r, http.StatusOK, "whoami b again")
	if got := r.header.Get("RateLimit"); got != `"owner:requests";r=0;t=3600` {
		t.Errorf("whoami RateLimit %q", got)
	}
	r = f.do(t, req{method: "GET", path: "/v1/whoami", token: a.Token})
	wantProblem(t, r, http.StatusTooManyRequests, "rate_limited", "fourth request of the owner")
	if ra, err := time.ParseDuration(r.header.Get("Retry-After") + "s"); err != nil || ra <= 0 || ra > 20*time.Minute {
		t.Errorf("Retry-After %q, want up to 20 minutes (an hour's 3 requests are 20 minutes apart)", r.header.Get("Retry-After"))
	}
	// PUT with an empty body removes everything.
	r = do("PUT", "/v1/owners/acme", `{}`)
	mustStatus(t, r, http.StatusOK, "put {}")
	if !strings.Contains(string(r.body), `"ratelimits":[]`) || strings.Contains(string(r.body), `"credits"`) {
		t.Errorf("put {}: %s", r.body)
	}
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: a.Token}), http.StatusOK, "whoami after the limit is gone")

	// DELETE removes the record; the keys stay and lose the owner's
	// limits. Unknown owners are 404, a verifier key may not delete.
	mustStatus(t, do("PUT", "/v1/owners/acme", `{"ratelimits":[{"name":"requests","limit":1,"period":"1h"}]}`), http.StatusOK, "put again")
	wantProblem(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: a.Token}), http.StatusTooManyRequests, "rate_limited", "owner limit of 1/h spent")
	wantProblem(t, f.do(t, req{method: "DELETE", path: "/v1/owners/acme", token: f.verify}), http.StatusForbidden, "insufficient_scope", "delete owner with apikey:verify")
	r = do("DELETE", "/v1/owners/acme", "")
	mustStatus(t, r, http.StatusNoContent, "delete owner")
	if len(r.body) != 0 {
		t.Errorf("delete owner: body %q, want none", r.body)
	}
	wantProblem(t, do("GET", "/v1/owners/acme", ""), http.StatusNotFound, "not_found", "owner after delete")
	wantProblem(t, do("DELETE", "/v1/owners/acme", ""), http.StatusNotFound, "not_found", "second delete")
	wantProblem(t, do("DELETE", "/v1/owners/nobody%2Fat%20all", ""), http.StatusNotFound, "not_found", "delete of an unknown owner")
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/whoami", token: a.Token}), http.StatusOK, "whoami after the owner is deleted")
	mustStatus(t, f.do(t, req{method: "GET", path: "/v1/keys/" + a.ID, token: f.admin}), http.StatusOK, "the owner's key after delete")
	r = do("GET", "/v1/events?type=owner.deleted", "")
	mustStatus(t, r, http.StatusOK, "events")
	if !strings.Contains(string(r.body), `"owner.deleted"`) || !strings.Contains(string(r.body), `"owner:acme"`) {
		t.Errorf("events of type owner.deleted: %s", r.body)
	}
}

package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

func TestParseRateLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want apikey.RateLimit
	}{
		{"requests=100/1m", apikey.RateLimit{Name: "requests", Limit: 100, Period: time.Minute}},
		{"requests=100/m", apikey.RateLimit{Name: "requests", Limit: 100, Period: time.Minute}},
		{"search=10/1s,burst=20", apikey.RateLimit{Name: "search", Limit: 10, Period: time.Second, Burst: 20}},
		{"tokens=100000/1d,fail-open", apikey.RateLimit{Name: "tokens", Limit: 100000, Period: 24 * time.Hour, FailOpen: true}},
		{"a.b-c_d=1/90s,fail_open,burst=3", apikey.RateLimit{Name: "a.b-c_d", Limit: 1, Period: 90 * time.Second, Burst: 3, FailOpen: true}},
	} {
		got, err := parseRateLimit("--ratelimit", c.in)
		if err != nil || got != c.want {
			t.Errorf("parseRateLimit(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		if back, err := parseRateLimit("--ratelimit", rateLimitText(got)); err != nil || back != got {
			t.Errorf("rateLimitText(%+v) = %q does not read back: %+v, %v", got, rateLimitText(got), back, err)
		}
	}
	for in, why := range map[string]string{
		"requests":                 "no NAME=",
		"=100/1m":                  "no NAME=",
		"requests=100":             "no /PERIOD",
		"requests=lots/1m":         `the limit "lots" is not a positive whole number`,
		"requests=0/1m":            `the limit "0" is not a positive whole number`,
		"requests=100/fortnight":   `the period "fortnight" is not a duration`,
		"requests=100/1m,burst=x":  `burst "x" is not a positive whole number`,
		"requests=100/1m,slow":     `unknown option "slow"`,
		"Requests=100/1m":          `name "Requests" must be 1 to 64 characters of a-z 0-9 _ . -`,
		"requests=100/500ms":       "period of \"requests\" must be at least 1s",
		"requests=100/1m,burst=-1": `burst "-1" is not a positive whole number`,
	} {
		_, err := parseRateLimit("--ratelimit", in)
		if err == nil || !strings.Contains(err.Error(), why) || exitCode(err) != exitTrouble ||
			!strings.HasPrefix(err.Error(), `invalid --ratelimit "`+in+`": `) || !strings.HasSuffix(err.Error(), "; want "+rateLimitSyntax) {
			t.Errorf("parseRateLimit(%q): %v (exit %d), want an error saying %q", in, err, exitCode(err), why)
		}
	}
}

func TestParseRefill(t *testing.T) {
	for _, c := range []struct {
		in     string
		amount int64
		want   apikey.Refill
	}{
		{"daily", 1000, apikey.Refill{Interval: "daily", Amount: 1000}},
		{"daily:500", 1000, apikey.Refill{Interval: "daily", Amount: 500}},
		{"monthly", 7, apikey.Refill{Interval: "monthly", Amount: 7}},
		{"monthly:15", 7, apikey.Refill{Interval: "monthly", Day: 15, Amount: 7}},
		{"monthly:31:5000", -1, apikey.Refill{Interval: "monthly", Day: 31, Amount: 5000}},
		{"12h:100", -1, apikey.Refill{Interval: "12h", Amount: 100}},
		{"7d", 3, apikey.Refill{Interval: "7d", Amount: 3}},
	} {
		got, err := parseRefill(c.in, c.amount)
		if err != nil || *got != c.want {
			t.Errorf("parseRefill(%q, %d) = %+v, %v; want %+v", c.in, c.amount, got, err, c.want)
		}
	}
	for in, why := range map[string]string{
		"":             "no interval",
		"hourly":       `"hourly" is not daily, monthly or a duration`,
		"monthly:32":   `the day "32" is not 1 to 31`,
		"monthly:0:5":  `the day "0" is not 1 to 31`,
		"daily:-5":     `the amount "-5" is not a whole number of 0 or more`,
		"daily:5:6":    "too many parts",
		"30s:5":        "a refill interval must be at least 1m",
		"daily:lots":   `the amount "lots"`,
		"monthly:x:10": `the day "x" is not 1 to 31`,
	} {
		_, err := parseRefill(in, 10)
		if err == nil || !strings.Contains(err.Error(), why) || exitCode(err) != exitTrouble {
			t.Errorf("parseRefill(%q): %v, want an error saying %q", in, err, why)
		}
	}
	if _, err := parseRefill("daily", -1); err == nil || !strings.Contains(err.Error(), "no amount: give one") {
		t.Errorf("parseRefill without an amount: %v", err)
	}
}

func TestLimitsCLI(t *testing.T) {
	e := newEnv(t)
	e.clock = apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	_, id := e.create("--name", "partner", "--owner", "acme", "--ratelimit", "requests=100/1m,burst=20", "--ratelimit", "search=5/1s,fail-open",
		"--credits", "1000", "--refill", "daily")
	r := e.run("show", id)
	for _, want := range []string{
		"ratelimits:  requests=100/1m,burst=20\n",
		"             search=5/1s,fail-open\n",
		"credits:     1000 (refill daily:1000, next 2030-01-03T00:00:00Z)\n",
	} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("show: want %q in\n%s%s", want, r.stdout, r.stderr)
		}
	}

	// --refill alone keeps the balance; --credits alone keeps the refill.
	r = e.run("update", id, "--refill", "monthly:15:2000", "--json")
	var k apikey.Key
	if err := json.Unmarshal([]byte(r.stdout), &k); r.code != 0 || err != nil {
		t.Fatalf("update --refill: %+v", r)
	}
	if k.Credits == nil || k.Credits.Remaining != 1000 || *k.Credits.Refill != (apikey.Refill{Interval: "monthly", Day: 15, Amount: 2000}) || len(k.RateLimits) != 2 {
		t.Errorf("after update --refill: %+v %+v", k.Credits, k.RateLimits)
	}
	r = e.run("update", id, "--credits", "5", "--ratelimit", "requests=1/1s", "--json")
	k = apikey.Key{}
	if err := json.Unmarshal([]byte(r.stdout), &k); r.code != 0 || err != nil {
		t.Fatalf("update --credits: %+v", r)
	}
	if k.Credits == nil || k.Credits.Remaining != 5 || k.Credits.Refill == nil || k.Credits.Refill.Day != 15 || len(k.RateLimits) != 1 || k.RateLimits[0].Limit != 1 {
		t.Errorf("after update --credits: %+v %+v", k.Credits, k.RateLimits)
	}

	want(t, e.run("credits", id, "add", "10"), 0, "credits: 15 (refill monthly:15:2000, next 2030-01-15T00:00:00Z)\n", "")
	want(t, e.run("credits", id, "add", "--", "-20"), 1, "", "apikey: cannot add -20: the balance would go below zero\n")
	want(t, e.run("credits", id, "set", "0"), 0, "credits: 0 (refill monthly:15:2000, next 2030-01-15T00:00:00Z)\n", "")
	want(t, e.run("credits", id, "refund", "order-1"), 1, "", `apikey: key `+id+` made no spend with idempotency key "order-1" in the last 24h0m0s`+"\n")
	want(t, e.run("credits", "AAAAAAAAAAAA", "set", "1"), 1, "", "apikey: no key with id \"AAAAAAAAAAAA\"\n")

	// Owners.
	want(t, e.run("owner", "show", "acme"), 1, "", "apikey: owner \"acme\" has no rate limits or credits (set them with apikey owner set)\n")
	r = e.run("owner", "set", "acme", "--ratelimit", "requests=1000/1h", "--credits", "50")
	if r.code != 0 || !strings.Contains(r.stdout, "ratelimits:  requests=1000/1h\n") || !strings.Contains(r.stdout, "credits:     50\n") {
		t.Errorf("owner set: %+v", r)
	}
	want(t, e.run("owner", "credits", "acme", "add", "25", "--json"), 0, "{\n  \"remaining\": 75\n}\n", "")
	r = e.run("owner", "set", "acme", "--clear-credits")
	if r.code != 0 || !strings.Contains(r.stdout, "credits:     -\n") || !strings.Contains(r.stdout, "requests=1000/1h") {
		t.Errorf("owner set --clear-credits: %+v", r)
	}
	r = e.run("owner", "show", "acme", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"ratelimits": [`) {
		t.Errorf("owner show --json: %+v", r)
	}
	want(t, e.run("owner", "delete", "acme"), 0, "deleted: owner acme\n", "")
	want(t, e.run("owner", "show", "acme"), 1, "", "apikey: owner \"acme\" has no rate limits or credits (set them with apikey owner set)\n")
	want(t, e.run("owner", "delete", "acme"), 1, "", "apikey: owner \"acme\" has no rate limits or credits to delete\n")
	if r := e.run("show", id); r.code != 0 || !strings.Contains(r.stdout, "acme") {
		t.Errorf("the owner's key after owner delete: %+v", r)
	}
	if r := e.run("owner", "set", "acme", "--credits", "5"); r.code != 0 {
		t.Errorf("owner set after owner delete: %+v", r)
	}
	want(t, e.run("owner", "delete", "acme", "--json"), 0, "{\n  \"deleted\": true,\n  \"owner\": \"acme\"\n}\n", "")

	// Usage errors: exit 2, one precise line, nothing changed.
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"create", "--name", "x", "--ratelimit", "requests=100"}, `apikey: invalid --ratelimit "requests=100": no /PERIOD; want ` + rateLimitSyntax},
		{[]string{"create", "--name", "x", "--ratelimit", "r=1/1m", "--ratelimit", "r=2/1m"}, `apikey: invalid --ratelimit "r=2/1m": the limit "r" is given twice`},
		{[]string{"create", "--name", "x", "--refill", "hourly", "--credits", "5"}, `apikey: invalid --refill "hourly": "hourly" is not daily, monthly or a duration; want ` + refillSyntax},
		{[]string{"create", "--name", "x", "--credits", "-5"}, `apikey: invalid --credits -5: must not be negative`},
		{[]string{"create", "--name", "x", "--credits", "many"}, `apikey: invalid argument "many" for "--credits" flag: strconv.ParseInt: parsing "many": invalid syntax`},
		{[]string{"update", id, "--ratelimit", "r=1/1m", "--clear-ratelimits"}, "apikey: --ratelimit and --clear-ratelimits cannot be combined"},
		{[]string{"update", id, "--credits", "1", "--clear-credits"}, "apikey: --clear-credits cannot be combined with --credits or --refill"},
		{[]string{"credits", id, "take", "5"}, `apikey: unknown operation "take": want set, add or refund`},
		{[]string{"credits", id, "set", "--", "-1"}, "apikey: invalid amount -1: set takes 0 or more"},
		{[]string{"credits", id, "set", "1.5"}, `apikey: invalid amount "1.5": want a whole number`},
		{[]string{"credits", id, "set"}, "apikey: credits needs three arguments: a key id, set, add or refund, and an amount or idempotency key"},
		{[]string{"owner", "credits", "acme", "refund", "x"}, "apikey: an owner's credits cannot be refunded: refund the spend of a key with apikey credits ID refund"},
		{[]string{"owner", "set", "acme"}, "apikey: owner set changes nothing: give --ratelimit, --clear-ratelimits, --credits, --refill or --clear-credits"},
		{[]string{"owner"}, "apikey: owner needs a subcommand: show, set, credits or delete"},
		{[]string{"owner", "remove", "acme"}, `apikey: unknown owner subcommand "remove": want show, set, credits or delete`},
	} {
		want(t, e.run(c.args...), 2, "", c.stderr+"\n")
	}
}

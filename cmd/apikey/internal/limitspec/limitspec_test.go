package limitspec

import (
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

func TestRateLimitRoundTrip(t *testing.T) {
	for in, want := range map[string]apikey.RateLimit{
		"requests=100/1m,burst=20": {Name: "requests", Limit: 100, Period: time.Minute, Burst: 20},
		"search=10/s":              {Name: "search", Limit: 10, Period: time.Second},
		"daily=5000/1d,fail-open":  {Name: "daily", Limit: 5000, Period: 24 * time.Hour, FailOpen: true},
		"x=1/h,fail_open,burst=3":  {Name: "x", Limit: 1, Period: time.Hour, Burst: 3, FailOpen: true},
	} {
		got, err := ParseRateLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseRateLimit(%q) = %+v, %v; want %+v", in, got, err, want)
			continue
		}
		again, err := ParseRateLimit(FormatRateLimit(got))
		if err != nil || again != got {
			t.Errorf("round trip of %q through %q: %+v, %v", in, FormatRateLimit(got), again, err)
		}
	}
}

func TestRateLimitRefused(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "no NAME=",
		"=1/m":                  "no NAME=",
		"requests=100":          "no /PERIOD",
		"requests=0/m":          "not a positive whole number",
		"requests=-5/m":         "not a positive whole number",
		"requests=10/fortnight": "not a duration",
		"requests=10/m,burst=0": "burst",
		"requests=10/m,bogus":   "unknown option",
		"Bad Name!=10/m":        "",
	} {
		_, err := ParseRateLimit(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRateLimit(%q) = %v, want an error with %q", in, err, want)
		}
	}
}

func TestRefill(t *testing.T) {
	for _, c := range []struct {
		in     string
		amount int64
		want   apikey.Refill
	}{
		{"daily", 1000, apikey.Refill{Interval: apikey.RefillDaily, Amount: 1000}},
		{"daily:5", -1, apikey.Refill{Interval: apikey.RefillDaily, Amount: 5}},
		{"monthly:15:300", -1, apikey.Refill{Interval: apikey.RefillMonthly, Day: 15, Amount: 300}},
		{"12h:100", -1, apikey.Refill{Interval: "12h", Amount: 100}},
	} {
		got, err := ParseRefill(c.in, c.amount)
		if err != nil || *got != c.want {
			t.Errorf("ParseRefill(%q, %d) = %+v, %v; want %+v", c.in, c.amount, got, err, c.want)
			continue
		}
		again, err := ParseRefill(FormatRefill(*got), -1)
		if err != nil || *again != *got {
			t.Errorf("round trip of %q through %q: %+v, %v", c.in, FormatRefill(*got), again, err)
		}
	}
	for _, in := range []string{"", "daily", "monthly:0:5", "monthly:32:5", "hourly:5", "daily:-1", "daily:1:2", "1s:5"} {
		if r, err := ParseRefill(in, -1); err == nil {
			t.Errorf("ParseRefill(%q, -1) = %+v, want an error", in, r)
		}
	}
}

// FuzzParse: any text is read or refused, never a panic, and what is read
// formats to text that reads back the same.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"requests=100/1m,burst=20", "a=1/s,fail-open", "daily:5", "monthly:31:1", "90m:7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := ParseRateLimit(s); err == nil {
			if again, err := ParseRateLimit(FormatRateLimit(l)); err != nil || again != l {
				t.Errorf("rate limit %q: %+v, then %+v, %v", s, l, again, err)
			}
		}
		if r, err := ParseRefill(s, -1); err == nil {
			if again, err := ParseRefill(FormatRefill(*r), -1); err != nil || *again != *r {
				t.Errorf("refill %q: %+v, then %+v, %v", s, r, again, err)
			}
		}
	})
}

// Package limitspec is the text syntax of rate limits and credit refills
// shared by the apikey command's flags and its admin site's forms:
//
//	NAME=LIMIT/PERIOD[,burst=N][,fail-open]   requests=100/1m,burst=20
//	daily[:AMOUNT] | monthly[:DAY[:AMOUNT]] | DURATION[:AMOUNT]
//
// Errors say what is wrong in lowercase words, without the input; callers
// add it and the syntax.
package limitspec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
)

// RateLimitSyntax describes the syntax of ParseRateLimit.
const RateLimitSyntax = `NAME=LIMIT/PERIOD[,burst=N][,fail-open], such as requests=100/1m,burst=20`

// RefillSyntax describes the syntax of ParseRefill.
const RefillSyntax = `daily[:AMOUNT], monthly[:DAY[:AMOUNT]] or DURATION[:AMOUNT], such as daily, monthly:1:5000 or 12h:100`

// ParseRateLimit reads a rate limit: NAME=LIMIT/PERIOD with a PERIOD in
// the syntax of apikey.ParsePeriod (or a bare unit, s m h d w, for one of
// it), then optionally ,burst=N and ,fail-open (or fail_open). The limit
// is checked with apikey.CheckRateLimits.
func ParseRateLimit(s string) (apikey.RateLimit, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return apikey.RateLimit{}, errors.New("no NAME=")
	}
	parts := strings.Split(rest, ",")
	limit, period, ok := strings.Cut(parts[0], "/")
	if !ok {
		return apikey.RateLimit{}, errors.New("no /PERIOD")
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil || n <= 0 {
		return apikey.RateLimit{}, fmt.Errorf("the limit %q is not a positive whole number", limit)
	}
	if len(period) == 1 && strings.Contains("smhdw", period) {
		period = "1" + period
	}
	d, err := apikey.ParsePeriod(period)
	if err != nil {
		return apikey.RateLimit{}, fmt.Errorf("the period %q is not a duration such as 1s, 1m, 1h or 1d", period)
	}
	l := apikey.RateLimit{Name: name, Limit: n, Period: d}
	for _, opt := range parts[1:] {
		switch k, v, _ := strings.Cut(opt, "="); {
		case k == "burst":
			b, err := strconv.ParseInt(v, 10, 64)
			if err != nil || b <= 0 {
				return apikey.RateLimit{}, fmt.Errorf("burst %q is not a positive whole number", v)
			}
			l.Burst = b
		case opt == "fail-open" || opt == "fail_open":
			l.FailOpen = true
		default:
			return apikey.RateLimit{}, fmt.Errorf("unknown option %q", opt)
		}
	}
	if err := apikey.CheckRateLimits([]apikey.RateLimit{l}); err != nil {
		return apikey.RateLimit{}, reason(err)
	}
	return l, nil
}

// FormatRateLimit writes l in the syntax ParseRateLimit reads.
func FormatRateLimit(l apikey.RateLimit) string {
	s := fmt.Sprintf("%s=%d/%s", l.Name, l.Limit, apikey.FormatPeriod(l.Period))
	if l.Burst != 0 {
		s += ",burst=" + strconv.FormatInt(l.Burst, 10)
	}
	if l.FailOpen {
		s += ",fail-open"
	}
	return s
}

// ParseRefill reads a refill schedule: daily, monthly (on DAY, default 1)
// or every DURATION, each optionally followed by :AMOUNT. amount is the
// amount when none is given; a negative one means that one must be.
func ParseRefill(s string, amount int64) (*apikey.Refill, error) {
	parts := strings.Split(s, ":")
	r := &apikey.Refill{Interval: parts[0], Amount: amount}
	rest := parts[1:]
	switch parts[0] {
	case "":
		return nil, errors.New("no interval")
	case apikey.RefillDaily:
	case apikey.RefillMonthly:
		if len(rest) > 0 {
			day, err := strconv.Atoi(rest[0])
			if err != nil || day < 1 || day > 31 {
				return nil, fmt.Errorf("the day %q is not 1 to 31", rest[0])
			}
			r.Day = day
			rest = rest[1:]
		}
	default:
		if _, err := apikey.ParsePeriod(parts[0]); err != nil {
			return nil, fmt.Errorf("%q is not daily, monthly or a duration", parts[0])
		}
	}
	switch len(rest) {
	case 0:
	case 1:
		n, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("the amount %q is not a whole number of 0 or more", rest[0])
		}
		r.Amount = n
	default:
		return nil, errors.New("too many parts")
	}
	if r.Amount < 0 {
		return nil, errors.New("no amount: give one, as in daily:1000")
	}
	if err := apikey.CheckRefill(*r); err != nil {
		return nil, reason(err)
	}
	return r, nil
}

// FormatRefill writes r in the syntax ParseRefill reads, amount included.
func FormatRefill(r apikey.Refill) string {
	s := r.Interval
	if r.Interval == apikey.RefillMonthly {
		s += ":" + strconv.Itoa(max(r.Day, 1))
	}
	return s + ":" + strconv.FormatInt(r.Amount, 10)
}

// reason returns the reason of a validation error alone.
func reason(err error) error {
	var ve *apikey.ValidationError
	if errors.As(err, &ve) {
		return errors.New(ve.Reason)
	}
	return err
}

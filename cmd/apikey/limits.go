package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

// rateLimitSyntax documents --ratelimit in help and errors.
const rateLimitSyntax = `NAME=LIMIT/PERIOD[,burst=N][,fail-open], such as requests=100/1m,burst=20`

// refillSyntax documents --refill in help and errors.
const refillSyntax = `daily[:AMOUNT], monthly[:DAY[:AMOUNT]] or DURATION[:AMOUNT], such as daily, monthly:1:5000 or 12h:100`

// limitsHelp is the part of the help of create, update and owner set that
// explains the limit flags.
const limitsHelp = `Rate limits (--ratelimit, repeatable): NAME=LIMIT/PERIOD allows LIMIT
requests (or units of cost) per PERIOD (1s, 1m, 1h, 1d, 90s ...; a bare unit
such as /m means one of it), spaced evenly (GCRA); burst=N lets N through at
once (default LIMIT); fail-open lets requests through when the limiter
(Redis) is down, where the default refuses them (503). The limit named
"requests" counts every request with the key; the others count the requests
that name them (POST /v1/verify "ratelimit").

Credits: --credits N sets the balance; --refill sets it back to AMOUNT
(default N) daily at 00:00 UTC, monthly on DAY (default 1) at 00:00 UTC, or
every DURATION (at least 1m).`

// parseRateLimit reads one --ratelimit flag (rateLimitSyntax). The Manager
// checks names and ranges; this checks the shape.
func parseRateLimit(flag, s string) (apikey.RateLimit, error) {
	bad := func(why string) (apikey.RateLimit, error) {
		return apikey.RateLimit{}, usagef("invalid %s %q: %s; want %s", flag, s, why, rateLimitSyntax)
	}
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return bad("no NAME=")
	}
	parts := strings.Split(rest, ",")
	limit, period, ok := strings.Cut(parts[0], "/")
	if !ok {
		return bad("no /PERIOD")
	}
	n, err := strconv.ParseInt(limit, 10, 64)
	if err != nil || n <= 0 {
		return bad(fmt.Sprintf("the limit %q is not a positive whole number", limit))
	}
	if len(period) == 1 && strings.Contains("smhdw", period) {
		period = "1" + period
	}
	d, err := apikey.ParsePeriod(period)
	if err != nil {
		return bad(fmt.Sprintf("the period %q is not a duration such as 1s, 1m, 1h or 1d", period))
	}
	l := apikey.RateLimit{Name: name, Limit: n, Period: d}
	for _, opt := range parts[1:] {
		switch k, v, _ := strings.Cut(opt, "="); {
		case k == "burst":
			b, err := strconv.ParseInt(v, 10, 64)
			if err != nil || b <= 0 {
				return bad(fmt.Sprintf("burst %q is not a positive whole number", v))
			}
			l.Burst = b
		case opt == "fail-open" || opt == "fail_open":
			l.FailOpen = true
		default:
			return bad(fmt.Sprintf("unknown option %q", opt))
		}
	}
	if err := apikey.CheckRateLimits([]apikey.RateLimit{l}); err != nil {
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return bad(ve.Reason)
		}
		return bad(err.Error())
	}
	return l, nil
}

// parseRateLimits reads repeated --ratelimit flags.
func parseRateLimits(flag string, specs []string) ([]apikey.RateLimit, error) {
	out := []apikey.RateLimit{}
	for _, s := range specs {
		l, err := parseRateLimit(flag, s)
		if err != nil {
			return nil, err
		}
		for _, o := range out {
			if o.Name == l.Name {
				return nil, usagef("invalid %s %q: the limit %q is given twice", flag, s, l.Name)
			}
		}
		out = append(out, l)
	}
	return out, nil
}

// parseRefill reads --refill (refillSyntax); amount is the default amount
// (the --credits value), or -1 when --credits was not given.
func parseRefill(s string, amount int64) (*apikey.Refill, error) {
	bad := func(why string) (*apikey.Refill, error) {
		return nil, usagef("invalid --refill %q: %s; want %s", s, why, refillSyntax)
	}
	parts := strings.Split(s, ":")
	r := &apikey.Refill{Interval: parts[0], Amount: amount}
	rest := parts[1:]
	switch parts[0] {
	case "":
		return bad("no interval")
	case apikey.RefillDaily:
	case apikey.RefillMonthly:
		if len(rest) > 0 {
			day, err := strconv.Atoi(rest[0])
			if err != nil || day < 1 || day > 31 {
				return bad(fmt.Sprintf("the day %q is not 1 to 31", rest[0]))
			}
			r.Day = day
			rest = rest[1:]
		}
	default:
		if _, err := apikey.ParsePeriod(parts[0]); err != nil {
			return bad(fmt.Sprintf("%q is not daily, monthly or a duration", parts[0]))
		}
	}
	switch len(rest) {
	case 0:
	case 1:
		n, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil || n < 0 {
			return bad(fmt.Sprintf("the amount %q is not a whole number of 0 or more", rest[0]))
		}
		r.Amount = n
	default:
		return bad("too many parts")
	}
	if r.Amount < 0 {
		return bad("no amount: give one (daily:1000) or --credits")
	}
	if err := apikey.CheckRefill(*r); err != nil {
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return bad(ve.Reason)
		}
		return bad(err.Error())
	}
	return r, nil
}

// limitFlags are the flags of create, update and owner set that set rate
// limits and credits.
type limitFlags struct {
	rateLimits    []string
	clearLimits   bool
	credits       int64
	refill        string
	clearCredits  bool
	allowClearing bool // update and owner set: the --clear-* flags exist
}

func (lf *limitFlags) register(cmd *cobra.Command, clearing bool) {
	f := cmd.Flags()
	lf.allowClearing = clearing
	f.StringArrayVar(&lf.rateLimits, "ratelimit", nil, "a rate limit "+rateLimitSyntax+" (repeat; on update, replaces them all)")
	f.Int64Var(&lf.credits, "credits", 0, "the balance of usage credits")
	f.StringVar(&lf.refill, "refill", "", "refill the credits: "+refillSyntax)
	if clearing {
		f.BoolVar(&lf.clearLimits, "clear-ratelimits", false, "remove every rate limit")
		f.BoolVar(&lf.clearCredits, "clear-credits", false, "remove the balance (no credit limit)")
	}
}

// read returns what the flags ask for: the rate limits (nil when not
// changed) and the credits (nil when not changed; clear reports
// --clear-credits). current is the balance as it is, used when only one of
// --credits and --refill is given; nil for none.
func (lf *limitFlags) read(cmd *cobra.Command, current *apikey.Credits) (limits *[]apikey.RateLimit, credits *apikey.Credits, clear bool, err error) {
	changed := cmd.Flags().Changed
	switch {
	case changed("ratelimit") && lf.clearLimits:
		return nil, nil, false, usagef("--ratelimit and --clear-ratelimits cannot be combined")
	case changed("ratelimit"):
		l, err := parseRateLimits("--ratelimit", lf.rateLimits)
		if err != nil {
			return nil, nil, false, err
		}
		limits = &l
	case lf.clearLimits:
		limits = &[]apikey.RateLimit{}
	}
	switch {
	case lf.clearCredits && (changed("credits") || changed("refill")):
		return nil, nil, false, usagef("--clear-credits cannot be combined with --credits or --refill")
	case lf.clearCredits:
		return limits, nil, true, nil
	case !changed("credits") && !changed("refill"):
		return limits, nil, false, nil
	}
	if changed("credits") && lf.credits < 0 {
		return nil, nil, false, usagef("invalid --credits %d: must not be negative", lf.credits)
	}
	c := &apikey.Credits{}
	if current != nil {
		c = current.Clone()
	}
	if changed("credits") {
		c.Remaining = lf.credits
	}
	if changed("refill") {
		amount := int64(-1)
		if changed("credits") {
			amount = lf.credits
		} else if current != nil && current.Refill != nil {
			amount = current.Refill.Amount
		}
		if c.Refill, err = parseRefill(lf.refill, amount); err != nil {
			return nil, nil, false, err
		}
		if current == nil && !changed("credits") {
			c.Remaining = c.Refill.Amount // a new balance starts full
		}
	}
	return limits, c, false, nil
}

// needsCurrent reports whether read needs the current balance: only one of
// --credits and --refill was given.
func (lf *limitFlags) needsCurrent(cmd *cobra.Command) bool {
	return cmd.Flags().Changed("credits") != cmd.Flags().Changed("refill")
}

// rateLimitText renders a limit in the syntax of --ratelimit.
func rateLimitText(l apikey.RateLimit) string {
	s := fmt.Sprintf("%s=%d/%s", l.Name, l.Limit, apikey.FormatPeriod(l.Period))
	if l.Burst != 0 {
		s += ",burst=" + strconv.FormatInt(l.Burst, 10)
	}
	if l.FailOpen {
		s += ",fail-open"
	}
	return s
}

// refillText renders a refill in the syntax of --refill.
func refillText(r *apikey.Refill) string {
	s := r.Interval
	if r.Interval == apikey.RefillMonthly {
		s += ":" + strconv.Itoa(max(r.Day, 1))
	}
	return s + ":" + strconv.FormatInt(r.Amount, 10)
}

// creditsText renders a balance on one line.
func creditsText(c *apikey.Credits) string {
	if c == nil {
		return "-"
	}
	s := strconv.FormatInt(c.Remaining, 10)
	if c.Refill != nil {
		s += " (refill " + refillText(c.Refill)
		if c.NextRefillAt != nil {
			s += ", next " + formatTime(c.NextRefillAt, "-")
		}
		s += ")"
	}
	return s
}

// writeLimitRows adds the rate limits and credits to a "field: value"
// listing, when there are any.
func writeLimitRows(tw *tabwriter.Writer, limits []apikey.RateLimit, credits *apikey.Credits) {
	for i, l := range limits {
		label := ""
		if i == 0 {
			label = "ratelimits:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", label, rateLimitText(l))
	}
	if credits != nil {
		fmt.Fprintf(tw, "credits:\t%s\n", creditsText(credits))
	}
}

// writeCredits prints a balance alone.
func writeCredits(w io.Writer, c *apikey.Credits) error {
	_, err := fmt.Fprintf(w, "credits: %s\n", creditsText(c))
	return err
}

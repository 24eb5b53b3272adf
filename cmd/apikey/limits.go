package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/limitspec"
	"github.com/spf13/cobra"
)

// rateLimitSyntax and refillSyntax document --ratelimit and --refill in
// help and errors.
const (
	rateLimitSyntax = limitspec.RateLimitSyntax
	refillSyntax    = limitspec.RefillSyntax
)

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

// parseRateLimit reads one --ratelimit flag (rateLimitSyntax).
func parseRateLimit(flag, s string) (apikey.RateLimit, error) {
	l, err := limitspec.ParseRateLimit(s)
	if err != nil {
		return l, usagef("invalid %s %q: %v; want %s", flag, s, err, rateLimitSyntax)
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
// (the --credits value), or -1 when there is none.
func parseRefill(s string, amount int64) (*apikey.Refill, error) {
	r, err := limitspec.ParseRefill(s, amount)
	if err != nil {
		return nil, usagef("invalid --refill %q: %v; want %s", s, err, refillSyntax)
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
func rateLimitText(l apikey.RateLimit) string { return limitspec.FormatRateLimit(l) }

// refillText renders a refill in the syntax of --refill.
func refillText(r *apikey.Refill) string { return limitspec.FormatRefill(*r) }

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

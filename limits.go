package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// RateLimit is a named rate limit of a key or an owner: at most Limit
// requests (or units of cost) per Period, smoothed by the generic cell rate
// algorithm (GCRA): requests are spaced Period/Limit apart on average, and
// up to Burst of them may come at once. A request counts against a limit
// of a given name only when the route asks for that name (Check's
// CheckOptions.RateLimit), except for the limit named "requests"
// (DefaultRateLimit), which applies to every request with the key.
//
// The JSON form is {"name": "requests", "limit": 100, "period": "1m",
// "burst": 20}, with the period in the duration syntax of ParseExpiry
// ("1s", "1m", "1h", "1d") and "fail_open": true only when set.
type RateLimit struct {
	// Name is 1 to 64 characters of a-z 0-9 _ . - (ValidLimitName).
	Name string
	// Limit is how many units of cost are allowed per Period; positive.
	Limit int64
	// Period is the window of Limit: at least a second.
	Period time.Duration
	// Burst is the most units of cost that may be spent at once, on top of
	// the steady rate. Zero means Limit: a full period's worth at once.
	Burst int64
	// FailOpen lets requests through when the Limiter fails (a Redis
	// outage, say). False (the default) refuses them with ErrUnavailable:
	// a limit that cannot be checked is not granted.
	FailOpen bool
}

// DefaultRateLimit is the name of the limit that applies to every request
// with a key, whatever the route asks for.
const DefaultRateLimit = "requests"

// MaxRateLimits is the most rate limits a key or an owner may carry.
const MaxRateLimits = 16

// EffectiveBurst returns the burst the limiter applies: Burst, or Limit
// when Burst is zero.
func (l RateLimit) EffectiveBurst() int64 {
	if l.Burst == 0 {
		return l.Limit
	}
	return l.Burst
}

type rateLimitJSON struct {
	Name     string `json:"name"`
	Limit    int64  `json:"limit"`
	Period   string `json:"period"`
	Burst    int64  `json:"burst"`
	FailOpen bool   `json:"fail_open,omitempty"`
}

// MarshalJSON writes the period as a duration string (FormatPeriod).
func (l RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(rateLimitJSON{Name: l.Name, Limit: l.Limit, Period: FormatPeriod(l.Period), Burst: l.Burst, FailOpen: l.FailOpen})
}

// UnmarshalJSON reads the form MarshalJSON writes; the period may be any
// duration ParsePeriod accepts. It does not validate the limit: Create,
// Update and SetOwner do.
func (l *RateLimit) UnmarshalJSON(b []byte) error {
	var j rateLimitJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	d, err := ParsePeriod(j.Period)
	if err != nil {
		return err
	}
	*l = RateLimit{Name: j.Name, Limit: j.Limit, Period: d, Burst: j.Burst, FailOpen: j.FailOpen}
	return nil
}

// ParsePeriod reads a period in the duration syntax of ParseExpiry: Go's
// ("1s", "90m", "1h") with leading day and week terms ("1d", "2w"). The
// error is a *ValidationError for the field "period".
func ParsePeriod(s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, invalid("period", "want a duration like 1s, 1m, 1h or 1d, got %q", s)
	}
	return d, nil
}

// FormatPeriod writes d in the shortest form ParsePeriod reads back: whole
// days as "1d", whole hours as "1h", whole minutes as "1m", whole seconds as
// "1s", and time.Duration's String otherwise.
func FormatPeriod(d time.Duration) string {
	switch {
	case d <= 0:
		return d.String()
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	case d%time.Second == 0:
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return d.String()
}

// Credits is a balance of usage credits held by a key or an owner. Each
// Check that asks for credits spends its cost from it, exactly: the store
// decides, atomically, and never lets the balance go below zero. An
// optional Refill sets the balance back to an amount on a schedule.
//
// The JSON form is {"remaining": 1000, "refill": {"interval": "daily",
// "amount": 1000}, "next_refill_at": "..."}.
type Credits struct {
	// Remaining is the balance, never negative. On a Key or an Owner it is
	// as of when the record was read: a cached key's may be stale. The
	// balance a Check leaves is in its Result.
	Remaining int64 `json:"remaining"`
	// Refill, when set, sets Remaining to its Amount on its schedule.
	Refill *Refill `json:"refill,omitempty"`
	// NextRefillAt is when the next refill is due, for a balance with a
	// Refill; stores keep it, and apply a due refill lazily, in the same
	// transaction as the next spend or adjustment.
	NextRefillAt *time.Time `json:"next_refill_at,omitempty"`
}

// Clone returns a deep copy of c; nil stays nil.
func (c *Credits) Clone() *Credits {
	if c == nil {
		return nil
	}
	out := *c
	if c.Refill != nil {
		r := *c.Refill
		out.Refill = &r
	}
	out.NextRefillAt = cloneTime(c.NextRefillAt)
	return &out
}

// ApplyRefill sets Remaining to the refill amount, and moves NextRefillAt
// to the next instant of the schedule after now, when a refill is due at
// now. It reports whether it changed c. Stores call it in the
// transaction that reads the balance, before they spend or adjust it.
func (c *Credits) ApplyRefill(now time.Time) bool {
	if c == nil || c.Refill == nil || c.NextRefillAt == nil || now.Before(*c.NextRefillAt) {
		return false
	}
	c.Remaining = c.Refill.Amount
	next := c.Refill.Next(*c.NextRefillAt, now)
	c.NextRefillAt = &next
	return true
}

// Refill intervals other than a duration.
const (
	RefillDaily   = "daily"
	RefillMonthly = "monthly"
)

// Refill is the schedule on which a balance of Credits is set back to
// Amount. A refill sets the balance; it does not add to it, so unspent
// credits do not accumulate.
type Refill struct {
	// Interval is "daily" (at 00:00 UTC), "monthly" (at 00:00 UTC on Day of
	// the month, or its last day when shorter), or a duration of at least a
	// minute in the syntax of ParsePeriod ("12h", "7d"), counted from when
	// the balance was set.
	Interval string `json:"interval"`
	// Amount is what the balance is set to; not negative.
	Amount int64 `json:"amount"`
	// Day is the day of the month of a monthly refill, 1 to 31; zero means
	// 1. Other intervals leave it zero.
	Day int `json:"day,omitempty"`
}

// Next returns the first instant of the schedule after now, for a schedule
// whose previous instant was prev (a duration interval steps from it; the
// calendar ones do not need it). An invalid Refill returns now plus a day.
func (r Refill) Next(prev, now time.Time) time.Time {
	now = now.UTC()
	switch r.Interval {
	case RefillDaily:
		y, mo, d := now.Date()
		return time.Date(y, mo, d+1, 0, 0, 0, 0, time.UTC)
	case RefillMonthly:
		day := max(r.Day, 1)
		y, mo, _ := now.Date()
		for i := 0; i < 3; i++ {
			t := monthDay(y, mo+time.Month(i), day)
			if t.After(now) {
				return t
			}
		}
		return now.AddDate(0, 1, 0)
	}
	d, err := parseDuration(r.Interval)
	if err != nil || d <= 0 {
		return now.Add(24 * time.Hour)
	}
	prev = prev.UTC()
	if prev.After(now) {
		return prev
	}
	steps := now.Sub(prev)/d + 1
	return prev.Add(steps * d).Truncate(time.Microsecond)
}

// monthDay returns 00:00 UTC on day of the month y-mo, clamped to the
// month's last day.
func monthDay(y int, mo time.Month, day int) time.Time {
	first := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return first.AddDate(0, 0, min(day, last)-1)
}

// Owner is what apikey keeps about an owner (Key.Owner): the rate limits and
// the credits shared by all its keys, an organisation's budget. A request
// with a key must pass both the key's limits and its owner's, and spends
// from both balances when both have one.
type Owner struct {
	// ID is the owner, as in Key.Owner.
	ID string `json:"id"`
	// RateLimits are the owner's limits, shared by its keys.
	RateLimits []RateLimit `json:"ratelimits"`
	// Credits is the owner's balance; nil means none (unlimited).
	Credits *Credits `json:"credits,omitempty"`
	// UpdatedAt is when the record last changed, in UTC.
	UpdatedAt time.Time `json:"updated_at"`
}

// MarshalJSON writes RateLimits as [] rather than null when empty.
func (o Owner) MarshalJSON() ([]byte, error) {
	type plain Owner
	if o.RateLimits == nil {
		o.RateLimits = []RateLimit{}
	}
	return json.Marshal(plain(o))
}

// Clone returns a deep copy of o.
func (o *Owner) Clone() *Owner {
	c := *o
	c.RateLimits = cloneLimits(o.RateLimits)
	c.Credits = o.Credits.Clone()
	return &c
}

func cloneLimits(in []RateLimit) []RateLimit {
	if in == nil {
		return nil
	}
	return append([]RateLimit{}, in...)
}

// LimitResult is the outcome of one rate limit for one request.
type LimitResult struct {
	// Name is the limit's name.
	Name string `json:"name"`
	// Scope says whose limit it is: "key" or "owner".
	Scope string `json:"scope,omitempty"`
	// Limit is the limit's Limit, and Period its Period: the quota policy.
	Limit  int64         `json:"limit"`
	Period time.Duration `json:"-"`
	// Remaining is how many more units of cost could be spent right now.
	Remaining int64 `json:"remaining"`
	// Reset is how long until the limit is fully replenished; JSON writes
	// it in whole seconds, rounded up.
	Reset time.Duration `json:"-"`
	// RetryAfter, for a refused request, is how long until the same request
	// could pass; zero when Allowed.
	RetryAfter time.Duration `json:"-"`
	// Allowed reports whether the request passed this limit.
	Allowed bool `json:"allowed"`
}

// MarshalJSON writes Reset (and, when refused, RetryAfter) in whole
// seconds, rounded up, as "reset" and "retry_after".
func (r LimitResult) MarshalJSON() ([]byte, error) {
	type plain LimitResult
	return json.Marshal(struct {
		plain
		Reset      int64 `json:"reset"`
		RetryAfter int64 `json:"retry_after,omitempty"`
	}{plain(r), Seconds(r.Reset), Seconds(r.RetryAfter)})
}

// Seconds returns d in whole seconds, rounded up; never negative.
func Seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// Limiter checks rate limits: the counters of the generic cell rate
// algorithm, by bucket. The Manager's default is a MemoryLimiter, in the
// process; set Config.Limiter to share counters between instances (the
// Redis limiter of the apikey service). Implementations must be safe for
// concurrent use.
type Limiter interface {
	// Allow spends cost units of l in the bucket named bucket, if the
	// bucket allows it now, and reports the outcome. A refused request
	// spends nothing. A cost of zero spends nothing and reports the
	// current state. An error means the limiter could not decide; the
	// Manager then applies l.FailOpen. Bucket names are at most a few
	// hundred bytes of printable ASCII: "key:<id>:<name>" or
	// "owner:<owner>:<name>" (the owner is free text).
	Allow(ctx context.Context, bucket string, l RateLimit, cost int64) (LimitResult, error)
}

// CheckOptions say which limits and credits a Check applies.
type CheckOptions struct {
	// RateLimit names the limit to check besides DefaultRateLimit
	// ("requests"), which always applies. Empty means "requests" only.
	// A key or owner without a limit of that name is not limited by it.
	RateLimit string
	// Cost is the weight of the request against the RateLimit limit; zero
	// means 1. The "requests" limit counts 1 per request unless it is the
	// one RateLimit names.
	Cost int64
	// Credits is the cost in credits; zero spends nothing. It is spent from
	// the key's balance when it has one and from its owner's when it has
	// one, from both when both (all or nothing). A key and owner without
	// balances are not limited by credits.
	Credits int64
	// IdempotencyKey, when set, makes the spend idempotent: a retry with
	// the same key, within IdempotencyWindow, spends nothing and gets the
	// first answer. It is 1 to 255 bytes of printable ASCII
	// (ValidIdempotencyKey).
	IdempotencyKey string
	// Environment, when set, is the only environment Check accepts
	// (ErrWrongEnvironment otherwise), besides the Manager's own
	// Config.Environment. Empty means any.
	Environment Environment
	// ClientAddr is the address the request came from, which Check holds
	// against the key's network allowlist (Key.AllowsAddr). The zero Addr
	// means unknown: a key with an allowlist is then refused.
	ClientAddr netip.Addr
}

// IdempotencyWindow is how long a spend's idempotency key is remembered.
const IdempotencyWindow = 24 * time.Hour

// Result is the outcome of a Check that passed: the key, the rate limits
// that applied, and the balance left.
type Result struct {
	// Key is the verified key; see Verify for what it may share.
	Key *Key `json:"key"`
	// RateLimits are the outcomes of the limits that applied, the key's
	// first, then the owner's.
	RateLimits []LimitResult `json:"ratelimits"`
	// Credits is the balance left, when credits were spent (or asked for)
	// and the key or its owner holds a balance; nil otherwise.
	Credits *CreditsResult `json:"credits,omitempty"`

	limits  [2]LimitResult // backing array of RateLimits: the key's and the owner's "requests"
	key     Key            // what Key points to, for Check: one allocation for both
	credits CreditsResult  // what Credits points to, when set
}

// setCredits points r.Credits at its own CreditsResult, set to c.
func (r *Result) setCredits(c CreditsResult) {
	r.credits = c
	r.Credits = &r.credits
}

// CreditsResult is the balance a spend left.
type CreditsResult struct {
	// Remaining is what can still be spent: the smaller of the key's and
	// the owner's balances, of those that exist.
	Remaining int64 `json:"remaining"`
	// Replayed is true when the spend repeated an earlier one with the same
	// idempotency key: nothing was spent this time.
	Replayed bool `json:"replayed,omitempty"`
}

// LimitError is the refusal of a Check by a rate limit (ErrRateLimited) or
// for want of credits (ErrUsageExceeded). It carries what the HTTP layer
// needs for its Retry-After and RateLimit headers.
type LimitError struct {
	// Err is ErrRateLimited or ErrUsageExceeded.
	Err error
	// KeyID is the key that was refused.
	KeyID string
	// RetryAfter is how long until the request could pass; zero when
	// unknown (credits without a refill).
	RetryAfter time.Duration
	// RateLimits are the outcomes of the limits checked, the refusing one
	// included.
	RateLimits []LimitResult
	// Credits is the balance left, for ErrUsageExceeded.
	Credits *CreditsResult
}

// Error implements error.
func (e *LimitError) Error() string {
	if errors.Is(e.Err, ErrRateLimited) {
		for _, r := range e.RateLimits {
			if !r.Allowed {
				return fmt.Sprintf("%v: %s limit %q, retry after %v", e.Err, r.Scope, r.Name, e.RetryAfter)
			}
		}
	}
	return e.Err.Error()
}

// Unwrap returns Err.
func (e *LimitError) Unwrap() error { return e.Err }

// LimiterError reports that a rate limit could not be checked because the
// Limiter failed (a Redis outage or timeout) and the limit does not fail
// open. It matches ErrUnavailable: the request is refused, as a limit that
// cannot be checked is not granted, and may be retried.
type LimiterError struct {
	// Scope is "key" or "owner": whose limit it is.
	Scope string
	// Limit is the name of the limit (a valid limit name).
	Limit string
	// Err is the Limiter's error.
	Err error
}

// Error implements error.
func (e *LimiterError) Error() string {
	return fmt.Sprintf("%v: %s rate limit %q could not be checked: %v", ErrUnavailable, e.Scope, e.Limit, e.Err)
}

// Unwrap returns ErrUnavailable and Err.
func (e *LimiterError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }

// ValidLimitName reports whether s can name a rate limit: 1 to 64
// characters of a-z 0-9 _ . -, starting with a letter or digit.
func ValidLimitName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '_' || s[0] == '.' || s[0] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// ValidIdempotencyKey reports whether s can be an idempotency key: 1 to 255
// bytes of printable ASCII (0x20 to 0x7e).
func ValidIdempotencyKey(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckRateLimits returns nil when limits are valid for a key or an owner,
// and otherwise a *ValidationError for the field "ratelimits": at most
// MaxRateLimits, names ValidLimitName and distinct, Limit positive, Period
// at least a second and at most a year, Burst not negative.
func CheckRateLimits(limits []RateLimit) error {
	if len(limits) > MaxRateLimits {
		return invalid("ratelimits", "at most %d limits", MaxRateLimits)
	}
	for i, l := range limits {
		switch {
		case !ValidLimitName(l.Name):
			return invalid("ratelimits", "name %q must be 1 to 64 characters of a-z 0-9 _ . -", l.Name)
		case l.Limit <= 0:
			return invalid("ratelimits", "limit of %q must be positive", l.Name)
		case l.Period < time.Second:
			return invalid("ratelimits", "period of %q must be at least 1s", l.Name)
		case l.Period > 366*24*time.Hour:
			return invalid("ratelimits", "period of %q must be at most 366d", l.Name)
		case l.Burst < 0:
			return invalid("ratelimits", "burst of %q must not be negative", l.Name)
		case l.Limit > 1e12 || l.Burst > 1e12:
			return invalid("ratelimits", "limit and burst of %q must be at most 10^12", l.Name)
		}
		for _, o := range limits[:i] {
			if o.Name == l.Name {
				return invalid("ratelimits", "%q is listed twice", l.Name)
			}
		}
	}
	return nil
}

// CheckCredits returns nil when c is a valid balance, and otherwise a
// *ValidationError for the field "credits": Remaining not negative, and a
// Refill with a valid interval (daily; monthly with Day 0 to 31; or a
// duration of at least a minute) and an Amount not negative. A nil c is
// valid.
func CheckCredits(c *Credits) error {
	if c == nil {
		return nil
	}
	if c.Remaining < 0 {
		return invalid("credits", "remaining must not be negative")
	}
	if c.Refill == nil {
		return nil
	}
	return CheckRefill(*c.Refill)
}

// CheckRefill returns nil when r is a valid refill schedule, and otherwise
// a *ValidationError for the field "credits".
func CheckRefill(r Refill) error {
	if r.Amount < 0 {
		return invalid("credits", "refill amount must not be negative")
	}
	switch r.Interval {
	case RefillDaily:
		if r.Day != 0 {
			return invalid("credits", "a daily refill takes no day")
		}
	case RefillMonthly:
		if r.Day < 0 || r.Day > 31 {
			return invalid("credits", "the day of a monthly refill must be 1 to 31")
		}
	default:
		d, err := parseDuration(r.Interval)
		if err != nil || strings.TrimSpace(r.Interval) == "" {
			return invalid("credits", "refill interval must be daily, monthly or a duration like 12h or 7d, got %q", r.Interval)
		}
		if d < time.Minute {
			return invalid("credits", "a refill interval must be at least 1m")
		}
		if r.Day != 0 {
			return invalid("credits", "only a monthly refill takes a day")
		}
	}
	return nil
}

// normalizeCredits returns c ready to store at now: validated, a copy,
// with NextRefillAt set to the first instant of its schedule after now when
// it has a Refill, and cleared when it has none.
func normalizeCredits(c *Credits, now time.Time) (*Credits, error) {
	if c == nil {
		return nil, nil
	}
	if err := CheckCredits(c); err != nil {
		return nil, err
	}
	out := c.Clone()
	out.NextRefillAt = nil
	if out.Refill != nil {
		next := out.Refill.Next(now, now)
		out.NextRefillAt = &next
	}
	return out, nil
}

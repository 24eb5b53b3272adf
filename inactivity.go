package apikey

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Bounds of an inactivity expiry (Key.InactivityExpiry,
// Config.InactivityExpiry).
const (
	// MinInactivityExpiry is the shortest inactivity expiry: an hour, far
	// above the delay with which last uses reach the store (see
	// Config.InactivityExpiry).
	MinInactivityExpiry = time.Hour
	// MaxInactivityExpiry is the longest: 100 years of 365 days.
	MaxInactivityExpiry = 36500 * 24 * time.Hour
	// NoInactivityExpiry, as a key's InactivityExpiry, exempts the key
	// from the service's default: it never expires for want of use. Its
	// text form is "never".
	NoInactivityExpiry time.Duration = -1
)

// Inactivity is the type of Key.InactivityExpiry: a time.Duration whose
// text form (JSON included) is what FormatInactivityExpiry writes and
// ParseInactivityExpiry reads ("90d", "36h", "never"; zero is empty).
type Inactivity time.Duration

// MarshalText writes d as FormatInactivityExpiry does.
func (d Inactivity) MarshalText() ([]byte, error) {
	return []byte(FormatInactivityExpiry(time.Duration(d))), nil
}

// UnmarshalText reads d as ParseInactivityExpiry does.
func (d *Inactivity) UnmarshalText(b []byte) error {
	v, err := ParseInactivityExpiry(string(b))
	if err != nil {
		return err
	}
	*d = Inactivity(v)
	return nil
}

// ErrInactive reports a key refused because it was not used for longer
// than its inactivity expiry. It matches ErrExpired, whose code
// (key_expired) and HTTP status (401) it shares: to a client an inactive
// key is an expired one, and the key's State is StateExpired. The
// distinct error lets Go callers and the logs tell the two apart.
var ErrInactive = fmt.Errorf("%w: unused for longer than its inactivity expiry", ErrExpired)

// InactiveAt returns the instant from which the key counts as inactive,
// and whether it has an inactivity expiry at all. The key's own
// InactivityExpiry applies when it is set; zero means defaultPolicy (the
// service's Config.InactivityExpiry); NoInactivityExpiry, or a policy of
// zero, means none. The instant is the policy after the key's last use
// (LastUsedAt), or after its creation when it was never used. It is the
// rule of the Manager's refusal and of the scheduler's inactivity warning
// ("inactive in N days": InactiveAt minus N days); revocation and the
// ordinary ExpiresAt are separate.
//
// LastUsedAt is written in batches (Config.UsageFlushInterval), so a
// record read from a store may lag the key's real last use by that much:
// the Manager refuses a key only when InactiveAt, recomputed from the
// freshest last use it knows, is past by more than twice the flush
// interval (see Config.InactivityExpiry).
func (k *Key) InactiveAt(defaultPolicy time.Duration) (time.Time, bool) {
	p := time.Duration(k.InactivityExpiry)
	if p == 0 {
		p = defaultPolicy
	}
	if p <= 0 {
		return time.Time{}, false
	}
	base := k.CreatedAt
	if k.LastUsedAt != nil && k.LastUsedAt.After(base) {
		base = *k.LastUsedAt
	}
	return base.Add(p), true
}

// ParseInactivityExpiry reads an inactivity expiry as people write it: a
// duration with day and week terms ("90d", "2w", "36h"), "0" or the empty
// string for the service's default, or "never" (NoInactivityExpiry). A
// duration outside MinInactivityExpiry..MaxInactivityExpiry or malformed
// is a *ValidationError for the field "inactivity_expiry".
func ParseInactivityExpiry(s string) (time.Duration, error) {
	switch s {
	case "", "0":
		return 0, nil
	case "never":
		return NoInactivityExpiry, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return 0, invalid("inactivity_expiry", "want a duration like 90d, 2w or 36h, 0 for the default, or never; got %q", s)
	}
	if err := checkInactivity(d); err != nil {
		return 0, err
	}
	return d, nil
}

// checkInactivity checks a key's InactivityExpiry.
func checkInactivity(d time.Duration) error {
	if d == 0 || d == NoInactivityExpiry {
		return nil
	}
	if d < MinInactivityExpiry || d > MaxInactivityExpiry {
		return invalid("inactivity_expiry", "must be between 1h and 36500d, 0 for the default, or never; got %s", FormatInactivityExpiry(d))
	}
	return nil
}

// FormatInactivityExpiry writes d as ParseInactivityExpiry reads it: whole
// days as "90d", whole hours as "36h", "never" for NoInactivityExpiry,
// "" for zero, and Go's form otherwise.
func FormatInactivityExpiry(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d == NoInactivityExpiry:
		return "never"
	case d > 0 && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d > 0 && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.String()
}

// checkDefaultInactivity checks Config.InactivityExpiry.
func checkDefaultInactivity(d time.Duration, usageOff bool) error {
	if d == 0 {
		return nil
	}
	if d < MinInactivityExpiry || d > MaxInactivityExpiry {
		return fmt.Errorf("apikey: InactivityExpiry %s is outside 1h..36500d", FormatInactivityExpiry(d))
	}
	if usageOff {
		return errors.New("apikey: InactivityExpiry needs usage tracking (UsageFlushInterval must not be negative): without it no last use is ever recorded and every key would expire")
	}
	return nil
}

package apikey

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// ParseExpiry reads an expiry as people write it: an RFC 3339 instant
// ("2030-01-02T15:04:05Z"), returned as given, or a positive duration from
// now in Go's syntax ("90m", "12h") with leading day and week terms ("30d",
// "2w", "1w2d", "1d12h30m"). The CLI's --expires, the HTTP API's
// expires_in and the admin site all read expiries with it; pass the
// Manager's clock (Manager.Now) as now. The instant must be ValidTime (in
// the years 1 to 9999 in UTC); whether it lies in the future is checked by
// Create and Update, not here.
//
// The error is a *ValidationError for the field "expires_at" whose Reason
// says what is wrong, for the caller to phrase for its own input.
func ParseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if err := CheckTime("expires_at", t); err != nil {
			return time.Time{}, err
		}
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, &ValidationError{Field: "expires_at", Reason: "want a duration like 30d, 12h or an RFC 3339 time"}
	}
	if d <= 0 {
		return time.Time{}, &ValidationError{Field: "expires_at", Reason: "the duration must be positive"}
	}
	t := now.Add(d)
	if err := CheckTime("expires_at", t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

// parseDuration is time.ParseDuration with leading day ("d") and week ("w")
// terms: "30d", "2w", "1w2d", "1d12h30m".
func parseDuration(s string) (time.Duration, error) {
	var total time.Duration
	rest := s
	for {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 || i == len(rest) || (rest[i] != 'd' && rest[i] != 'w') {
			break
		}
		unit := 24 * time.Hour
		if rest[i] == 'w' {
			unit = 7 * 24 * time.Hour
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > math.MaxInt64/int64(unit) || total > math.MaxInt64-time.Duration(n)*unit {
			return 0, errors.New("duration out of range")
		}
		total += time.Duration(n) * unit
		rest = rest[i+1:]
	}
	if rest == "" {
		if rest == s {
			return 0, errors.New("empty duration")
		}
		return total, nil
	}
	if rest != s && (rest[0] == '-' || rest[0] == '+') {
		return 0, errors.New("sign in the middle of a duration")
	}
	d, err := time.ParseDuration(rest)
	if err != nil {
		return 0, err
	}
	if d > 0 && total > math.MaxInt64-d {
		return 0, errors.New("duration out of range")
	}
	return total + d, nil
}

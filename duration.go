package apikey

import (
	"errors"
	"math"
	"strconv"
	"time"
)

// ParseDuration is time.ParseDuration with leading day ("d") and week ("w")
// terms, for expiries: "30d", "2w", "1w2d", "1d12h30m". The CLI's
// --expires, the API's expires_in and the admin site share it.
func ParseDuration(s string) (time.Duration, error) {
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

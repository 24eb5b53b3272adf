package main

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// parseExpiry reads --expires: an RFC 3339 time, or a positive duration from
// now in Go's syntax (90m, 12h) with days and weeks added (30d, 2w, 1d12h).
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDuration(s)
	if err != nil {
		return time.Time{}, usagef("invalid --expires %q: want a duration like 30d, 12h or an RFC 3339 time", s)
	}
	if d <= 0 {
		return time.Time{}, usagef("invalid --expires %q: the duration must be positive", s)
	}
	return now.Add(d), nil
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

// parseMeta reads repeated --meta name=value flags. Values may hold any
// character, "=" included; names must not be empty or repeated (the
// Manager checks the rest).
func parseMeta(pairs []string) (map[string]string, error) {
	md := make(map[string]string, len(pairs))
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, usagef("invalid --meta %q: want name=value", p)
		case name == "":
			return nil, usagef("invalid --meta %q: the name is empty", p)
		}
		if _, dup := md[name]; dup {
			return nil, usagef("invalid --meta %q: %q is given twice", p, name)
		}
		md[name] = value
	}
	return md, nil
}

// checkState validates --state before anything touches the database.
func checkState(s string) error {
	switch s {
	case "", "active", "expired", "revoked":
		return nil
	}
	return usagef("invalid --state %q: want active, expired or revoked", s)
}

// checkID validates a key id argument before anything touches the
// database. It never repeats a key given by mistake, only its id.
func checkID(s string) error {
	if apikey.ValidID(s) {
		return nil
	}
	if t, err := apikey.ParseToken(s); err == nil {
		return usagef("that is a key, not a key id: its id is %q", t.ID)
	}
	if len(s) <= 2*apikey.IDLength && !strings.Contains(s, "_") {
		return refusedf("no key with id %q", s)
	}
	return refusedf("no key with that id: a key id is %d letters and digits", apikey.IDLength)
}

// keyError phrases the error of a management call on the key id.
func keyError(err error, id string) error {
	if errors.Is(err, apikey.ErrNotFound) {
		return refusedf("no key with id %q", id)
	}
	return err
}

package sqlite

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/go-apikey/apikey"
)

// encodeCIDRs is the stored form of an allowlist: a JSON array of ranges
// as text, "[]" when empty.
func encodeCIDRs(ps []netip.Prefix) (string, error) {
	if len(ps) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ps) // netip.Prefix is written as text
	return string(b), err
}

func decodeCIDRs(s string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return ps, nil
}

// encodeInactivity is the stored form of an inactivity expiry:
// microseconds, -1 for never.
func encodeInactivity(d time.Duration) int64 {
	if d == apikey.NoInactivityExpiry {
		return -1
	}
	return int64(d / time.Microsecond)
}

func decodeInactivity(us int64) time.Duration {
	if us == -1 {
		return apikey.NoInactivityExpiry
	}
	return time.Duration(us) * time.Microsecond
}

// inactivityArg is the default inactivity expiry of a List, in
// microseconds; 0 means none.
func inactivityArg(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(d / time.Microsecond)
}

// inactiveCond is true for a key past its inactivity expiry at the
// instant of its second argument, as apikey.Key.InactiveAt says: its own
// policy, or when that is 0 the default of its first argument (in
// microseconds), after its last use or its creation. Arguments: the
// default, now, the default again. julianday keeps milliseconds, which is all the precision
// a listing needs.
const inactiveCond = `(CASE WHEN inactivity_expiry = 0 THEN ? ELSE inactivity_expiry END > 0
	AND (julianday(?) - julianday(max(coalesce(last_used_at, created_at), created_at))) * 86400000000.0
		>= CASE WHEN inactivity_expiry = 0 THEN ? ELSE inactivity_expiry END)`

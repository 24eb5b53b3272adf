package postgres

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

// inactiveCond is true for a key past its inactivity expiry at now, as
// apikey.Key.InactiveAt says: its own policy, or when that is 0 the
// default def (in microseconds), after its last use or its creation. now
// and def are placeholders.
func inactiveCond(now, def string) string {
	policy := "(CASE WHEN inactivity_expiry = 0 THEN " + def + "::bigint ELSE inactivity_expiry END)"
	return "(" + policy + " > 0 AND greatest(coalesce(last_used_at, created_at), created_at) + " + policy +
		" * interval '1 microsecond' <= " + now + ")"
}

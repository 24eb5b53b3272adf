// Package storeform holds the stored forms of the key fields that the SQL
// stores (sqlite and postgres) write the same way: one home for each
// encoding, so that both databases keep the same text and numbers.
package storeform

import (
	"encoding/json"
	"net/netip"
	"time"

	"github.com/go-apikey/apikey"
)

// EncodeCIDRs is the stored form of an allowlist: a JSON array of ranges
// as text, "[]" when empty.
func EncodeCIDRs(ps []netip.Prefix) (string, error) {
	if len(ps) == 0 {
		return "[]", nil
	}
	b, err := json.Marshal(ps) // netip.Prefix is written as text
	return string(b), err
}

// DecodeCIDRs reads what EncodeCIDRs wrote; "[]" gives nil.
func DecodeCIDRs(s string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	if err := json.Unmarshal([]byte(s), &ps); err != nil {
		return nil, err
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return ps, nil
}

// EncodeInactivity is the stored form of an inactivity expiry:
// microseconds, -1 for never.
func EncodeInactivity(d time.Duration) int64 {
	if d == apikey.NoInactivityExpiry {
		return -1
	}
	return int64(d / time.Microsecond)
}

// DecodeInactivity reads what EncodeInactivity wrote.
func DecodeInactivity(us int64) time.Duration {
	if us == -1 {
		return apikey.NoInactivityExpiry
	}
	return time.Duration(us) * time.Microsecond
}

// InactivityArg is the default inactivity expiry of a List, in
// microseconds; 0 means none.
func InactivityArg(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64(d / time.Microsecond)
}

package storeform

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

func TestCIDRsRoundTrip(t *testing.T) {
	for _, ps := range [][]netip.Prefix{
		nil,
		{netip.MustParsePrefix("10.0.0.0/8")},
		{netip.MustParsePrefix("203.0.113.0/24"), netip.MustParsePrefix("2001:db8::/32")},
	} {
		s, err := EncodeCIDRs(ps)
		if err != nil {
			t.Fatal(err)
		}
		if len(ps) == 0 && s != "[]" {
			t.Errorf("EncodeCIDRs(nil) = %q, want []", s)
		}
		got, err := DecodeCIDRs(s)
		if err != nil || !slices.Equal(got, ps) {
			t.Errorf("DecodeCIDRs(%q) = %v, %v; want %v", s, got, err, ps)
		}
	}
	if s, _ := EncodeCIDRs([]netip.Prefix{netip.MustParsePrefix("2001:db8::/32")}); s != `["2001:db8::/32"]` {
		t.Errorf("stored text %s, want [\"2001:db8::/32\"]", s)
	}
	if _, err := DecodeCIDRs(`["10.0.0.0/33"]`); err == nil {
		t.Error("DecodeCIDRs accepted a /33")
	}
}

func TestInactivityRoundTrip(t *testing.T) {
	for _, c := range []struct {
		d  time.Duration
		us int64
	}{{0, 0}, {apikey.NoInactivityExpiry, -1}, {90 * 24 * time.Hour, 90 * 24 * 3600 * 1e6}, {time.Hour, 3600 * 1e6}} {
		if got := EncodeInactivity(c.d); got != c.us {
			t.Errorf("EncodeInactivity(%v) = %d, want %d", c.d, got, c.us)
		}
		if got := DecodeInactivity(c.us); got != c.d {
			t.Errorf("DecodeInactivity(%d) = %v, want %v", c.us, got, c.d)
		}
	}
	if InactivityArg(apikey.NoInactivityExpiry) != 0 || InactivityArg(0) != 0 || InactivityArg(time.Second) != 1e6 {
		t.Error("InactivityArg: a negative or zero default must be 0 (none), a second 1e6")
	}
}

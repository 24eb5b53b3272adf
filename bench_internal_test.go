package apikey

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"net/netip"
	"testing"
)

var benchToken = formatToken("ak", "AbC123xyz789", "0123456789abcdefghijABCDEFGHIJ01")

// BenchmarkHashing measures the digests of a key-sized input against the
// physical floor, one SHA-256 of the same bytes, in one run.
func BenchmarkHashing(b *testing.B) {
	b.Run("SHA256", func(b *testing.B) {
		in := []byte(benchToken)
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			sha256.Sum256(in)
		}
	})
	b.Run("ParseToken", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseToken(benchToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	const drfKey = "AbCd1234.0123456789abcdefghijABCDEFGHIJ01"
	b.Run("ParseDRFToken", func(b *testing.B) {
		for b.Loop() {
			if _, err := ParseDRFToken(drfKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("SHA512", func(b *testing.B) {
		in := []byte(drfKey)
		b.SetBytes(int64(len(in)))
		for b.Loop() {
			sha512.Sum512(in)
		}
	})
	plain, _ := newHasher(nil, nil)
	peppered, _ := newHasher([]Pepper{{Version: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}}, nil)
	for _, tc := range []struct {
		name string
		h    *hasher
	}{{"MatchSHA256", plain}, {"MatchHMAC", peppered}} {
		stored := tc.h.hash(benchToken)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ok, _ := tc.h.match(stored, benchToken); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
	sum := sha512.Sum512([]byte(drfKey))
	stored512 := tagSHA512 + hex.EncodeToString(sum[:])
	b.Run("MatchSHA512", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ok, _ := plain.match(stored512, drfKey); !ok {
				b.Fatal("no match")
			}
		}
	})
}

func TestHasherFormats(t *testing.T) {
	plain, _ := newHasher(nil, nil)
	v1 := []Pepper{{Version: 1, Secret: []byte("first-pepper-0123456789")}}
	peppered, _ := newHasher(v1, nil)
	rotated, _ := newHasher(append([]Pepper{{Version: 2, Secret: []byte("second-pepper-0123456789")}}, v1...), nil)

	s := plain.hash(benchToken)
	if len(s) != len("sha256$")+64 || s[:7] != "sha256$" {
		t.Fatalf("plain hash = %q, want sha256$<64 hex>", s)
	}
	p := peppered.hash(benchToken)
	if p[:len("hmac-sha256$1$")] != "hmac-sha256$1$" {
		t.Fatalf("peppered hash = %q, want hmac-sha256$1$...", p)
	}
	tests := []struct {
		name        string
		h           *hasher
		stored, raw string
		ok, current bool
	}{
		{"plain matches", plain, s, benchToken, true, true},
		{"plain wrong token", plain, s, benchToken + "x", false, false},
		{"peppered matches", peppered, p, benchToken, true, true},
		{"old pepper still matches but is not current", rotated, p, benchToken, true, false},
		{"plain hash under peppered config matches, not current", peppered, s, benchToken, true, false},
		{"unknown pepper version", plain, p, benchToken, false, false},
		{"unknown algorithm", plain, "md5$abc", benchToken, false, false},
		{"truncated digest", plain, s[:len(s)-2], benchToken, false, false},
		{"non-hex digest", plain, "sha256$" + string(make([]byte, 64)), benchToken, false, false},
		{"empty", plain, "", benchToken, false, false},
		{"bad version", peppered, "hmac-sha256$x$" + p[len("hmac-sha256$1$"):], benchToken, false, false},
	}
	for _, tt := range tests {
		ok, cur := tt.h.match(tt.stored, tt.raw)
		if ok != tt.ok || cur != tt.current {
			t.Errorf("%s: match = %v, %v; want %v, %v", tt.name, ok, cur, tt.ok, tt.current)
		}
	}
	if _, err := newHasher([]Pepper{{Version: 0, Secret: []byte("0123456789abcdef")}}, nil); err == nil {
		t.Error("newHasher accepted version 0")
	}
	if _, err := newHasher([]Pepper{{Version: 1, Secret: []byte("short")}}, nil); err == nil {
		t.Error("newHasher accepted a 5-byte pepper")
	}
	if _, err := newHasher(append(v1, v1...), nil); err == nil {
		t.Error("newHasher accepted a duplicate version")
	}
}

// BenchmarkPermits is the cost of Key.Permits, the check of a network
// allowlist, on a key without one and on one of 10 ranges (the address in
// the last), next to ParseToken for scale.
func BenchmarkPermits(b *testing.B) {
	addr := netip.MustParseAddr("2001:db8::7")
	open := &Key{}
	fenced := &Key{}
	for i := range 9 {
		fenced.AllowedCIDRs = append(fenced.AllowedCIDRs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16))
	}
	fenced.AllowedCIDRs = append(fenced.AllowedCIDRs, netip.MustParsePrefix("2001:db8::/32"))
	for _, c := range []struct {
		name string
		k    *Key
	}{{"none", open}, {"allowlist10", fenced}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.k.Permits("", addr); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

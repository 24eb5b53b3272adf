package admin

import (
	"encoding/base32"
	"testing"
	"time"
)

// TestTOTPVectors checks the SHA-1 test vectors of RFC 6238, appendix B
// (8 digits, the key "12345678901234567890").
func TestTOTPVectors(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		{1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"},
	} {
		if got := hotp(key, uint64(tc.unix/30), 8); got != tc.want {
			t.Errorf("TOTP at %d = %s, want %s", tc.unix, got, tc.want)
		}
	}
	// RFC 4226, appendix D: HOTP of the same key at counters 0 and 9.
	if got := hotp(key, 0, 6); got != "755224" {
		t.Errorf("HOTP(0) = %s, want 755224", got)
	}
	if got := hotp(key, 9, 6); got != "520489" {
		t.Errorf("HOTP(9) = %s, want 520489", got)
	}
}

func TestCheckTOTP(t *testing.T) {
	secret := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString([]byte("12345678901234567890"))
	now := time.Unix(1111111111, 0)
	code, err := TOTPCode(secret, now)
	if err != nil || code != "050471" {
		t.Fatalf("TOTPCode = %q, %v; want 050471 (the last 6 digits of the RFC's)", code, err)
	}
	for _, tc := range []struct {
		code string
		at   time.Time
		want bool
	}{
		{code, now, true},
		{"050 471", now, true},
		{code, now.Add(30 * time.Second), true},  // one step of drift
		{code, now.Add(-30 * time.Second), true}, // one step of drift
		{code, now.Add(90 * time.Second), false},
		{"000000", now, false},
		{"05047", now, false},
		{"0504711", now, false},
		{"", now, false},
	} {
		if got := CheckTOTP(secret, tc.code, tc.at); got != tc.want {
			t.Errorf("CheckTOTP(%q, %v) = %v, want %v", tc.code, tc.at.Unix(), got, tc.want)
		}
	}
	if CheckTOTP("not base32!", code, now) {
		t.Error("a bad secret checked")
	}
	s, err := NewTOTPSecret()
	if err != nil || len(s) != 32 {
		t.Errorf("NewTOTPSecret = %q, %v", s, err)
	}
}

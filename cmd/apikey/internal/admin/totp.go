package admin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Two-factor codes: TOTP (RFC 6238) over HOTP (RFC 4226) with HMAC-SHA1,
// 30-second steps and 6 digits, which every authenticator app reads from
// an otpauth:// URI.
const (
	totpStep   = 30 * time.Second
	totpDigits = 6
	// totpSkew is how many steps before and after now a code may be from,
	// for clocks that drift.
	totpSkew = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a random 160-bit secret in base32, the form
// authenticator apps take.
func NewTOTPSecret() (string, error) {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b32.EncodeToString(b), nil
}

// hotp returns the HOTP value (RFC 4226) of key at counter, with digits
// digits.
func hotp(key []byte, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(sha1.New, key)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, v%mod)
}

// TOTPCode returns the code of secret (base32) at t.
func TOTPCode(secret string, t time.Time) (string, error) {
	key, err := b32.DecodeString(strings.ToUpper(strings.TrimSpace(secret)))
	if err != nil {
		return "", fmt.Errorf("admin: invalid two-factor secret: %w", err)
	}
	return hotp(key, uint64(t.Unix()/int64(totpStep/time.Second)), totpDigits), nil
}

// CheckTOTP reports whether code is the code of secret at now, or of the
// step before or after. Spaces in code are ignored; the comparison takes
// constant time.
func CheckTOTP(secret, code string, now time.Time) bool {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != totpDigits {
		return false
	}
	key, err := b32.DecodeString(strings.ToUpper(strings.TrimSpace(secret)))
	if err != nil || len(key) == 0 {
		return false
	}
	step := now.Unix() / int64(totpStep/time.Second)
	ok := 0
	for d := -totpSkew; d <= totpSkew; d++ {
		ok |= subtle.ConstantTimeCompare([]byte(hotp(key, uint64(step+int64(d)), totpDigits)), []byte(code))
	}
	return ok == 1
}

// TOTPURI returns the otpauth:// URI of secret for email, which
// authenticator apps import (typed in, or from a QR code made of it).
func TOTPURI(email, secret string) string {
	label := url.PathEscape("apikey admin:" + email)
	q := url.Values{"secret": {secret}, "issuer": {"apikey admin"}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + label + "?" + q.Encode()
}

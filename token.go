package apikey

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"regexp"
	"strings"
	"sync"
)

// Token format: <prefix>_<id>_<secret><checksum>, where the prefix of a
// test key's token is its issuer prefix followed by "_test" (see
// Environment).
const (
	// MaxTokenLength is the longest token ParseToken considers; anything
	// longer is rejected before any other work.
	MaxTokenLength = 256
	// IDLength is the length of a key id.
	IDLength = 12
	// ChecksumLength is the length of the trailing checksum.
	ChecksumLength = 6
	// MinSecretLength is the shortest secret: 22 base62 characters carry
	// 131 bits, the least above 128.
	MinSecretLength = 22
	// MaxSecretLength is the longest secret.
	MaxSecretLength = 128
	// DefaultSecretLength is the secret length used when none is configured
	// (about 190 bits).
	DefaultSecretLength = 32
	// MaxPrefixLength is the longest issuer prefix.
	MaxPrefixLength = 32
	// DefaultPrefix is the issuer prefix used when none is configured.
	DefaultPrefix = "ak"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// Token is a parsed API key. Its String method never reveals the secret, so
// a Token is safe to log; the plaintext stays inside.
type Token struct {
	// Prefix is what precedes "_<id>_": the issuer prefix, followed by
	// "_test" in the token of a test key (see Token.Environment and
	// Key.TokenPrefix).
	Prefix string
	// ID is the public key id.
	ID  string
	raw string
}

// String returns the token with its secret elided, e.g. "ak_3fZ9q0LmA1bc_…",
// or for a key in DRF API Key's form (ParseDRFToken) its prefix and dot,
// "AbCd1234.…".
func (t Token) String() string {
	if p, ok := drfPrefixOf(t.ID); ok && t.Prefix == DRFIssuer {
		return p + ".…"
	}
	return t.Prefix + "_" + t.ID + "_…"
}

// ParseToken checks the shape and checksum of s without any store access.
// It rejects, with an error wrapping ErrInvalidKey, anything longer than
// MaxTokenLength, any byte outside the token alphabet, a wrong shape and a
// wrong checksum. It never allocates on success.
func ParseToken(s string) (Token, error) {
	n := len(s)
	if n > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxTokenLength)
	}
	// 1 (prefix) + 1 + id + 1 + secret + checksum
	if n < 3+IDLength+MinSecretLength+ChecksumLength {
		return Token{}, fmt.Errorf("%w: too short", ErrInvalidKey)
	}
	// One pass without a branch per byte; the offending byte is searched
	// only for the error.
	var outside uint8
	for i := 0; i < n; i++ {
		outside |= charOutside[s[i]]
	}
	if outside != 0 {
		i := 0
		for charClass[s[i]] != 0 {
			i++
		}
		return Token{}, fmt.Errorf("%w: character outside the key alphabet at byte %d", ErrInvalidKey, i)
	}
	body := s[:n-ChecksumLength]
	u := strings.LastIndexByte(body, '_')
	secret := body[u+1:]
	if u < 0 || len(secret) < MinSecretLength || len(secret) > MaxSecretLength {
		return Token{}, fmt.Errorf("%w: wrong shape", ErrInvalidKey)
	}
	if u < IDLength+2 || body[u-IDLength-1] != '_' {
		return Token{}, fmt.Errorf("%w: wrong shape", ErrInvalidKey)
	}
	id := body[u-IDLength : u]
	prefix := body[:u-IDLength-1]
	// Every byte is base62 or '_' by now: the id and checksum need only be
	// free of '_'.
	if err := checkTokenPrefix(prefix); err != nil || strings.IndexByte(id, '_') >= 0 || strings.IndexByte(s[n-ChecksumLength:], '_') >= 0 {
		return Token{}, fmt.Errorf("%w: wrong shape", ErrInvalidKey)
	}
	if !checksumMatches(body, s[n-ChecksumLength:]) {
		return Token{}, fmt.Errorf("%w: bad checksum", ErrInvalidKey)
	}
	return Token{Prefix: prefix, ID: id, raw: s}, nil
}

// ValidID reports whether id has the shape of a key id.
func ValidID(id string) bool { return len(id) == IDLength && isBase62String(id) }

// checkTokenPrefix checks the prefix of a token: an issuer prefix, with
// the test marker after it when it has one.
func checkTokenPrefix(p string) error {
	if len(p) > MaxPrefixLength && strings.HasSuffix(p, testMarker) {
		p = p[:len(p)-len(testMarker)]
	}
	return checkPrefix(p)
}

func checkPrefix(p string) error {
	if len(p) == 0 || len(p) > MaxPrefixLength {
		return fmt.Errorf("must be 1 to %d characters", MaxPrefixLength)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return errors.New("may hold only a-z, 0-9 and _")
		}
	}
	return nil
}

// charClass classifies token bytes: 1 for base62, 2 for '_', 0 otherwise.
var charClass = func() (t [256]uint8) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = 1
	}
	t['_'] = 2
	return t
}()

// charOutside is 1 for the bytes outside the token alphabet.
var charOutside = func() (t [256]uint8) {
	for i := range t {
		if charClass[i] == 0 {
			t[i] = 1
		}
	}
	return t
}()

func isBase62(c byte) bool { return charClass[c] == 1 }

func isBase62String(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isBase62(s[i]) {
			return false
		}
	}
	return true
}

// crc32String is CRC-32 (IEEE) of s without converting it to a byte slice.
func crc32String(s string) uint32 {
	return crc32.ChecksumIEEE(stringBytes(s)) // reads only; hardware-accelerated
}

// checksum returns the 6-character base62 encoding of CRC-32 of body.
func checksum(body string) [ChecksumLength]byte {
	var out [ChecksumLength]byte
	v := crc32String(body)
	for i := ChecksumLength - 1; i >= 0; i-- {
		out[i] = base62[v%62]
		v /= 62
	}
	return out
}

// checksumMatches decodes sum as a base62 number and compares it with the
// CRC-32 of body, which is cheaper than encoding the CRC.
func checksumMatches(body, sum string) bool {
	var v uint64
	for i := 0; i < len(sum); i++ {
		v = v*62 + uint64(base62Value[sum[i]])
	}
	return v == uint64(crc32String(body))
}

// base62Value maps a base62 character to its value.
var base62Value = func() (t [256]uint8) {
	for i := 0; i < len(base62); i++ {
		t[base62[i]] = uint8(i)
	}
	return t
}()

// randomBase62 returns n characters drawn uniformly from base62 using r.
func randomBase62(r io.Reader, n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/2)
	for len(out) < n {
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", fmt.Errorf("apikey: reading randomness: %w", err)
		}
		for _, b := range buf {
			// 248 = 4*62: rejecting larger bytes keeps the draw uniform.
			if b < 248 && len(out) < n {
				out = append(out, base62[b%62])
			}
		}
	}
	return string(out), nil
}

// FormatToken returns the token made of prefix, id and secret with its
// checksum appended, or, when the parts cannot make a token that ParseToken
// accepts, ParseToken's error (it wraps ErrInvalidKey). The Manager draws
// ids and secrets itself; FormatToken is for programs that need the token
// of known parts, such as tests that present a well-formed token with a
// wrong secret (apikeytest.ForgeToken).
func FormatToken(prefix, id, secret string) (string, error) {
	token := formatToken(prefix, id, secret)
	if _, err := ParseToken(token); err != nil {
		return "", err
	}
	return token, nil
}

// formatToken assembles a token from its parts and appends the checksum.
func formatToken(prefix, id, secret string) string {
	body := prefix + "_" + id + "_" + secret
	sum := checksum(body)
	return body + string(sum[:])
}

// tokenShape matches the "<id>_<secret>" part of anything shaped like a
// token, whatever its prefix and even with a bad checksum or a secret cut
// short (16 characters are enough to count as a secret).
var tokenShape = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`([0-9A-Za-z]{12})_[0-9A-Za-z]{16,}`)
})

// drfShape matches a key in DRF API Key's form as DRF API Key makes them,
// "<8 characters>.<32 characters>", standing alone.
var drfShape = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\b([0-9A-Za-z]{8})\.[0-9A-Za-z]{32}\b`)
})

// Redact returns s with anything shaped like a token cut down to its id,
// as Token.String does ("ak_3fZ9q0LmA1bc_…"), whatever its prefix and even
// with a bad checksum, and any key in DRF API Key's form, 8 and 32
// characters around a dot, cut down to its prefix ("AbCd1234.…"). Use it
// on text that may quote what a client sent, such as a logged URL path or
// an error message, so that a key pasted in the wrong place is never
// repeated.
func Redact(s string) string {
	// Both shapes need a separator: most text (a URL path such as
	// /v1/whoami) has neither and is returned as it is, without a regexp.
	if strings.IndexByte(s, '_') >= 0 {
		s = tokenShape().ReplaceAllString(s, "${1}_…")
	}
	if strings.IndexByte(s, '.') >= 0 {
		s = drfShape().ReplaceAllString(s, "${1}.…")
	}
	return s
}

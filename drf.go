package apikey

import (
	"fmt"
	"strings"
)

// Keys imported from DRF API Key (djangorestframework-api-key) keep the
// form their clients hold, "<prefix>.<secret>": a prefix of up to 8 base62
// characters, which DRF API Key stores in clear and looks keys up by, a dot
// and a secret (32 base62 characters as DRF API Key makes them). apikey
// stores such a key under an id made from its prefix (DRFKeyID) with
// DRFIssuer as its issuer prefix, and accepts the dotted form for those
// keys only: ParseDRFToken maps it to that id and issuer prefix, which
// Verify must find on the stored record, just as a native token must name
// its key's own prefix.
const (
	// DRFIssuer is the issuer prefix (Key.Prefix, Token.Prefix) of keys
	// imported from DRF API Key. It ends in a dot, which the issuer prefix
	// of a native key never holds (see Config.Prefix), so it marks imported
	// keys only: a dotted token never verifies against a native key, nor a
	// native token against an imported one.
	DRFIssuer = "drf."

	// MaxDRFPrefixLength is the longest prefix of a DRF API Key key: the
	// width of DRF API Key's prefix column.
	MaxDRFPrefixLength = 8

	// drfIDTag starts every id of an imported DRF API Key key. The Manager
	// never issues an id that starts with it.
	drfIDTag = "drf"
)

// DRFKeyID returns the key id under which the DRF API Key key with the
// given prefix is imported, and whether prefix is a DRF API Key prefix (1
// to 8 base62 characters). The id is "drf", the prefix's length and the
// prefix, padded with zeros to IDLength: prefix "AbCd1234" is key
// "drf8AbCd1234", prefix "xyz" is key "drf3xyz00000". Distinct prefixes
// give distinct ids, and the Manager never issues an id that starts with
// "drf", so an imported key can neither collide with nor be mistaken for a
// native one.
func DRFKeyID(prefix string) (string, bool) {
	if len(prefix) < 1 || len(prefix) > MaxDRFPrefixLength || !isBase62String(prefix) {
		return "", false
	}
	var b [IDLength]byte
	n := copy(b[:], drfIDTag)
	b[n] = byte('0' + len(prefix))
	n++
	n += copy(b[n:], prefix)
	for ; n < IDLength; n++ {
		b[n] = '0'
	}
	return string(b[:]), true
}

// drfPrefixOf returns the DRF API Key prefix that DRFKeyID turned into id,
// and whether id is such an id.
func drfPrefixOf(id string) (string, bool) {
	if len(id) != IDLength || !strings.HasPrefix(id, drfIDTag) {
		return "", false
	}
	n := int(id[len(drfIDTag)] - '0')
	if n < 1 || n > MaxDRFPrefixLength {
		return "", false
	}
	start := len(drfIDTag) + 1
	prefix := id[start : start+n]
	if want, ok := DRFKeyID(prefix); !ok || want != id {
		return "", false
	}
	return prefix, true
}

// reservedID reports whether id has the form of an imported key's id,
// which the Manager never issues to a new key.
func reservedID(id string) bool { return strings.HasPrefix(id, drfIDTag) }

// ParseDRFToken checks the shape of a key in DRF API Key's form,
// "<prefix>.<secret>": a prefix of 1 to 8 base62 characters, one dot and a
// secret of 1 to MaxSecretLength base62 characters, MaxTokenLength bytes
// at most. The Token it returns has Prefix DRFIssuer and ID
// DRFKeyID(prefix); its String shows the prefix and the dot only. The form
// has no checksum: only the stored digest tells a key from a typo.
// Anything else yields an error wrapping ErrInvalidKey. Verify accepts
// both this form and ParseToken's.
func ParseDRFToken(s string) (Token, error) {
	if len(s) > MaxTokenLength {
		return Token{}, fmt.Errorf("%w: longer than %d bytes", ErrInvalidKey, MaxTokenLength)
	}
	prefix, secret, ok := strings.Cut(s, ".")
	if !ok {
		return Token{}, fmt.Errorf("%w: not <prefix>.<secret>", ErrInvalidKey)
	}
	id, ok := DRFKeyID(prefix)
	if !ok || len(secret) < 1 || len(secret) > MaxSecretLength || !isBase62String(secret) {
		return Token{}, fmt.Errorf("%w: not <prefix>.<secret>: a prefix of 1 to %d and a secret of 1 to %d letters and digits", ErrInvalidKey, MaxDRFPrefixLength, MaxSecretLength)
	}
	return Token{Prefix: DRFIssuer, ID: id, raw: s}, nil
}

// ParseAnyToken parses s in either form Verify accepts: a native token
// (ParseToken) or a key in DRF API Key's form (ParseDRFToken), told apart
// by the dot, which a native token never holds. Code
// that checks a key's shape before verifying it, or names the key id a
// token claims, should use it, so that imported keys pass.
func ParseAnyToken(s string) (Token, error) {
	if strings.IndexByte(s, '.') >= 0 { // outside the native alphabet
		return ParseDRFToken(s)
	}
	return ParseToken(s)
}

// drfToken returns the token of an imported key with the given id and a
// new secret.
func drfToken(id, secret string) (string, error) {
	prefix, ok := drfPrefixOf(id)
	if !ok {
		return "", fmt.Errorf("apikey: %s is not the id of an imported DRF API Key key", id)
	}
	return prefix + "." + secret, nil
}

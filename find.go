package apikey

import (
	"bytes"
	"iter"
	"strings"
	"unsafe"
)

// TokenMatch is a token found in text by FindTokens.
type TokenMatch struct {
	// Token is the token found; its String method shows the prefix and the
	// id only.
	Token Token
	// Start and End are the byte offsets of the token in the text:
	// text[Start:End] is the plaintext.
	Start, End int
}

// TokenPattern is a regular expression (RE2 and PCRE syntax) that matches
// every token ParseToken accepts, for secret scanners that cannot run
// FindTokens, such as GitHub's secret scanning: a prefix of 1 to 32 of
// a-z 0-9 _, an underscore, the 12-character id, an underscore, then 28 to
// 134 base62 characters (the secret, 22 to 128, followed by the 6-character
// checksum). A regular expression cannot check the checksum, so it also
// matches text of that shape that is not a token; ParseToken, or a lookup,
// tells them apart. Scanners that know their prefix should replace the
// prefix part with it, which removes most of those matches.
const TokenPattern = `\b[a-z0-9_]{1,32}_[0-9A-Za-z]{12}_[0-9A-Za-z]{28,134}\b`

// FindTokens returns an iterator over the tokens in text, in order: every
// stretch of text that ParseToken accepts, whose checksum thus matches, so
// that random text of the right shape is found with a probability of 1 in
// 62^6 (about 5.7e10) per candidate. A token is found when the bytes
// around it cannot continue it: a token glued to letters or digits after
// its checksum is not found, but a prefix glued to letters before it is
// (the checksum tells which prefix is the token's). Matches never overlap.
//
// It is fast: it looks only at the underscores of text, with
// bytes.IndexByte, and at the 13 bytes after each, so that it runs at
// memory speed on most text. It allocates only for the tokens it finds.
// text is not retained, but the Token of a match holds a copy of its
// plaintext: do not log it (its String method is safe to log).
func FindTokens(text []byte) iter.Seq[TokenMatch] {
	return func(yield func(TokenMatch) bool) {
		for i := 0; i < len(text); {
			j := bytes.IndexByte(text[i:], '_')
			if j < 0 {
				return
			}
			p := i + j
			m, ok := tokenAt(text, p)
			if !ok {
				i = p + 1
				continue
			}
			if !yield(m) {
				return
			}
			i = m.End
		}
	}
}

// tokenAt returns the token whose id follows the underscore at text[p],
// if there is one: text[p] is the underscore between prefix and id.
func tokenAt(text []byte, p int) (TokenMatch, bool) {
	// "_" id "_" secret checksum, and at least one byte of prefix before.
	idEnd := p + 1 + IDLength
	if p == 0 || idEnd+1+MinSecretLength+ChecksumLength > len(text) || text[idEnd] != '_' {
		return TokenMatch{}, false
	}
	for k := p + 1; k < idEnd; k++ {
		if charClass[text[k]] != 1 {
			return TokenMatch{}, false
		}
	}
	// The secret and checksum: the run of base62 after the second
	// underscore, which must end where the token ends.
	start := idEnd + 1
	end := start
	limit := min(len(text), start+MaxSecretLength+ChecksumLength+1)
	for end < limit && charClass[text[end]] == 1 {
		end++
	}
	if n := end - start; n < MinSecretLength+ChecksumLength || n > MaxSecretLength+ChecksumLength {
		return TokenMatch{}, false // too short, or longer than any secret
	}
	// The prefix: the longest run of a-z 0-9 _ before p, up to
	// MaxPrefixLength; try each start, longest first, against the
	// checksum, and let ParseToken have the last word.
	lo := p
	for lo > 0 && p-lo < MaxPrefixLength+len(testMarker) && isPrefixByte(text[lo-1]) {
		lo--
	}
	sum := bytesString(text[end-ChecksumLength : end])
	for s := lo; s < p; s++ {
		if !checksumMatches(bytesString(text[s:end-ChecksumLength]), sum) {
			continue
		}
		t, err := ParseToken(strings.Clone(bytesString(text[s:end])))
		if err == nil {
			return TokenMatch{Token: t, Start: s, End: end}, true
		}
	}
	return TokenMatch{}, false
}

func isPrefixByte(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' }

// bytesString views b as a string without copying; the string must not
// outlive b nor be kept.
func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

package apikeytest

import (
	"strings"

	"github.com/go-apikey/apikey"
)

// ForgeToken returns the token made of prefix, id and secret with a valid
// checksum: a well-formed token that passes apikey.ParseToken, so that a
// test can present an unknown id or a wrong secret and see it refused only
// at the store or the hash comparison. It panics when the parts cannot make
// a token (see apikey.FormatToken).
func ForgeToken(prefix, id, secret string) string {
	token, err := apikey.FormatToken(prefix, id, secret)
	if err != nil {
		panic("apikeytest: ForgeToken: " + err.Error())
	}
	return token
}

// WrongSecret returns token with another secret of the same length and a
// valid checksum: it names the same key and is refused only at the hash
// comparison. It panics when token does not parse.
func WrongSecret(token string) string {
	t := mustParse("WrongSecret", token)
	secret := SecretOf(token)
	wrong := strings.Repeat("x", len(secret))
	if wrong == secret {
		wrong = strings.Repeat("y", len(secret))
	}
	return ForgeToken(t.Prefix, t.ID, wrong)
}

// BadChecksum returns token with the last character of its checksum
// changed, which apikey.ParseToken refuses as a bad checksum. It panics
// when token does not parse.
func BadChecksum(token string) string {
	mustParse("BadChecksum", token)
	last := "A"
	if strings.HasSuffix(token, last) {
		last = "B"
	}
	return token[:len(token)-1] + last
}

// SecretOf returns the secret part of token, for tests that check that no
// output, log or span repeats it. It panics when token does not parse.
func SecretOf(token string) string {
	t := mustParse("SecretOf", token)
	return token[len(t.Prefix)+1+len(t.ID)+1 : len(token)-apikey.ChecksumLength]
}

func mustParse(fn, token string) apikey.Token {
	t, err := apikey.ParseToken(token)
	if err != nil {
		panic("apikeytest: " + fn + ": " + err.Error())
	}
	return t
}

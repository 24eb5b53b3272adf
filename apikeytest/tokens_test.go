package apikeytest_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

const (
	id     = "AbC123xyz789"
	secret = "0123456789abcdefghijABCDEFGHIJ01"
)

func TestForgeToken(t *testing.T) {
	token := apikeytest.ForgeToken("my_co", id, secret)
	if want := "my_co_" + id + "_" + secret; !strings.HasPrefix(token, want) || len(token) != len(want)+apikey.ChecksumLength {
		t.Errorf("ForgeToken = %q, want %s<checksum>", token, want)
	}
	if tok, err := apikey.ParseToken(token); err != nil || tok.Prefix != "my_co" || tok.ID != id {
		t.Errorf("ParseToken(ForgeToken) = %+v, %v", tok, err)
	}
	if got := apikeytest.SecretOf(token); got != secret {
		t.Errorf("SecretOf = %q, want %q", got, secret)
	}
	defer func() {
		if recover() == nil {
			t.Error("ForgeToken with a short secret did not panic")
		}
	}()
	apikeytest.ForgeToken("ak", id, "short")
}

func TestWrongSecret(t *testing.T) {
	for _, s := range []string{secret, strings.Repeat("x", 22), strings.Repeat("y", 40)} {
		token := apikeytest.ForgeToken("ak", id, s)
		wrong := apikeytest.WrongSecret(token)
		tok, err := apikey.ParseToken(wrong)
		if err != nil || tok.ID != id || tok.Prefix != "ak" {
			t.Errorf("WrongSecret(%q) = %q: %+v, %v", token, wrong, tok, err)
		}
		if got := apikeytest.SecretOf(wrong); got == s || len(got) != len(s) {
			t.Errorf("WrongSecret(%q) has the secret %q, want another of %d characters", token, got, len(s))
		}
	}
}

func TestBadChecksum(t *testing.T) {
	tokens := []string{apikeytest.ForgeToken("ak", id, secret)}
	// And a token whose checksum ends in "A", the character BadChecksum
	// writes by default.
	for n := 0; len(tokens) < 2; n++ {
		if tk := apikeytest.ForgeToken("ak", id, fmt.Sprintf("%s%08d", secret, n)); strings.HasSuffix(tk, "A") {
			tokens = append(tokens, tk)
		}
	}
	for _, tk := range tokens {
		bad := apikeytest.BadChecksum(tk)
		if _, err := apikey.ParseToken(bad); !errors.Is(err, apikey.ErrInvalidKey) || !strings.Contains(err.Error(), "bad checksum") || len(bad) != len(tk) {
			t.Errorf("BadChecksum(%q) = %q: %v, want a bad checksum", tk, bad, err)
		}
	}
}

package apikey_test

import (
	"errors"
	"hash/crc32"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
)

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// withChecksum appends the 6-character base62 CRC-32 checksum, computed
// independently of the package under test.
func withChecksum(body string) string {
	v := crc32.ChecksumIEEE([]byte(body))
	sum := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		sum[i] = alphabet[v%62]
		v /= 62
	}
	return body + string(sum)
}

const (
	testID     = "AbC123xyz789"
	testSecret = "0123456789abcdefghijABCDEFGHIJ01" // 32 characters
)

func TestParseTokenValid(t *testing.T) {
	tests := []struct {
		name, token, prefix, id string
	}{
		{"default prefix", withChecksum("ak_" + testID + "_" + testSecret), "ak", testID},
		{"prefix with underscores", withChecksum("my_co_live_" + testID + "_" + testSecret), "my_co_live", testID},
		{"one-character prefix", withChecksum("x_" + testID + "_" + testSecret), "x", testID},
		{"32-character prefix", withChecksum(strings.Repeat("p", 32) + "_" + testID + "_" + testSecret), strings.Repeat("p", 32), testID},
		{"minimum secret", withChecksum("ak_" + testID + "_" + testSecret[:22]), "ak", testID},
		{"maximum secret", withChecksum("ak_" + testID + "_" + strings.Repeat("Z", 128)), "ak", testID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := apikey.ParseToken(tt.token)
			if err != nil {
				t.Fatalf("ParseToken(%q) error = %v, want nil", tt.token, err)
			}
			if tok.Prefix != tt.prefix || tok.ID != tt.id {
				t.Errorf("ParseToken = prefix %q id %q, want %q %q", tok.Prefix, tok.ID, tt.prefix, tt.id)
			}
		})
	}
}

func TestParseTokenRejects(t *testing.T) {
	good := withChecksum("ak_" + testID + "_" + testSecret)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name, token, reason string
	}{
		{"empty", "", "too short"},
		{"random words", "hello world", "too short"},
		{"too long", withChecksum("ak_" + testID + "_" + strings.Repeat("a", 240)), "longer than 256"},
		{"huge", strings.Repeat("a", 1<<20), "longer than 256"},
		{"secret too long", withChecksum("ak_" + testID + "_" + strings.Repeat("a", 129)), "wrong shape"},
		{"secret too short", withChecksum("ak_" + testID + "_" + testSecret[:21]), "wrong shape"},
		{"typo in secret", flip(good, 20), "bad checksum"},
		{"typo in id", flip(good, 5), "bad checksum"},
		{"typo in checksum", flip(good, len(good)-1), "bad checksum"},
		{"typo in prefix", "al" + good[2:], "bad checksum"},
		{"dot separator (DRF shape)", "abcdefgh." + testSecret + "abcdef", "outside the key alphabet"},
		{"space", good[:10] + " " + good[11:], "outside the key alphabet"},
		{"NUL byte", good[:10] + "\x00" + good[11:], "outside the key alphabet"},
		{"newline", good + "\n", "outside the key alphabet"},
		{"DEL", good[:5] + "\x7f" + good[6:], "outside the key alphabet"},
		{"non-ASCII", good[:5] + "é" + good[7:], "outside the key alphabet"},
		{"upper-case prefix", withChecksum("AK_" + testID + "_" + testSecret), "wrong shape"},
		{"missing prefix", withChecksum("_" + testID + "_" + testSecret + "ab"), "wrong shape"},
		{"id too short", withChecksum("ak_" + testID[:11] + "_" + testSecret), "wrong shape"},
		{"id too long", withChecksum("ak_" + testID + "X_" + testSecret), "wrong shape"},
		{"no underscores", withChecksum("ak" + testID + testSecret), "wrong shape"},
		{"prefix too long", withChecksum(strings.Repeat("p", 33) + "_" + testID + "_" + testSecret), "wrong shape"},
		{"checksum cut off", good[:len(good)-6], "bad checksum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apikey.ParseToken(tt.token)
			if !errors.Is(err, apikey.ErrInvalidKey) {
				t.Fatalf("ParseToken error = %v, want ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("ParseToken error = %q, want it to mention %q", err, tt.reason)
			}
		})
	}
}

func TestTokenStringHidesSecret(t *testing.T) {
	good := withChecksum("ak_" + testID + "_" + testSecret)
	tok, err := apikey.ParseToken(good)
	if err != nil {
		t.Fatal(err)
	}
	if s := tok.String(); strings.Contains(s, testSecret[:8]) || !strings.Contains(s, testID) {
		t.Errorf("Token.String() = %q, want the id and no part of the secret", s)
	}
}

func TestFormatToken(t *testing.T) {
	for _, tc := range []struct{ prefix, secret string }{
		{"ak", testSecret},
		{"my_co_live", testSecret[:22]},
		{"x", strings.Repeat("Z", 128)},
	} {
		got, err := apikey.FormatToken(tc.prefix, testID, tc.secret)
		if want := withChecksum(tc.prefix + "_" + testID + "_" + tc.secret); err != nil || got != want {
			t.Errorf("FormatToken(%q, %q, %q) = %q, %v; want %q", tc.prefix, testID, tc.secret, got, err, want)
		}
	}
	for _, tc := range []struct{ prefix, id, secret string }{
		{"AK", testID, testSecret},
		{"", testID, testSecret},
		{"ak", "short", testSecret},
		{"ak", "AbC123xyz78_", testSecret},
		{"ak", testID, testSecret[:21]},
		{"ak", testID, strings.Repeat("Z", 129)},
		{"ak", testID, testSecret[:31] + "!"},
	} {
		if got, err := apikey.FormatToken(tc.prefix, tc.id, tc.secret); !errors.Is(err, apikey.ErrInvalidKey) || got != "" {
			t.Errorf("FormatToken(%q, %q, %q) = %q, %v; want an error matching ErrInvalidKey", tc.prefix, tc.id, tc.secret, got, err)
		}
	}
}

func TestRedact(t *testing.T) {
	good := withChecksum("ak_" + testID + "_" + testSecret)
	for _, tc := range []struct{ in, want string }{
		{"GET /v1/keys/" + good, "GET /v1/keys/ak_" + testID + "_…"},
		{"unknown command \"" + good + "\"", "unknown command \"ak_" + testID + "_…\""},
		{"bad checksum: live_" + testID + "_" + testSecret + "xxxxxx", "bad checksum: live_" + testID + "_…"},
		{"cut short: " + testID + "_" + testSecret[:16], "cut short: " + testID + "_…"},
		{"two: " + good + " " + good, "two: ak_" + testID + "_… ak_" + testID + "_…"},
		{"an id alone: " + testID, "an id alone: " + testID},
		{"too short to be a secret: " + testID + "_" + testSecret[:15], "too short to be a secret: " + testID + "_" + testSecret[:15]},
		{"GET /v1/keys/AbCd1234.Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq?x=1", "GET /v1/keys/AbCd1234.…?x=1"},
		{"DRF key AbCd1234.Vrbpu3AMmt3RRgBWfd3pGwqdgpKQa7zq.", "DRF key AbCd1234.…."},
		{"a host: api.example.com, a file: settings.py", "a host: api.example.com, a file: settings.py"},
	} {
		if got := apikey.Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseCursor(t *testing.T) {
	for _, bad := range []string{"", "!!", "bm9wZQ", "MTIz", "YWJjLkFiQzEyM3h5ejc4OQ"} {
		if _, err := apikey.ParseCursor(bad); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("ParseCursor(%q) error = %v, want ErrInvalidInput", bad, err)
		}
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add(withChecksum("ak_" + testID + "_" + testSecret))
	f.Add(withChecksum("a_b_c_" + testID + "_" + testSecret))
	f.Add("ak__" + testSecret)
	f.Add("abcdefgh." + testSecret)
	f.Add(withChecksum("ak_test_" + testID + "_" + testSecret))
	f.Add(withChecksum(strings.Repeat("a", 32) + "_test_" + testID + "_" + testSecret))
	f.Add(withChecksum("_test_" + testID + "_" + testSecret))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := apikey.ParseToken(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidKey) {
				t.Fatalf("ParseToken(%q) error %v does not match ErrInvalidKey", s, err)
			}
			return
		}
		// Whatever parses must be well-formed and re-assemble to itself.
		if len(s) > apikey.MaxTokenLength || !apikey.ValidID(tok.ID) {
			t.Fatalf("ParseToken(%q) accepted a malformed token: %+v", s, tok)
		}
		if !strings.HasPrefix(s, tok.Prefix+"_"+tok.ID+"_") {
			t.Fatalf("ParseToken(%q) = %+v: parts do not match the input", s, tok)
		}
		if withChecksum(s[:len(s)-6]) != s {
			t.Fatalf("ParseToken(%q) accepted a bad checksum", s)
		}
		// The environment is the marker, and the issuer prefix what
		// precedes it, a valid prefix.
		env := tok.Environment()
		if (env == apikey.EnvTest) != (strings.HasSuffix(tok.Prefix, "_test") && len(tok.Prefix) > len("_test")) {
			t.Fatalf("ParseToken(%q).Environment() = %q", s, env)
		}
		issuer := tok.Prefix
		if env == apikey.EnvTest {
			issuer = strings.TrimSuffix(issuer, "_test")
		}
		if issuer == "" || len(issuer) > apikey.MaxPrefixLength {
			t.Fatalf("ParseToken(%q) accepted issuer prefix %q", s, issuer)
		}
	})
}

func TestParseTokenEnvironment(t *testing.T) {
	long := strings.Repeat("a", apikey.MaxPrefixLength)
	for _, c := range []struct {
		body   string
		prefix string
		env    apikey.Environment
		ok     bool
	}{
		{"ak_" + testID + "_" + testSecret, "ak", apikey.EnvLive, true},
		{"ak_test_" + testID + "_" + testSecret, "ak_test", apikey.EnvTest, true},
		{"my_co_test_" + testID + "_" + testSecret, "my_co_test", apikey.EnvTest, true},
		// An issuer prefix of the longest length still takes the marker.
		{long + "_test_" + testID + "_" + testSecret, long + "_test", apikey.EnvTest, true},
		// but nothing else past it.
		{long + "_live_" + testID + "_" + testSecret, "", "", false},
		// "test" alone is an issuer prefix, not a marker.
		{"test_" + testID + "_" + testSecret, "test", apikey.EnvLive, true},
	} {
		tok, err := apikey.ParseToken(withChecksum(c.body))
		if !c.ok {
			if err == nil {
				t.Errorf("ParseToken(%s) = %+v, want an error", c.body, tok)
			}
			continue
		}
		if err != nil || tok.Prefix != c.prefix || tok.Environment() != c.env || tok.ID != testID {
			t.Errorf("ParseToken(%s) = %+v (environment %q), %v; want prefix %q, %q", c.body, tok, tok.Environment(), err, c.prefix, c.env)
		}
	}
}

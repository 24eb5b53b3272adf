package apikey_test

import (
	"bytes"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
	"github.com/go-apikey/apikey/internal/mixedtext"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func randBase62(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[r.IntN(62)]
	}
	return string(b)
}

// found returns the plaintexts FindTokens finds in text, checking that
// each is text[Start:End] and parses.
func found(t *testing.T, text string) []string {
	t.Helper()
	var out []string
	for m := range apikey.FindTokens([]byte(text)) {
		plain := text[m.Start:m.End]
		if p, err := apikey.ParseToken(plain); err != nil || p != m.Token {
			t.Errorf("match %d..%d %q does not parse to its Token: %v", m.Start, m.End, m.Token, err)
		}
		if m.Token.String() != m.Token.Prefix+"_"+m.Token.ID+"_…" {
			t.Errorf("Token.String() = %q", m.Token.String())
		}
		out = append(out, plain)
	}
	return out
}

func TestFindTokens(t *testing.T) {
	a := apikeytest.ForgeToken("ak", "3fZ9q0LmA1bc", strings.Repeat("s", 32))
	b := apikeytest.ForgeToken("my_app_test", "AAAAAAAAAAAA", strings.Repeat("Z", apikey.MinSecretLength))
	c := apikeytest.ForgeToken("x", "zzzzzzzzzzzz", strings.Repeat("9", apikey.MaxSecretLength))
	// A prefix whose own parts look like an id: "_abcdefghijkl_".
	d := apikeytest.ForgeToken("my_abcdefghijkl", "012345678901", strings.Repeat("q", 40))
	p := apikeytest.ForgeToken(strings.Repeat("p", apikey.MaxPrefixLength), "BBBBBBBBBBBB", strings.Repeat("r", 30))
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"alone", a, []string{a}},
		{"in a line", "API_KEY=" + a + "\n", []string{a}},
		{"quoted", `{"key": "` + b + `"}`, []string{b}},
		{"longest secret", "x " + c + ".", []string{c}},
		{"prefix with an id's shape", d + " ", []string{d}},
		{"longest prefix", p, []string{p}},
		{"glued prefix", "export API_KEY_" + a, []string{a}},
		{"lowercase glued prefix", "zzz" + a, []string{a}},
		{"several", a + " " + b + "," + c + "\n" + a, []string{a, b, c, a}},
		{"adjacent by one byte", a + "|" + a, []string{a, a}},
		{"none", "nothing to see here_123456789012_here", nil},
		{"glued suffix", a + "X", nil},
		{"glued suffix digit", a + "0", nil},
		{"cut short", a[:len(a)-1], nil},
		{"bad checksum", apikeytest.BadChecksum(a), nil},
		{"upper-case prefix", "AK" + a[2:], nil},
		{"empty", "", nil},
		{"underscores only", strings.Repeat("_", 500), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := found(t, tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("FindTokens(%q) = %q, want %q", tc.text, got, tc.want)
			}
		})
	}

	// Every single-byte change of a token hides it.
	for i := range a {
		for _, c := range []byte{'0', 'a', 'Z', '_', '-'} {
			if c == a[i] {
				continue
			}
			bad := []byte(a)
			bad[i] = c
			for m := range apikey.FindTokens(bad) {
				// A change in the prefix can leave a shorter token, which is
				// the same key only if the checksum says so: it cannot.
				t.Errorf("FindTokens found %q in %q (byte %d changed to %q)", m.Token, bad, i, c)
			}
		}
	}
}

// TestFindTokensStops checks that the iterator stops when asked.
func TestFindTokensStops(t *testing.T) {
	a := apikeytest.ForgeToken("ak", "3fZ9q0LmA1bc", strings.Repeat("s", 32))
	n := 0
	for range apikey.FindTokens([]byte(strings.Repeat(a+" ", 10))) {
		n++
		if n == 3 {
			break
		}
	}
	if n != 3 {
		t.Errorf("visited %d matches, want 3", n)
	}
}

// TestFindTokensNoFalsePositives feeds FindTokens a million random base62
// strings and a million near misses, strings of exactly a token's shape
// whose checksum is random, and wants no match: only the checksum stands
// between a near miss and a match.
func TestFindTokensNoFalsePositives(t *testing.T) {
	if testing.Short() {
		t.Skip("two million candidates")
	}
	r := rand.New(rand.NewPCG(1, 2))
	// appendBase62 appends n random base62 characters, ten per draw.
	appendBase62 := func(b []byte, n int) []byte {
		for n > 0 {
			v := r.Uint64()
			for k := 0; k < 10 && n > 0; k++ {
				b = append(b, base62[v%62])
				v /= 62
				n--
			}
		}
		return b
	}
	prefixes := []string{"ak", "sk_live", "x", "my_app", "a_b_c"}
	buf := make([]byte, 0, 1<<20+1024)
	check := func() {
		for m := range apikey.FindTokens(buf) {
			t.Errorf("false positive: %q", buf[m.Start:m.End])
		}
		buf = buf[:0]
	}
	const n = 1_000_000
	for i := range n {
		// Random base62, of every length around a token's.
		buf = appendBase62(buf, 1+r.IntN(200))
		buf = append(buf, ' ')
		// A near miss: prefix _ id _ secret+checksum, all random.
		buf = append(buf, prefixes[i%len(prefixes)]...)
		buf = append(buf, '_')
		buf = appendBase62(buf, apikey.IDLength)
		buf = append(buf, '_')
		buf = appendBase62(buf, apikey.MinSecretLength+r.IntN(apikey.MaxSecretLength-apikey.MinSecretLength+1)+apikey.ChecksumLength)
		buf = append(buf, '\n')
		if len(buf) > 1<<20 {
			check()
		}
	}
	check()
}

// TestFindTokensMixedText checks that FindTokens finds exactly the real
// tokens of the mixed text, in order, and none of its near misses.
func TestFindTokensMixedText(t *testing.T) {
	var buf bytes.Buffer
	st, err := mixedtext.Write(&buf, 8<<20, mixedtext.Options{Seed: 7, TokenEvery: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Tokens) < 50 || st.NearMisses < 5000 {
		t.Fatalf("the text holds %d tokens and %d near misses; want more", len(st.Tokens), st.NearMisses)
	}
	got := found(t, buf.String())
	if !slices.Equal(got, st.Tokens) {
		t.Errorf("found %d tokens, want the %d written", len(got), len(st.Tokens))
	}
}

// TestTokenPattern checks that TokenPattern matches every token, whole, in
// the places tokens are usually written.
func TestTokenPattern(t *testing.T) {
	re := regexp.MustCompile(apikey.TokenPattern)
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 2000 {
		prefix := []string{"ak", "x", "acme_live", strings.Repeat("p", apikey.MaxPrefixLength)}[i%4]
		secret := randBase62(r, apikey.MinSecretLength+r.IntN(apikey.MaxSecretLength-apikey.MinSecretLength+1))
		token := apikeytest.ForgeToken(prefix, randBase62(r, apikey.IDLength), secret)
		for _, text := range []string{token, "API_KEY=" + token + "\n", `"` + token + `"`, "key: " + token + "."} {
			if got := re.FindString(text); got != token {
				t.Fatalf("TokenPattern finds %q in %q, want %q", got, text, token)
			}
		}
	}
}

func FuzzFindTokens(f *testing.F) {
	a := apikeytest.ForgeToken("ak", "3fZ9q0LmA1bc", strings.Repeat("s", 32))
	f.Add([]byte(a))
	f.Add([]byte("x_" + a + "_y"))
	f.Add([]byte("__" + strings.Repeat("a", 12) + "_" + strings.Repeat("b", 40)))
	f.Fuzz(func(t *testing.T, text []byte) {
		end := -1
		for m := range apikey.FindTokens(text) {
			if m.Start < end || m.Start >= m.End || m.End > len(text) {
				t.Fatalf("match %d..%d after %d in %d bytes", m.Start, m.End, end, len(text))
			}
			if _, err := apikey.ParseToken(string(text[m.Start:m.End])); err != nil {
				t.Fatalf("match %q does not parse: %v", text[m.Start:m.End], err)
			}
			end = m.End
		}
	})
}

// BenchmarkFindTokens measures FindTokens over 32 MB of mixed text.
func BenchmarkFindTokens(b *testing.B) {
	var buf bytes.Buffer
	st, err := mixedtext.Write(&buf, 32<<20, mixedtext.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	text := buf.Bytes()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		n := 0
		for range apikey.FindTokens(text) {
			n++
		}
		if n != len(st.Tokens) {
			b.Fatalf("found %d tokens, want %d", n, len(st.Tokens))
		}
	}
}

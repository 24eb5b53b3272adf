// Package mixedtext writes deterministic "mixed text" for measuring and
// testing token scanners (apikey.FindTokens, apikey scan): prose, source
// code full of snake_case identifiers, JSON, base64 and base64url blobs
// (whose alphabet holds the underscore), hex digests, random base62
// strings, near misses shaped exactly like tokens but with a wrong
// checksum, and now and then a real token. It is used by the scanner's
// tests and benchmarks and by scripts/mixedtext, which writes the 1 GB
// file of scripts/scanbench.sh.
package mixedtext

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"

	"github.com/go-apikey/apikey"
)

// Options shape the text. The zero value of a field takes its default.
type Options struct {
	// Seed makes the text: the same seed, the same text. Zero is a seed
	// like any other.
	Seed uint64
	// TokenEvery is the mean number of lines between two real tokens.
	// Zero means 20000 (about one per megabyte).
	TokenEvery int
}

// Stats counts what Write wrote.
type Stats struct {
	Bytes int64
	Lines int64
	// Tokens are the real tokens written, in order (each on its own line
	// among other text).
	Tokens []string
	// NearMisses counts the strings written with the shape of a token and
	// a wrong checksum.
	NearMisses int64
}

var words = []string{
	"the", "key", "of", "a", "service", "request", "returns", "an", "error", "when", "user", "is", "not",
	"found", "and", "every", "value", "must", "be", "checked", "before", "it", "reaches", "store", "with",
	"token", "secret", "config", "deploy", "database", "cache", "timeout", "retry", "client", "server",
}

var idents = []string{
	"user_id", "api_key", "max_retries", "created_at", "expires_at", "owner_id", "http_client", "new_request",
	"parse_config", "do_something", "is_valid", "read_all", "default_timeout", "access_token", "row_count",
	"__init__", "_private", "self._cache", "os.environ['API_KEY']", "MAX_KEYS_PER_OWNER", "snake_case_name",
}

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

type gen struct {
	r   *rand.Rand
	buf []byte
}

// base62 appends n random base62 characters to g.buf and returns it.
func (g *gen) base62(n int) []byte {
	for range n {
		g.buf = append(g.buf, base62[g.r.IntN(62)])
	}
	return g.buf
}

// base62String returns n random base62 characters.
func (g *gen) base62String(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = base62[g.r.IntN(62)]
	}
	return string(b)
}

func (g *gen) pick(list []string) string { return list[g.r.IntN(len(list))] }

// Write writes at least size bytes of mixed text to w, whole lines only,
// and returns what it wrote.
func Write(w io.Writer, size int64, o Options) (Stats, error) {
	every := o.TokenEvery
	if every <= 0 {
		every = 20000
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	g := &gen{r: rand.New(rand.NewPCG(o.Seed, 0x6d69786564746578))}
	var st Stats
	raw := make([]byte, 64)
	for st.Bytes < size {
		g.buf = g.buf[:0]
		switch k := g.r.IntN(100); {
		case g.r.IntN(every) == 0:
			token := g.token()
			st.Tokens = append(st.Tokens, token)
			g.buf = append(g.buf, "API_KEY="...)
			g.buf = append(g.buf, token...)
		case k < 30: // prose
			for len(g.buf) < 60+g.r.IntN(40) {
				g.buf = append(g.buf, g.pick(words)...)
				g.buf = append(g.buf, ' ')
			}
		case k < 55: // code
			g.buf = append(g.buf, "\tif "...)
			g.buf = append(g.buf, g.pick(idents)...)
			g.buf = append(g.buf, " := "...)
			g.buf = append(g.buf, g.pick(idents)...)
			g.buf = append(g.buf, '(')
			g.buf = append(g.buf, g.pick(idents)...)
			g.buf = append(g.buf, ", "...)
			g.buf = append(g.buf, g.pick(idents)...)
			g.buf = append(g.buf, "); err != nil { return nil, "...)
			g.buf = append(g.buf, g.pick(idents)...)
			g.buf = append(g.buf, " }"...)
		case k < 65: // JSON
			g.buf = fmt.Appendf(g.buf, `{"id": "%s", "name": "%s", "owner_id": %d, "scopes": ["read", "write_all"]},`,
				g.base62String(12), g.pick(words), g.r.IntN(1e6))
		case k < 75: // base64 and base64url
			for i := range raw {
				raw[i] = byte(g.r.Uint32())
			}
			enc := base64.StdEncoding
			if k < 70 {
				enc = base64.RawURLEncoding
			}
			g.buf = enc.AppendEncode(g.buf, raw)
		case k < 82: // hex digest
			for i := range raw[:32] {
				raw[i] = byte(g.r.Uint32())
			}
			g.buf = append(g.buf, "sha256:"...)
			g.buf = hex.AppendEncode(g.buf, raw[:32])
		case k < 92: // random base62, some with underscores
			g.buf = g.base62(20 + g.r.IntN(60))
			if k < 87 {
				g.buf = append(g.buf, '_')
				g.buf = g.base62(12)
				g.buf = append(g.buf, '_')
				g.buf = g.base62(10)
			}
		default: // near miss: a token's shape, a random checksum
			st.NearMisses++
			g.buf = append(g.buf, "secret: "...)
			g.buf = append(g.buf, [...]string{"ak", "sk_live", "my_app", "x"}[g.r.IntN(4)]...)
			g.buf = append(g.buf, '_')
			g.buf = g.base62(12)
			g.buf = append(g.buf, '_')
			g.buf = g.base62(apikey.MinSecretLength + g.r.IntN(apikey.MaxSecretLength-apikey.MinSecretLength+1) + apikey.ChecksumLength)
		}
		g.buf = append(g.buf, '\n')
		n, err := bw.Write(g.buf)
		st.Bytes += int64(n)
		st.Lines++
		if err != nil {
			return st, err
		}
	}
	return st, bw.Flush()
}

// token returns a real token of a random prefix and secret length.
func (g *gen) token() string {
	prefix := [...]string{"ak", "acme_live", "k9", "my_app_test"}[g.r.IntN(4)]
	id := g.base62String(apikey.IDLength)
	secret := g.base62String(apikey.MinSecretLength + g.r.IntN(apikey.MaxSecretLength-apikey.MinSecretLength+1))
	token, err := apikey.FormatToken(prefix, id, secret)
	if err != nil {
		panic(err) // the parts are valid by construction
	}
	return token
}

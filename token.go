package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Token format: <prefix>_<id>_<secret><checksum>.
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
	// Prefix is the issuer prefix.
	Prefix string
	// ID is the public key id.
	ID  string
	raw string
}

// String returns the token with its secret elided, e.g. "ak_3fZ9q0LmA1bc_…".
func (t Token) String() string { return t.Prefix + "_" + t.ID + "_…" }

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
	for i := 0; i < n; i++ {
		if charClass[s[i]] == 0 {
			return Token{}, fmt.Errorf("%w: character outside the key alphabet at byte %d", ErrInvalidKey, i)
		}
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
	if err := checkPrefix(prefix); err != nil || strings.IndexByte(id, '_') >= 0 || strings.IndexByte(s[n-ChecksumLength:], '_') >= 0 {
		return Token{}, fmt.Errorf("%w: wrong shape", ErrInvalidKey)
	}
	if !checksumMatches(body, s[n-ChecksumLength:]) {
		return Token{}, fmt.Errorf("%w: bad checksum", ErrInvalidKey)
	}
	return Token{Prefix: prefix, ID: id, raw: s}, nil
}

// ValidID reports whether id has the shape of a key id.
func ValidID(id string) bool { return len(id) == IDLength && isBase62String(id) }

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

// formatToken assembles a token from its parts and appends the checksum.
func formatToken(prefix, id, secret string) string {
	body := prefix + "_" + id + "_" + secret
	sum := checksum(body)
	return body + string(sum[:])
}

// Pepper is a server-side secret mixed into key hashes with HMAC-SHA256, so
// that a stolen database alone cannot be used to test candidate keys.
// Versions let a new pepper be introduced while keys hashed with an older
// one keep working (and are rehashed with the current one when they are next
// verified).
type Pepper struct {
	// Version identifies the pepper inside stored hashes; it must be at
	// least 1 and unique among a Manager's peppers.
	Version int
	// Secret is the pepper itself; at least 16 bytes.
	Secret []byte
}

// Hash formats, tagged by algorithm:
//
//	sha256$<64 hex>                 SHA-256 of the whole token (no pepper configured)
//	hmac-sha256$<version>$<64 hex>  HMAC-SHA256 of the whole token with pepper <version>
const (
	tagSHA256     = "sha256$"
	tagHMACSHA256 = "hmac-sha256$"
)

// hasher turns tokens into stored digests and checks them. It is safe for
// concurrent use.
type hasher struct {
	current *pepperState // nil: plain SHA-256
	peppers map[int]*pepperState
	plain   sync.Pool
}

type pepperState struct {
	version int
	prefix  string // "hmac-sha256$<version>$"
	pool    sync.Pool
}

type digestState struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

func newHasher(peppers []Pepper) (*hasher, error) {
	h := &hasher{peppers: make(map[int]*pepperState)}
	h.plain.New = func() any { return &digestState{h: sha256.New()} }
	for i, p := range peppers {
		if p.Version < 1 {
			return nil, fmt.Errorf("apikey: pepper version must be at least 1, got %d", p.Version)
		}
		if len(p.Secret) < 16 {
			return nil, fmt.Errorf("apikey: pepper version %d is %d bytes; at least 16 are required", p.Version, len(p.Secret))
		}
		if _, dup := h.peppers[p.Version]; dup {
			return nil, fmt.Errorf("apikey: pepper version %d is configured twice", p.Version)
		}
		secret := append([]byte(nil), p.Secret...)
		ps := &pepperState{version: p.Version, prefix: tagHMACSHA256 + strconv.Itoa(p.Version) + "$"}
		ps.pool.New = func() any { return &digestState{h: hmac.New(sha256.New, secret)} }
		h.peppers[p.Version] = ps
		if i == 0 {
			h.current = ps
		}
	}
	return h, nil
}

func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// sum computes the digest of raw into d.sum; pool is where d came from.
func sumInto(pool *sync.Pool, raw string, f func(d *digestState)) {
	d := pool.Get().(*digestState)
	d.h.Reset()
	d.h.Write(stringBytes(raw)) // hash writes never retain or modify their input
	d.h.Sum(d.sum[:0])
	f(d)
	pool.Put(d)
}

// hash returns the stored form of raw's digest under the current scheme.
func (h *hasher) hash(raw string) string {
	pool, tag := &h.plain, tagSHA256
	if h.current != nil {
		pool, tag = &h.current.pool, h.current.prefix
	}
	var out string
	sumInto(pool, raw, func(d *digestState) { out = tag + hex.EncodeToString(d.sum[:]) })
	return out
}

// match reports whether stored is the digest of raw, comparing in constant
// time, and whether stored uses the current scheme (if not, the caller may
// rehash). An unknown or malformed stored hash never matches.
func (h *hasher) match(stored, raw string) (ok, current bool) {
	var pool *sync.Pool
	var hexDigest string
	switch {
	case strings.HasPrefix(stored, tagSHA256):
		pool, hexDigest = &h.plain, stored[len(tagSHA256):]
		current = h.current == nil
	case strings.HasPrefix(stored, tagHMACSHA256):
		rest := stored[len(tagHMACSHA256):]
		i := strings.IndexByte(rest, '$')
		if i < 0 {
			return false, false
		}
		v, err := strconv.Atoi(rest[:i])
		ps := h.peppers[v]
		if err != nil || ps == nil {
			return false, false
		}
		pool, hexDigest = &ps.pool, rest[i+1:]
		current = ps == h.current
	default:
		h.burn(raw)
		return false, false
	}
	var want [sha256.Size]byte
	if len(hexDigest) != 2*sha256.Size {
		return false, false
	}
	if _, err := hex.Decode(want[:], stringBytes(hexDigest)); err != nil {
		return false, false
	}
	sumInto(pool, raw, func(d *digestState) {
		ok = subtle.ConstantTimeCompare(d.sum[:], want[:]) == 1
	})
	return ok, ok && current
}

// burn spends the time of one digest so that a miss costs what a hit does.
func (h *hasher) burn(raw string) {
	pool := &h.plain
	if h.current != nil {
		pool = &h.current.pool
	}
	sumInto(pool, raw, func(*digestState) {})
}

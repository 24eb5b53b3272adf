package apikey

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

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
//	sha512$$<128 hex>               SHA-512 of the whole key: DRF API Key's form,
//	                                kept as it is for imported keys
//	<algorithm>$...                 a legacy digest of an imported key (see
//	                                LegacyHasher), replaced by the current form
//	                                on the key's first successful verification
const (
	tagSHA256     = "sha256$"
	tagHMACSHA256 = "hmac-sha256$"
	tagSHA512     = "sha512$$"
)

// hasher turns tokens into stored digests and checks them. It is safe for
// concurrent use.
type hasher struct {
	current *pepperState // nil: plain SHA-256
	peppers map[int]*pepperState
	plain   sync.Pool
	legacy  *legacyHashers
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

// minPepperLength is the shortest pepper secret, in bytes.
const minPepperLength = 16

// CheckPeppers reports the first reason NewManager would refuse peppers: a
// version below 1, a version given twice, or a secret shorter than 16
// bytes. Its errors never contain a secret; they read
// "apikey: pepper: " followed by the reason.
func CheckPeppers(peppers []Pepper) error {
	seen := make(map[int]bool, len(peppers))
	for _, p := range peppers {
		if p.Version < 1 {
			return fmt.Errorf("apikey: pepper: version %d is below 1", p.Version)
		}
		if seen[p.Version] {
			return fmt.Errorf("apikey: pepper: version %d is given twice", p.Version)
		}
		seen[p.Version] = true
		if len(p.Secret) < minPepperLength {
			return fmt.Errorf("apikey: pepper: the secret of version %d is %d bytes; at least %d are required", p.Version, len(p.Secret), minPepperLength)
		}
	}
	return nil
}

func newHasher(peppers []Pepper, legacy []LegacyHasher) (*hasher, error) {
	if err := CheckPeppers(peppers); err != nil {
		return nil, err
	}
	lh, err := newLegacyHashers(legacy)
	if err != nil {
		return nil, err
	}
	h := &hasher{peppers: make(map[int]*pepperState), legacy: lh}
	h.plain.New = func() any { return &digestState{h: sha256.New()} }
	for i, p := range peppers {
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
// rehash). An unknown or malformed stored hash never matches. A sha512$$
// digest counts as current: it is kept as it is. A legacy digest never
// does: it is replaced once it matched.
func (h *hasher) match(stored, raw string) (ok, current bool) {
	var pool *sync.Pool
	var hexDigest string
	switch {
	case strings.HasPrefix(stored, tagSHA512):
		var want [sha512.Size]byte
		if !decodeHex(want[:], stored[len(tagSHA512):]) {
			h.burn(raw)
			return false, false
		}
		sum := sha512.Sum512(stringBytes(raw))
		ok = subtle.ConstantTimeCompare(sum[:], want[:]) == 1
		return ok, ok
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
		if lh := h.legacy.lookup(stored); lh != nil {
			return h.legacy.verify(lh, raw, stored), false
		}
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

// decodeHex decodes the lowercase or uppercase hex digest s into dst and
// reports whether s was exactly that long and well formed.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	_, err := hex.Decode(dst, stringBytes(s))
	return err == nil
}

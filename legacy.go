package apikey

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"runtime"
	"strconv"
	"strings"
)

// LegacyHasher checks digests in a format of another system, which keys
// imported from it may still carry: DRF API Key stored keys with Django's
// password hashers before its 2.0 release ("pbkdf2_sha256$...",
// "argon2$...", "bcrypt_sha256$..."). A key whose stored digest is in a
// legacy format verifies through its LegacyHasher, and on its first
// successful verification the Manager replaces the digest with the current
// form, as DRF API Key does (a failed check changes nothing). Package
// djangohash (a module of its own, on golang.org/x/crypto) has the
// Django hashers that need more than the standard library.
//
// Implementations must be safe for concurrent use.
type LegacyHasher interface {
	// Algorithm returns the name that starts the digests this hasher
	// checks, before their first "$": "argon2" for
	// "argon2$argon2id$v=19$...".
	Algorithm() string

	// Verify reports whether encoded, a digest that starts with
	// Algorithm() and a "$", is the digest of key. A malformed digest
	// never matches. It should compare in constant time.
	Verify(key, encoded string) bool
}

// Built-in legacy hashers: Django's PBKDF2 hashers, on the standard
// library's crypto/pbkdf2. They are always available.
var builtinLegacy = []LegacyHasher{
	djangoPBKDF2{algorithm: "pbkdf2_sha256", hash: sha256.New},
	djangoPBKDF2{algorithm: "pbkdf2_sha1", hash: sha1.New},
}

// legacyHashers are the legacy formats a Manager checks, with a bound on
// how many legacy checks run at once.
type legacyHashers struct {
	byAlgorithm map[string]LegacyHasher
	// slots bounds concurrent legacy checks. Each costs what its hasher
	// was tuned to cost for a password (100 ms to 1 s): an attacker who
	// knows an imported key's prefix, which is public, could otherwise keep
	// every core busy with wrong secrets, while native keys and imported
	// sha512 keys would wait behind them.
	slots chan struct{}
}

func newLegacyHashers(extra []LegacyHasher) (*legacyHashers, error) {
	l := &legacyHashers{
		byAlgorithm: make(map[string]LegacyHasher, len(builtinLegacy)+len(extra)),
		slots:       make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2)),
	}
	for _, h := range builtinLegacy {
		l.byAlgorithm[h.Algorithm()] = h
	}
	for _, h := range extra {
		if h == nil {
			return nil, fmt.Errorf("apikey: legacy hasher: nil hasher")
		}
		alg := h.Algorithm()
		switch {
		case alg == "" || strings.Contains(alg, "$"):
			return nil, fmt.Errorf("apikey: legacy hasher: algorithm %q must be non-empty and hold no $", alg)
		case alg == "sha256" || alg == "hmac-sha256" || alg == "sha512":
			return nil, fmt.Errorf("apikey: legacy hasher: algorithm %q is built in", alg)
		case l.byAlgorithm[alg] != nil:
			return nil, fmt.Errorf("apikey: legacy hasher: algorithm %q is given twice or built in", alg)
		}
		l.byAlgorithm[alg] = h
	}
	return l, nil
}

// lookup returns the hasher of the algorithm that starts stored, or nil.
func (l *legacyHashers) lookup(stored string) LegacyHasher {
	alg, _, ok := strings.Cut(stored, "$")
	if !ok {
		return nil
	}
	return l.byAlgorithm[alg]
}

// verify runs one legacy check, waiting for a free slot.
func (l *legacyHashers) verify(h LegacyHasher, key, stored string) bool {
	l.slots <- struct{}{}
	defer func() { <-l.slots }()
	return h.Verify(key, stored)
}

// djangoPBKDF2 is Django's PBKDF2PasswordHasher (pbkdf2_sha256) or
// PBKDF2SHA1PasswordHasher (pbkdf2_sha1):
// "<algorithm>$<iterations>$<salt>$<base64 of the derived key>", the key as
// long as the hash's output.
type djangoPBKDF2 struct {
	algorithm string
	hash      func() hash.Hash
}

func (d djangoPBKDF2) Algorithm() string { return d.algorithm }

// maxPBKDF2Iterations bounds the work one stored digest may ask for
// (Django 5.2 uses 1,000,000).
const maxPBKDF2Iterations = 100_000_000

func (d djangoPBKDF2) Verify(key, encoded string) bool {
	parts := strings.Split(encoded, "$")
	if len(parts) != 4 || parts[0] != d.algorithm {
		return false
	}
	iter, err := strconv.Atoi(parts[1])
	if err != nil || iter < 1 || iter > maxPBKDF2Iterations {
		return false
	}
	want, err := base64.StdEncoding.DecodeString(parts[3])
	if err != nil || len(want) != d.hash().Size() {
		return false
	}
	got, err := pbkdf2.Key(d.hash, key, []byte(parts[2]), iter, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

// Package djangohash checks the digests of Django's password hashers that
// need more than the standard library, for keys imported from DRF API Key
// (djangorestframework-api-key), which stored keys with Django's hashers
// before its 2.0 release. Give them to the Manager:
//
//	m, err := apikey.NewManager(store, apikey.Config{LegacyHashers: djangohash.Hashers()})
//
// The Manager checks sha512$$ (DRF API Key's own form), pbkdf2_sha256 and
// pbkdf2_sha1 itself; this package adds argon2, bcrypt_sha256, bcrypt and
// scrypt, on golang.org/x/crypto. A key whose digest is in one of these
// formats verifies through it until its first successful verification,
// which replaces the digest with the Manager's current form.
//
// The formats are Django's, as its hashers write them:
//
//	argon2$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>   (argon2i too; base64 without padding)
//	bcrypt_sha256$$2b$<cost>$<53 characters>   bcrypt of the hex SHA-256 of the key
//	bcrypt$$2b$<cost>$<53 characters>          bcrypt of the key
//	scrypt$<N>$<salt>$<r>$<p>$<base64 of 64 bytes>
//
// Argon2 digests of version 0x10 (written without "v=" by argon2-cffi
// before 2016) and of the argon2d variant never match: golang.org/x/crypto
// computes neither. Parameters beyond the bounds below never match either,
// so that a digest cannot ask for unbounded memory or time.
//
// Every hasher is safe for concurrent use and compares in constant time.
package djangohash

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/go-apikey/apikey"
)

// Bounds on the parameters of a stored digest, well above Django's
// defaults (argon2: 100 MiB, 2 passes, 8 lanes; scrypt: N = 2^14, r = 8,
// p = 5 or 1).
const (
	// MaxArgon2Memory is the most memory, in KiB, an argon2 digest may ask
	// for (1 GiB).
	MaxArgon2Memory = 1 << 20
	// MaxArgon2Passes is the most passes an argon2 digest may ask for.
	MaxArgon2Passes = 64
	// MaxScryptMemory is the most memory, in bytes, an scrypt digest may
	// ask for (128·N·r, 1 GiB).
	MaxScryptMemory = 1 << 30
)

// Hashers returns every hasher of the package: Argon2, BCryptSHA256,
// BCrypt and Scrypt.
func Hashers() []apikey.LegacyHasher {
	return []apikey.LegacyHasher{Argon2(), BCryptSHA256(), BCrypt(), Scrypt()}
}

// Argon2 returns the hasher of Django's Argon2PasswordHasher ("argon2").
func Argon2() apikey.LegacyHasher { return argon2Hasher{} }

// BCryptSHA256 returns the hasher of Django's BCryptSHA256PasswordHasher
// ("bcrypt_sha256").
func BCryptSHA256() apikey.LegacyHasher {
	return bcryptHasher{algorithm: "bcrypt_sha256", sha256: true}
}

// BCrypt returns the hasher of Django's BCryptPasswordHasher ("bcrypt").
func BCrypt() apikey.LegacyHasher { return bcryptHasher{algorithm: "bcrypt"} }

// Scrypt returns the hasher of Django's ScryptPasswordHasher ("scrypt").
func Scrypt() apikey.LegacyHasher { return scryptHasher{} }

type argon2Hasher struct{}

func (argon2Hasher) Algorithm() string { return "argon2" }

func (argon2Hasher) Verify(key, encoded string) bool {
	parts := strings.Split(encoded, "$")
	// argon2, variant, v=19, m=..,t=..,p=.., salt, hash
	if len(parts) != 6 || parts[0] != "argon2" || parts[2] != "v=19" {
		return false
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		name, v, ok := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil {
			return false
		}
		switch name {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return false
		}
	}
	if m < 8*p || m > MaxArgon2Memory || t < 1 || t > MaxArgon2Passes || p < 1 || p > 255 {
		return false
	}
	salt, err1 := base64.RawStdEncoding.DecodeString(parts[4])
	want, err2 := base64.RawStdEncoding.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) < 4 || len(want) > 1024 {
		return false
	}
	var got []byte
	switch parts[1] {
	case "argon2id":
		got = argon2.IDKey([]byte(key), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	case "argon2i":
		got = argon2.Key([]byte(key), salt, uint32(t), uint32(m), uint8(p), uint32(len(want)))
	default:
		return false
	}
	return subtle.ConstantTimeCompare(got, want) == 1
}

type bcryptHasher struct {
	algorithm string
	sha256    bool // bcrypt_sha256: the key is first hashed to 64 hex digits
}

func (b bcryptHasher) Algorithm() string { return b.algorithm }

func (b bcryptHasher) Verify(key, encoded string) bool {
	data, ok := strings.CutPrefix(encoded, b.algorithm+"$")
	if !ok || !strings.HasPrefix(data, "$2") {
		return false
	}
	password := []byte(key)
	if b.sha256 {
		sum := sha256.Sum256(password)
		password = []byte(hex.EncodeToString(sum[:]))
	}
	if cost, err := bcrypt.Cost([]byte(data)); err != nil || cost > 16 {
		return false
	}
	return bcrypt.CompareHashAndPassword([]byte(data), password) == nil
}

type scryptHasher struct{}

func (scryptHasher) Algorithm() string { return "scrypt" }

func (scryptHasher) Verify(key, encoded string) bool {
	parts := strings.Split(encoded, "$")
	// scrypt, N, salt, r, p, hash
	if len(parts) != 6 || parts[0] != "scrypt" {
		return false
	}
	n, err1 := strconv.Atoi(parts[1])
	r, err2 := strconv.Atoi(parts[3])
	p, err3 := strconv.Atoi(parts[4])
	if err1 != nil || err2 != nil || err3 != nil || n < 2 || n&(n-1) != 0 || r < 1 || p < 1 ||
		n > MaxScryptMemory/128/r || p > 64 {
		return false
	}
	want, err := base64.StdEncoding.DecodeString(parts[5])
	if err != nil || len(want) < 16 || len(want) > 1024 {
		return false
	}
	got, err := scrypt.Key([]byte(key), []byte(parts[2]), n, r, p, len(want))
	return err == nil && subtle.ConstantTimeCompare(got, want) == 1
}

package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// Existing hashes keep the parameters they were made with: they are read
// back from the encoded hash.
type PasswordParams struct {
	// Memory is in KiB.
	Memory uint32
	// Time is the number of passes.
	Time uint32
	// Threads is the degree of parallelism.
	Threads uint8
}

// DefaultPasswordParams are OWASP's baseline for argon2id: 19 MiB, two
// passes, one thread (about 30 ms on a current core).
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// MinPasswordLength is the shortest password CreateUser accepts, in bytes.
const MinPasswordLength = 12

const (
	saltLen = 16
	hashLen = 32
)

// HashPassword returns the argon2id hash of password in the PHC string
// format: $argon2id$v=19$m=MEMORY,t=TIME,p=THREADS$SALT$HASH (unpadded
// base64). Zero params mean DefaultPasswordParams.
func HashPassword(password string, params PasswordParams) (string, error) {
	if params == (PasswordParams{}) {
		params = DefaultPasswordParams
	}
	if params.Memory == 0 || params.Time == 0 || params.Threads == 0 {
		return "", errors.New("admin: argon2id parameters must all be positive")
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, hashLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version,
		params.Memory, params.Time, params.Threads, b64.EncodeToString(salt), b64.EncodeToString(sum)), nil
}

// CheckPassword reports whether password matches encoded, a hash made by
// HashPassword, comparing in constant time. A malformed hash never
// matches.
func CheckPassword(encoded, password string) bool {
	p, salt, sum, err := decodeHash(encoded)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(sum)))
	return subtle.ConstantTimeCompare(got, sum) == 1
}

// maxMemory bounds the memory cost accepted from a stored hash (1 GiB), so
// that a tampered row cannot make a login allocate without limit.
const maxMemory = 1 << 20

func decodeHash(encoded string) (PasswordParams, []byte, []byte, error) {
	parts := strings.Split(encoded, "$")
	bad := errors.New("admin: malformed argon2id hash")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return PasswordParams{}, nil, nil, bad
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return PasswordParams{}, nil, nil, bad
	}
	var p PasswordParams
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil ||
		p.Memory == 0 || p.Memory > maxMemory || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return PasswordParams{}, nil, nil, bad
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	sum, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) == 0 || len(sum) < 16 {
		return PasswordParams{}, nil, nil, bad
	}
	return p, salt, sum, nil
}

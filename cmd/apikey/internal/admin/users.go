package admin

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// ErrUserExists reports that an admin user with the email already exists.
// It matches apikey.ErrDuplicateID too.
var ErrUserExists = fmt.Errorf("admin: an admin user with this email already exists: %w", apikey.ErrDuplicateID)

// ErrBadUser reports an email or password that CreateUser refuses; the
// error it returns says which and why.
var ErrBadUser = errors.New("admin: invalid admin user")

// CreateUser checks email (a plain address such as alice@example.com,
// stored lower-cased) and password (at least MinPasswordLength bytes),
// hashes the password with params (zero means DefaultPasswordParams) and
// stores the user. It returns an error matching ErrBadUser or
// ErrUserExists, or a store failure.
func CreateUser(ctx context.Context, store Store, email, password string, params PasswordParams, now time.Time) error {
	email = strings.ToLower(strings.TrimSpace(email))
	if err := CheckEmail(email); err != nil {
		return err
	}
	if len(password) < MinPasswordLength {
		return fmt.Errorf("%w: the password must be at least %d characters long", ErrBadUser, MinPasswordLength)
	}
	if len(password) > 1024 {
		return fmt.Errorf("%w: the password must be at most 1024 bytes long", ErrBadUser)
	}
	hash, err := HashPassword(password, params)
	if err != nil {
		return err
	}
	if err := store.CreateUser(ctx, email, hash, now); err != nil {
		if errors.Is(err, apikey.ErrDuplicateID) {
			return fmt.Errorf("%w: %s", ErrUserExists, email)
		}
		return err
	}
	return nil
}

// CheckEmail returns an error matching ErrBadUser unless email is a plain
// address such as alice@example.com.
func CheckEmail(email string) error {
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || a.Name != "" || len(email) > 320 {
		return fmt.Errorf("%w: %q is not an email address such as alice@example.com", ErrBadUser, email)
	}
	return nil
}

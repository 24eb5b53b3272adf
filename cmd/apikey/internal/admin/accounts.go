package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Roles of admin users.
const (
	// RoleAdmin may see and change everything, admin users included.
	RoleAdmin = "admin"
	// RoleViewer may see every page and change nothing but their own
	// password and two-factor setup.
	RoleViewer = "viewer"
)

// User is an account of the admin site.
type User struct {
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	// DisabledAt is when the account was disabled; nil while it may sign
	// in. Disabling ends its sessions.
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// TOTPSecret is the base32 secret of its two-factor codes (RFC 6238),
	// empty when it has none. It is never shown after setup.
	TOTPSecret string `json:"-"`
	// TwoFactor reports whether TOTPSecret is set.
	TwoFactor bool `json:"two_factor"`
	// UnlockedAt is when an operator last unlocked the account (apikey
	// admin users unlock, or the users page): the login throttle ignores
	// the account's failed logins before then. Nil if never.
	UnlockedAt *time.Time `json:"unlocked_at,omitempty"`
}

// AccountStore manages admin accounts beyond the Store: roles, disabling,
// password resets and two-factor secrets. The sqlite and postgres admin
// stores provide it through small adapters (the command wires them). Every
// method returns apikey.ErrNotFound for an unknown email.
type AccountStore interface {
	Users(ctx context.Context) ([]User, error)
	User(ctx context.Context, email string) (User, error)
	// SetDisabled disables the user at at, ending their sessions, or,
	// with a nil at, enables them.
	SetDisabled(ctx context.Context, email string, at *time.Time) error
	// SetPasswordHash replaces the password hash and ends the sessions.
	SetPasswordHash(ctx context.Context, email, hash string) error
	// SetRole sets RoleAdmin or RoleViewer.
	SetRole(ctx context.Context, email, role string) error
	// SetTOTPSecret sets the two-factor secret; empty removes it.
	SetTOTPSecret(ctx context.Context, email, secret string) error
	// Unlock records that the user was unlocked at at: the login throttle
	// of every server on the database then ignores the account's failed
	// logins before at (the per-address limit stays).
	Unlock(ctx context.Context, email string, at time.Time) error
}

// CheckPasswordRules returns an error matching ErrBadUser unless password
// may be an admin password (MinPasswordLength to 1024 bytes).
func CheckPasswordRules(password string) error {
	if len(password) < MinPasswordLength {
		return fmt.Errorf("%w: the password must be at least %d characters long", ErrBadUser, MinPasswordLength)
	}
	if len(password) > 1024 {
		return fmt.Errorf("%w: the password must be at most 1024 bytes long", ErrBadUser)
	}
	return nil
}

// SetPassword checks and hashes password (params zero means
// DefaultPasswordParams) and makes it the user's, ending their sessions.
func SetPassword(ctx context.Context, acc AccountStore, email, password string, params PasswordParams) error {
	if err := CheckPasswordRules(password); err != nil {
		return err
	}
	hash, err := HashPassword(password, params)
	if err != nil {
		return err
	}
	return acc.SetPasswordHash(ctx, strings.ToLower(strings.TrimSpace(email)), hash)
}

// CheckRole returns an error matching ErrBadUser unless role is RoleAdmin
// or RoleViewer.
func CheckRole(role string) error {
	if role != RoleAdmin && role != RoleViewer {
		return fmt.Errorf("%w: the role must be %s or %s", ErrBadUser, RoleAdmin, RoleViewer)
	}
	return nil
}

// errReadOnly refuses a change by a viewer.
var errReadOnly = errors.New("admin: read-only account")

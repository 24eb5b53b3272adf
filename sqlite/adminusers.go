package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// AdminUser is an account of the admin site as stored.
type AdminUser struct {
	Email     string
	Role      string // "admin" or "viewer"
	CreatedAt time.Time
	// DisabledAt is when the account was disabled; nil while it may sign
	// in.
	DisabledAt *time.Time
	// TOTPSecret is the base32 secret of its two-factor codes, empty when
	// it has none.
	TOTPSecret string
	// UnlockedAt is when an operator last unlocked the account: the login
	// throttle ignores its failures before then. Nil if never.
	UnlockedAt *time.Time
}

// CountUsers returns the number of admin users, so that apikey serve can
// tell a first run (no user yet) from the others.
func (a *AdminStore) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := a.s.db.QueryRowContext(ctx, `SELECT count(*) FROM apikey_admin_users`).Scan(&n)
	return n, adminErr("count admin users", err)
}

const adminUserColumns = `email, role, created_at, disabled_at, coalesce(totp_secret, ''), unlocked_at`

func scanAdminUser(sc interface{ Scan(...any) error }) (AdminUser, error) {
	var u AdminUser
	var created string
	var disabled, unlocked sql.NullString
	if err := sc.Scan(&u.Email, &u.Role, &created, &disabled, &u.TOTPSecret, &unlocked); err != nil {
		return AdminUser{}, err
	}
	var err error
	if u.CreatedAt, err = parseTime(created); err != nil {
		return AdminUser{}, err
	}
	if disabled.Valid {
		t, err := parseTime(disabled.String)
		if err != nil {
			return AdminUser{}, err
		}
		u.DisabledAt = &t
	}
	if unlocked.Valid {
		t, err := parseTime(unlocked.String)
		if err != nil {
			return AdminUser{}, err
		}
		u.UnlockedAt = &t
	}
	return u, nil
}

// Users lists the admin users by email.
func (a *AdminStore) Users(ctx context.Context) ([]AdminUser, error) {
	rows, err := a.s.db.QueryContext(ctx, `SELECT `+adminUserColumns+` FROM apikey_admin_users ORDER BY email`)
	if err != nil {
		return nil, adminErr("list admin users", err)
	}
	defer rows.Close()
	var out []AdminUser
	for rows.Next() {
		u, err := scanAdminUser(rows)
		if err != nil {
			return nil, adminErr("list admin users", err)
		}
		out = append(out, u)
	}
	return out, adminErr("list admin users", rows.Err())
}

// User returns one admin user, or apikey.ErrNotFound.
func (a *AdminStore) User(ctx context.Context, email string) (AdminUser, error) {
	u, err := scanAdminUser(a.s.db.QueryRowContext(ctx, `SELECT `+adminUserColumns+` FROM apikey_admin_users WHERE email = ?`, strings.ToLower(email)))
	return u, adminErr("read admin user", err)
}

// update runs an UPDATE of one user, apikey.ErrNotFound when there is
// none, and, when endSessions, deletes the user's sessions in the same
// transaction.
func (a *AdminStore) update(ctx context.Context, what, email string, endSessions bool, query string, args ...any) error {
	tx, end, err := a.s.beginWrite(ctx)
	if err != nil {
		return adminErr(what, err)
	}
	defer end()
	res, err := tx.ExecContext(ctx, query, append(args, strings.ToLower(email))...)
	if err != nil {
		return adminErr(what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return adminErr(what, err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: %s: %w", what, apikey.ErrNotFound)
	}
	if endSessions {
		if _, err := tx.ExecContext(ctx, `DELETE FROM apikey_admin_sessions WHERE email = ?`, strings.ToLower(email)); err != nil {
			return adminErr(what, err)
		}
	}
	return adminErr(what, tx.Commit())
}

// SetDisabled disables the user at at (ending their sessions), or, with a
// nil at, enables them again.
func (a *AdminStore) SetDisabled(ctx context.Context, email string, at *time.Time) error {
	var v any
	if at != nil {
		v = formatTime(*at)
	}
	return a.update(ctx, "disable admin user", email, at != nil, `UPDATE apikey_admin_users SET disabled_at = ? WHERE email = ?`, v)
}

// SetPasswordHash replaces the user's password hash and ends their
// sessions.
func (a *AdminStore) SetPasswordHash(ctx context.Context, email, hash string) error {
	return a.update(ctx, "set admin password", email, true, `UPDATE apikey_admin_users SET password_hash = ? WHERE email = ?`, hash)
}

// SetRole sets the user's role, "admin" or "viewer".
func (a *AdminStore) SetRole(ctx context.Context, email, role string) error {
	return a.update(ctx, "set admin role", email, false, `UPDATE apikey_admin_users SET role = ? WHERE email = ?`, role)
}

// SetTOTPSecret sets the user's TOTP secret; empty removes it.
func (a *AdminStore) SetTOTPSecret(ctx context.Context, email, secret string) error {
	var v any
	if secret != "" {
		v = secret
	}
	return a.update(ctx, "set admin two-factor secret", email, false, `UPDATE apikey_admin_users SET totp_secret = ? WHERE email = ?`, v)
}

// Unlock records that the user was unlocked at at: a running server's login
// throttle then ignores the user's failed logins before at.
func (a *AdminStore) Unlock(ctx context.Context, email string, at time.Time) error {
	return a.update(ctx, "unlock admin user", email, false, `UPDATE apikey_admin_users SET unlocked_at = ? WHERE email = ?`, formatTime(at))
}

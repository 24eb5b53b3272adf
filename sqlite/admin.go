package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// AdminStore persists the users and sessions of the admin site of apikey
// serve in apikey_admin_users and apikey_admin_sessions (tables that the
// Store's migrations create). Emails are compared lower-cased; sessions are
// stored by the hash of their token, which the caller computes: the token
// itself never reaches the store. It is safe for concurrent use.
type AdminStore struct{ s *Store }

// Admin returns the persistence of the admin site, on the same database.
func (s *Store) Admin() *AdminStore { return &AdminStore{s: s} }

// CreateUser stores an admin user. An existing email (in any case)
// yields an error matching apikey.ErrDuplicateID.
func (a *AdminStore) CreateUser(ctx context.Context, email, passwordHash string, at time.Time) error {
	_, err := a.s.execWrite(ctx, `INSERT INTO apikey_admin_users (email, password_hash, created_at) VALUES (?, ?, ?)`,
		strings.ToLower(email), passwordHash, formatTime(at))
	return adminErr("create admin user", err)
}

// PasswordHash returns the stored password hash of an admin user, or
// apikey.ErrNotFound.
func (a *AdminStore) PasswordHash(ctx context.Context, email string) (string, error) {
	var hash string
	err := a.s.db.QueryRowContext(ctx, `SELECT password_hash FROM apikey_admin_users WHERE email = ?`,
		strings.ToLower(email)).Scan(&hash)
	return hash, adminErr("read admin user", err)
}

// CreateSession stores a session of the admin user email, last seen at
// created and ending at expires at the latest.
func (a *AdminStore) CreateSession(ctx context.Context, idHash, email string, created, expires time.Time) error {
	_, err := a.s.execWrite(ctx, `INSERT INTO apikey_admin_sessions (id_hash, email, created_at, last_seen_at, expires_at)
		VALUES (?, ?, ?, ?, ?)`, idHash, strings.ToLower(email), formatTime(created), formatTime(created), formatTime(expires))
	return adminErr("create admin session", err)
}

// Session returns the session stored under idHash, or
// apikey.ErrNotFound. It does not check expiry: the caller does.
func (a *AdminStore) Session(ctx context.Context, idHash string) (email string, created, lastSeen, expires time.Time, err error) {
	var c, l, e string
	err = a.s.db.QueryRowContext(ctx, `SELECT email, created_at, last_seen_at, expires_at FROM apikey_admin_sessions WHERE id_hash = ?`,
		idHash).Scan(&email, &c, &l, &e)
	if err != nil {
		return "", time.Time{}, time.Time{}, time.Time{}, adminErr("read admin session", err)
	}
	var err1, err2, err3 error
	created, err1 = parseTime(c)
	lastSeen, err2 = parseTime(l)
	expires, err3 = parseTime(e)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", time.Time{}, time.Time{}, time.Time{}, err
	}
	return email, created, lastSeen, expires, nil
}

// TouchSession records activity on a session at at, or returns
// apikey.ErrNotFound.
func (a *AdminStore) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	res, err := a.s.execWrite(ctx, `UPDATE apikey_admin_sessions SET last_seen_at = ? WHERE id_hash = ?`,
		formatTime(at), idHash)
	if err != nil {
		return adminErr("touch admin session", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return adminErr("touch admin session", err)
	} else if n == 0 {
		return apikey.ErrNotFound
	}
	return nil
}

// DeleteSession removes a session. Removing a missing session is not
// an error.
func (a *AdminStore) DeleteSession(ctx context.Context, idHash string) error {
	_, err := a.s.execWrite(ctx, `DELETE FROM apikey_admin_sessions WHERE id_hash = ?`, idHash)
	return adminErr("delete admin session", err)
}

// DeleteExpiredSessions removes the sessions that end at or before now
// and those last seen before idleSince.
func (a *AdminStore) DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) error {
	_, err := a.s.execWrite(ctx, `DELETE FROM apikey_admin_sessions WHERE expires_at <= ? OR last_seen_at < ?`,
		formatTime(now), formatTime(idleSince))
	return adminErr("delete expired admin sessions", err)
}

// adminErr maps a missing row to apikey.ErrNotFound, a unique violation to
// apikey.ErrDuplicateID and a refused value to apikey.ErrInvalidInput.
func adminErr(op string, err error) error {
	var se *msqlite.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return apikey.ErrNotFound
	case errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		return fmt.Errorf("%w: %w", apikey.ErrDuplicateID, err)
	case refused(err):
		return fmt.Errorf("%w: sqlite: %s: %w", apikey.ErrInvalidInput, op, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

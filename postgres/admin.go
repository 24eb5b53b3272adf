package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/go-apikey/apikey"
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
	_, err := a.s.pool.Exec(ctx, `INSERT INTO apikey_admin_users (email, password_hash, created_at) VALUES ($1, $2, $3)`,
		strings.ToLower(email), passwordHash, at.UTC())
	return adminErr("create admin user", err)
}

// PasswordHash returns the stored password hash of an admin user, or
// apikey.ErrNotFound.
func (a *AdminStore) PasswordHash(ctx context.Context, email string) (string, error) {
	var hash string
	err := a.s.pool.QueryRow(ctx, `SELECT password_hash FROM apikey_admin_users WHERE email = $1`,
		strings.ToLower(email)).Scan(&hash)
	return hash, adminErr("read admin user", err)
}

// CreateSession stores a session of the admin user email, last seen at
// created and ending at expires at the latest.
func (a *AdminStore) CreateSession(ctx context.Context, idHash, email string, created, expires time.Time) error {
	_, err := a.s.pool.Exec(ctx, `INSERT INTO apikey_admin_sessions (id_hash, email, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $3, $4)`, idHash, strings.ToLower(email), created.UTC(), expires.UTC())
	return adminErr("create admin session", err)
}

// Session returns the session stored under idHash, or
// apikey.ErrNotFound. It does not check expiry: the caller does.
func (a *AdminStore) Session(ctx context.Context, idHash string) (email string, created, lastSeen, expires time.Time, err error) {
	err = a.s.pool.QueryRow(ctx, `SELECT email, created_at, last_seen_at, expires_at FROM apikey_admin_sessions WHERE id_hash = $1`,
		idHash).Scan(&email, &created, &lastSeen, &expires)
	if err != nil {
		return "", time.Time{}, time.Time{}, time.Time{}, adminErr("read admin session", err)
	}
	return email, created.UTC(), lastSeen.UTC(), expires.UTC(), nil
}

// TouchSession records activity on a session at at, or returns
// apikey.ErrNotFound.
func (a *AdminStore) TouchSession(ctx context.Context, idHash string, at time.Time) error {
	tag, err := a.s.pool.Exec(ctx, `UPDATE apikey_admin_sessions SET last_seen_at = $1 WHERE id_hash = $2`, at.UTC(), idHash)
	if err != nil {
		return adminErr("touch admin session", err)
	}
	if tag.RowsAffected() == 0 {
		return apikey.ErrNotFound
	}
	return nil
}

// DeleteSession removes a session. Removing a missing session is not
// an error.
func (a *AdminStore) DeleteSession(ctx context.Context, idHash string) error {
	_, err := a.s.pool.Exec(ctx, `DELETE FROM apikey_admin_sessions WHERE id_hash = $1`, idHash)
	return adminErr("delete admin session", err)
}

// DeleteExpiredSessions removes the sessions that end at or before now
// and those last seen before idleSince.
func (a *AdminStore) DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) error {
	_, err := a.s.pool.Exec(ctx, `DELETE FROM apikey_admin_sessions WHERE expires_at <= $1 OR last_seen_at < $2`,
		now.UTC(), idleSince.UTC())
	return adminErr("delete expired admin sessions", err)
}

// adminErr maps a missing row to apikey.ErrNotFound, a unique violation to
// apikey.ErrDuplicateID and a refused value to apikey.ErrInvalidInput.
func adminErr(op string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return apikey.ErrNotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		return fmt.Errorf("%w: %w", apikey.ErrDuplicateID, err)
	case refused(err):
		return fmt.Errorf("%w: postgres: %s: %w", apikey.ErrInvalidInput, op, err)
	}
	return fmt.Errorf("postgres: %s: %w", op, err)
}

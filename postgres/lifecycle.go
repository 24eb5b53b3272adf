package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
)

// storedPrevious is the stored form of a previous secret (migration 0012).
type storedPrevious struct {
	rolled, started, expires, lastUsed pgtype.Timestamptz
	grace                              pgtype.Int8
	starts                             pgtype.Text
}

// decode returns the previous secret, or nil when prev_rolled_at is NULL.
func (p *storedPrevious) decode() *apikey.PreviousSecret {
	if !p.rolled.Valid {
		return nil
	}
	return &apikey.PreviousSecret{
		RolledAt: p.rolled.Time.UTC(), Grace: time.Duration(p.grace.Int64) * time.Microsecond,
		GraceStarts: apikey.GraceStart(p.starts.String), GraceStartedAt: utcPtr(p.started),
		ExpiresAt: p.expires.Time.UTC(), LastUsedAt: utcPtr(p.lastUsed),
	}
}

// Roll implements apikey.Store: the row is locked and read, then one
// UPDATE that refuses a revoked key (WHERE ... AND revoked_at IS NULL)
// replaces the digest and sets or drops the previous secret from the row's
// own digest and last use, with the audit entry in the same transaction.
func (s *Store) Roll(ctx context.Context, id string, r apikey.Rollover, ev *apikey.Event) (*apikey.Key, error) {
	var after *apikey.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM ONLY apikey_keys WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		query := `UPDATE ONLY apikey_keys SET hash = $2, last_used_at = NULL, prev_hash = NULL, prev_rolled_at = NULL,
			prev_grace_us = NULL, prev_grace_starts = NULL, prev_started_at = NULL, prev_expires_at = NULL,
			prev_last_used_at = NULL WHERE id = $1 AND revoked_at IS NULL RETURNING ` + keyColumns
		args := []any{id, r.Hash}
		if p := r.Previous; p != nil {
			var started pgtype.Timestamptz
			if p.GraceStartedAt != nil {
				started = pgtype.Timestamptz{Time: timeArg(*p.GraceStartedAt), Valid: true}
			}
			query = `UPDATE ONLY apikey_keys SET hash = $2, last_used_at = NULL, prev_hash = hash, prev_rolled_at = $3,
				prev_grace_us = $4, prev_grace_starts = $5, prev_started_at = $6, prev_expires_at = $7,
				prev_last_used_at = last_used_at WHERE id = $1 AND revoked_at IS NULL RETURNING ` + keyColumns
			args = append(args, timeArg(p.RolledAt), p.Grace.Microseconds(), string(p.GraceStarts), started, timeArg(p.ExpiresAt))
		}
		after, err = scanKey(tx.QueryRow(ctx, query, args...))
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrFrozen // the key exists (locked above): it is revoked
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, after.Owner, apikey.Diff(before, after))
	})
	if err != nil {
		return nil, mapErr("roll", err)
	}
	return after, nil
}

// StartGrace implements apikey.Store in one conditional UPDATE.
func (s *Store) StartGrace(ctx context.Context, id, hash string, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE ONLY apikey_keys SET prev_started_at = $3
		WHERE id = $1 AND hash = $2 AND revoked_at IS NULL AND prev_hash IS NOT NULL AND prev_started_at IS NULL`,
		id, hash, timeArg(at))
	if err != nil {
		return false, mapErr("start grace", err)
	}
	return tag.RowsAffected() == 1, nil
}

// SetDisabled implements apikey.Store: the row is locked and read, and a
// key not yet in the asked state is updated by a statement that refuses a
// revoked key, with the audit entry in the same transaction.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	var out *apikey.Key
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		before, err := scanKey(tx.QueryRow(ctx, "SELECT "+keyColumns+" FROM ONLY apikey_keys WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		if before.Revoked() {
			return apikey.ErrFrozen
		}
		if disabled == (before.DisabledAt != nil) {
			out = before
			return nil
		}
		var value pgtype.Timestamptz
		if disabled {
			value = pgtype.Timestamptz{Time: timeArg(at), Valid: true}
		}
		out, err = scanKey(tx.QueryRow(ctx,
			"UPDATE ONLY apikey_keys SET disabled_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING "+keyColumns, id, value))
		if errors.Is(err, pgx.ErrNoRows) {
			return apikey.ErrFrozen
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, out.Owner, apikey.Diff(before, out))
	})
	if err != nil {
		return nil, mapErr("set disabled", err)
	}
	return out, nil
}

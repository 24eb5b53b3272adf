package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
)

// storedPrevious is the stored form of a previous secret (migration 0011).
type storedPrevious struct {
	hash, rolled, starts, started, expires, lastUsed sql.NullString
	grace                                            sql.NullInt64
}

// decode returns the previous secret and its digest; none when prev_hash
// is NULL.
func (p *storedPrevious) decode() (*apikey.PreviousSecret, string, error) {
	if !p.hash.Valid {
		return nil, "", nil
	}
	ps := &apikey.PreviousSecret{Grace: time.Duration(p.grace.Int64) * time.Microsecond, GraceStarts: apikey.GraceStart(p.starts.String)}
	var err, err2, err3, err4 error
	ps.RolledAt, err = parseTime(p.rolled.String)
	ps.ExpiresAt, err2 = parseTime(p.expires.String)
	ps.GraceStartedAt, err3 = parseTimePtr(p.started)
	ps.LastUsedAt, err4 = parseTimePtr(p.lastUsed)
	if err := errors.Join(err, err2, err3, err4); err != nil {
		return nil, "", fmt.Errorf("previous secret: %w", err)
	}
	return ps, p.hash.String, nil
}

// Roll replaces the digest of a key and sets or drops its previous secret
// in one UPDATE that refuses a revoked key (WHERE ... AND revoked_at IS
// NULL), with the audit entry in the same transaction. The previous
// digest and last use are the row's own, read by the UPDATE itself.
func (s *Store) Roll(ctx context.Context, id string, r apikey.Rollover, ev *apikey.Event) (*apikey.Key, error) {
	var after *apikey.Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanRecord(tx.QueryRowContext(ctx, lookupQuery, id))
		if err != nil {
			return err
		}
		query := `UPDATE apikey_keys SET hash = ?, last_used_at = NULL, prev_hash = NULL, prev_rolled_at = NULL,
			prev_grace_us = NULL, prev_grace_starts = NULL, prev_started_at = NULL, prev_expires_at = NULL,
			prev_last_used_at = NULL WHERE id = ? AND revoked_at IS NULL RETURNING ` + columns
		args := []any{r.Hash, id}
		if p := r.Previous; p != nil {
			query = `UPDATE apikey_keys SET hash = ?, last_used_at = NULL, prev_hash = hash, prev_rolled_at = ?,
				prev_grace_us = ?, prev_grace_starts = ?, prev_started_at = ?, prev_expires_at = ?,
				prev_last_used_at = last_used_at WHERE id = ? AND revoked_at IS NULL RETURNING ` + columns
			args = []any{r.Hash, formatTime(p.RolledAt), p.Grace.Microseconds(), string(p.GraceStarts),
				formatTimePtr(p.GraceStartedAt), formatTime(p.ExpiresAt), id}
		}
		after, err = scanRecord(tx.QueryRowContext(ctx, query, args...))
		if errors.Is(err, sql.ErrNoRows) {
			return apikey.ErrFrozen // the key exists (read above): it is revoked
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, after.Owner, apikey.Diff(&before.Key, &after.Key))
	})
	if err != nil {
		return nil, storeErr("roll", err)
	}
	return &after.Key, nil
}

// StartGrace records the start of the grace window of a key's previous
// secret in one conditional UPDATE (see apikey.Store).
func (s *Store) StartGrace(ctx context.Context, id, hash string, at time.Time) (bool, error) {
	res, err := s.execWrite(ctx, `UPDATE apikey_keys SET prev_started_at = ?
		WHERE id = ? AND hash = ? AND revoked_at IS NULL AND prev_hash IS NOT NULL AND prev_started_at IS NULL`,
		formatTime(at), id, hash)
	if err != nil {
		return false, storeErr("start grace", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, storeErr("start grace", err)
	}
	return n == 1, nil
}

// SetDisabled sets or clears disabled_at in one UPDATE that refuses a
// revoked key, with the audit entry in the same transaction; a key already
// in the asked state is returned unchanged, without an entry.
func (s *Store) SetDisabled(ctx context.Context, id string, disabled bool, at time.Time, ev *apikey.Event) (*apikey.Key, error) {
	var out *apikey.Record
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		before, err := scanRecord(tx.QueryRowContext(ctx, lookupQuery, id))
		if err != nil {
			return err
		}
		if disabled == (before.DisabledAt != nil) {
			out = before
			if before.RevokedAt != nil {
				return apikey.ErrFrozen
			}
			return nil
		}
		var value any
		if disabled {
			value = formatTime(at)
		}
		out, err = scanRecord(tx.QueryRowContext(ctx,
			`UPDATE apikey_keys SET disabled_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING `+columns, value, id))
		if errors.Is(err, sql.ErrNoRows) {
			return apikey.ErrFrozen
		}
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, out.Owner, apikey.Diff(&before.Key, &out.Key))
	})
	if err != nil {
		return nil, storeErr("set disabled", err)
	}
	return &out.Key, nil
}

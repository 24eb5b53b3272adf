package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
)

// BulkInsert stores recs with one COPY: the fast path for seeding and
// imports. Unlike Insert it checks no owner limit and writes no audit
// entry; inserts notify no invalidation listener (nothing can be cached
// for a new id but a short negative entry). The records must be complete
// (a hash, a creation time) and their ids new: a duplicate id fails the
// whole batch with an error matching apikey.ErrDuplicateID, and nothing is
// stored. Callers split large loads into batches of some thousands of
// records. Every field of a record is stored but a previous secret: a
// record with a PreviousSecret or a PreviousHash fails the batch with an
// error matching apikey.ErrInvalidInput (only Roll makes one; see
// apikey.Importer).
func (s *Store) BulkInsert(ctx context.Context, recs []*apikey.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i, rec := range recs {
		if hasPrevious(rec) {
			return fmt.Errorf("postgres: bulk insert: record %d (%s): %w: %s", i, rec.ID, apikey.ErrInvalidInput, previousRefused)
		}
	}
	rows := pgx.CopyFromSlice(len(recs), func(i int) ([]any, error) {
		return insertArgs(recs[i])
	})
	_, err := s.pool.CopyFrom(ctx, pgx.Identifier{"apikey_keys"},
		[]string{"id", "prefix", "name", "owner", "scopes", "metadata", "hash", "created_at", "expires_at", "revoked_at", "last_used_at",
			"ratelimits", "credits_remaining", "credits_refill", "credits_next_refill",
			"environment", "allowed_cidrs", "inactivity_expiry", "disabled_at"}, rows)
	return mapErr("bulk insert", err)
}

// previousRefused says why Import and BulkInsert refuse a record with a
// previous secret.
const previousRefused = "the record carries a previous secret: only Roll makes one, and a load stores a key with one secret"

// hasPrevious reports whether rec carries a previous secret or its digest.
func hasPrevious(rec *apikey.Record) bool { return rec.PreviousSecret != nil || rec.PreviousHash != "" }

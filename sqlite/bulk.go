package sqlite

import (
	"context"
	"fmt"

	"github.com/go-apikey/apikey"
)

// BulkInsert stores recs in one transaction with one prepared statement:
// the fast path for seeding and imports, about two orders of magnitude
// faster than one Insert per key. Unlike Insert it checks no owner limit
// and writes no audit entry. The records must be complete (a hash, a
// creation time) and their ids new: a duplicate id fails the whole batch
// with an error matching apikey.ErrDuplicateID, and nothing is stored.
// Callers split large loads into batches of some thousands of records.
// Every field of a record is stored but a previous secret: a record with a
// PreviousSecret or a PreviousHash fails the batch with an error matching
// apikey.ErrInvalidInput (only Roll makes one; see apikey.Importer).
func (s *Store) BulkInsert(ctx context.Context, recs []*apikey.Record) error {
	if len(recs) == 0 {
		return nil
	}
	for i, rec := range recs {
		if hasPrevious(rec) {
			return fmt.Errorf("sqlite: bulk insert: record %d (%s): %w: %s", i, rec.ID, apikey.ErrInvalidInput, previousRefused)
		}
	}
	tx, end, err := s.beginWrite(ctx)
	if err != nil {
		return storeErr("bulk insert", err)
	}
	defer end()
	st, err := tx.PrepareContext(ctx, insertKey)
	if err != nil {
		return storeErr("bulk insert", err)
	}
	defer st.Close()
	for _, rec := range recs {
		args, err := insertArgs(&rec.Key, rec.Hash)
		if err != nil {
			return fmt.Errorf("sqlite: bulk insert: %w", err)
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return storeErr("bulk insert", err)
		}
	}
	return storeErr("bulk insert", tx.Commit())
}

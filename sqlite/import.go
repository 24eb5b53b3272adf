package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/go-apikey/apikey"
)

var _ apikey.Importer = (*Store)(nil)

// takenQuery tells whether a key, a tombstone or an audit entry holds an
// id (apikey.Importer).
const takenQuery = `SELECT EXISTS (SELECT 1 FROM apikey_keys WHERE id = ?1)
	OR EXISTS (SELECT 1 FROM apikey_revoked_ids WHERE id = ?1)
	OR EXISTS (SELECT 1 FROM apikey_events WHERE key_id = ?1)`

// Import implements apikey.Importer in one write transaction, with
// prepared statements: for each entry whose id is free, the insert and its
// audit entry, then, for a revoked record, the revocation of Revoke and its
// audit entry.
func (s *Store) Import(ctx context.Context, batch []apikey.ImportEntry) error {
	if len(batch) == 0 {
		return nil
	}
	if err := checkImport(batch); err != nil {
		return err
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		taken, err := tx.PrepareContext(ctx, takenQuery)
		if err != nil {
			return err
		}
		defer taken.Close()
		insert, err := tx.PrepareContext(ctx, insertKey)
		if err != nil {
			return err
		}
		defer insert.Close()
		for _, e := range batch {
			k := e.Record.Key // a copy: the record is stored unrevoked first
			revokedAt := k.RevokedAt
			k.RevokedAt = nil
			var held bool
			if err := taken.QueryRowContext(ctx, k.ID).Scan(&held); err != nil {
				return err
			}
			if held {
				continue
			}
			args, err := insertArgs(&k, e.Record.Hash) // k.RevokedAt is nil
			if err != nil {
				return fmt.Errorf("key %s: %w", k.ID, err)
			}
			if _, err := insert.ExecContext(ctx, args...); err != nil {
				return err
			}
			if err := writeEvent(ctx, tx, e.Imported, k.Owner, apikey.Diff(nil, &k)); err != nil {
				return err
			}
			if revokedAt != nil {
				if _, err := revokeTx(ctx, tx, k.ID, *revokedAt, e.Revoked); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		forgetImportEvents(batch)
		return storeErr("import", err)
	}
	return nil
}

// checkImport refuses a batch that breaks the shape apikey.Importer
// requires, before anything is written.
func checkImport(batch []apikey.ImportEntry) error {
	for i, e := range batch {
		if e.Record == nil || e.Imported == nil || (e.Record.RevokedAt != nil) != (e.Revoked != nil) {
			return fmt.Errorf("sqlite: import: entry %d: %w: a record and its key.imported event, and a key.revoked event exactly when the record is revoked",
				i, apikey.ErrInvalidInput)
		}
		if hasPrevious(e.Record) {
			return fmt.Errorf("sqlite: import: entry %d (%s): %w: %s", i, e.Record.ID, apikey.ErrInvalidInput, previousRefused)
		}
	}
	return nil
}

// previousRefused says why Import and BulkInsert refuse a record with a
// previous secret.
const previousRefused = "the record carries a previous secret: only Roll makes one, and a load stores a key with one secret"

// hasPrevious reports whether rec carries a previous secret or its digest.
func hasPrevious(rec *apikey.Record) bool { return rec.PreviousSecret != nil || rec.PreviousHash != "" }

// forgetImportEvents clears the ids of the events of a batch that was
// rolled back: none of them was written.
func forgetImportEvents(batch []apikey.ImportEntry) {
	for _, e := range batch {
		e.Imported.ID = 0
		if e.Revoked != nil {
			e.Revoked.ID = 0
		}
	}
}

// Taken implements apikey.Importer.
func (s *Store) Taken(ctx context.Context, ids []string) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, storeErr("taken", err)
	}
	defer conn.Close()
	st, err := conn.PrepareContext(ctx, takenQuery)
	if err != nil {
		return nil, storeErr("taken", err)
	}
	defer st.Close()
	for i, id := range ids {
		if err := st.QueryRowContext(ctx, id).Scan(&out[i]); err != nil {
			return nil, storeErr("taken", err)
		}
	}
	return out, nil
}

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/go-apikey/apikey"
)

var _ apikey.LeakStore = (*Store)(nil)

// RecordLeak stores l and, with ev, its audit entry in one transaction,
// and sets their ids. A leak of the same key with the same URL and source
// is apikey.ErrDuplicateID: nothing is stored.
func (s *Store) RecordLeak(ctx context.Context, l *apikey.Leak, ev *apikey.Event) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO apikey_leaks (key_id, owner, url, source, reported_at, action)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`,
			l.KeyID, l.Owner, l.URL, l.Source, formatTime(l.ReportedAt), string(l.Action)).Scan(&id)
		if err != nil {
			return err
		}
		if err := writeEvent(ctx, tx, ev, l.Owner, nil); err != nil {
			return err
		}
		l.ID = id
		return nil
	})
	if err != nil && ev != nil {
		ev.ID = 0 // rolled back
	}
	return storeErr("record leak", err)
}

// ListLeaks returns the leaks matching q, newest first.
func (s *Store) ListLeaks(ctx context.Context, q apikey.LeakQuery) ([]*apikey.Leak, error) {
	var (
		where []string
		args  []any
	)
	if q.KeyID != "" {
		where = append(where, "key_id = ?")
		args = append(args, q.KeyID)
	}
	if q.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, q.Before)
	}
	query := `SELECT id, key_id, owner, url, source, reported_at, action FROM apikey_leaks`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storeErr("list leaks", err)
	}
	defer rows.Close()
	leaks := []*apikey.Leak{}
	for rows.Next() {
		var (
			l          apikey.Leak
			at, action string
		)
		if err := rows.Scan(&l.ID, &l.KeyID, &l.Owner, &l.URL, &l.Source, &at, &action); err != nil {
			return nil, storeErr("list leaks", err)
		}
		l.Action = apikey.LeakAction(action)
		if l.ReportedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("sqlite: list leaks: leak %d: %w", l.ID, err)
		}
		leaks = append(leaks, &l)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list leaks", err)
	}
	return leaks, nil
}

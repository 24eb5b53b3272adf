package postgres

import (
	"context"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
)

var _ apikey.LeakStore = (*Store)(nil)

// RecordLeak stores l and, with ev, its audit entry in one transaction,
// and sets their ids. A leak of the same key with the same URL and source
// is apikey.ErrDuplicateID: nothing is stored.
func (s *Store) RecordLeak(ctx context.Context, l *apikey.Leak, ev *apikey.Event) error {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO apikey_leaks (key_id, owner, url, source, reported_at, action)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			l.KeyID, l.Owner, l.URL, l.Source, timeArg(l.ReportedAt), string(l.Action)).Scan(&id)
		if err != nil {
			return err
		}
		return writeEvent(ctx, tx, ev, l.Owner, nil)
	})
	if err != nil {
		if ev != nil {
			ev.ID = 0 // rolled back
		}
		return mapErr("record leak", err)
	}
	l.ID = id
	return nil
}

// ListLeaks returns the leaks matching q, newest first.
func (s *Store) ListLeaks(ctx context.Context, q apikey.LeakQuery) ([]*apikey.Leak, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.KeyID != "" {
		where = append(where, "key_id = "+arg(q.KeyID))
	}
	if q.Before > 0 {
		where = append(where, "id < "+arg(q.Before))
	}
	var b strings.Builder
	b.WriteString("SELECT id, key_id, owner, url, source, reported_at, action FROM apikey_leaks")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY id DESC LIMIT " + arg(q.Limit))
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, mapErr("list leaks", err)
	}
	defer rows.Close()
	leaks := []*apikey.Leak{}
	for rows.Next() {
		l := new(apikey.Leak)
		var action string
		if err := rows.Scan(&l.ID, &l.KeyID, &l.Owner, &l.URL, &l.Source, &l.ReportedAt, &action); err != nil {
			return nil, mapErr("list leaks", err)
		}
		l.Action = apikey.LeakAction(action)
		l.ReportedAt = l.ReportedAt.UTC()
		leaks = append(leaks, l)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list leaks", err)
	}
	return leaks, nil
}

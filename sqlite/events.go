package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// writeEvent appends ev to the audit log within tx, after filling its Owner
// and Changes, and sets ev.ID to the entry's id. A nil ev writes nothing.
func writeEvent(ctx context.Context, tx *sql.Tx, ev *apikey.Event, owner string, changes map[string]apikey.Change) error {
	if ev == nil {
		return nil
	}
	ev.Owner, ev.Changes = owner, changes
	err := tx.QueryRowContext(ctx, `INSERT INTO apikey_events (type, at, actor, key_id, owner, changes, url)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		string(ev.Type), formatTime(ev.At), ev.Actor, ev.KeyID, ev.Owner, string(apikey.MarshalChanges(changes)), ev.URL,
	).Scan(&ev.ID)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// ListEvents returns audit log entries matching q, newest first.
func (s *Store) ListEvents(ctx context.Context, q apikey.EventQuery) ([]*apikey.Event, error) {
	var (
		where []string
		args  []any
	)
	if q.KeyID != "" {
		where = append(where, "key_id = ?")
		args = append(args, q.KeyID)
	}
	if q.Actor != "" {
		where = append(where, "actor = ?")
		args = append(args, q.Actor)
	}
	if q.Type != "" {
		where = append(where, "type = ?")
		args = append(args, string(q.Type))
	}
	if q.Before > 0 {
		where = append(where, "id < ?")
		args = append(args, q.Before)
	}
	query := `SELECT id, type, at, actor, key_id, owner, changes, url FROM apikey_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.Limit)
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storeErr("list events", err)
	}
	defer rows.Close()
	events := []*apikey.Event{}
	for rows.Next() {
		var (
			ev          apikey.Event
			typ, at, ch string
		)
		if err := rows.Scan(&ev.ID, &typ, &at, &ev.Actor, &ev.KeyID, &ev.Owner, &ch, &ev.URL); err != nil {
			return nil, storeErr("list events", err)
		}
		ev.Type = apikey.EventType(typ)
		if ev.At, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("sqlite: list events: event %d: %w", ev.ID, err)
		}
		if ev.Changes, err = decodeChanges(ch); err != nil {
			return nil, fmt.Errorf("sqlite: list events: event %d: malformed changes: %w", ev.ID, err)
		}
		events = append(events, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("list events", err)
	}
	return events, nil
}

// decodeChanges decodes the stored changes; values come back as
// encoding/json decodes them into an any. An empty object is nil.
func decodeChanges(s string) (map[string]apikey.Change, error) {
	var c map[string]apikey.Change
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return nil, err
	}
	if len(c) == 0 {
		return nil, nil
	}
	return c, nil
}

// RecordUsage adds counts and moves last_used_at forward in one write
// transaction. Counts of ids that no longer exist are dropped.
func (s *Store) RecordUsage(ctx context.Context, counts []apikey.UsageCount, lastUsed map[string]time.Time) error {
	if len(counts) == 0 && len(lastUsed) == 0 {
		return nil
	}
	return storeErr("record usage", s.inTx(ctx, func(tx *sql.Tx) error {
		if len(counts) > 0 {
			// The WHERE also keeps SQLite from reading ON CONFLICT as a
			// join constraint of the SELECT.
			st, err := tx.PrepareContext(ctx, `INSERT INTO apikey_usage (key_id, bucket, outcome, count)
				SELECT ?1, ?2, ?3, ?4 WHERE EXISTS (SELECT 1 FROM apikey_keys WHERE id = ?1)
				ON CONFLICT (key_id, bucket, outcome) DO UPDATE SET count = apikey_usage.count + excluded.count`)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, c := range counts {
				if _, err := st.ExecContext(ctx, c.KeyID, formatTime(c.Bucket), c.Outcome, c.Count); err != nil {
					return err
				}
			}
		}
		if len(lastUsed) > 0 {
			st, err := tx.PrepareContext(ctx, `UPDATE apikey_keys SET last_used_at = ?1
				WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1)`)
			if err != nil {
				return err
			}
			defer st.Close()
			prev, err := tx.PrepareContext(ctx, `UPDATE apikey_keys SET prev_last_used_at = ?1
				WHERE id = ?2 AND prev_hash IS NOT NULL AND (prev_last_used_at IS NULL OR prev_last_used_at < ?1)`)
			if err != nil {
				return err
			}
			defer prev.Close()
			for id, t := range lastUsed {
				q := st
				if key, ok := strings.CutPrefix(id, apikey.PreviousSubject("")); ok {
					q, id = prev, key
				}
				if _, err := q.ExecContext(ctx, formatTime(t), id); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}

// Usage returns the counters of a key with from <= bucket < to, oldest
// first, then by outcome.
func (s *Store) Usage(ctx context.Context, id string, from, to time.Time) ([]apikey.UsageCount, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT bucket, outcome, count FROM apikey_usage
		WHERE key_id = ? AND bucket >= ? AND bucket < ? ORDER BY bucket, outcome`,
		id, formatTime(from), formatTime(to))
	if err != nil {
		return nil, storeErr("usage", err)
	}
	defer rows.Close()
	out := []apikey.UsageCount{}
	for rows.Next() {
		c := apikey.UsageCount{KeyID: id}
		var bucket string
		if err := rows.Scan(&bucket, &c.Outcome, &c.Count); err != nil {
			return nil, storeErr("usage", err)
		}
		if c.Bucket, err = parseTime(bucket); err != nil {
			return nil, fmt.Errorf("sqlite: usage: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, storeErr("usage", err)
	}
	return out, nil
}

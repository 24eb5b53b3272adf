package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/go-apikey/apikey"
)

// writeEvent appends ev to the audit log within tx, after filling its Owner
// and Changes, and sets ev.ID to the entry's id. A nil ev writes nothing.
func writeEvent(ctx context.Context, tx pgx.Tx, ev *apikey.Event, owner string, changes map[string]apikey.Change) error {
	if ev == nil {
		return nil
	}
	ev.Owner, ev.Changes = owner, changes
	err := tx.QueryRow(ctx, `INSERT INTO apikey_events (type, at, actor, key_id, owner, changes, url)
	VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id`,
		string(ev.Type), timeArg(ev.At), ev.Actor, ev.KeyID, ev.Owner, string(apikey.MarshalChanges(changes)), ev.URL,
	).Scan(&ev.ID)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

// ListEvents implements apikey.Store: newest first, keyset paging on id.
func (s *Store) ListEvents(ctx context.Context, q apikey.EventQuery) ([]*apikey.Event, error) {
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
	if q.Actor != "" {
		where = append(where, "actor = "+arg(q.Actor))
	}
	if q.Type != "" {
		where = append(where, "type = "+arg(string(q.Type)))
	}
	if q.Before > 0 {
		where = append(where, "id < "+arg(q.Before))
	}
	var b strings.Builder
	b.WriteString("SELECT id, type, at, actor, key_id, owner, changes, url FROM apikey_events")
	if len(where) > 0 {
		b.WriteString(" WHERE " + strings.Join(where, " AND "))
	}
	b.WriteString(" ORDER BY id DESC LIMIT " + arg(q.Limit))
	rows, err := s.pool.Query(ctx, b.String(), args...)
	if err != nil {
		return nil, mapErr("list events", err)
	}
	defer rows.Close()
	events := []*apikey.Event{}
	for rows.Next() {
		ev := new(apikey.Event)
		var (
			typ     string
			changes []byte
		)
		if err := rows.Scan(&ev.ID, &typ, &ev.At, &ev.Actor, &ev.KeyID, &ev.Owner, &changes, &ev.URL); err != nil {
			return nil, mapErr("list events", err)
		}
		ev.Type = apikey.EventType(typ)
		ev.At = ev.At.UTC()
		if err := json.Unmarshal(changes, &ev.Changes); err != nil {
			return nil, fmt.Errorf("postgres: list events: event %d: malformed changes: %w", ev.ID, err)
		}
		if len(ev.Changes) == 0 {
			ev.Changes = nil
		}
		events = append(events, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("list events", err)
	}
	return events, nil
}

// recordUsageSQL adds counts and moves last_used_at forward in one
// statement, hence one transaction and one round trip, whatever the size of
// the batch. Counts are summed per row first (ON CONFLICT cannot touch a row
// twice in one statement) and only for ids that exist. The caller sorts its
// arrays, so that concurrent flushes from several instances lock rows in
// the same order. The UPDATE writes last_used_at and prev_last_used_at (the
// entries under apikey.PreviousSubject ids) alone, which the invalidation
// trigger ignores; one UPDATE writes both, since a statement may not
// update a row twice.
const recordUsageSQL = `WITH counted AS (
	INSERT INTO apikey_usage AS u (key_id, bucket, outcome, count)
	SELECT c.key_id, c.bucket, c.outcome, sum(c.count)
	FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[]) AS c (key_id, bucket, outcome, count)
	WHERE EXISTS (SELECT 1 FROM ONLY apikey_keys k WHERE k.id = c.key_id)
	GROUP BY 1, 2, 3
	ORDER BY 1, 2, 3
	ON CONFLICT (key_id, bucket, outcome) DO UPDATE SET count = u.count + excluded.count
	RETURNING 1
), used AS (
	UPDATE ONLY apikey_keys k SET
		last_used_at = CASE WHEN l.at IS NOT NULL AND (k.last_used_at IS NULL OR k.last_used_at < l.at)
			THEN l.at ELSE k.last_used_at END,
		prev_last_used_at = CASE WHEN l.prev_at IS NOT NULL AND k.prev_hash IS NOT NULL
			AND (k.prev_last_used_at IS NULL OR k.prev_last_used_at < l.prev_at) THEN l.prev_at ELSE k.prev_last_used_at END
	FROM unnest($5::text[], $6::timestamptz[], $7::timestamptz[]) AS l (id, at, prev_at)
	WHERE k.id = l.id AND (l.at IS NOT NULL AND (k.last_used_at IS NULL OR k.last_used_at < l.at)
		OR l.prev_at IS NOT NULL AND k.prev_hash IS NOT NULL AND (k.prev_last_used_at IS NULL OR k.prev_last_used_at < l.prev_at))
	RETURNING 1
)
SELECT (SELECT count(*) FROM counted), (SELECT count(*) FROM used)`

// RecordUsage implements apikey.Store in one statement (see recordUsageSQL).
func (s *Store) RecordUsage(ctx context.Context, counts []apikey.UsageCount, lastUsed map[string]time.Time) error {
	if len(counts) == 0 && len(lastUsed) == 0 {
		return nil
	}
	sorted := slices.Clone(counts)
	slices.SortFunc(sorted, func(a, b apikey.UsageCount) int {
		if c := strings.Compare(a.KeyID, b.KeyID); c != 0 {
			return c
		}
		if c := a.Bucket.Compare(b.Bucket); c != 0 {
			return c
		}
		return strings.Compare(a.Outcome, b.Outcome)
	})
	ids := make([]string, len(sorted))
	buckets := make([]time.Time, len(sorted))
	outcomes := make([]string, len(sorted))
	ns := make([]int64, len(sorted))
	for i, c := range sorted {
		ids[i], buckets[i], outcomes[i], ns[i] = c.KeyID, timeArg(c.Bucket), c.Outcome, c.Count
	}
	type uses struct{ at, prev pgtype.Timestamptz }
	byID := map[string]*uses{}
	for id, t := range lastUsed {
		key, prev := strings.CutPrefix(id, apikey.PreviousSubject(""))
		u := byID[key]
		if u == nil {
			u = new(uses)
			byID[key] = u
		}
		if prev {
			u.prev = pgtype.Timestamptz{Time: timeArg(t), Valid: true}
		} else {
			u.at = pgtype.Timestamptz{Time: timeArg(t), Valid: true}
		}
	}
	usedIDs := slices.Sorted(maps.Keys(byID))
	usedAt := make([]pgtype.Timestamptz, len(usedIDs))
	prevAt := make([]pgtype.Timestamptz, len(usedIDs))
	for i, id := range usedIDs {
		usedAt[i], prevAt[i] = byID[id].at, byID[id].prev
	}
	var nc, nu int64
	err := s.pool.QueryRow(ctx, recordUsageSQL, ids, buckets, outcomes, ns, usedIDs, usedAt, prevAt).Scan(&nc, &nu)
	return mapErr("record usage", err)
}

// Usage implements apikey.Store.
func (s *Store) Usage(ctx context.Context, id string, from, to time.Time) ([]apikey.UsageCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT bucket, outcome, count FROM apikey_usage
	WHERE key_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket, outcome`,
		id, timeArg(from), timeArg(to))
	if err != nil {
		return nil, mapErr("usage", err)
	}
	defer rows.Close()
	out := []apikey.UsageCount{}
	for rows.Next() {
		c := apikey.UsageCount{KeyID: id}
		if err := rows.Scan(&c.Bucket, &c.Outcome, &c.Count); err != nil {
			return nil, mapErr("usage", err)
		}
		c.Bucket = c.Bucket.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr("usage", err)
	}
	return out, nil
}

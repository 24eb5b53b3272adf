package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/go-apikey/apikey"
)

var (
	_ apikey.ChangeFeed       = (*Store)(nil)
	_ apikey.InstanceRegistry = (*Store)(nil)
)

// ChangesAfter implements apikey.ChangeFeed over apikey_changes, which a
// trigger of migration 0005 fills on every change of a key, whichever
// client makes it. The trigger numbers the changes under a
// transaction-level advisory lock, so that the numbers follow commit
// order: a reader never finds, later, a change numbered below one it has
// read.
func (s *Store) ChangesAfter(ctx context.Context, seq int64, limit int) ([]apikey.KeyChange, error) {
	rows, err := s.pool.Query(ctx, `SELECT seq, op, key_id, at FROM apikey_changes WHERE seq > $1 ORDER BY seq LIMIT $2`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: changes after: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (apikey.KeyChange, error) {
		var c apikey.KeyChange
		err := row.Scan(&c.Seq, &c.Op, &c.KeyID, &c.At)
		c.At = c.At.UTC()
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: changes after: %w", err)
	}
	return out, nil
}

// LastChange implements apikey.ChangeFeed.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(seq), 0) FROM apikey_changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("postgres: last change: %w", err)
	}
	return seq, nil
}

// PruneChanges implements apikey.ChangeFeed: it deletes the changes
// recorded more than olderThan ago by the database's clock, but never the
// last one.
func (s *Store) PruneChanges(ctx context.Context, olderThan time.Duration) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM apikey_changes
		WHERE at < clock_timestamp() - make_interval(secs => $1) AND seq < (SELECT max(seq) FROM apikey_changes)`,
		olderThan.Seconds())
	if err != nil {
		return fmt.Errorf("postgres: prune changes: %w", err)
	}
	return nil
}

// PutInstance implements apikey.InstanceRegistry, by the database's clock.
func (s *Store) PutInstance(ctx context.Context, in apikey.Instance, ttl time.Duration) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO apikey_instances (id, name, started_at, heartbeat_at, live_until, acked_seq)
		SELECT $1, $2, now, now, now + make_interval(secs => $3), $4 FROM (SELECT clock_timestamp() AS now) t
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, heartbeat_at = excluded.heartbeat_at,
			live_until = excluded.live_until, acked_seq = excluded.acked_seq`,
		in.ID, in.Name, ttl.Seconds(), in.AckedSeq)
	if err != nil {
		return fmt.Errorf("postgres: put instance: %w", err)
	}
	return nil
}

// Instances implements apikey.InstanceRegistry, by the database's clock.
func (s *Store) Instances(ctx context.Context) ([]apikey.Instance, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, started_at, heartbeat_at, live_until, acked_seq
		FROM apikey_instances WHERE live_until > clock_timestamp() ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: instances: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (apikey.Instance, error) {
		var in apikey.Instance
		err := row.Scan(&in.ID, &in.Name, &in.StartedAt, &in.HeartbeatAt, &in.LiveUntil, &in.AckedSeq)
		in.StartedAt, in.HeartbeatAt, in.LiveUntil = in.StartedAt.UTC(), in.HeartbeatAt.UTC(), in.LiveUntil.UTC()
		return in, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: instances: %w", err)
	}
	return out, nil
}

// RemoveInstance implements apikey.InstanceRegistry.
func (s *Store) RemoveInstance(ctx context.Context, id string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM apikey_instances WHERE id = $1`, id); err != nil {
		return fmt.Errorf("postgres: remove instance: %w", err)
	}
	return nil
}

// PruneInstances implements apikey.InstanceRegistry.
func (s *Store) PruneInstances(ctx context.Context, expiredFor time.Duration) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM apikey_instances WHERE live_until < clock_timestamp() - make_interval(secs => $1)`,
		expiredFor.Seconds()); err != nil {
		return fmt.Errorf("postgres: prune instances: %w", err)
	}
	return nil
}

package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
)

var (
	_ apikey.ChangeFeed       = (*Store)(nil)
	_ apikey.InstanceRegistry = (*Store)(nil)
)

// ChangesAfter implements apikey.ChangeFeed over apikey_changes, which
// triggers of migration 0005 fill on every change of a key, whichever
// process or statement makes it. SQLite has one writer at a time, so the
// sequence numbers follow commit order.
func (s *Store) ChangesAfter(ctx context.Context, seq int64, limit int) ([]apikey.KeyChange, error) {
	rows, err := s.db.QueryContext(ctx,
		`SELECT seq, op, key_id, at FROM apikey_changes WHERE seq > ? ORDER BY seq LIMIT ?`, seq, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: changes after: %w", err)
	}
	defer rows.Close()
	var out []apikey.KeyChange
	for rows.Next() {
		var c apikey.KeyChange
		var at string
		if err := rows.Scan(&c.Seq, &c.Op, &c.KeyID, &at); err != nil {
			return nil, fmt.Errorf("sqlite: changes after: %w", err)
		}
		if c.At, err = parseTime(at); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: changes after: %w", err)
	}
	return out, nil
}

// LastChange implements apikey.ChangeFeed.
func (s *Store) LastChange(ctx context.Context) (int64, error) {
	var seq int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM apikey_changes`).Scan(&seq); err != nil {
		return 0, fmt.Errorf("sqlite: last change: %w", err)
	}
	return seq, nil
}

// PruneChanges implements apikey.ChangeFeed: it deletes the changes
// recorded more than olderThan ago, but never the last one.
func (s *Store) PruneChanges(ctx context.Context, olderThan time.Duration) error {
	_, err := s.execWrite(ctx,
		`DELETE FROM apikey_changes WHERE at < ? AND seq < (SELECT max(seq) FROM apikey_changes)`,
		formatTime(time.Now().Add(-olderThan)))
	if err != nil {
		return fmt.Errorf("sqlite: prune changes: %w", err)
	}
	return nil
}

// PutInstance implements apikey.InstanceRegistry. Times come from the
// clock of the calling process, which every process sharing the file
// shares.
func (s *Store) PutInstance(ctx context.Context, in apikey.Instance, ttl time.Duration) error {
	now := time.Now()
	_, err := s.execWrite(ctx, `INSERT INTO apikey_instances (id, name, started_at, heartbeat_at, live_until, acked_seq)
		VALUES (?1, ?2, ?3, ?3, ?4, ?5)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, heartbeat_at = excluded.heartbeat_at,
			live_until = excluded.live_until, acked_seq = excluded.acked_seq`,
		in.ID, in.Name, formatTime(now), formatTime(now.Add(ttl)), in.AckedSeq)
	if err != nil {
		return fmt.Errorf("sqlite: put instance: %w", err)
	}
	return nil
}

// Instances implements apikey.InstanceRegistry.
func (s *Store) Instances(ctx context.Context) ([]apikey.Instance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, started_at, heartbeat_at, live_until, acked_seq
		FROM apikey_instances WHERE live_until > ? ORDER BY name, id`, formatTime(time.Now()))
	if err != nil {
		return nil, fmt.Errorf("sqlite: instances: %w", err)
	}
	defer rows.Close()
	var out []apikey.Instance
	for rows.Next() {
		var in apikey.Instance
		var started, beat, until string
		if err := rows.Scan(&in.ID, &in.Name, &started, &beat, &until, &in.AckedSeq); err != nil {
			return nil, fmt.Errorf("sqlite: instances: %w", err)
		}
		for _, f := range []struct {
			dst *time.Time
			src string
		}{{&in.StartedAt, started}, {&in.HeartbeatAt, beat}, {&in.LiveUntil, until}} {
			if *f.dst, err = parseTime(f.src); err != nil {
				return nil, err
			}
		}
		out = append(out, in)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: instances: %w", err)
	}
	return out, nil
}

// RemoveInstance implements apikey.InstanceRegistry.
func (s *Store) RemoveInstance(ctx context.Context, id string) error {
	if _, err := s.execWrite(ctx, `DELETE FROM apikey_instances WHERE id = ?`, id); err != nil {
		return fmt.Errorf("sqlite: remove instance: %w", err)
	}
	return nil
}

// PruneInstances implements apikey.InstanceRegistry.
func (s *Store) PruneInstances(ctx context.Context, expiredFor time.Duration) error {
	if _, err := s.execWrite(ctx, `DELETE FROM apikey_instances WHERE live_until < ?`,
		formatTime(time.Now().Add(-expiredFor))); err != nil {
		return fmt.Errorf("sqlite: prune instances: %w", err)
	}
	return nil
}

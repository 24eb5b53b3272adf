package sqlite

import (
	"context"
	"fmt"
	"time"
)

// MigrationState is one embedded migration and whether the database has
// it.
type MigrationState struct {
	Version int    `json:"version"`
	Name    string `json:"name"` // the file name, such as 0001_create_keys.sql
	// AppliedAt is when it was applied; zero while it is pending.
	AppliedAt time.Time `json:"applied_at,omitzero"`
}

// Migrations returns every migration this package embeds, in order, with
// the time each was applied to the database, without changing anything:
// on a database never migrated, all are pending.
func (s *Store) Migrations(ctx context.Context) ([]MigrationState, error) {
	all, err := loadMigrations()
	if err != nil {
		return nil, err
	}
	var exists int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'apikey_migrations'`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("sqlite: migrations: %w", err)
	}
	applied := map[int]time.Time{}
	if exists > 0 {
		rows, err := s.db.QueryContext(ctx, `SELECT version, applied_at FROM apikey_migrations`)
		if err != nil {
			return nil, fmt.Errorf("sqlite: migrations: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var v int
			var at string
			if err := rows.Scan(&v, &at); err != nil {
				return nil, fmt.Errorf("sqlite: migrations: %w", err)
			}
			t, err := parseTime(at)
			if err != nil {
				return nil, err
			}
			applied[v] = t
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("sqlite: migrations: %w", err)
		}
	}
	out := make([]MigrationState, len(all))
	for i, m := range all {
		out[i] = MigrationState{Version: m.version, Name: m.name, AppliedAt: applied[m.version]}
	}
	return out, nil
}

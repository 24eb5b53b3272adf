package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
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
// the time each was applied to the current schema, without changing
// anything: on a schema never migrated, all are pending.
func (s *Store) Migrations(ctx context.Context) ([]MigrationState, error) {
	all, err := migrations()
	if err != nil {
		return nil, err
	}
	var exists bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_class
		WHERE relname = 'apikey_migrations' AND relnamespace = current_schema()::regnamespace)`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("postgres: migrations: %w", err)
	}
	applied := map[int]time.Time{}
	if exists {
		rows, err := s.pool.Query(ctx, `SELECT version, applied_at FROM apikey_migrations`)
		if err != nil {
			return nil, fmt.Errorf("postgres: migrations: %w", err)
		}
		var v int32
		var at time.Time
		if _, err := pgx.ForEachRow(rows, []any{&v, &at}, func() error {
			applied[int(v)] = at.UTC()
			return nil
		}); err != nil {
			return nil, fmt.Errorf("postgres: migrations: %w", err)
		}
	}
	out := make([]MigrationState, len(all))
	for i, m := range all {
		out[i] = MigrationState{Version: m.version, Name: m.name, AppliedAt: applied[m.version]}
	}
	return out, nil
}

package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded file, migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. The files are
// append-only: a released one is never edited, a change is a new file.
func migrations() ([]migration, error) {
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("postgres: migration %s is not named NNNN_name.sql", base)
		}
		b, err := migrationFS.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i := 1; i < len(out); i++ {
		if out[i].version == out[i-1].version {
			return nil, fmt.Errorf("postgres: migrations %s and %s share version %d", out[i-1].name, out[i].name, out[i].version)
		}
	}
	return out, nil
}

// Migrate brings the schema up to date: it creates the apikey_ tables in the
// connection's current schema (the first of its search_path) and applies,
// each in its own transaction, every embedded migration not yet recorded in
// apikey_migrations. It is idempotent, and safe to call from several
// processes at once: the whole run holds a session advisory lock specific to
// the schema, so one instance migrates while the others wait and then find
// nothing to do.
func (s *Store) Migrate(ctx context.Context) error {
	all, err := migrations()
	if err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Release()

	const lockKey = `hashtextextended('apikey_migrate:' || coalesce(current_schema(), ''), 0)`
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock("+lockKey+")"); err != nil {
		return fmt.Errorf("postgres: migrate: take the migration lock: %w", err)
	}
	defer func() {
		// Release with a fresh context: ctx may be the reason we are
		// leaving. If the unlock fails, close the connection so that the
		// pool does not reuse a session that still holds the lock.
		if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock("+lockKey+")"); err != nil {
			_ = conn.Conn().Close(context.WithoutCancel(ctx))
		}
	}()

	// A role that owns nothing and may not create tables (see Grant) can
	// run Migrate once the owner has: with nothing to apply, it issues no
	// DDL at all, not even CREATE TABLE IF NOT EXISTS, which PostgreSQL
	// refuses without the CREATE privilege on the schema.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class
		WHERE relname = 'apikey_migrations' AND relnamespace = current_schema()::regnamespace)`).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS apikey_migrations (
	version    integer PRIMARY KEY,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
			return fmt.Errorf("postgres: migrate: create apikey_migrations: %w", err)
		}
	}
	rows, err := conn.Query(ctx, "SELECT version FROM apikey_migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrate: read apikey_migrations: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: migrate: read apikey_migrations: %w", err)
	}
	for _, m := range all {
		if slices.Contains(applied, int32(m.version)) {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			// Without arguments, pgx sends the file as one simple query,
			// which may hold several statements.
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO apikey_migrations (version, applied_at) VALUES ($1, now())", m.version)
			return err
		})
		if err != nil {
			return fmt.Errorf("postgres: migrate: %s: %w", m.name, err)
		}
	}
	return nil
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// ErrIntegrity reports that the schema no longer holds what the migrations
// built: a trigger, table or index missing or changed, an unexpected
// trigger on an apikey_ table, a migration not applied. The error
// CheckIntegrity returns wraps it and names every problem found.
var ErrIntegrity = errors.New("sqlite: the apikey schema is not intact")

// schemaObject is one row of sqlite_master.
type schemaObject struct {
	typ, name, table, sql string
}

// schemaQuery reads the apikey_ objects of sqlite_master. SQLite keeps the
// text of each CREATE statement as it was issued, so two databases migrated
// with the same files hold the same text.
const schemaQuery = `SELECT type, name, tbl_name, coalesce(sql, '') FROM sqlite_master
	WHERE name LIKE 'apikey\_%' ESCAPE '\' OR tbl_name LIKE 'apikey\_%' ESCAPE '\'`

// expectedSchema returns the apikey_ objects of a fresh in-memory database
// migrated with the embedded migrations: what every migrated database must
// hold, by name.
var expectedSchema = sync.OnceValues(func() (map[string]schemaObject, error) {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // one connection, one in-memory database
	ctx := context.Background()
	if err := New(db).Migrate(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: check integrity: migrate a reference database: %w", err)
	}
	objs, err := readSchema(ctx, db)
	if err != nil {
		return nil, fmt.Errorf("sqlite: check integrity: %w", err)
	}
	return objs, nil
})

func readSchema(ctx context.Context, db *sql.DB) (map[string]schemaObject, error) {
	rows, err := db.QueryContext(ctx, schemaQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	objs := map[string]schemaObject{}
	for rows.Next() {
		var o schemaObject
		if err := rows.Scan(&o.typ, &o.name, &o.table, &o.sql); err != nil {
			return nil, err
		}
		if strings.HasPrefix(o.name, "sqlite_") {
			continue // automatic indexes: they follow from the table's text
		}
		objs[o.name] = o
	}
	return objs, rows.Err()
}

// CheckIntegrity verifies that the schema still enforces what the
// migrations built, and returns nil if it does. Otherwise the error wraps
// ErrIntegrity and names every problem: an embedded migration not applied;
// a trigger (those that keep revocation final, revoked ids taken, key ids
// fixed and the audit log append-only), table or index of the migrations
// missing or with a different CREATE statement in sqlite_master (so a
// check constraint dropped or a trigger narrowed shows); or a trigger on an
// apikey_ table that no migration created. Any other error means the check
// could not run.
//
// A database migrated by a newer release may report changes that release
// made on purpose.
func (s *Store) CheckIntegrity(ctx context.Context) error {
	all, err := loadMigrations()
	if err != nil {
		return err
	}
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	var haveTable bool
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'apikey_migrations')`).Scan(&haveTable); err != nil {
		return fmt.Errorf("sqlite: check integrity: %w", err)
	}
	if !haveTable {
		return fmt.Errorf("%w: the database has no apikey_migrations table: run apikey migrate", ErrIntegrity)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT version FROM apikey_migrations`)
	if err != nil {
		return fmt.Errorf("sqlite: check integrity: %w", err)
	}
	var applied []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("sqlite: check integrity: %w", err)
		}
		applied = append(applied, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: check integrity: %w", err)
	}
	for _, m := range all {
		if !slices.Contains(applied, m.version) {
			add("migration %s is not applied", m.name)
		}
	}
	if len(problems) > 0 {
		// The rest is checked against the state after every migration.
		return integrityError(problems)
	}

	want, err := expectedSchema()
	if err != nil {
		return err
	}
	got, err := readSchema(ctx, s.db)
	if err != nil {
		return fmt.Errorf("sqlite: check integrity: %w", err)
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		w := want[name]
		g, ok := got[name]
		switch {
		case !ok:
			add("%s %s is missing", w.typ, name)
		case g.typ != w.typ || g.table != w.table || g.sql != w.sql:
			add("%s %s was changed", w.typ, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if g := got[name]; g.typ == "trigger" && want[name].typ != "trigger" {
			add("unexpected trigger %s on %s", name, g.table)
		}
	}
	if len(problems) > 0 {
		return integrityError(problems)
	}
	return nil
}

func integrityError(problems []string) error {
	return fmt.Errorf("%w: %s", ErrIntegrity, strings.Join(problems, "; "))
}

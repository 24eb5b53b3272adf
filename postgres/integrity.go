package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// ErrIntegrity reports that the schema no longer holds what the migrations
// built: a guard trigger or constraint missing, changed or disabled, a
// table inheriting an apikey_ table, a migration not applied. The error
// CheckIntegrity returns wraps it and names every problem found.
var ErrIntegrity = errors.New("postgres: the apikey schema is not intact")

// guardedTables are the tables whose rules the database enforces.
// apikey_changes is among them: a rule, a policy or a child table there
// could hide changes from the caches that follow the feed.
var guardedTables = []string{"apikey_keys", "apikey_events", "apikey_revoked_ids", "apikey_changes", "apikey_owners"}

// trigger is one trigger the migrations create, as pg_get_triggerdef shows
// it with the table's schema left out.
type trigger struct {
	table, name, function, def string
}

// triggers are every trigger of the guarded tables, as the migrations
// leave them; all are ENABLE ALWAYS (0005, 0006, 0014, 0015).
var triggers = []trigger{
	{"apikey_keys", "apikey_keys_guard", "apikey_keys_guard",
		"CREATE TRIGGER apikey_keys_guard BEFORE UPDATE ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_guard()"},
	{"apikey_keys", "apikey_keys_guard_netenv", "apikey_keys_guard_netenv",
		"CREATE TRIGGER apikey_keys_guard_netenv BEFORE UPDATE OF environment, allowed_cidrs, inactivity_expiry ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_guard_netenv()"},
	{"apikey_keys", "apikey_keys_id_immutable", "apikey_keys_id_immutable",
		"CREATE TRIGGER apikey_keys_id_immutable BEFORE UPDATE OF id ON apikey_keys FOR EACH ROW WHEN ((new.id IS DISTINCT FROM old.id)) EXECUTE FUNCTION apikey_keys_id_immutable()"},
	{"apikey_keys", "apikey_keys_revoked_id_not_reused", "apikey_keys_revoked_id_not_reused",
		"CREATE TRIGGER apikey_keys_revoked_id_not_reused BEFORE INSERT ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_revoked_id_not_reused()"},
	{"apikey_keys", "apikey_keys_tombstone_revoked", "apikey_keys_tombstone",
		"CREATE TRIGGER apikey_keys_tombstone_revoked AFTER INSERT OR UPDATE OF revoked_at ON apikey_keys FOR EACH ROW WHEN ((new.revoked_at IS NOT NULL)) EXECUTE FUNCTION apikey_keys_tombstone()"},
	{"apikey_keys", "apikey_keys_tombstone_deleted", "apikey_keys_tombstone",
		"CREATE TRIGGER apikey_keys_tombstone_deleted AFTER DELETE ON apikey_keys FOR EACH ROW WHEN ((old.revoked_at IS NOT NULL)) EXECUTE FUNCTION apikey_keys_tombstone()"},
	{"apikey_keys", "apikey_keys_notify", "apikey_keys_notify",
		"CREATE TRIGGER apikey_keys_notify AFTER DELETE OR UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits, disabled_at, prev_hash, prev_started_at, prev_expires_at ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_notify()"},
	{"apikey_keys", "apikey_keys_revoked_not_disabled", "apikey_keys_revoked_not_disabled",
		"CREATE TRIGGER apikey_keys_revoked_not_disabled BEFORE UPDATE OF disabled_at ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_revoked_not_disabled()"},
	{"apikey_keys", "apikey_keys_notify_truncate", "apikey_keys_notify",
		"CREATE TRIGGER apikey_keys_notify_truncate AFTER TRUNCATE ON apikey_keys FOR EACH STATEMENT EXECUTE FUNCTION apikey_keys_notify()"},
	{"apikey_keys", "apikey_keys_log_change", "apikey_keys_log_change",
		"CREATE TRIGGER apikey_keys_log_change AFTER INSERT OR DELETE OR UPDATE OF id, prefix, name, owner, scopes, metadata, hash, created_at, expires_at, revoked_at, ratelimits, disabled_at, prev_hash, prev_started_at, prev_expires_at ON apikey_keys FOR EACH ROW EXECUTE FUNCTION apikey_keys_log_change()"},
	{"apikey_keys", "apikey_keys_notify_netenv", "apikey_keys_notify",
		"CREATE TRIGGER apikey_keys_notify_netenv AFTER UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys FOR EACH ROW WHEN (((old.allowed_cidrs IS DISTINCT FROM new.allowed_cidrs) OR (old.inactivity_expiry IS DISTINCT FROM new.inactivity_expiry))) EXECUTE FUNCTION apikey_keys_notify()"},
	{"apikey_keys", "apikey_keys_log_change_netenv", "apikey_keys_log_change",
		"CREATE TRIGGER apikey_keys_log_change_netenv AFTER UPDATE OF allowed_cidrs, inactivity_expiry ON apikey_keys FOR EACH ROW WHEN (((old.allowed_cidrs IS DISTINCT FROM new.allowed_cidrs) OR (old.inactivity_expiry IS DISTINCT FROM new.inactivity_expiry))) EXECUTE FUNCTION apikey_keys_log_change()"},
	{"apikey_keys", "apikey_keys_notify_credits", "apikey_keys_notify",
		"CREATE TRIGGER apikey_keys_notify_credits AFTER UPDATE OF credits_epoch ON apikey_keys FOR EACH ROW WHEN ((old.credits_epoch IS DISTINCT FROM new.credits_epoch)) EXECUTE FUNCTION apikey_keys_notify()"},
	{"apikey_keys", "apikey_keys_log_change_credits", "apikey_keys_log_change",
		"CREATE TRIGGER apikey_keys_log_change_credits AFTER UPDATE OF credits_epoch ON apikey_keys FOR EACH ROW WHEN ((old.credits_epoch IS DISTINCT FROM new.credits_epoch)) EXECUTE FUNCTION apikey_keys_log_change()"},
	{"apikey_keys", "apikey_keys_log_truncate", "apikey_keys_log_change",
		"CREATE TRIGGER apikey_keys_log_truncate AFTER TRUNCATE ON apikey_keys FOR EACH STATEMENT EXECUTE FUNCTION apikey_keys_log_change()"},
	{"apikey_owners", "apikey_owners_changed", "apikey_owners_changed",
		"CREATE TRIGGER apikey_owners_changed AFTER INSERT OR DELETE OR UPDATE OF id, ratelimits ON apikey_owners FOR EACH ROW EXECUTE FUNCTION apikey_owners_changed()"},
	{"apikey_owners", "apikey_owners_changed_credits", "apikey_owners_changed",
		"CREATE TRIGGER apikey_owners_changed_credits AFTER UPDATE OF credits_epoch ON apikey_owners FOR EACH ROW WHEN ((old.credits_epoch IS DISTINCT FROM new.credits_epoch)) EXECUTE FUNCTION apikey_owners_changed()"},
	{"apikey_events", "apikey_events_append_only", "apikey_events_append_only",
		"CREATE TRIGGER apikey_events_append_only BEFORE DELETE OR UPDATE ON apikey_events FOR EACH ROW EXECUTE FUNCTION apikey_events_append_only()"},
	{"apikey_events", "apikey_events_no_truncate", "apikey_events_append_only",
		"CREATE TRIGGER apikey_events_no_truncate BEFORE TRUNCATE ON apikey_events FOR EACH STATEMENT EXECUTE FUNCTION apikey_events_append_only()"},
	{"apikey_events", "apikey_events_outbox", "apikey_events_outbox",
		"CREATE TRIGGER apikey_events_outbox AFTER INSERT ON apikey_events FOR EACH ROW EXECUTE FUNCTION apikey_events_outbox()"},
	{"apikey_revoked_ids", "apikey_revoked_ids_append_only", "apikey_revoked_ids_append_only",
		"CREATE TRIGGER apikey_revoked_ids_append_only BEFORE DELETE OR UPDATE ON apikey_revoked_ids FOR EACH ROW EXECUTE FUNCTION apikey_revoked_ids_append_only()"},
	{"apikey_revoked_ids", "apikey_revoked_ids_no_truncate", "apikey_revoked_ids_append_only",
		"CREATE TRIGGER apikey_revoked_ids_no_truncate BEFORE TRUNCATE ON apikey_revoked_ids FOR EACH STATEMENT EXECUTE FUNCTION apikey_revoked_ids_append_only()"},
}

// pinnedSearchPath are the trigger functions that resolve
// apikey_revoked_ids (0004) or apikey_changes (0006) in their own schema
// whatever the caller's search_path.
var pinnedSearchPath = []string{"apikey_keys_tombstone", "apikey_keys_revoked_id_not_reused", "apikey_keys_log_change", "apikey_owners_changed",
	"apikey_events_outbox"}

// constraint is one constraint of a guarded table, as
// pg_get_constraintdef shows it.
type constraint struct {
	table, name, def string
}

var constraints = []constraint{
	{"apikey_keys", "apikey_keys_pkey", "PRIMARY KEY (id)"},
	{"apikey_events", "apikey_events_pkey", "PRIMARY KEY (id)"},
	{"apikey_revoked_ids", "apikey_revoked_ids_pkey", "PRIMARY KEY (id)"},
	{"apikey_events", "apikey_events_type_check", "CHECK ((type <> ''::text))"},
	{"apikey_events", "apikey_events_key_id_check", `CHECK ((key_id <> ''::text))`},
	{"apikey_changes", "apikey_changes_pkey", "PRIMARY KEY (seq)"},
	{"apikey_owners", "apikey_owners_pkey", "PRIMARY KEY (id)"},
	{"apikey_changes", "apikey_changes_op_check", "CHECK ((op = ANY (ARRAY['insert'::text, 'update'::text, 'delete'::text, 'truncate'::text])))"},
}

// functionBodies returns, per trigger function, the body its latest
// migration gives it: what pg_proc.prosrc must hold.
var functionBodies = sync.OnceValues(func() (map[string]string, error) {
	all, err := migrations()
	if err != nil {
		return nil, err
	}
	re := regexp.MustCompile(`(?is)CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(\w+)\s*\(\s*\)[^$]*?AS\s+\$\$(.*?)\$\$`)
	bodies := map[string]string{}
	for _, m := range all {
		for _, f := range re.FindAllStringSubmatch(m.sql, -1) {
			bodies[f[1]] = f[2]
		}
	}
	for _, tr := range triggers {
		if _, ok := bodies[tr.function]; !ok {
			return nil, fmt.Errorf("postgres: no migration defines the function %s()", tr.function)
		}
	}
	return bodies, nil
})

// CheckIntegrity verifies that the schema still enforces what the
// migrations built, and returns nil if it does. Otherwise the error wraps
// ErrIntegrity and names every problem: an embedded migration not applied;
// a trigger of apikey_keys, apikey_events or apikey_revoked_ids (those
// that fill the change log included) missing, changed, disabled or not
// ENABLE ALWAYS (an ordinary trigger does not fire in sessions with
// session_replication_role = replica); an unexpected trigger or rule on
// those tables or on apikey_changes; a trigger function whose body or
// pinned search_path changed; a primary key or check constraint missing,
// changed or not validated; row-level security turned on; or a table that
// inherits one of them, whose rows the triggers do not guard. Any other
// error means the check could not run.
//
// It only reads the catalogs and apikey_migrations, so a role that owns
// nothing can run it (see Grant). A database migrated by a newer release
// may report changes that release made on purpose.
func (s *Store) CheckIntegrity(ctx context.Context) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	all, err := migrations()
	if err != nil {
		return err
	}
	var schema, quoted string
	var haveTable bool
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(current_schema(), ''), coalesce(quote_ident(current_schema()), ''),
		EXISTS (SELECT 1 FROM pg_class WHERE relname = 'apikey_migrations' AND relnamespace = current_schema()::regnamespace)`).Scan(&schema, &quoted, &haveTable); err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	if !haveTable {
		return fmt.Errorf("%w: the schema %q has no apikey_migrations table: run apikey migrate", ErrIntegrity, schema)
	}
	rows, err := s.pool.Query(ctx, "SELECT version FROM apikey_migrations")
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	for _, m := range all {
		if !slices.Contains(applied, int32(m.version)) {
			add("migration %s is not applied", m.name)
		}
	}
	if len(problems) > 0 {
		// The rest is checked against the state after every migration.
		return integrityError(problems)
	}

	// Tables inheriting a guarded one: a SELECT without ONLY reads their
	// rows, which no trigger guards.
	rows, err = s.pool.Query(ctx, `SELECT p.relname, c.oid::regclass::text
		FROM pg_inherits i
		JOIN pg_class p ON p.oid = i.inhparent
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE p.relnamespace = current_schema()::regnamespace AND p.relname = ANY ($1)
		ORDER BY 1, 2`, guardedTables)
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	if err := forEach(rows, func(parent, child string) {
		add("table %s inherits %s: its rows bypass the triggers", child, parent)
	}); err != nil {
		return err
	}

	// Triggers.
	bodies, err := functionBodies()
	if err != nil {
		return err
	}
	type found struct {
		table, def, function, body string
		enabled                    byte
		config                     []string
		inSchema                   bool
	}
	got := map[string]found{}
	rows, err = s.pool.Query(ctx, `SELECT c.relname, t.tgname, t.tgenabled::text,
			replace(pg_get_triggerdef(t.oid), ' ON ' || quote_ident(n.nspname) || '.', ' ON '),
			f.proname, f.prosrc, coalesce(f.proconfig, '{}'), f.pronamespace = c.relnamespace
		FROM pg_trigger t
		JOIN pg_class c ON c.oid = t.tgrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_proc f ON f.oid = t.tgfoid
		WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace AND c.relname = ANY ($1)`, guardedTables)
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	for rows.Next() {
		var f found
		var name, enabled string
		if err := rows.Scan(&f.table, &name, &enabled, &f.def, &f.function, &f.body, &f.config, &f.inSchema); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: check integrity: %w", err)
		}
		f.enabled = enabled[0]
		got[name] = f
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	wantSearchPath := "search_path=" + quoted + ", pg_temp"
	for _, tr := range triggers {
		f, ok := got[tr.name]
		delete(got, tr.name)
		switch {
		case !ok:
			add("trigger %s on %s is missing", tr.name, tr.table)
			continue
		case f.table != tr.table || f.def != tr.def:
			add("trigger %s on %s was changed: %s", tr.name, tr.table, f.def)
			continue
		}
		switch f.enabled {
		case 'A':
		case 'D':
			add("trigger %s on %s is disabled", tr.name, tr.table)
		case 'O':
			add("trigger %s on %s is not ENABLE ALWAYS: sessions with session_replication_role = replica skip it", tr.name, tr.table)
		default:
			add("trigger %s on %s fires only for replica sessions", tr.name, tr.table)
		}
		if !f.inSchema || f.body != bodies[tr.function] {
			add("function %s() of trigger %s was changed", tr.function, tr.name)
		}
		if slices.Contains(pinnedSearchPath, tr.function) && !slices.Contains(f.config, wantSearchPath) {
			add("function %s() no longer pins its search_path (%s)", tr.function, wantSearchPath)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		add("unexpected trigger %s on %s", name, got[name].table)
	}

	// Rules rewrite statements before any trigger sees them.
	rows, err = s.pool.Query(ctx, `SELECT tablename::text, rulename::text FROM pg_rules
		WHERE schemaname = current_schema() AND tablename = ANY ($1) ORDER BY 1, 2`, guardedTables)
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	if err := forEach(rows, func(table, rule string) {
		add("rule %s on %s rewrites its statements", rule, table)
	}); err != nil {
		return err
	}

	// Row-level security could hide rows from, or silently skip, the
	// store's statements.
	rows, err = s.pool.Query(ctx, `SELECT relname::text, '' FROM pg_class
		WHERE relnamespace = current_schema()::regnamespace AND relname = ANY ($1) AND (relrowsecurity OR relforcerowsecurity)
		ORDER BY 1`, guardedTables)
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	if err := forEach(rows, func(table, _ string) {
		add("row-level security is enabled on %s", table)
	}); err != nil {
		return err
	}

	// Constraints.
	type con struct {
		def       string
		validated bool
	}
	cons := map[string]con{}
	rows, err = s.pool.Query(ctx, `SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid), k.convalidated
		FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY ($1)`, guardedTables)
	if err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	for rows.Next() {
		var name string
		var c con
		if err := rows.Scan(&name, &c.def, &c.validated); err != nil {
			rows.Close()
			return fmt.Errorf("postgres: check integrity: %w", err)
		}
		cons[name] = c
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	for _, want := range constraints {
		c, ok := cons[want.table+"."+want.name]
		switch {
		case !ok:
			add("constraint %s on %s is missing", want.name, want.table)
		case !c.validated:
			add("constraint %s on %s is not validated", want.name, want.table)
		case c.def != want.def:
			add("constraint %s on %s was changed: %s", want.name, want.table, c.def)
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

// forEach calls fn with the two text columns of every row.
func forEach(rows pgx.Rows, fn func(a, b string)) error {
	defer rows.Close()
	for rows.Next() {
		var a, b string
		if err := rows.Scan(&a, &b); err != nil {
			return fmt.Errorf("postgres: check integrity: %w", err)
		}
		fn(a, b)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres: check integrity: %w", err)
	}
	return nil
}

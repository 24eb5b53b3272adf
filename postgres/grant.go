package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// grants are the privileges the apikey service needs, table by table, and
// no more. Without UPDATE or DELETE on apikey_events and apikey_revoked_ids,
// without TRUNCATE or TRIGGER anywhere, and owning nothing, the role cannot
// rewrite the audit log, drop a tombstone, or drop, disable or replace a
// trigger; the triggers refuse what its UPDATE and DELETE on apikey_keys
// could otherwise undo (a revocation, a key id).
var grants = []struct{ privileges, table string }{
	{"SELECT", "apikey_migrations"},
	{"SELECT, INSERT, UPDATE, DELETE", "apikey_keys"},
	{"SELECT, INSERT", "apikey_events"},
	{"SELECT, INSERT", "apikey_revoked_ids"},
	{"SELECT, INSERT, UPDATE", "apikey_usage"},
	{"SELECT, INSERT", "apikey_admin_users"},
	{"SELECT, INSERT, UPDATE, DELETE", "apikey_admin_sessions"},
	{"SELECT, INSERT, DELETE", "apikey_changes"},
	{"SELECT, INSERT, UPDATE, DELETE", "apikey_instances"},
	{"SELECT, INSERT", "apikey_leaks"},
	{"SELECT, INSERT, UPDATE, DELETE", "apikey_webhook_endpoints"},
	{"SELECT, INSERT, UPDATE, DELETE", "apikey_webhook_deliveries"},
	{"SELECT, INSERT, DELETE", "apikey_webhook_attempts"},
	{"SELECT, INSERT, UPDATE", "apikey_occurrences"},
}

// GrantStatements returns the GRANT statements that Grant runs for role on
// the apikey_ tables of schema, for a DBA to review or run by hand.
func GrantStatements(schema, role string) []string {
	r := pgx.Identifier{role}.Sanitize()
	sc := pgx.Identifier{schema}.Sanitize()
	out := []string{"GRANT USAGE ON SCHEMA " + sc + " TO " + r}
	for _, g := range grants {
		out = append(out, "GRANT "+g.privileges+" ON TABLE "+sc+"."+pgx.Identifier{g.table}.Sanitize()+" TO "+r)
	}
	return out
}

// Grant lets role, an existing role that owns nothing, run the apikey
// service on the schema the Store works in: verify, create, change,
// revoke, roll and delete keys, append to the audit log, count usage,
// record leaks, run the admin site, follow the change feed and register as
// an instance (apikey_changes, which it may prune, and apikey_instances),
// and Migrate and CheckIntegrity once the owner has
// migrated. It runs GrantStatements in one transaction, as the owner of the
// tables, after Migrate. It refuses a superuser or the owner of the tables,
// whom no GRANT restricts. Grant adds privileges and revokes none: a role
// that already holds more keeps them.
func (s *Store) Grant(ctx context.Context, role string) error {
	if role == "" {
		return errors.New("postgres: grant: empty role name")
	}
	var schema string
	var super, owner, found bool
	err := s.pool.QueryRow(ctx, `SELECT coalesce(current_schema(), ''), r.rolsuper,
		EXISTS (SELECT 1 FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace
			AND c.relname LIKE 'apikey\_%' AND pg_has_role(r.oid, c.relowner, 'USAGE')), true
		FROM pg_roles r WHERE r.rolname = $1`, role).Scan(&schema, &super, &owner, &found)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("postgres: grant: there is no role %q: create it first (CREATE ROLE ... LOGIN)", role)
	case err != nil:
		return fmt.Errorf("postgres: grant: %w", err)
	case super:
		return fmt.Errorf("postgres: grant: role %q is a superuser: no privilege limits it", role)
	case owner:
		return fmt.Errorf("postgres: grant: role %q owns (or is a member of the owner of) apikey_ tables in %q: it could drop or disable their triggers", role, schema)
	case schema == "":
		return errors.New("postgres: grant: no current schema: check search_path")
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, q := range GrantStatements(schema, role) {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: grant: %w", err)
	}
	return nil
}

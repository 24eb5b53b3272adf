package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey/postgres"
)

func init() { register(newMigrateCommand) }

func newMigrateCommand(a *app) *cobra.Command {
	var check bool
	var grant string
	cmd := &cobra.Command{
		Use:   "migrate [--check | --grant ROLE]",
		Short: "Create or upgrade the database tables, and check them",
		Long: `Apply the migrations the database lacks (tables prefixed apikey_), then
check that the database still enforces its rules: the triggers that keep
revocation final, revoked ids taken for good and the audit log append-only,
and the constraints they rely on, are present, unchanged and enabled
(PostgreSQL: ENABLE ALWAYS, so that session_replication_role = replica
does not switch them off; no table inherits an apikey_ table). Every other
command that uses the database migrates first as well; run migrate on its
own to prepare a database, say as a deployment step.

--check applies nothing and only checks, as a role that owns nothing can.
A database that fails the check is named with everything wrong with it,
and the exit status is 2.

--grant ROLE (PostgreSQL) also grants ROLE, an existing role that owns
nothing, the privileges apikey serve and the other commands need on the
tables of the current schema, and no more: run migrate --grant as the
owner of the tables, then the service as ROLE. The statements are printed.`,
		Example: `  apikey migrate
  apikey migrate --check
  apikey migrate --db postgres://owner@db/app --grant apikey_service`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check && cmd.Flags().Changed("grant") {
				return usagef("--check and --grant cannot be combined: --check changes nothing")
			}
			if cmd.Flags().Changed("grant") && strings.TrimSpace(grant) == "" {
				return usagef("--grant needs a role name")
			}
			ctx := cmd.Context()
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			var pg *postgres.Store
			if grant != "" {
				var ok bool
				if pg, ok = db.store.(*postgres.Store); !ok {
					return usagef("--grant needs a PostgreSQL database: SQLite has no roles")
				}
			}
			if !check {
				if err := db.migrate(ctx); err != nil {
					return err
				}
			}
			if err := db.checkIntegrity(ctx); err != nil {
				return err
			}
			if pg != nil {
				if err := pg.Grant(ctx, grant); err != nil {
					return err
				}
				var schema string
				if err := pg.Pool().QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
					return fmt.Errorf("cannot read the current schema: %w", err)
				}
				for _, q := range postgres.GrantStatements(schema, grant) {
					if _, err := fmt.Fprintln(a.stdout, q+";"); err != nil {
						return err
					}
				}
			}
			verb := "up to date"
			if check {
				verb = "intact"
			}
			_, err = fmt.Fprintf(a.stdout, "%s database is %s\n", db.loc.driver, verb)
			return err
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "only check the database, applying nothing")
	cmd.Flags().StringVar(&grant, "grant", "", "PostgreSQL: grant ROLE what the service needs, and no more")
	return cmd
}

// checkIntegrity reports, as exit status 2, a database whose rules are
// broken.
func (db *database) checkIntegrity(ctx context.Context) error {
	if err := db.store.CheckIntegrity(ctx); err != nil {
		return &codedError{code: exitTrouble, err: fmt.Errorf("the %s database failed its integrity check: %w", db.loc.driver, err)}
	}
	return nil
}

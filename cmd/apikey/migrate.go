package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey/postgres"
	"github.com/go-apikey/apikey/sqlite"
)

func init() { register(newMigrateCommand) }

func newMigrateCommand(a *app) *cobra.Command {
	var check, status, asJSON bool
	var grant string
	cmd := &cobra.Command{
		Use:   "migrate [--check | --status | --grant ROLE] [--json]",
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
owner of the tables, then the service as ROLE. The statements are printed.

Each migration applied is printed ("applied 0001_create_keys.sql"), then
the state of the database. --status lists every migration of this version
of apikey with the time it was applied, or pending, and applies nothing.

--json prints one object instead: {"driver", "applied": [names applied by
this run], "migrations": [{"version", "name", "applied_at"}], "integrity":
"intact", "grants": [statements]}.`,
		Example: `  apikey migrate
  apikey migrate --check
  apikey migrate --status
  apikey migrate --db postgres://owner@db/app --grant apikey_service`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if check && cmd.Flags().Changed("grant") {
				return usagef("--check and --grant cannot be combined: --check changes nothing")
			}
			if status && (check || cmd.Flags().Changed("grant")) {
				return usagef("--status cannot be combined with --check or --grant: it only lists the migrations")
			}
			if cmd.Flags().Changed("grant") && strings.TrimSpace(grant) == "" {
				return usagef("--grant needs a role name")
			}
			ctx := cmd.Context()
			db, err := a.openDB(ctx)
			if err != nil {
				return err
			}
			out := migrateReport{Driver: db.loc.driver, Applied: []string{}}
			before, err := db.migrations(ctx)
			if err != nil {
				return err
			}
			if status {
				out.Migrations = before
				if asJSON {
					return writeJSON(a.stdout, out)
				}
				return writeMigrations(a.stdout, before)
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
			after, err := db.migrations(ctx)
			if err != nil {
				return err
			}
			out.Migrations = after
			for i, m := range after {
				if !m.AppliedAt.IsZero() && before[i].AppliedAt.IsZero() {
					out.Applied = append(out.Applied, m.Name)
				}
			}
			if !asJSON {
				for _, name := range out.Applied {
					if _, err := fmt.Fprintf(a.stdout, "applied %s\n", name); err != nil {
						return err
					}
				}
			}
			if err := db.checkIntegrity(ctx); err != nil {
				return err
			}
			out.Integrity = "intact"
			if pg != nil {
				if err := pg.Grant(ctx, grant); err != nil {
					return err
				}
				var schema string
				if err := pg.Pool().QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
					return fmt.Errorf("cannot read the current schema: %w", err)
				}
				for _, q := range postgres.GrantStatements(schema, grant) {
					out.Grants = append(out.Grants, q+";")
					if asJSON {
						continue
					}
					if _, err := fmt.Fprintln(a.stdout, q+";"); err != nil {
						return err
					}
				}
			}
			if asJSON {
				return writeJSON(a.stdout, out)
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
	cmd.Flags().BoolVar(&status, "status", false, "list the migrations, applied or pending, and apply nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (see above)")
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

// migrationState is one migration of the database's backend.
type migrationState struct {
	Version   int       `json:"version"`
	Name      string    `json:"name"`
	AppliedAt time.Time `json:"applied_at,omitzero"` // zero: pending
}

// migrateReport is the JSON of "apikey migrate --json".
type migrateReport struct {
	Driver     string           `json:"driver"`
	Applied    []string         `json:"applied"`
	Migrations []migrationState `json:"migrations"`
	Integrity  string           `json:"integrity,omitempty"`
	Grants     []string         `json:"grants,omitempty"`
}

// migrations lists the migrations of the backend, applied or pending.
func (db *database) migrations(ctx context.Context) ([]migrationState, error) {
	var out []migrationState
	switch s := db.store.(type) {
	case *sqlite.Store:
		ms, err := s.Migrations(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot read the migrations of the database: %w", err)
		}
		for _, m := range ms {
			out = append(out, migrationState{m.Version, m.Name, m.AppliedAt})
		}
	case *postgres.Store:
		ms, err := s.Migrations(ctx)
		if err != nil {
			return nil, fmt.Errorf("cannot read the migrations of the database: %w", err)
		}
		for _, m := range ms {
			out = append(out, migrationState{m.Version, m.Name, m.AppliedAt})
		}
	}
	return out, nil
}

// writeMigrations prints the migrations as a table.
func writeMigrations(w io.Writer, ms []migrationState) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tMIGRATION\tAPPLIED")
	pending := 0
	for _, m := range ms {
		at := "pending"
		if !m.AppliedAt.IsZero() {
			at = formatTime(&m.AppliedAt, "-")
		} else {
			pending++
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", m.Version, m.Name, at)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d migrations, %d pending\n", len(ms), pending)
	return err
}

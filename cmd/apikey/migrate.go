package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newMigrateCommand) }

func newMigrateCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database tables",
		Long: `Apply the migrations the database lacks (tables prefixed apikey_). Every
other command that uses the database does this first as well; run migrate on
its own to prepare a database, say as a deployment step.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := a.openDB(cmd.Context())
			if err != nil {
				return err
			}
			if err := db.migrate(cmd.Context()); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "%s database is up to date\n", db.loc.driver)
			return err
		},
	}
}

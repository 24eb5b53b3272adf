package main

import (
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newRevokeCommand) }

func newRevokeCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key, for ever",
		Long: `Revoke a key. Verification refuses it from now on, and nothing can undo
this: not the CLI, not the library, not SQL against the database. Revoking a
revoked key changes nothing and succeeds.`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := a.onKey(cmd.Context(), args[0], (*apikey.Manager).Revoke)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, k)
			}
			_, err = fmt.Fprintf(a.stdout, "revoked: %s (%s) at %s\n", k.ID, k.Name, formatTime(k.RevokedAt, "-"))
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the key as JSON")
	return cmd
}

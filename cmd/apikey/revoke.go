package main

import (
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newRevokeCommand) }

func newRevokeCommand(a *app) *cobra.Command {
	var asJSON, strict bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key, for ever",
		Long: `Revoke a key. Verification refuses it from now on, and nothing can undo
this: not the CLI, not the library, not SQL against the database. Revoking a
revoked key changes nothing and succeeds.

Running servers (apikey serve) see the revocation within their poll interval
(250ms by default), or at once over PostgreSQL or Redis. With --strict (or
APIKEY_STRICT_REVOCATION=true) the command returns only once every live
server recorded in the database has applied it, and says how many; after 3
seconds it gives up, names the servers that had not, and exits with status
2 (the key is revoked all the same; those servers stop trusting their
caches within a second).`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.strictChange(cmd, args[0], strict, asJSON, (*apikey.Manager).Revoke, func(k *apikey.Key) error {
				if asJSON {
					return writeJSON(a.stdout, k)
				}
				_, err := fmt.Fprintf(a.stdout, "revoked: %s (%s) at %s\n", k.ID, k.Name, formatTime(k.RevokedAt, "-"))
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the key as JSON")
	addStrictFlag(cmd, &strict)
	return cmd
}

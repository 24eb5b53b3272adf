package main

import (
	"context"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newRollCommand) }

func newRollCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "roll ID",
		Short: "Replace the secret of a key and print the new key, once",
		Long: `Replace the secret of a key, as POST /v1/keys/{id}/roll does: the id, name,
scopes and every other field stay, the old key stops verifying at once, and
the new key is printed this once. A revoked key cannot be rolled (exit
status 1).

The new key alone goes to standard output; a note goes to standard error.
With --json, standard output gets {"key": "...", "id": ...}, as create.`,
		Example: `  NEW=$(apikey roll 3fZ9q0LmA1bc)
  apikey roll 3fZ9q0LmA1bc --json`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var token string
			k, err := a.onKey(cmd.Context(), args[0], func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
				k, t, err := m.Roll(ctx, id)
				token = t
				return k, err
			})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, apikey.IssuedKey{Token: token, Key: k})
			}
			if _, err := fmt.Fprintln(a.stdout, token); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Rolled key %s (%s): the old key no longer verifies. Store the new key now: it will not be shown again.\n", k.ID, k.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"key": "...", "id": ..., ...}`)
	return cmd
}

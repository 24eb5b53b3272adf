package main

import (
	"context"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newDeleteCommand) }

func newDeleteCommand(a *app) *cobra.Command {
	var strict, asJSON bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a key and its record",
		Long: `Delete a key for good: unlike revoke, it leaves no record, and the key then
verifies as an unknown one. Prefer revoke to keep the history. --strict
works as for revoke. With --json, prints {"id": "...", "deleted": true}.`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			del := func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
				return nil, m.Delete(ctx, id)
			}
			return a.strictChange(cmd, id, strict, asJSON, del, func(*apikey.Key) error {
				if asJSON {
					return writeJSON(a.stdout, map[string]any{"id": id, "deleted": true})
				}
				_, err := fmt.Fprintf(a.stdout, "deleted: %s\n", id)
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"id": "...", "deleted": true}`)
	addStrictFlag(cmd, &strict)
	return cmd
}

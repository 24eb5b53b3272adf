package main

import (
	"context"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newDeleteCommand) }

func newDeleteCommand(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a key and its record",
		Long: `Delete a key for good: unlike revoke, it leaves no record, and the key then
verifies as an unknown one. Prefer revoke to keep the history.`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			_, err := a.onKey(cmd.Context(), id, func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
				return nil, m.Delete(ctx, id)
			})
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "deleted: %s\n", id)
			return err
		},
	}
}

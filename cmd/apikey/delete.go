package main

import (
	"fmt"

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
			if err := checkID(id); err != nil {
				return err
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			if err := m.Delete(cmd.Context(), id); err != nil {
				return keyError(err, id)
			}
			_, err = fmt.Fprintf(a.stdout, "deleted: %s\n", id)
			return err
		},
	}
}

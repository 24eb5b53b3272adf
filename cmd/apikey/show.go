package main

import (
	"github.com/spf13/cobra"
)

func init() { register(newShowCommand) }

func newShowCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one key",
		Args:  oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkID(id); err != nil {
				return err
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			k, err := m.Get(cmd.Context(), id)
			if err != nil {
				return keyError(err, id)
			}
			if asJSON {
				return writeJSON(a.stdout, tidy(k))
			}
			return writeKey(a.stdout, k)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

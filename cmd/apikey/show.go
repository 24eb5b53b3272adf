package main

import (
	"github.com/go-apikey/apikey"
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
			k, err := a.onKey(cmd.Context(), args[0], (*apikey.Manager).Get)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, k)
			}
			return writeKey(a.stdout, k, a.idle)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

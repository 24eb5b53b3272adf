package main

import (
	"context"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() {
	register(func(a *app) *cobra.Command { return newDisableCommand(a, true) })
	register(func(a *app) *cobra.Command { return newDisableCommand(a, false) })
}

// newDisableCommand returns apikey disable, or apikey enable when disable
// is false.
func newDisableCommand(a *app, disable bool) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "disable ID",
		Short: "Stop a key until it is enabled again",
		Long: `Disable a key, as POST /v1/keys/{id}/disable does: verification refuses it
(403 key_disabled over HTTP) until apikey enable ID. Unlike revoke, this
can be undone. Disabling a disabled key changes nothing and succeeds; a
revoked key can be neither disabled nor enabled (exit status 1). Running
servers see the change as they see a revocation.`,
		Example: `  apikey disable 3fZ9q0LmA1bc
  apikey enable 3fZ9q0LmA1bc --json`,
		Args: oneArg("a key id"),
	}
	act, verb := (*apikey.Manager).Disable, "disabled"
	if !disable {
		cmd.Use, cmd.Short = "enable ID", "Let a disabled key verify again"
		cmd.Long = `Enable a disabled key, as POST /v1/keys/{id}/enable does: it verifies again.
Enabling a key that is not disabled changes nothing and succeeds; a revoked
key cannot be enabled (exit status 1).`
		cmd.Example = `  apikey enable 3fZ9q0LmA1bc`
		act, verb = (*apikey.Manager).Enable, "enabled"
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		k, err := a.onKey(cmd.Context(), args[0], func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
			return act(m, ctx, id)
		})
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSON(a.stdout, k)
		}
		_, err = fmt.Fprintf(a.stdout, "%s: %s (%s), state %s\n", verb, k.ID, k.Name, k.State)
		return err
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the key as JSON")
	return cmd
}

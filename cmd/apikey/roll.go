package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newRollCommand) }

func newRollCommand(a *app) *cobra.Command {
	var (
		asJSON                       bool
		grace, graceStarts, graceMax string
	)
	cmd := &cobra.Command{
		Use:   "roll ID",
		Short: "Replace the secret of a key and print the new key, once",
		Long: `Replace the secret of a key, as POST /v1/keys/{id}/roll does: the id, name,
scopes and every other field stay, and the new key is printed this once. A
revoked key cannot be rolled (exit status 1).

Without --grace the old key stops verifying at once. With --grace it keeps
verifying for that long once the grace window starts: by default when the
new key is first used (--grace-starts first_use), so that clients that
have not switched yet keep working; or at once (--grace-starts now). The
old key stops at the latest --grace-max after the roll (default 7d, or the
grace when longer) whatever happens. Rolling again drops any older key;
revoking ends both. apikey show ID tells whether the old key is still used.

The new key alone goes to standard output; a note goes to standard error.
With --json, standard output gets {"key": "...", "id": ...}, as create.`,
		Example: `  NEW=$(apikey roll 3fZ9q0LmA1bc)
  apikey roll 3fZ9q0LmA1bc --grace 1h
  apikey roll 3fZ9q0LmA1bc --grace 30m --grace-starts now --json`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := rollOptions(cmd, grace, graceStarts, graceMax)
			if err != nil {
				return err
			}
			var token string
			k, err := a.onKey(cmd.Context(), args[0], func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
				k, t, err := m.Roll(ctx, id, opts)
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
			if p := k.PreviousSecret; p != nil {
				when := "from the first use of the new key"
				if p.GraceStarts == apikey.GraceNow {
					when = "from now"
				}
				fmt.Fprintf(a.stderr, "Rolled key %s (%s): the old key keeps verifying for %s %s, and at the latest until %s. Store the new key now: it will not be shown again.\n",
					k.ID, k.Name, apikey.FormatGrace(p.Grace), when, formatTime(&p.ExpiresAt, "-"))
				return nil
			}
			fmt.Fprintf(a.stderr, "Rolled key %s (%s): the old key no longer verifies. Store the new key now: it will not be shown again.\n", k.ID, k.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"key": "...", "id": ..., ...}`)
	cmd.Flags().StringVar(&grace, "grace", "", "keep the old key verifying this long once the window starts (90s, 1h, 7d)")
	cmd.Flags().StringVar(&graceStarts, "grace-starts", "", "when the window starts: first_use (default) or now")
	cmd.Flags().StringVar(&graceMax, "grace-max", "", "stop the old key this long after the roll whatever happens (default 7d)")
	return cmd
}

// rollOptions reads the grace flags of roll, or returns a usage error that
// names the flag.
func rollOptions(cmd *cobra.Command, grace, starts, graceMax string) (apikey.RollOptions, error) {
	var o apikey.RollOptions
	flags := map[string]string{"grace": "--grace", "grace_starts": "--grace-starts", "grace_max": "--grace-max"}
	bad := func(err error) error {
		var ve *apikey.ValidationError
		if errors.As(err, &ve) {
			return usagef("invalid %s: %s", flags[ve.Field], ve.Reason)
		}
		return usageError(err)
	}
	var err error
	if cmd.Flags().Changed("grace") {
		if o.Grace, err = apikey.ParseGrace("grace", grace); err != nil {
			return o, bad(err)
		}
	}
	if cmd.Flags().Changed("grace-starts") {
		o.GraceStarts = apikey.GraceStart(starts)
		if o.GraceStarts != apikey.GraceFirstUse && o.GraceStarts != apikey.GraceNow {
			return o, usagef("invalid --grace-starts %q: want first_use or now", starts)
		}
	}
	if cmd.Flags().Changed("grace-max") {
		if o.GraceMax, err = apikey.ParseGrace("grace_max", graceMax); err != nil {
			return o, bad(err)
		}
	}
	if _, err := o.Check(); err != nil {
		return o, bad(err)
	}
	return o, nil
}

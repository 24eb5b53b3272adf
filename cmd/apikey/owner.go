package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newOwnerCommand) }

func newOwnerCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "owner show|set|credits|delete OWNER ...",
		Short: "Show or change the rate limits and credits shared by an owner's keys",
		Long: `An owner (the --owner of its keys: a user, a team, an organisation) can have
rate limits and a balance of credits of its own, shared by all its keys: a
request must pass the limits of its key and of the key's owner, and spends
from both balances.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("owner needs a subcommand: show, set, credits or delete")
			}
			return usagef("unknown owner subcommand %q: want show, set, credits or delete", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newOwnerShowCommand(a), newOwnerSetCommand(a), newOwnerCreditsCommand(a), newOwnerDeleteCommand(a))
	return cmd
}

func newOwnerShowCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show OWNER",
		Short: "Show the rate limits and credits of an owner",
		Args:  oneArg("an owner"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			o, err := m.Owner(cmd.Context(), args[0])
			if err != nil {
				return ownerError(err, args[0])
			}
			if asJSON {
				return writeJSON(a.stdout, o)
			}
			return writeOwner(a, o)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOwnerSetCommand(a *app) *cobra.Command {
	var (
		lf     limitFlags
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "set OWNER [--ratelimit ...] [--credits N] [--refill SPEC] [--clear-ratelimits] [--clear-credits]",
		Short: "Change the rate limits or credits of an owner",
		Long: `Change the record of an owner; only the flags given change anything.
--ratelimit replaces the whole set of limits with those given.

` + limitsHelp,
		Example: `  apikey owner set acme --ratelimit requests=1000/1m --credits 100000 --refill monthly:1
  apikey owner set acme --clear-credits`,
		Args: oneArg("an owner"),
		RunE: func(cmd *cobra.Command, args []string) error {
			owner := args[0]
			if !cmd.Flags().Changed("ratelimit") && !cmd.Flags().Changed("credits") && !cmd.Flags().Changed("refill") &&
				!lf.clearLimits && !lf.clearCredits {
				return usagef("owner set changes nothing: give --ratelimit, --clear-ratelimits, --credits, --refill or --clear-credits")
			}
			var current *apikey.Credits
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			if lf.needsCurrent(cmd) {
				o, err := m.Owner(cmd.Context(), owner)
				switch {
				case err == nil:
					current = o.Credits
				case !errors.Is(err, apikey.ErrNotFound):
					return err
				}
			}
			limits, credits, clear, err := lf.read(cmd, current)
			if err != nil {
				return err
			}
			o, err := m.SetOwner(cmd.Context(), owner, apikey.OwnerUpdate{RateLimits: limits, Credits: credits, ClearCredits: clear})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, o)
			}
			return writeOwner(a, o)
		},
	}
	lf.register(cmd, true)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOwnerCreditsCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "credits OWNER set AMOUNT | add AMOUNT",
		Short: "Set or add to the credits of an owner",
		Long: `Change the balance of usage credits of an owner and print it. add takes a
negative AMOUNT after --: apikey owner credits acme add -- -50.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 3 {
				return usagef("owner credits needs three arguments: an owner, set or add, and an amount")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			adj, err := creditAdjustment(args[1], args[2], false)
			if err != nil {
				return err
			}
			adj.Owner = args[0]
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			c, err := m.AdjustCredits(cmd.Context(), adj)
			if err != nil {
				if err := belowZero(err, adj); err != nil {
					return err
				}
				return ownerError(err, args[0])
			}
			if asJSON {
				return writeJSON(a.stdout, c)
			}
			return writeCredits(a.stdout, c)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newOwnerDeleteCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "delete OWNER",
		Short: "Delete the rate limits and credits of an owner",
		Long: `Delete the record of an owner: its rate limits and its balance of credits.
The owner's keys stay as they are; they are no longer limited by the owner's
limits or balance. Audited as owner.deleted. With --json, prints
{"owner": "...", "deleted": true}.`,
		Args: oneArg("an owner"),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			if err := m.DeleteOwner(cmd.Context(), args[0]); err != nil {
				if errors.Is(err, apikey.ErrNotFound) {
					return refusedf("owner %q has no rate limits or credits to delete", args[0])
				}
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"owner": args[0], "deleted": true})
			}
			_, err = fmt.Fprintf(a.stdout, "deleted: owner %s\n", args[0])
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print JSON: {"owner": "...", "deleted": true}`)
	return cmd
}

// ownerError phrases the error of an owner call.
func ownerError(err error, owner string) error {
	if errors.Is(err, apikey.ErrNotFound) {
		return refusedf("owner %q has no rate limits or credits (set them with apikey owner set)", owner)
	}
	return err
}

func errorIsNotFound(err error) bool { return errors.Is(err, apikey.ErrNotFound) }

// writeOwner prints an owner's record as "field: value" lines.
func writeOwner(a *app, o *apikey.Owner) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "owner:\t%s\n", o.ID)
	if len(o.RateLimits) == 0 {
		fmt.Fprintf(tw, "ratelimits:\t-\n")
	}
	writeLimitRows(tw, o.RateLimits, nil)
	fmt.Fprintf(tw, "credits:\t%s\n", creditsText(o.Credits))
	fmt.Fprintf(tw, "updated:\t%s\n", formatTime(&o.UpdatedAt, "-"))
	return tw.Flush()
}

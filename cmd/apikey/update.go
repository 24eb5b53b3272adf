package main

import (
	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newUpdateCommand) }

func newUpdateCommand(a *app) *cobra.Command {
	var (
		name, expires        string
		scopes, meta         []string
		clearScopes, clearMD bool
		noExpiry, asJSON     bool
		lf                   limitFlags
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the name, scopes, metadata or expiry of a key",
		Long: `Change a key. Only the flags given change anything. --scope and --meta
replace the whole set of scopes or metadata with the values given (repeat
them to give several); --clear-scopes and --clear-meta empty them. A revoked
key cannot be changed. --ratelimit replaces every rate limit with those
given; --credits alone keeps the refill, --refill alone keeps the balance.

` + limitsHelp,
		Example: `  apikey update 3fZ9q0LmA1bc --name "billing (eu)"
  apikey update 3fZ9q0LmA1bc --scope invoices:read --scope invoices:write --expires 30d
  apikey update 3fZ9q0LmA1bc --clear-meta --no-expiry
  apikey update 3fZ9q0LmA1bc --ratelimit requests=10/1s --ratelimit tokens=100000/1d --credits 5000`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if err := checkID(id); err != nil {
				return err
			}
			changed := cmd.Flags().Changed
			var u apikey.KeyUpdate
			if changed("name") {
				u.Name = &name
			}
			switch {
			case changed("scope") && clearScopes:
				return usagef("--scope and --clear-scopes cannot be combined")
			case changed("scope"):
				u.Scopes = &scopes
			case clearScopes:
				u.Scopes = &[]string{}
			}
			switch {
			case changed("meta") && clearMD:
				return usagef("--meta and --clear-meta cannot be combined")
			case changed("meta"):
				md, err := parseMeta(meta)
				if err != nil {
					return err
				}
				u.Metadata = &md
			case clearMD:
				u.Metadata = &map[string]string{}
			}
			switch {
			case changed("expires") && noExpiry:
				return usagef("--expires and --no-expiry cannot be combined")
			case changed("expires"):
				t, err := parseExpiry(expires, a.now())
				if err != nil {
					return err
				}
				u.ExpiresAt = &t
			case noExpiry:
				u.ClearExpiry = true
			}
			var current *apikey.Credits
			var m *apikey.Manager
			if lf.needsCurrent(cmd) {
				var err error
				if m, err = a.manager(cmd.Context()); err != nil {
					return err
				}
				k, err := m.Get(cmd.Context(), id)
				if err != nil {
					return keyError(err, id)
				}
				current = k.Credits
			}
			limits, credits, clear, err := lf.read(cmd, current)
			if err != nil {
				return err
			}
			u.RateLimits, u.Credits, u.ClearCredits = limits, credits, clear
			if u.Empty() {
				return usagef("update changes nothing: give --name, --scope, --clear-scopes, --meta, --clear-meta, --expires, --no-expiry, --ratelimit, --clear-ratelimits, --credits, --refill or --clear-credits")
			}
			if m == nil {
				if m, err = a.manager(cmd.Context()); err != nil {
					return err
				}
			}
			k, err := m.Update(cmd.Context(), id, u)
			if err != nil {
				return keyError(err, id)
			}
			if asJSON {
				return writeJSON(a.stdout, k)
			}
			return writeKey(a.stdout, k)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringSliceVar(&scopes, "scope", nil, "set the scopes to these (repeat, or separate with commas)")
	f.BoolVar(&clearScopes, "clear-scopes", false, "remove every scope")
	f.StringArrayVar(&meta, "meta", nil, "set the metadata to these name=value entries (repeat)")
	f.BoolVar(&clearMD, "clear-meta", false, "remove all metadata")
	f.StringVar(&expires, "expires", "", "new expiry: a duration from now (30d, 2w, 12h) or an RFC 3339 time")
	f.BoolVar(&noExpiry, "no-expiry", false, "remove the expiry")
	f.BoolVar(&asJSON, "json", false, "print the key as JSON")
	lf.register(cmd, true)
	return cmd
}

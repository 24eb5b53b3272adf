package main

import (
	"net/netip"

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
		cidrs                []string
		clearCIDRs           bool
		idle                 string
	)
	cmd := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the name, scopes, metadata, expiry, limits or network rules of a key",
		Long: `Change a key. Only the flags given change anything. --scope and --meta
replace the whole set of scopes or metadata with the values given (repeat
them to give several); --clear-scopes and --clear-meta empty them. A revoked
key cannot be changed. --allow-cidr replaces the network allowlist with the
ranges given (repeat it); --clear-allow-cidrs removes it. A key's
environment never changes: its tokens carry it. --ratelimit replaces every rate limit with those
given; --credits alone keeps the refill, --refill alone keeps the balance.

` + limitsHelp,
		Example: `  apikey update 3fZ9q0LmA1bc --name "billing (eu)"
  apikey update 3fZ9q0LmA1bc --scope invoices:read --scope invoices:write --expires 30d
  apikey update 3fZ9q0LmA1bc --clear-meta --no-expiry
  apikey update 3fZ9q0LmA1bc --ratelimit requests=10/1s --ratelimit tokens=100000/1d --credits 5000
  apikey update 3fZ9q0LmA1bc --allow-cidr 203.0.113.0/24 --allow-cidr 2001:db8::/32 --inactivity-expiry 30d
  apikey update 3fZ9q0LmA1bc --clear-allow-cidrs --inactivity-expiry 0`,
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
			switch {
			case changed("allow-cidr") && clearCIDRs:
				return usagef("--allow-cidr and --clear-allow-cidrs cannot be combined")
			case changed("allow-cidr"):
				ps, err := parseCIDRFlags(cidrs)
				if err != nil {
					return err
				}
				u.AllowedCIDRs = &ps
			case clearCIDRs:
				u.AllowedCIDRs = &[]netip.Prefix{}
			}
			if changed("inactivity-expiry") {
				d, err := parseInactivityFlag(idle)
				if err != nil {
					return err
				}
				u.InactivityExpiry = &d
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
				return usagef("update changes nothing: give --name, --scope, --clear-scopes, --meta, --clear-meta, --expires, --no-expiry, --ratelimit, --clear-ratelimits, --credits, --refill, --clear-credits, --allow-cidr, --clear-allow-cidrs or --inactivity-expiry")
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
			return writeKey(a.stdout, k, a.idle)
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
	f.StringArrayVar(&cidrs, "allow-cidr", nil, "set the network allowlist to these CIDR ranges or addresses (repeat)")
	f.BoolVar(&clearCIDRs, "clear-allow-cidrs", false, "remove the network allowlist: usable from anywhere")
	f.StringVar(&idle, "inactivity-expiry", "", "expire the key after this long unused: 90d, 2w, 36h, never, or 0 for the service's default")
	lf.register(cmd, true)
	return cmd
}

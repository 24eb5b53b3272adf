package main

import (
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newCreateCommand) }

func newCreateCommand(a *app) *cobra.Command {
	var (
		p       apikey.CreateParams
		expires string
		meta    []string
		asJSON  bool
		lf      limitFlags
		env     string
		cidrs   []string
		idle    string
	)
	cmd := &cobra.Command{
		Use:   "create --name NAME [flags]",
		Short: "Create a key and print it, once",
		Long: `Create a key and print it. The key is shown this once: only its hash is
stored, so copy it now.

The key alone goes to standard output (so KEY=$(apikey create --name x)
works); a note with its id goes to standard error. With --json, standard
output gets the key record with the key beside it, {"key": "...", "id": ...}.

` + limitsHelp,
		Example: `  apikey create --name "billing backend" --owner acme --scope invoices:read --expires 90d
  apikey create --name ci --meta team=platform --json
  apikey create --name partner --ratelimit requests=100/1m,burst=20 --credits 1000 --refill daily
  apikey create --name ci --environment test --allow-cidr 10.0.0.0/8 --allow-cidr 2001:db8::/32 --inactivity-expiry 90d`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("name") {
				return usagef("create needs --name")
			}
			if cmd.Flags().Changed("expires") {
				t, err := parseExpiry(expires, a.now())
				if err != nil {
					return err
				}
				p.ExpiresAt = &t
			}
			md, err := parseMeta(meta)
			if err != nil {
				return err
			}
			p.Metadata = md
			if cmd.Flags().Changed("environment") {
				if p.Environment, err = parseEnvironmentFlag(env); err != nil {
					return err
				}
			}
			if p.AllowedCIDRs, err = parseCIDRFlags(cidrs); err != nil {
				return err
			}
			if p.InactivityExpiry, err = parseInactivityFlag(idle); err != nil {
				return err
			}
			limits, credits, _, err := lf.read(cmd, nil)
			if err != nil {
				return err
			}
			if limits != nil {
				p.RateLimits = *limits
			}
			p.Credits = credits
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			k, token, err := m.Create(cmd.Context(), p)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, apikey.IssuedKey{Token: token, Key: k})
			}
			if _, err := fmt.Fprintln(a.stdout, token); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "Created key %s (%s). Store the key now: it will not be shown again.\n", k.ID, k.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&p.Name, "name", "", "a label for the key (required)")
	f.StringVar(&p.Owner, "owner", "", "whom the key belongs to, e.g. a user or organisation id")
	f.StringSliceVar(&p.Scopes, "scope", nil, "a scope the key grants (repeat, or separate with commas)")
	f.StringVar(&expires, "expires", "", "expiry: a duration from now (30d, 2w, 12h) or an RFC 3339 time (default never)")
	f.StringArrayVar(&meta, "meta", nil, "metadata entry name=value (repeat)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.StringVar(&env, "environment", "live", "live or test; a test key's token starts with <prefix>_test_")
	f.StringArrayVar(&cidrs, "allow-cidr", nil, "a network the key may be used from: a CIDR range or an address, IPv4 or IPv6 (repeat; default anywhere)")
	f.StringVar(&idle, "inactivity-expiry", "", "expire the key after this long unused: 90d, 2w, 36h, or never (default the service's)")
	lf.register(cmd, false)
	return cmd
}

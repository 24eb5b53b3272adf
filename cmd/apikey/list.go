package main

import (
	"fmt"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newListCommand) }

func newListCommand(a *app) *cobra.Command {
	var (
		f      apikey.KeyFilter
		state  string
		env    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list [flags]",
		Short: "List keys, newest first",
		Long: `List keys, newest first, one page at a time. When there are more, the
cursor of the next page is printed on standard error (in the JSON output, it
is "next_cursor").`,
		Example: `  apikey list --owner acme --state active
  apikey list --search billing --limit 20 --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkState(state); err != nil {
				return err
			}
			f.State = apikey.State(state)
			if env != "" {
				e, err := parseEnvironmentFlag(env)
				if err != nil {
					return err
				}
				f.Environment = e
			}
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			page, err := m.List(cmd.Context(), f)
			if err != nil {
				return err
			}
			if page.Keys == nil {
				page.Keys = []*apikey.Key{}
			}
			if asJSON {
				return writeJSON(a.stdout, page)
			}
			if len(page.Keys) == 0 {
				fmt.Fprintln(a.stderr, "No keys.")
				return nil
			}
			if err := writeTable(a.stdout, page.Keys); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.stderr, "More keys: add --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Owner, "owner", "", "only the keys of this owner")
	fl.StringVar(&state, "state", "", "only keys in this state: "+statesText())
	fl.StringVar(&env, "environment", "", "only keys of this environment: live or test")
	fl.StringVar(&f.Search, "search", "", "only keys whose name, id or owner contains this, ignoring case")
	fl.IntVar(&f.Limit, "limit", 0, fmt.Sprintf("keys per page, at most %d (default %d)", apikey.MaxPageSize, apikey.DefaultPageSize))
	fl.StringVar(&f.Cursor, "cursor", "", "continue a previous listing from its next cursor")
	fl.BoolVar(&asJSON, "json", false, "print JSON: {\"keys\": [...], \"next_cursor\": \"...\"}")
	return cmd
}

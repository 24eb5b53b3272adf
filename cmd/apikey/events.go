package main

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/go-apikey/apikey"
	"github.com/spf13/cobra"
)

func init() { register(newEventsCommand) }

func newEventsCommand(a *app) *cobra.Command {
	var (
		f      apikey.EventFilter
		typ    string
		asJSON bool
	)
	var types []string
	for _, t := range apikey.AuditedEventTypes() {
		types = append(types, string(t))
	}
	cmd := &cobra.Command{
		Use:   "events [flags]",
		Short: "List the audit log, newest first",
		Long: `List the audit log, as GET /v1/events does: every change of a key, who made
it (the actor: cli, admin:EMAIL, key:ID) and, with --json, the before and
after values of the fields it changed. One page at a time, newest first;
when there are more, the cursor of the next page is printed on standard
error (in the JSON output, it is "next_cursor").`,
		Example: `  apikey events --key 3fZ9q0LmA1bc
  apikey events --type key.revoked --actor cli --json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if typ != "" && !slices.Contains(types, typ) {
				return usagef("invalid --type %q: want one of %s", typ, strings.Join(types, ", "))
			}
			if f.KeyID != "" {
				if err := checkID(f.KeyID); err != nil {
					return err
				}
			}
			f.Type = apikey.EventType(typ)
			m, err := a.manager(cmd.Context())
			if err != nil {
				return err
			}
			page, err := m.Events(cmd.Context(), f)
			if err != nil {
				return err
			}
			if page.Events == nil {
				page.Events = []*apikey.Event{}
			}
			if asJSON {
				return writeJSON(a.stdout, page)
			}
			if len(page.Events) == 0 {
				fmt.Fprintln(a.stderr, "No events.")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tTYPE\tKEY\tACTOR\tCHANGES")
			for _, e := range page.Events {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", formatTime(&e.At, "-"), e.Type, orDash(e.KeyID), orDash(e.Actor), changedFields(e))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.stderr, "More events: add --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.KeyID, "key", "", "only the events of this key id")
	fl.StringVar(&f.Actor, "actor", "", "only the events of this actor (cli, admin:EMAIL, key:ID)")
	fl.StringVar(&typ, "type", "", "only events of this type: "+strings.Join(types, ", "))
	fl.IntVar(&f.Limit, "limit", 0, fmt.Sprintf("events per page, at most %d (default %d)", apikey.MaxPageSize, apikey.DefaultPageSize))
	fl.StringVar(&f.Cursor, "cursor", "", "continue a previous listing from its next cursor")
	fl.BoolVar(&asJSON, "json", false, `print JSON: {"events": [...], "next_cursor": "..."}`)
	return cmd
}

// changedFields lists the names of the fields an event changed, or "-".
func changedFields(e *apikey.Event) string {
	if len(e.Changes) == 0 {
		return "-"
	}
	names := make([]string, 0, len(e.Changes))
	for n := range e.Changes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/internal/usagechart"
	"github.com/spf13/cobra"
)

func init() { register(newUsageCommand) }

// usageReport is the JSON of "apikey usage --json": the shape of GET
// /v1/keys/{id}/usage.
type usageReport struct {
	KeyID       string              `json:"key_id"`
	Granularity apikey.Granularity  `json:"granularity"`
	From        time.Time           `json:"from"`
	To          time.Time           `json:"to"`
	Usage       []apikey.UsageCount `json:"usage"`
}

func newUsageCommand(a *app) *cobra.Command {
	var (
		since, from, to, gran string
		asJSON                bool
	)
	cmd := &cobra.Command{
		Use:   "usage ID [--since 24h|7d|30d] [--granularity minute|hour|day]",
		Short: "Show how often a key was verified, with a chart",
		Long: `Show the verifications of a key by outcome, as GET /v1/keys/{id}/usage does,
with a bar chart: "█" for valid verifications, "░" for rejected ones (a
wrong secret, or the key expired or revoked).

The period is --since (a duration back from now: 24h, 7d, 30d; default
24h), or --from and --to (RFC 3339 times); at most 31 days. The buckets are
--granularity minute, hour or day (UTC); by default hour up to two days,
else day. Servers write usage every 10 seconds, so the last seconds may
be missing.`,
		Example: `  apikey usage 3fZ9q0LmA1bc
  apikey usage 3fZ9q0LmA1bc --since 30d
  apikey usage 3fZ9q0LmA1bc --since 2h --granularity minute --json`,
		Args: oneArg("a key id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := a.now().UTC()
			end := now
			if to != "" {
				t, err := time.Parse(time.RFC3339, to)
				if err != nil {
					return usagef("invalid --to %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", to)
				}
				end = t.UTC()
			}
			start := end.Add(-24 * time.Hour)
			switch {
			case from != "" && cmd.Flags().Changed("since"):
				return usagef("--since and --from cannot be combined")
			case from != "":
				t, err := time.Parse(time.RFC3339, from)
				if err != nil {
					return usagef("invalid --from %q: want an RFC 3339 time such as 2030-01-02T15:04:05Z", from)
				}
				start = t.UTC()
			case since != "":
				t, err := apikey.ParseExpiry(since, end)
				if err != nil || t.Sub(end) <= 0 {
					return usagef("invalid --since %q: want a duration such as 24h, 7d or 30d", since)
				}
				start = end.Add(-t.Sub(end))
			}
			if !start.Before(end) {
				return usagef("the period is empty: the start must be before the end")
			}
			if end.Sub(start) > 31*24*time.Hour {
				return usagef("the period spans %s: at most 31 days", end.Sub(start).Round(time.Hour))
			}
			g := apikey.Granularity(gran)
			switch {
			case gran == "" && end.Sub(start) <= 48*time.Hour:
				g = apikey.ByHour
			case gran == "":
				g = apikey.ByDay
			case g != apikey.ByMinute && g != apikey.ByHour && g != apikey.ByDay:
				return usagef("invalid --granularity %q: want minute, hour or day", gran)
			}
			var counts []apikey.UsageCount
			k, err := a.onKey(cmd.Context(), args[0], func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error) {
				k, err := m.Get(ctx, id)
				if err != nil {
					return nil, err
				}
				counts, err = m.Usage(ctx, id, start, end, g)
				return k, err
			})
			if err != nil {
				return err
			}
			if counts == nil {
				counts = []apikey.UsageCount{}
			}
			if asJSON {
				return writeJSON(a.stdout, usageReport{KeyID: k.ID, Granularity: g, From: start, To: end, Usage: counts})
			}
			buckets := usagechart.Fill(counts, start, end, g)
			sum := usagechart.Sum(buckets)
			fmt.Fprintf(a.stdout, "Verifications of %s (%s) by %s, %s to %s UTC\n", k.ID, k.Name, g,
				start.Format("2006-01-02 15:04"), end.Format("2006-01-02 15:04"))
			fmt.Fprintln(a.stdout, "█ valid  ░ rejected")
			if err := usagechart.Text(a.stdout, buckets, g, 40); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stdout, "Total: %d valid, %d invalid key, %d expired, %d revoked\n", sum.Valid, sum.Invalid, sum.Expired, sum.Revoked)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "the period back from now (or --to): 24h, 7d, 30d... (default 24h)")
	f.StringVar(&from, "from", "", "the start of the period, an RFC 3339 time")
	f.StringVar(&to, "to", "", "the end of the period, an RFC 3339 time (default now)")
	f.StringVar(&gran, "granularity", "", "bucket size: minute, hour or day (default hour up to 2 days, else day)")
	f.BoolVar(&asJSON, "json", false, `print JSON: {"key_id", "granularity", "from", "to", "usage": [{"bucket", "outcome", "count"}]}`)
	return cmd
}

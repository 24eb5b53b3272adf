package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/server"
	"github.com/go-apikey/apikey/outbox"
)

func init() { register(newWebhookCommand) }

func newWebhookCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook create|list|show|update|delete|deliveries|resend ...",
		Short: "Manage the webhook endpoints that receive key events",
		Long: `Webhook endpoints receive every audited event (key.created, key.updated,
key.rolled, key.revoked, key.deleted, key.credits_changed,
key.limits_changed, owner.updated, owner.deleted, key.expiring, key.expired,
key.inactive_warning, ...) that matches their filter, as Standard Webhooks
messages signed with their own secret, sent by "apikey serve". See
docs/lifecycle.md, "Webhooks", for the payload, the retries and how to
verify a message.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("webhook needs a subcommand: create, list, show, update, delete, deliveries or resend")
			}
			return usagef("unknown webhook subcommand %q: want create, list, show, update, delete, deliveries or resend", args[0])
		},
		RunE: func(*cobra.Command, []string) error { return nil },
	}
	cmd.AddCommand(newWebhookCreateCommand(a), newWebhookListCommand(a), newWebhookShowCommand(a), newWebhookUpdateCommand(a),
		newWebhookDeleteCommand(a), newWebhookDeliveriesCommand(a), newWebhookResendCommand(a))
	return cmd
}

// hooks returns the webhook management of the database.
func (a *app) hooks(ctx context.Context) (*outbox.Service, error) {
	m, err := a.manager(ctx)
	if err != nil {
		return nil, err
	}
	svc := a.db.webhookService(m)
	if svc == nil {
		return nil, usagef("this database keeps no webhooks")
	}
	return svc, nil
}

func eventList(events []string) []apikey.EventType {
	var out []apikey.EventType
	for _, e := range events {
		for _, part := range strings.Split(e, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, apikey.EventType(part))
			}
		}
	}
	return out
}

func eventsText(events []apikey.EventType) string {
	if len(events) == 0 {
		return "* (all)"
	}
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = string(e)
	}
	return strings.Join(s, ", ")
}

func writeEndpoint(a *app, ep *outbox.Endpoint, secret string) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", ep.ID)
	fmt.Fprintf(tw, "url:\t%s\n", ep.URL)
	fmt.Fprintf(tw, "events:\t%s\n", eventsText(ep.Events))
	fmt.Fprintf(tw, "enabled:\t%t\n", ep.Enabled)
	fmt.Fprintf(tw, "created:\t%s\n", formatTime(&ep.CreatedAt, "-"))
	fmt.Fprintf(tw, "updated:\t%s\n", formatTime(&ep.UpdatedAt, "-"))
	if secret != "" {
		fmt.Fprintf(tw, "secret:\t%s\n", secret)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if secret != "" {
		fmt.Fprintln(a.stderr, "apikey: store the signing secret now: it is not shown again")
	}
	return nil
}

func newWebhookCreateCommand(a *app) *cobra.Command {
	var (
		events   []string
		disabled bool
		asJSON   bool
	)
	cmd := &cobra.Command{
		Use:   "create URL [--event TYPE]... [--disabled]",
		Short: "Register an endpoint and print its signing secret, once",
		Long: `Register an http or https URL that receives the events given with --event
(repeat it, or separate with commas; none or "*" means every event type,
those added later included). The signing secret (whsec_...) is printed this
once: give it to the receiver, which verifies each message with it.`,
		Example: `  apikey webhook create https://hooks.example.com/apikey
  apikey webhook create https://hooks.example.com/expiry --event key.expiring,key.expired`,
		Args: oneArg("a URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			ep, secret, err := svc.Create(cmd.Context(), outbox.NewEndpoint{URL: args[0], Events: eventList(events), Disabled: disabled})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, server.WebhookEndpoint{Endpoint: ep, Secret: secret})
			}
			return writeEndpoint(a, ep, secret)
		},
	}
	cmd.Flags().StringArrayVar(&events, "event", nil, "event type to deliver (repeat, or separate with commas; default every type)")
	cmd.Flags().BoolVar(&disabled, "disabled", false, "create the endpoint disabled")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWebhookListCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the endpoints",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			eps, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, map[string]any{"webhooks": eps})
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tENABLED\tEVENTS\tURL")
			for _, ep := range eps {
				fmt.Fprintf(tw, "%s\t%t\t%s\t%s\n", ep.ID, ep.Enabled, eventsText(ep.Events), ep.URL)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWebhookShowCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show an endpoint (never its secret)",
		Args:  oneArg("an endpoint id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			ep, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return hookError(err, args[0], "")
			}
			if asJSON {
				return writeJSON(a.stdout, server.WebhookEndpoint{Endpoint: ep})
			}
			return writeEndpoint(a, ep, "")
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWebhookUpdateCommand(a *app) *cobra.Command {
	var (
		url           string
		events        []string
		allEvents     bool
		enable, disbl bool
		rotate        bool
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "update ID [--url URL] [--event TYPE]... [--all-events] [--enable | --disable] [--rotate-secret]",
		Short: "Change an endpoint, or give it a new secret",
		Long: `Change an endpoint; only the flags given change anything. --event replaces
the filter; --all-events delivers every event type. --rotate-secret makes
a new signing secret and prints it, once: receivers should accept the old
and the new one until they have switched.`,
		Args: oneArg("an endpoint id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u outbox.EndpointUpdate
			if cmd.Flags().Changed("url") {
				u.URL = &url
			}
			switch {
			case allEvents && len(events) > 0:
				return usagef("--event and --all-events cannot be combined")
			case allEvents:
				u.Events = &[]apikey.EventType{}
			case len(events) > 0:
				ev := eventList(events)
				u.Events = &ev
			}
			switch {
			case enable && disbl:
				return usagef("--enable and --disable cannot be combined")
			case enable || disbl:
				u.Enabled = &enable
			}
			if u.URL == nil && u.Events == nil && u.Enabled == nil && !rotate {
				return usagef("webhook update changes nothing: give --url, --event, --all-events, --enable, --disable or --rotate-secret")
			}
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			var (
				ep     *outbox.Endpoint
				secret string
			)
			if u.URL != nil || u.Events != nil || u.Enabled != nil {
				if ep, err = svc.Update(cmd.Context(), args[0], u); err != nil {
					return hookError(err, args[0], "")
				}
			}
			if rotate {
				if ep, secret, err = svc.Rotate(cmd.Context(), args[0]); err != nil {
					return hookError(err, args[0], "")
				}
			}
			if asJSON {
				return writeJSON(a.stdout, server.WebhookEndpoint{Endpoint: ep, Secret: secret})
			}
			return writeEndpoint(a, ep, secret)
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "new URL (http or https)")
	f.StringArrayVar(&events, "event", nil, "event type to deliver, replacing the filter (repeat, or separate with commas)")
	f.BoolVar(&allEvents, "all-events", false, "deliver every event type")
	f.BoolVar(&enable, "enable", false, "enable the endpoint")
	f.BoolVar(&disbl, "disable", false, "disable the endpoint: it gets no deliveries for the events of that time")
	f.BoolVar(&rotate, "rotate-secret", false, "make a new signing secret and print it, once")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newWebhookDeleteCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an endpoint and its deliveries",
		Args:  oneArg("an endpoint id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			if err := svc.Delete(cmd.Context(), args[0]); err != nil {
				return hookError(err, args[0], "")
			}
			fmt.Fprintf(a.stderr, "apikey: webhook %s deleted\n", args[0])
			return nil
		},
	}
	cmd.Flags().Bool("json", false, "accepted for uniformity; delete prints nothing on standard output")
	return cmd
}

func newWebhookDeliveriesCommand(a *app) *cobra.Command {
	var (
		state  string
		limit  int
		cursor string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "deliveries ID [DELIVERY] [--state pending|delivered|failed] [--limit N] [--cursor C]",
		Short: "List the deliveries of an endpoint, or show one with its attempts",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("deliveries needs an endpoint id, and optionally a delivery id")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 2 {
				d, err := svc.Delivery(cmd.Context(), args[0], args[1])
				if err != nil {
					return hookError(err, args[0], args[1])
				}
				if asJSON {
					return writeJSON(a.stdout, d)
				}
				return writeDelivery(a, d)
			}
			page, err := svc.Deliveries(cmd.Context(), args[0], outbox.DeliveryFilter{State: outbox.State(state), Limit: limit, Cursor: cursor})
			if err != nil {
				return hookError(err, args[0], "")
			}
			if asJSON {
				return writeJSON(a.stdout, page)
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tTYPE\tSTATE\tATTEMPTS\tLAST\tCREATED")
			for _, d := range page.Deliveries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Type, d.State, d.Attempts, lastOutcome(d), formatTime(&d.CreatedAt, "-"))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.NextCursor != "" {
				fmt.Fprintf(a.stderr, "apikey: more deliveries: --cursor %s\n", page.NextCursor)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&state, "state", "", "keep the deliveries in this state: pending, delivered or failed")
	f.IntVar(&limit, "limit", 0, "page size, 1 to 1000 (default 100)")
	f.StringVar(&cursor, "cursor", "", "continue a listing (printed at the end of the previous page)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func lastOutcome(d *outbox.Delivery) string {
	switch {
	case d.LastStatus != 0 && d.LastError != "":
		return fmt.Sprintf("%d", d.LastStatus)
	case d.LastError != "":
		return "error"
	case d.LastStatus != 0:
		return fmt.Sprintf("%d", d.LastStatus)
	}
	return "-"
}

func writeDelivery(a *app, d *outbox.Delivery) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\n", d.ID)
	fmt.Fprintf(tw, "endpoint:\t%s\n", d.EndpointID)
	fmt.Fprintf(tw, "event:\t%d %s\n", d.EventID, d.Type)
	fmt.Fprintf(tw, "state:\t%s\n", d.State)
	fmt.Fprintf(tw, "attempts:\t%d\n", d.Attempts)
	fmt.Fprintf(tw, "next attempt:\t%s\n", formatTime(d.NextAttemptAt, "-"))
	fmt.Fprintf(tw, "delivered:\t%s\n", formatTime(d.DeliveredAt, "-"))
	for _, at := range d.Log {
		outcome := fmt.Sprintf("%d", at.Status)
		if at.Error != "" {
			outcome += " " + at.Error
		}
		fmt.Fprintf(tw, "attempt %d:\t%s  %s  %s\n", at.N, formatTime(&at.At, "-"), at.Duration.Round(time.Millisecond/10), outcome)
	}
	return tw.Flush()
}

func newWebhookResendCommand(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "resend ID DELIVERY",
		Short: "Send a delivery again, with the same webhook-id",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 2 {
				return usagef("resend needs two arguments: an endpoint id and a delivery id")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := a.hooks(cmd.Context())
			if err != nil {
				return err
			}
			d, err := svc.Resend(cmd.Context(), args[0], args[1])
			if err != nil {
				return hookError(err, args[0], args[1])
			}
			if asJSON {
				return writeJSON(a.stdout, d)
			}
			fmt.Fprintf(a.stderr, "apikey: delivery %s queued again; apikey serve sends it\n", d.ID)
			return writeDelivery(a, d)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// hookError names the endpoint or delivery that does not exist.
func hookError(err error, id, delivery string) error {
	switch {
	case errors.Is(err, apikey.ErrWebhookNotFound):
		return refusedf("no webhook endpoint has the id %q", id)
	case errors.Is(err, apikey.ErrDeliveryNotFound):
		return refusedf("webhook endpoint %s has no delivery %q", id, delivery)
	}
	return err
}

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go-apikey/apikey"
)

// writeJSON prints v as indented JSON followed by a newline. Keys take
// their JSON form from apikey.Key, the one the HTTP API answers with.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// formatTime renders t in UTC to the second, or none when t is nil.
func formatTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func scopesText(scopes []string) string {
	if len(scopes) == 0 {
		return "-"
	}
	return strings.Join(scopes, ",")
}

// writeKey prints one key as aligned "field: value" lines. idle is the
// service's default inactivity expiry (--default-inactivity-expiry).
func writeKey(w io.Writer, k *apikey.Key, idle time.Duration) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, value string) { fmt.Fprintf(tw, "%s:\t%s\n", name, value) }
	row("id", k.ID)
	row("name", k.Name)
	row("owner", orDash(k.Owner))
	row("prefix", k.Prefix)
	row("scopes", scopesText(k.Scopes))
	row("state", string(k.State))
	row("created", formatTime(&k.CreatedAt, "-"))
	row("expires", formatTime(k.ExpiresAt, "never"))
	row("revoked", formatTime(k.RevokedAt, "-"))
	if k.DisabledAt != nil {
		row("disabled", formatTime(k.DisabledAt, "-"))
	}
	row("last used", formatTime(k.LastUsedAt, "never"))
	if p := k.PreviousSecret; p != nil {
		// The secret a roll with a grace window replaced.
		state := "stopped"
		if p.Active {
			state = "still verifies"
		}
		row("old secret", fmt.Sprintf("%s, rolled %s, last used %s", state, formatTime(&p.RolledAt, "-"), formatTime(p.LastUsedAt, "never")))
		window := "grace " + apikey.FormatGrace(p.Grace) + " from the first use of the new secret, not started"
		if p.GraceStartedAt != nil {
			end := p.EndsAt()
			window = "grace " + apikey.FormatGrace(p.Grace) + " from " + formatTime(p.GraceStartedAt, "-") + ", ends " + formatTime(&end, "-")
		}
		row("old secret window", window+"; at the latest "+formatTime(&p.ExpiresAt, "-"))
	}
	// The rows of environments, allowlists and inactivity only when they
	// say something: the output of other keys stays as it was.
	if k.Env() != apikey.EnvLive {
		row("env", string(k.Env()))
	}
	if len(k.AllowedCIDRs) > 0 {
		row("networks", cidrsText(k.AllowedCIDRs))
	}
	if at, ok := k.InactiveAt(idle); ok {
		policy := "expires after " + apikey.FormatInactivityExpiry(time.Duration(k.InactivityExpiry)) + " unused"
		if k.InactivityExpiry == 0 {
			policy = "expires after " + apikey.FormatInactivityExpiry(idle) + " unused (the default)"
		}
		row("inactive", policy+", inactive from "+formatTime(&at, "-"))
	} else if time.Duration(k.InactivityExpiry) == apikey.NoInactivityExpiry {
		row("inactive", "never expires for want of use")
	}
	names := make([]string, 0, len(k.Metadata))
	for name := range k.Metadata {
		names = append(names, name)
	}
	slices.Sort(names)
	if len(names) == 0 {
		row("metadata", "-")
	}
	for i, name := range names {
		label := ""
		if i == 0 {
			label = "metadata:"
		}
		fmt.Fprintf(tw, "%s\t%s=%s\n", label, name, k.Metadata[name])
	}
	writeLimitRows(tw, k.RateLimits, k.Credits)
	return tw.Flush()
}

// cidrsText is an allowlist as text: "anywhere" when empty.
func cidrsText(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "anywhere"
	}
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ", ")
}

// writeTable prints keys as a table, one row per key.
func writeTable(w io.Writer, keys []*apikey.Key) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tOWNER\tSCOPES\tSTATE\tCREATED\tEXPIRES")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, orDash(k.Owner), scopesText(k.Scopes),
			k.State, formatTime(&k.CreatedAt, "-"), formatTime(k.ExpiresAt, "never"))
	}
	return tw.Flush()
}

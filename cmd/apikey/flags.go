package main

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// parseExpiry reads --expires with apikey.ParseExpiry. now is the
// Manager's clock (the app's now, which config gives the Manager), read
// before anything touches the database.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	t, err := apikey.ParseExpiry(s, now)
	var ve *apikey.ValidationError
	if errors.As(err, &ve) {
		return time.Time{}, usagef("invalid --expires %q: %s", s, ve.Reason)
	}
	return t, err
}

// parseMeta reads repeated --meta name=value flags. Values may hold any
// character, "=" included; names must not be empty or repeated (the
// Manager checks the rest).
func parseMeta(pairs []string) (map[string]string, error) {
	md := make(map[string]string, len(pairs))
	for _, p := range pairs {
		name, value, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			return nil, usagef("invalid --meta %q: want name=value", p)
		case name == "":
			return nil, usagef("invalid --meta %q: the name is empty", p)
		}
		if _, dup := md[name]; dup {
			return nil, usagef("invalid --meta %q: %q is given twice", p, name)
		}
		md[name] = value
	}
	return md, nil
}

// checkState validates --state before anything touches the database.
func checkState(s string) error {
	if s == "" || apikey.State(s).Valid() {
		return nil
	}
	return usagef("invalid --state %q: want %s", s, statesText())
}

// statesText lists the states as "active, disabled, expired or revoked".
func statesText() string {
	var b strings.Builder
	states := apikey.States()
	for i, s := range states {
		switch {
		case i == len(states)-1 && i > 0:
			b.WriteString(" or ")
		case i > 0:
			b.WriteString(", ")
		}
		b.WriteString(string(s))
	}
	return b.String()
}

// checkID validates a key id argument before anything touches the
// database. It never repeats a key given by mistake, only its id.
func checkID(s string) error {
	if apikey.ValidID(s) {
		return nil
	}
	if t, err := apikey.ParseAnyToken(s); err == nil {
		return usagef("that is a key, not a key id: its id is %q", t.ID)
	}
	if len(s) <= 2*apikey.IDLength && !strings.Contains(s, "_") {
		return refusedf("no key with id %q", s)
	}
	return refusedf("no key with that id: a key id is %d letters and digits", apikey.IDLength)
}

// keyError phrases the error of a management call on the key id.
func keyError(err error, id string) error {
	if errors.Is(err, apikey.ErrNotFound) {
		return refusedf("no key with id %q", id)
	}
	return err
}

// onKey checks the key id of a command, runs act on the Manager and maps
// its refusals to the CLI's messages for that id: the one path of the
// commands that act on a single key (show, revoke, delete).
func (a *app) onKey(ctx context.Context, id string, act func(m *apikey.Manager, ctx context.Context, id string) (*apikey.Key, error)) (*apikey.Key, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	m, err := a.manager(ctx)
	if err != nil {
		return nil, err
	}
	k, err := act(m, ctx, id)
	if err != nil {
		return nil, keyError(err, id)
	}
	return k, nil
}

// parseEnvironmentFlag reads --environment: live or test.
func parseEnvironmentFlag(s string) (apikey.Environment, error) {
	e := apikey.Environment(s)
	if !e.Valid() {
		return "", usagef("invalid --environment %q: must be live or test", s)
	}
	return e, nil
}

// parseCIDRFlags reads repeated --allow-cidr flags: CIDR ranges or bare
// addresses, IPv4 or IPv6.
func parseCIDRFlags(in []string) ([]netip.Prefix, error) {
	ps, err := apikey.ParseCIDRs(in)
	var ve *apikey.ValidationError
	if errors.As(err, &ve) {
		return nil, usagef("invalid --allow-cidr: %s", ve.Reason)
	}
	return ps, err
}

// parseInactivityFlag reads --inactivity-expiry: 90d, 2w, 36h, never, or
// 0 for the service default.
func parseInactivityFlag(s string) (time.Duration, error) {
	d, err := apikey.ParseInactivityExpiry(s)
	var ve *apikey.ValidationError
	if errors.As(err, &ve) {
		return 0, usagef("invalid --inactivity-expiry %q: %s", s, ve.Reason)
	}
	return d, err
}

package main

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// parseExpiry reads --expires: an RFC 3339 time, or a positive duration from
// now in Go's syntax (90m, 12h) with days and weeks added (30d, 2w, 1d12h).
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := apikey.ParseDuration(s)
	if err != nil {
		return time.Time{}, usagef("invalid --expires %q: want a duration like 30d, 12h or an RFC 3339 time", s)
	}
	if d <= 0 {
		return time.Time{}, usagef("invalid --expires %q: the duration must be positive", s)
	}
	return now.Add(d), nil
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
	switch s {
	case "", "active", "expired", "revoked":
		return nil
	}
	return usagef("invalid --state %q: want active, expired or revoked", s)
}

// checkID validates a key id argument before anything touches the
// database. It never repeats a key given by mistake, only its id.
func checkID(s string) error {
	if apikey.ValidID(s) {
		return nil
	}
	if t, err := apikey.ParseToken(s); err == nil {
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

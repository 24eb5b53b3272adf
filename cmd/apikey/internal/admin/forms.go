package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/cmd/apikey/internal/limitspec"
)

// keyForm is the create and edit form: the text the admin typed, kept as
// typed, and an error per field.
type keyForm struct {
	Name, Owner, Scopes, ExpiresAt, Metadata string
	// Environment is "live" or "test" (set at creation only),
	// AllowedCIDRs the network allowlist as typed (ranges or addresses
	// separated by spaces, commas or lines) and InactivityExpiry the
	// key's own inactivity expiry ("90d", "never"; empty for the
	// service's default).
	Environment, AllowedCIDRs, InactivityExpiry string
	// Errors holds one message per field name; "" holds a message about
	// the whole form.
	Errors map[string]string
}

// parsedKey is a keyForm turned into values.
type parsedKey struct {
	scopes     []string
	expiresAt  *time.Time
	metadata   map[string]string
	env        apikey.Environment
	cidrs      []netip.Prefix
	inactivity time.Duration
}

func formFromKey(k *apikey.Key) keyForm {
	f := keyForm{Name: k.Name, Owner: k.Owner, Scopes: strings.Join(k.Scopes, " "), Errors: map[string]string{}}
	if k.ExpiresAt != nil {
		f.ExpiresAt = k.ExpiresAt.UTC().Format(inputTime)
	}
	f.Metadata = formatMetadata(k.Metadata)
	f.Environment = string(k.Env())
	cidrs := make([]string, len(k.AllowedCIDRs))
	for i, p := range k.AllowedCIDRs {
		cidrs[i] = p.String()
	}
	f.AllowedCIDRs = strings.Join(cidrs, "\n")
	f.InactivityExpiry = apikey.FormatInactivityExpiry(time.Duration(k.InactivityExpiry))
	return f
}

func formatMetadata(md map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(md)) {
		fmt.Fprintf(&b, "%s=%s\n", name, md[name])
	}
	return b.String()
}

// inputTime is the layout of <input type="datetime-local">, read as UTC.
const inputTime = "2006-01-02T15:04"

// parse checks the fields that the admin site turns from text into values;
// the Manager checks the rest. It fills f.Errors.
func (f *keyForm) parse(now time.Time) parsedKey {
	var p parsedKey
	p.scopes = strings.FieldsFunc(f.Scopes, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if p.scopes == nil {
		p.scopes = []string{}
	}
	for _, s := range p.scopes {
		if !apikey.ValidScope(s) {
			f.Errors["scopes"] = fmt.Sprintf("%q is not a valid scope: use letters, digits and : . _ - /, optionally ending in :* (or a single *).", s)
			break
		}
	}
	if t, err := parseExpiry(f.ExpiresAt, now); err != nil {
		f.Errors["expires_at"] = err.Error()
	} else {
		p.expiresAt = t
		if t != nil && !t.After(now) {
			f.Errors["expires_at"] = "The expiry must be in the future."
		}
	}
	md, err := parseMetadata(f.Metadata)
	if err != nil {
		f.Errors["metadata"] = err.Error()
	}
	p.metadata = md
	var ve *apikey.ValidationError
	if p.env, err = apikey.ParseEnvironment(f.Environment); errors.As(err, &ve) {
		f.Errors["environment"] = "Choose live or test."
	}
	list := strings.FieldsFunc(f.AllowedCIDRs, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	if p.cidrs, err = apikey.ParseCIDRs(list); errors.As(err, &ve) {
		f.Errors["allowed_cidrs"] = sentence(ve.Reason)
	}
	if p.inactivity, err = apikey.ParseInactivityExpiry(strings.TrimSpace(f.InactivityExpiry)); errors.As(err, &ve) {
		f.Errors["inactivity_expiry"] = sentence(ve.Reason)
	}
	return p
}

// parseExpiry reads an expiry: empty (none), a date and time in UTC as a
// datetime-local input sends it (with or without seconds) or as typed
// ("2030-12-31 23:59", or a date alone for midnight UTC), or what
// apikey.ParseExpiry reads: an RFC 3339 time, or a duration from now such
// as "30d" or "12h". now is the Manager's clock.
func parseExpiry(s string, now time.Time) (*time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, layout := range []string{inputTime, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			if !apikey.ValidTime(t) {
				return nil, errors.New("Enter a date and time between the years 1 and 9999 (UTC).")
			}
			t = t.UTC()
			return &t, nil
		}
	}
	if t, err := apikey.ParseExpiry(s, now); err == nil {
		t = t.UTC()
		return &t, nil
	}
	if _, err := time.Parse(time.RFC3339, s); err == nil { // a time, but out of range
		return nil, errors.New("Enter a date and time between the years 1 and 9999 (UTC).")
	}
	return nil, errors.New("Enter a date and time in UTC such as 2030-12-31T23:59, or a duration such as 30d or 12h.")
}

// parseMetadata reads name=value lines; blank lines are skipped.
func parseMetadata(s string) (map[string]string, error) {
	md := map[string]string{}
	for i, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return nil, fmt.Errorf("Line %d: write each entry as name=value.", i+1)
		}
		if _, dup := md[name]; dup {
			return nil, fmt.Errorf("Line %d: %q is given twice.", i+1, name)
		}
		md[name] = strings.TrimSpace(value)
	}
	return md, nil
}

// fieldError puts err on its form field when it is a *apikey.ValidationError
// or a per-owner limit, and reports whether it did.
func (f *keyForm) fieldError(err error) bool {
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		msg := sentence(ve.Reason)
		switch ve.Field {
		case "name", "owner", "scopes", "metadata", "expires_at", "environment", "allowed_cidrs", "inactivity_expiry":
			f.Errors[ve.Field] = msg
		default:
			f.Errors[""] = sentence(ve.Field + ": " + ve.Reason)
		}
		return true
	case errors.Is(err, apikey.ErrTooManyKeys):
		f.Errors["owner"] = "This owner already has the maximum number of active keys. Revoke one first."
		return true
	case errors.Is(err, apikey.ErrFrozen):
		f.Errors[""] = "This key is revoked: it can no longer be changed."
		return true
	}
	return false
}

// sentence capitalises s and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

const displayTime = "2006-01-02 15:04 UTC"

var funcs = template.FuncMap{
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format(displayTime)
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format(displayTime)
		}
		return ""
	},
	"isoTime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"join":    strings.Join,
	"json": func(v any) string {
		if v == nil {
			return "—"
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Sprint(v)
		}
		return string(b)
	},
	"states":      apikey.States,
	"label":       func(s apikey.State) string { return strings.ToUpper(string(s[:1])) + string(s[1:]) },
	"sortedKeys":  func(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) },
	"changeNames": func(m map[string]apikey.Change) []string { return slices.Sorted(maps.Keys(m)) },
	"webURL":      webURL,
	"rateLimit":   limitspec.FormatRateLimit,
	"refill":      func(r *apikey.Refill) string { return limitspec.FormatRefill(*r) },
	"ownerPath":   ownerPath,
	"grace":       apikey.FormatGrace,
	"inactivity": func(d any) string {
		switch v := d.(type) {
		case apikey.Inactivity:
			return apikey.FormatInactivityExpiry(time.Duration(v))
		case time.Duration:
			return apikey.FormatInactivityExpiry(v)
		}
		return ""
	},
	"inactiveAt": func(k *apikey.Key, def time.Duration) string {
		if at, ok := k.InactiveAt(def); ok {
			return at.UTC().Format(displayTime)
		}
		return ""
	},
}

package apikey

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// validate checks the fields of k that callers set. checkExpiry requires a
// future ExpiresAt.
func validate(k *Key, now time.Time, checkExpiry bool) error {
	if strings.TrimSpace(k.Name) == "" {
		return invalid("name", "is required")
	}
	if err := checkText(k.Name, 200); err != nil {
		return invalid("name", "%v", err)
	}
	if err := checkText(k.Owner, 200); err != nil {
		return invalid("owner", "%v", err)
	}
	if len(k.Scopes) > 100 {
		return invalid("scopes", "at most 100 scopes")
	}
	for _, s := range k.Scopes {
		if !ValidScope(s) {
			return invalid("scopes", "%q is not a valid scope (1 to 100 characters of A-Z a-z 0-9 : . _ - /, optionally ending in \":*\", or \"*\")", s)
		}
	}
	if len(k.Metadata) > 50 {
		return invalid("metadata", "at most 50 entries")
	}
	for name, v := range k.Metadata {
		if !validMetadataName(name) {
			return invalid("metadata", "name %q must be 1 to 64 characters of A-Z a-z 0-9 _ . -", name)
		}
		if err := checkText(v, 512); err != nil {
			return invalid("metadata", "value of %q: %v", name, err)
		}
	}
	if k.ExpiresAt != nil {
		if err := CheckTime("expires_at", *k.ExpiresAt); err != nil {
			return err
		}
		if checkExpiry && !k.ExpiresAt.After(now) {
			return invalid("expires_at", "must be in the future")
		}
	}
	return nil
}

// ValidTime reports whether t is an instant that apikey accepts: its year
// in UTC is between 1 and 9999. RFC 3339 and JSON cannot write later (or
// earlier) years, and the databases disagree about them, so every time
// that comes in (an expiry, the bounds of a listing or of a usage query, a
// cursor) must pass this check before it reaches a store. The zero
// time.Time (year 1) passes.
func ValidTime(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 1 && y <= 9999
}

// CheckTime returns nil when ValidTime(t), and otherwise a
// *ValidationError for field.
func CheckTime(field string, t time.Time) error {
	if ValidTime(t) {
		return nil
	}
	return invalid(field, "must be between the years 1 and 9999 in UTC")
}

// ValidText reports whether s is text that every store keeps and searches
// as given: valid UTF-8 without control characters (NUL among them, which
// PostgreSQL refuses). Names, owners, metadata values and search strings
// must be valid text; the Manager checks them, and so should every edge
// that takes a string from outside before it reaches a store.
func ValidText(s string) bool {
	return checkText(s, len(s)) == nil
}

func checkText(s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// ValidScope reports whether s is a well-formed scope: 1 to 100 characters
// of A-Z a-z 0-9 : . _ - /, optionally ending in ":*" (a wildcard over
// everything after the colon), or the single "*" (every scope).
func ValidScope(s string) bool {
	if s == "*" {
		return true
	}
	body := strings.TrimSuffix(s, ":*")
	if len(s) > 100 || body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isBase62(c) && !strings.ContainsRune(":._-/", rune(c)) {
			return false
		}
	}
	return true
}

func validMetadataName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isBase62(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

// NormalizeScopes returns a sorted copy of scopes without duplicates, never
// nil: the form in which the Manager stores and returns them, so that two
// lists grant the same scopes when their normal forms are equal.
func NormalizeScopes(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}

// orList writes items as "a, b or c".
func orList[T ~string](items []T) string {
	s := stringsOf(items)
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

func stringsOf[T ~string](items []T) []string {
	out := make([]string, len(items))
	for i, v := range items {
		out[i] = string(v)
	}
	return out
}

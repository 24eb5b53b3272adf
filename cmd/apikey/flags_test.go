package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

func TestParseExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  string
	}{
		{in: "30d", want: now.AddDate(0, 0, 30)},
		{in: "12h", want: now.Add(12 * time.Hour)},
		{in: "2031-06-01T00:00:00Z", want: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2031-06-01T02:00:00+02:00", want: time.Date(2031, 6, 1, 0, 0, 0, 0, time.UTC)},
		{in: "2031-06-01", err: `invalid --expires "2031-06-01": want a duration like 30d, 12h or an RFC 3339 time`},
		{in: "30x", err: `invalid --expires "30x": want a duration like 30d, 12h or an RFC 3339 time`},
		{in: "0s", err: `invalid --expires "0s": the duration must be positive`},
		{in: "9999-12-31T23:59:59Z", want: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)},
		{in: "9999-12-31T23:59:59-23:59", err: `invalid --expires "9999-12-31T23:59:59-23:59": must be between the years 1 and 9999 in UTC`},
		{in: "0001-01-01T00:00:00+01:00", err: `invalid --expires "0001-01-01T00:00:00+01:00": must be between the years 1 and 9999 in UTC`},
	} {
		got, err := parseExpiry(tc.in, now)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err || exitCode(err) != exitTrouble {
				t.Errorf("parseExpiry(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseExpiry(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParsePeppers(t *testing.T) {
	p := func(v int, s string) apikey.Pepper { return apikey.Pepper{Version: v, Secret: []byte(s)} }
	const s16, t16 = "0123456789abcdef", "fedcba9876543210"
	for _, tc := range []struct {
		in   string
		want []apikey.Pepper
		err  string
	}{
		{in: "", want: nil},
		{in: "  ", want: nil},
		{in: s16, want: []apikey.Pepper{p(1, s16)}},
		{in: " " + s16 + "\n", want: []apikey.Pepper{p(1, s16)}},
		{in: "a,b:c,d-0123456789", want: []apikey.Pepper{p(1, "a,b:c,d-0123456789")}},
		{in: "1:" + s16, want: []apikey.Pepper{p(1, s16)}},
		{in: "2:" + t16 + ", 1:" + s16, want: []apikey.Pepper{p(2, t16), p(1, s16)}},
		{in: "7:" + s16 + ":x", want: []apikey.Pepper{p(7, s16+":x")}},
		{in: "short", err: "the secret of version 1 is 5 bytes; at least 16 are required"},
		{in: "3:short", err: "the secret of version 3 is 5 bytes; at least 16 are required"},
		{in: "2:" + t16 + ",", err: "entry 2 is not VERSION:SECRET with a version of at least 1"},
		{in: "2:" + t16 + "," + s16, err: "entry 2 is not VERSION:SECRET with a version of at least 1"},
		{in: "0:" + s16, err: "entry 1 is not VERSION:SECRET with a version of at least 1"},
		{in: "1:" + s16 + ",1:" + t16, err: "version 1 is given twice"},
	} {
		got, err := parsePeppers(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parsePeppers(%q) = %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			if err != nil && (strings.Contains(err.Error(), s16) || strings.Contains(err.Error(), t16)) {
				t.Errorf("parsePeppers(%q): the error %q shows a secret", tc.in, err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("parsePeppers(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i].Version != tc.want[i].Version || string(got[i].Secret) != string(tc.want[i].Secret) {
				t.Errorf("parsePeppers(%q)[%d] = %d:%q, want %d:%q", tc.in, i, got[i].Version, got[i].Secret, tc.want[i].Version, tc.want[i].Secret)
			}
		}
	}
}

func TestParseLocation(t *testing.T) {
	for _, tc := range []struct {
		in, driver, target, err string
	}{
		{in: "apikey.db", driver: "sqlite", target: "apikey.db"},
		{in: "/var/lib/apikey/keys.db", driver: "sqlite", target: "/var/lib/apikey/keys.db"},
		{in: "sqlite:keys.db", driver: "sqlite", target: "keys.db"},
		{in: "sqlite:///abs/keys.db", driver: "sqlite", target: "/abs/keys.db"},
		{in: "./odd://name.db", driver: "sqlite", target: "./odd://name.db"},
		{in: "postgres://u:p@h/db", driver: "postgres", target: "postgres://u:p@h/db"},
		{in: "postgresql://h/db?sslmode=disable", driver: "postgres", target: "postgresql://h/db?sslmode=disable"},
		{in: "", err: "the database location is empty"},
		{in: "sqlite:", err: `the database location "sqlite:" names no file`},
		{in: "mysql://u:secret@h/db", err: `unsupported database "mysql://…": want a file path, sqlite:PATH or a postgres:// URL`},
	} {
		got, err := parseLocation(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("parseLocation(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got.driver != tc.driver || got.target != tc.target {
			t.Errorf("parseLocation(%q) = %+v, %v; want %s %q", tc.in, got, err, tc.driver, tc.target)
		}
	}
}

func TestParseMeta(t *testing.T) {
	got, err := parseMeta([]string{"a=1", "b=", "c=x=y"})
	if err != nil || len(got) != 3 || got["a"] != "1" || got["b"] != "" || got["c"] != "x=y" {
		t.Errorf("parseMeta = %v, %v", got, err)
	}
	if got, err := parseMeta(nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("parseMeta(nil) = %#v, %v; want an empty map", got, err)
	}
}

func TestErrorLine(t *testing.T) {
	const token = "ak_3fZ9q0LmA1bc_Vd8kq2N1xYp0sT7wLm4RzQe6uJb9Ha3C1x9FQk"
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("boom"), "apikey: boom"},
		{errors.New("apikey: apikey: boom"), "apikey: boom"},
		{errors.New("first\nsecond\n\tthird "), "apikey: first second third"},
		{errors.New(`unknown command "` + token + `" for "apikey"`), `apikey: unknown command "ak_3fZ9q0LmA1bc_…" for "apikey"`},
		{errors.New("x " + token[:40] + " y"), "apikey: x ak_3fZ9q0LmA1bc_… y"},
	} {
		if got := errorLine(tc.err); got != tc.want {
			t.Errorf("errorLine(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{apikey.ErrNotFound, 1},
		{&apikey.ValidationError{Field: "name", Reason: "is required"}, 1},
		{apikey.ErrRevoked, 1},
		{apikey.ErrFrozen, 1},
		{apikey.ErrTooManyKeys, 1},
		{apikey.ErrUnavailable, 2},
		{usagef("bad"), 2},
		{refusedf("no"), 1},
		{errors.New(`unknown command "x" for "apikey"`), 2},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("exitCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

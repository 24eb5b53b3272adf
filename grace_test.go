package apikey_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestRollOptions checks the defaults and the refusals of RollOptions.
func TestRollOptions(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		in    apikey.RollOptions
		want  apikey.RollOptions
		field string // of the refusal; empty for none
	}{
		{apikey.RollOptions{}, apikey.RollOptions{}, ""},
		{apikey.RollOptions{Grace: time.Hour}, apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceFirstUse, GraceMax: 7 * day}, ""},
		{apikey.RollOptions{Grace: 10 * day}, apikey.RollOptions{Grace: 10 * day, GraceStarts: apikey.GraceFirstUse, GraceMax: 10 * day}, ""},
		{apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceNow, GraceMax: time.Hour}, apikey.RollOptions{Grace: time.Hour, GraceStarts: apikey.GraceNow, GraceMax: time.Hour}, ""},
		{apikey.RollOptions{Grace: -time.Second}, apikey.RollOptions{}, "grace"},
		{apikey.RollOptions{Grace: 91 * day}, apikey.RollOptions{}, "grace"},
		{apikey.RollOptions{GraceStarts: apikey.GraceNow}, apikey.RollOptions{}, "grace_starts"},
		{apikey.RollOptions{GraceMax: day}, apikey.RollOptions{}, "grace_max"},
		{apikey.RollOptions{Grace: time.Hour, GraceStarts: "later"}, apikey.RollOptions{}, "grace_starts"},
		{apikey.RollOptions{Grace: 2 * time.Hour, GraceMax: time.Hour}, apikey.RollOptions{}, "grace_max"},
		{apikey.RollOptions{Grace: time.Hour, GraceMax: 91 * day}, apikey.RollOptions{}, "grace_max"},
		{apikey.RollOptions{Grace: time.Hour, GraceMax: -1}, apikey.RollOptions{}, "grace_max"},
	} {
		got, err := c.in.Check()
		var ve *apikey.ValidationError
		switch {
		case c.field == "" && (err != nil || got != c.want):
			t.Errorf("%+v.Check() = %+v, %v; want %+v", c.in, got, err, c.want)
		case c.field != "" && (!errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, apikey.ErrInvalidInput)):
			t.Errorf("%+v.Check(): err = %v, want a ValidationError for %s", c.in, err, c.field)
		}
	}
}

// TestParseGrace checks the durations of a grace window and their
// round trip through FormatGrace.
func TestParseGrace(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "1h": time.Hour, "7d": 7 * 24 * time.Hour, "1w2d": 9 * 24 * time.Hour, "1d12h": 36 * time.Hour} {
		got, err := apikey.ParseGrace("grace", in)
		if err != nil || got != want {
			t.Errorf("ParseGrace(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, err := apikey.ParseGrace("grace", apikey.FormatGrace(got)); err != nil || back != got {
			t.Errorf("FormatGrace(%v) = %q does not read back: %v, %v", got, apikey.FormatGrace(got), back, err)
		}
	}
	for _, in := range []string{"", "soon", "0s", "-1h", "1x", "d"} {
		if _, err := apikey.ParseGrace("grace_max", in); !errors.Is(err, apikey.ErrInvalidInput) {
			t.Errorf("ParseGrace(%q): err = %v, want ErrInvalidInput", in, err)
		}
	}
	if got := apikey.FormatGrace(7 * 24 * time.Hour); got != "7d" {
		t.Errorf("FormatGrace(7 days) = %q, want 7d", got)
	}
}

// TestPreviousSecretJSON checks the JSON form of a previous secret and
// that it reads back.
func TestPreviousSecretJSON(t *testing.T) {
	rolled := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	started := rolled.Add(time.Hour)
	p := apikey.PreviousSecret{RolledAt: rolled, Grace: 2 * time.Hour, GraceStarts: apikey.GraceFirstUse,
		GraceStartedAt: &started, ExpiresAt: rolled.Add(150 * time.Minute), Active: true}
	b, err := p.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"rolled_at":"2030-01-02T03:04:05Z","grace":"2h0m0s","grace_starts":"first_use","grace_started_at":"2030-01-02T04:04:05Z",` +
		`"grace_ends_at":"2030-01-02T05:34:05Z","expires_at":"2030-01-02T05:34:05Z","last_used_at":null,"active":true}`
	if string(b) != want {
		t.Errorf("JSON = %s\nwant   %s", b, want)
	}
	var back apikey.PreviousSecret
	if err := back.UnmarshalJSON(b); err != nil || back.Grace != p.Grace || !back.GraceStartedAt.Equal(started) || !back.Active {
		t.Errorf("read back: %+v, %v", back, err)
	}
	if !p.ActiveAt(rolled.Add(150*time.Minute-time.Nanosecond)) || p.ActiveAt(rolled.Add(150*time.Minute)) {
		t.Errorf("ActiveAt around the bound is wrong")
	}
}

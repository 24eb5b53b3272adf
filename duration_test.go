package apikey_test

import (
	"errors"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

func TestParseDuration(t *testing.T) {
	const day = 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: "30d", want: 30 * day},
		{in: "2w", want: 14 * day},
		{in: "1w2d", want: 9 * day},
		{in: "1d12h30m", want: day + 12*time.Hour + 30*time.Minute},
		{in: "12h", want: 12 * time.Hour},
		{in: "90m", want: 90 * time.Minute},
		{in: "1.5h", want: 90 * time.Minute},
		{in: "0d", want: 0},
		{in: "-1h", want: -time.Hour},
		{in: "", bad: true},
		{in: "d", bad: true},
		{in: "30", bad: true},
		{in: "30x", bad: true},
		{in: "-1d", bad: true},
		{in: "1d-1h", bad: true},
		{in: "1d+1h", bad: true},
		{in: "1.5d", bad: true},
		{in: "1h1d", bad: true},
		{in: "106752d", bad: true},
		{in: "99999999999999999999d", bad: true},
		{in: "106751d23h", want: 106751*day + 23*time.Hour},
		{in: "106751d24h", bad: true},
	} {
		got, err := apikey.ParseDuration(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("apikey.ParseDuration(%q) = %v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("apikey.ParseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestParseExpiry(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	paris := time.FixedZone("+01:00", 3600)
	for _, tc := range []struct {
		in     string
		want   time.Time
		reason string
	}{
		{in: "30d", want: now.Add(30 * 24 * time.Hour)},
		{in: "2w", want: now.Add(14 * 24 * time.Hour)},
		{in: "1d12h", want: now.Add(36 * time.Hour)},
		{in: "90m", want: now.Add(90 * time.Minute)},
		{in: "2030-01-01T14:00:00+01:00", want: time.Date(2030, 1, 1, 14, 0, 0, 0, paris)},
		{in: "2029-01-01T00:00:00.5Z", want: time.Date(2029, 1, 1, 0, 0, 0, 5e8, time.UTC)}, // the past is the Manager's to refuse
		{in: "", reason: "want a duration like 30d, 12h or an RFC 3339 time"},
		{in: "30x", reason: "want a duration like 30d, 12h or an RFC 3339 time"},
		{in: "2031-06-01", reason: "want a duration like 30d, 12h or an RFC 3339 time"},
		{in: "99999999999999d", reason: "want a duration like 30d, 12h or an RFC 3339 time"},
		{in: "0d", reason: "the duration must be positive"},
		{in: "-1h", reason: "the duration must be positive"},
	} {
		got, err := apikey.ParseExpiry(tc.in, now)
		if tc.reason != "" {
			var ve *apikey.ValidationError
			if !errors.As(err, &ve) || ve.Field != "expires_at" || ve.Reason != tc.reason {
				t.Errorf("ParseExpiry(%q) = %v, %v; want a *ValidationError for expires_at: %s", tc.in, got, err, tc.reason)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("ParseExpiry(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// TestParseExpiryManagerClock checks that an expiry read against the
// Manager's clock lands where Create puts it.
func TestParseExpiryManagerClock(t *testing.T) {
	clk := apikeytest.NewClock(time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC))
	m := mustManager(t, openStore(t), apikey.Config{Now: clk.Now})
	if got, want := m.Now(), time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Fatalf("Manager.Now() = %v, want %v in UTC", got, want)
	}
	exp, err := apikey.ParseExpiry("1h", m.Now())
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := m.Create(t.Context(), apikey.CreateParams{Name: "n", ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	if want := k.CreatedAt.Add(time.Hour); !k.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want CreatedAt + 1h = %v", k.ExpiresAt, want)
	}
}

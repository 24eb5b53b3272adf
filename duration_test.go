package apikey_test

import (
	"testing"
	"time"

	"github.com/go-apikey/apikey"
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

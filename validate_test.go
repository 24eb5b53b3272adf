package apikey_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

func mustParse(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestValidTime(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want bool
	}{
		{time.Time{}, true},
		{mustParse(t, "0001-01-01T00:00:00Z"), true},
		{mustParse(t, "2030-06-01T12:00:00+02:00"), true},
		{mustParse(t, "9999-12-31T23:59:59.999999999Z"), true},
		{mustParse(t, "9999-12-31T00:00:00+23:59"), true},
		// Year 9999 as written, year 10000 in UTC.
		{mustParse(t, "9999-12-31T23:59:59-23:59"), false},
		// Year 1 as written, year 0 in UTC.
		{mustParse(t, "0001-01-01T00:00:00+00:01"), false},
		{mustParse(t, "0000-06-01T00:00:00Z"), false},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.UnixMicro(math.MaxInt64), false},
		{time.UnixMicro(math.MinInt64), false},
	} {
		if got := apikey.ValidTime(tc.in); got != tc.want {
			t.Errorf("ValidTime(%s) = %v, want %v", tc.in, got, tc.want)
		}
		err := apikey.CheckTime("f", tc.in)
		var ve *apikey.ValidationError
		if tc.want && err != nil || !tc.want && (!errors.As(err, &ve) || ve.Field != "f") {
			t.Errorf("CheckTime(f, %s) = %v", tc.in, err)
		}
	}
}

func TestValidText(t *testing.T) {
	for in, want := range map[string]bool{
		"": true, "acme": true, "café ☕": true,
		"a\x00b": false, "\xff": false, "a\xc3": false, "tab\t": false, "\u0085": false, "del\x7f": false,
	} {
		if got := apikey.ValidText(in); got != want {
			t.Errorf("ValidText(%q) = %v, want %v", in, got, want)
		}
	}
}

// stubStore answers every call with err and counts the calls.
type stubStore struct {
	apikey.Store
	err   error
	calls int
}

func (s *stubStore) Insert(context.Context, *apikey.Record, int, *apikey.Event) error {
	s.calls++
	return s.err
}

func (s *stubStore) List(context.Context, apikey.Query) ([]*apikey.Key, error) {
	s.calls++
	return nil, s.err
}

func (s *stubStore) Update(context.Context, string, apikey.KeyUpdate, *apikey.Event) (*apikey.Key, error) {
	s.calls++
	return nil, s.err
}

func (s *stubStore) ListEvents(context.Context, apikey.EventQuery) ([]*apikey.Event, error) {
	s.calls++
	return nil, s.err
}

func (s *stubStore) Usage(context.Context, string, time.Time, time.Time) ([]apikey.UsageCount, error) {
	s.calls++
	return nil, s.err
}

// Every time and filter string the Manager takes is checked before it
// reaches the store, and refused with a *ValidationError naming the field.
func TestManagerRefusesBadTimesAndText(t *testing.T) {
	ctx := t.Context()
	st := &stubStore{err: errors.New("the store must not be reached")}
	m := mustManager(t, st, apikey.Config{Now: apikeytest.NewClock(t0).Now, UsageFlushInterval: -1})
	far := mustParse(t, "9999-12-31T23:59:59-23:59")   // year 10000 in UTC
	early := mustParse(t, "0001-01-01T00:00:00+01:00") // year 0 in UTC
	id := "AAAAAAAAAAAA"
	farCursor := base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(math.MaxInt64, 10) + "." + id))
	for _, tc := range []struct {
		field string
		call  func() error
	}{
		{"expires_at", func() error { _, _, err := m.Create(ctx, apikey.CreateParams{Name: "n", ExpiresAt: &far}); return err }},
		{"expires_at", func() error { _, err := m.Update(ctx, id, apikey.KeyUpdate{ExpiresAt: &far}); return err }},
		{"created_from", func() error { _, err := m.List(ctx, apikey.KeyFilter{CreatedFrom: early}); return err }},
		{"created_to", func() error { _, err := m.List(ctx, apikey.KeyFilter{CreatedTo: far}); return err }},
		{"cursor", func() error { _, err := m.List(ctx, apikey.KeyFilter{Cursor: farCursor}); return err }},
		{"search", func() error { _, err := m.List(ctx, apikey.KeyFilter{Search: "a\x00"}); return err }},
		{"search", func() error { _, err := m.List(ctx, apikey.KeyFilter{Search: "\xff"}); return err }},
		{"owner", func() error { _, err := m.List(ctx, apikey.KeyFilter{Owner: "o\x00"}); return err }},
		{"actor", func() error { _, err := m.Events(ctx, apikey.EventFilter{Actor: "admin:\x00"}); return err }},
		{"key_id", func() error { _, err := m.Events(ctx, apikey.EventFilter{KeyID: "x\x00"}); return err }},
		{"from", func() error { _, err := m.Usage(ctx, id, early, t0, apikey.ByHour); return err }},
		{"to", func() error { _, err := m.Usage(ctx, id, t0, far, apikey.ByHour); return err }},
	} {
		err := tc.call()
		var ve *apikey.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("err = %v, want a *ValidationError for %s", err, tc.field)
		}
	}
	if _, err := apikey.ParseCursor(farCursor); !errors.Is(err, apikey.ErrInvalidInput) {
		t.Errorf("ParseCursor of a cursor past year 9999: err = %v, want %v", err, apikey.ErrInvalidInput)
	}
	if st.calls != 0 {
		t.Errorf("the store was called %d times, want 0", st.calls)
	}
}

// A value the store refuses (apikey.ErrInvalidInput from the store) is
// passed on as bad input, never as ErrUnavailable.
func TestManagerPassesStoreRefusals(t *testing.T) {
	ctx := t.Context()
	st := &stubStore{err: fmt.Errorf("%w: the database refused a value", apikey.ErrInvalidInput)}
	m := mustManager(t, st, apikey.Config{Now: apikeytest.NewClock(t0).Now, UsageFlushInterval: -1})
	for name, call := range map[string]func() error{
		"Create": func() error { _, _, err := m.Create(ctx, apikey.CreateParams{Name: "n"}); return err },
		"Update": func() error { _, err := m.Update(ctx, "AAAAAAAAAAAA", apikey.KeyUpdate{Name: new(string)}); return err },
		"List":   func() error { _, err := m.List(ctx, apikey.KeyFilter{}); return err },
		"Events": func() error { _, err := m.Events(ctx, apikey.EventFilter{}); return err },
		"Usage":  func() error { _, err := m.Usage(ctx, "AAAAAAAAAAAA", t0, t0.Add(time.Hour), apikey.ByHour); return err },
	} {
		if err := call(); !errors.Is(err, apikey.ErrInvalidInput) || errors.Is(err, apikey.ErrUnavailable) {
			t.Errorf("%s: err = %v, want %v and not %v", name, err, apikey.ErrInvalidInput, apikey.ErrUnavailable)
		}
	}
	// Any other store error is still a failure to decide.
	st.err = errors.New("connection reset")
	if _, err := m.List(ctx, apikey.KeyFilter{}); !errors.Is(err, apikey.ErrUnavailable) {
		t.Errorf("List over a failing store: err = %v, want %v", err, apikey.ErrUnavailable)
	}
}

// FuzzParseCursor checks that every cursor ParseCursor accepts names a
// valid key id at a ValidTime, and survives a round trip.
func FuzzParseCursor(f *testing.F) {
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		apikey.Cursor{CreatedAt: t0, ID: "AAAAAAAAAAAA"}.String(),
		enc("9223372036854775807.AAAAAAAAAAAA"), enc("-9223372036854775808.AAAAAAAAAAAA"),
		enc("253402300800000000.AAAAAAAAAAAA"), enc("-62135596800000001.AAAAAAAAAAAA"),
		enc("1.\x00"), enc("0.AAAAAAAAAAAA\xff"), "", "nope", "!!", "MQ==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := apikey.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, apikey.ErrInvalidInput) {
				t.Fatalf("ParseCursor(%q): err = %v, want %v", s, err, apikey.ErrInvalidInput)
			}
			return
		}
		if !apikey.ValidTime(c.CreatedAt) || !apikey.ValidID(c.ID) {
			t.Fatalf("ParseCursor(%q) = %+v: not a valid position", s, c)
		}
		back, err := apikey.ParseCursor(c.String())
		if err != nil || !back.CreatedAt.Equal(c.CreatedAt) || back.ID != c.ID {
			t.Fatalf("round trip of %+v: %+v, %v", c, back, err)
		}
	})
}

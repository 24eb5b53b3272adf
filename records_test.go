package apikey_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeytest"
)

// TestNewRecord checks that NewRecord makes what Create would store, under
// the Manager's prefix, pepper and clock, and stores nothing itself.
func TestNewRecord(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	clk := apikeytest.NewClock(t0)
	pepper := apikey.Pepper{Version: 3, Secret: []byte("a pepper of 16+ bytes")}
	m := mustManager(t, st, apikey.Config{Prefix: "my_co", Peppers: []apikey.Pepper{pepper}, Now: clk.Now, UsageFlushInterval: -1})

	rec, token, err := m.NewRecord(apikey.CreateParams{Name: "seed-0", Owner: "o", Scopes: []string{"b", "a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := apikey.ParseToken(token)
	if err != nil || tok.Prefix != "my_co" || tok.ID != rec.ID || rec.Prefix != "my_co" {
		t.Fatalf("token %q (%+v, %v) for record %+v", token, tok, err, rec.Key)
	}
	if !slices.Equal(rec.Scopes, []string{"a", "b"}) || rec.Metadata == nil || !rec.CreatedAt.Equal(t0) || rec.State != "" || rec.Name != "seed-0" || rec.Owner != "o" {
		t.Errorf("record %+v", rec.Key)
	}
	if !strings.HasPrefix(rec.Hash, "hmac-sha256$3$") {
		t.Errorf("Hash = %q, want hmac-sha256$3$...: the Manager's current pepper", rec.Hash)
	}
	if _, err := m.Get(ctx, rec.ID); !errors.Is(err, apikey.ErrNotFound) {
		t.Errorf("Get before the insert: %v, want ErrNotFound (NewRecord stores nothing)", err)
	}

	if err := st.Insert(ctx, rec, 0, nil); err != nil {
		t.Fatal(err)
	}
	if k, err := m.Verify(ctx, token); err != nil || k.ID != rec.ID {
		t.Fatalf("Verify of an inserted record: %v, %v", k, err)
	}
	if got, err := st.Lookup(ctx, rec.ID); err != nil || got.Hash != rec.Hash {
		t.Errorf("hash after Verify = %v (%v), want %q unchanged: NewRecord hashes as the Manager does", got, err, rec.Hash)
	}

	other, token2, err := m.NewRecord(apikey.CreateParams{Name: "seed-1"})
	if err != nil || other.ID == rec.ID || token2 == token {
		t.Errorf("a second record repeats the first: %+v, %v", other, err)
	}
	past := t0.Add(-time.Second)
	for _, p := range []apikey.CreateParams{{}, {Name: "n", Scopes: []string{"bad scope"}}, {Name: "n", ExpiresAt: &past}} {
		if rec, _, err := m.NewRecord(p); !errors.Is(err, apikey.ErrInvalidInput) || rec != nil {
			t.Errorf("NewRecord(%+v) = %v, %v; want ErrInvalidInput", p, rec, err)
		}
	}
	broken := mustManager(t, st, apikey.Config{Rand: iotestErrReader{}, UsageFlushInterval: -1})
	if _, _, err := broken.NewRecord(apikey.CreateParams{Name: "n"}); err == nil {
		t.Error("NewRecord without randomness succeeded")
	}
}

func TestCheckPeppers(t *testing.T) {
	s16 := []byte("0123456789abcdef")
	for _, tc := range []struct {
		peppers []apikey.Pepper
		want    string
	}{
		{nil, ""},
		{[]apikey.Pepper{{Version: 2, Secret: s16}, {Version: 1, Secret: s16}}, ""},
		{[]apikey.Pepper{{Version: 0, Secret: s16}}, "apikey: pepper: version 0 is below 1"},
		{[]apikey.Pepper{{Version: 1, Secret: []byte("short")}}, "apikey: pepper: the secret of version 1 is 5 bytes; at least 16 are required"},
		{[]apikey.Pepper{{Version: 1, Secret: s16}, {Version: 1, Secret: s16}}, "apikey: pepper: version 1 is given twice"},
	} {
		err := apikey.CheckPeppers(tc.peppers)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tc.want {
			t.Errorf("CheckPeppers(%d peppers) = %q, want %q", len(tc.peppers), got, tc.want)
		}
		if _, merr := apikey.NewManager(openStore(t), apikey.Config{Peppers: tc.peppers, UsageFlushInterval: -1}); (merr == nil) != (err == nil) {
			t.Errorf("NewManager with %d peppers: %v, but CheckPeppers: %v", len(tc.peppers), merr, err)
		}
	}
}

// TestFilterChoices checks that List and Events accept exactly the states
// and audited event types that package apikey lists, and name them when
// refusing another.
func TestFilterChoices(t *testing.T) {
	ctx := context.Background()
	m := mustManager(t, openStore(t), apikey.Config{UsageFlushInterval: -1})
	for _, s := range apikey.States() {
		if _, err := m.List(ctx, apikey.KeyFilter{State: s}); err != nil {
			t.Errorf("List(State: %q): %v", s, err)
		}
	}
	var ve *apikey.ValidationError
	if _, err := m.List(ctx, apikey.KeyFilter{State: "bogus"}); !errors.As(err, &ve) || ve.Field != "state" || ve.Reason != "must be active, disabled, expired or revoked" {
		t.Errorf("List(State: bogus): %v", err)
	}
	for _, e := range apikey.AuditedEventTypes() {
		if _, err := m.Events(ctx, apikey.EventFilter{Type: e}); err != nil {
			t.Errorf("Events(Type: %q): %v", e, err)
		}
	}
	for _, e := range []apikey.EventType{apikey.EventVerifyRejected, apikey.EventLimitReached, "bogus"} {
		if _, err := m.Events(ctx, apikey.EventFilter{Type: e}); !errors.As(err, &ve) || ve.Field != "type" ||
			ve.Reason != "must be one of key.created, key.imported, key.updated, key.revoked, key.deleted, key.rolled, key.disabled, key.enabled, key.leaked, key.limits_changed, key.credits_changed, owner.updated, owner.deleted, key.expiring, key.expired, key.inactive_warning, webhook.created, webhook.updated, webhook.deleted" {
			t.Errorf("Events(Type: %q): %v", e, err)
		}
	}
}

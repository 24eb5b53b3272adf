package apikey_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// collector gathers events delivered to OnEvent.
type collector struct {
	mu     sync.Mutex
	events []apikey.Event
	cond   chan struct{}
}

func newCollector() *collector { return &collector{cond: make(chan struct{}, 1000)} }

func (c *collector) add(e apikey.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
	c.cond <- struct{}{}
}

// wait returns once n events have arrived, or fails the test.
func (c *collector) wait(t *testing.T, n int) []apikey.Event {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		if len(c.events) >= n {
			out := append([]apikey.Event(nil), c.events...)
			c.mu.Unlock()
			return out
		}
		c.mu.Unlock()
		select {
		case <-c.cond:
		case <-deadline:
			t.Fatalf("waited for %d events, got %d", n, len(c.events))
		}
	}
}

func TestEvents(t *testing.T) {
	c := newCollector()
	ctx := apikey.WithActor(context.Background(), "admin:ada@example.com")
	m := mustManager(t, openStore(t), apikey.Config{OnEvent: c.add, MaxKeysPerOwner: 1})
	k, token, err := m.Create(ctx, apikey.CreateParams{Name: "n", Owner: "org"})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Create(ctx, apikey.CreateParams{Name: "second", Owner: "org"}); !errors.Is(err, apikey.ErrTooManyKeys) {
		t.Fatalf("second create for a 1-key owner: %v", err)
	}
	name := "renamed"
	m.Update(ctx, k.ID, apikey.KeyUpdate{Name: &name})
	_, rolled, _ := m.Roll(ctx, k.ID, apikey.RollOptions{})
	m.Verify(ctx, token) // the old token: rejected
	m.Verify(ctx, "garbage")
	m.Revoke(ctx, k.ID)
	m.Revoke(ctx, k.ID) // already revoked: no second event
	m.Delete(ctx, k.ID)
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := c.wait(t, 8)
	want := []struct {
		typ    apikey.EventType
		keyID  string
		reason string
	}{
		{apikey.EventCreated, k.ID, ""},
		{apikey.EventLimitReached, "", "1"},
		{apikey.EventUpdated, k.ID, ""},
		{apikey.EventRolled, k.ID, ""},
		{apikey.EventVerifyRejected, k.ID, "invalid_key"},
		{apikey.EventVerifyRejected, "", "invalid_key"},
		{apikey.EventRevoked, k.ID, ""},
		{apikey.EventDeleted, k.ID, ""},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Type != w.typ || e.KeyID != w.keyID || e.Reason != w.reason || e.Actor != "admin:ada@example.com" || e.At.IsZero() {
			t.Errorf("event %d = %+v, want type %s key %q reason %q by the admin", i, e, w.typ, w.keyID, w.reason)
		}
		b, _ := json.Marshal(e)
		for _, secret := range []string{token[len(token)-38:], rolled[len(rolled)-38:]} {
			if strings.Contains(string(b), secret) {
				t.Errorf("event %d contains a secret: %s", i, b)
			}
		}
	}
	if got[1].Owner != "org" {
		t.Errorf("limit event owner = %q, want org", got[1].Owner)
	}
}

func TestSlowOrPanickingSubscriber(t *testing.T) {
	ctx := context.Background()
	block := make(chan struct{})
	defer close(block)
	slow := mustManager(t, openStore(t), apikey.Config{EventBuffer: 2, OnEvent: func(apikey.Event) { <-block }})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			slow.Verify(ctx, "not a key")
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("a blocked subscriber blocked Verify")
	}
	if slow.DroppedEvents() == 0 {
		t.Error("DroppedEvents = 0 with a blocked subscriber and a 2-event buffer")
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := slow.Close(cctx); err == nil {
		t.Error("Close with a stuck subscriber returned nil, want a timeout error")
	}

	c := newCollector()
	var calls int
	panicky := mustManager(t, openStore(t), apikey.Config{OnEvent: func(e apikey.Event) {
		calls++
		if calls == 1 {
			panic("subscriber bug")
		}
		c.add(e)
	}})
	_, token, err := panicky.Create(ctx, apikey.CreateParams{Name: "n"}) // event 1 panics
	if err != nil {
		t.Fatal(err)
	}
	if _, err := panicky.Verify(ctx, token); err != nil {
		t.Fatalf("Verify after a subscriber panic: %v", err)
	}
	panicky.Verify(ctx, "bad")
	if e := c.wait(t, 1)[0]; e.Type != apikey.EventVerifyRejected {
		t.Errorf("event after the panic = %+v, want verify.rejected", e)
	}
}

func TestDiff(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	before := &apikey.Key{Name: "a", Scopes: []string{"x"}, Metadata: map[string]string{}}
	after := &apikey.Key{Name: "b", Scopes: []string{"x"}, ExpiresAt: &at}
	got := apikey.Diff(before, after)
	if len(got) != 2 || got["name"] != (apikey.Change{Before: "a", After: "b"}) ||
		got["expires_at"] != (apikey.Change{Before: nil, After: "2026-01-02T03:04:05Z"}) {
		t.Errorf("Diff = %+v, want name and expires_at changes only", got)
	}
	if created := apikey.Diff(nil, after); len(created) != 3 { // name, scopes, expires_at
		t.Errorf("Diff(nil, key) = %+v, want every set field", created)
	}
	if same := apikey.Diff(before, before); len(same) != 0 {
		t.Errorf("Diff(k, k) = %+v, want none", same)
	}
	// The fields of environments, allowlists and inactivity are audited in
	// their text forms.
	net := after.Clone()
	net.AllowedCIDRs = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	net.InactivityExpiry = apikey.Inactivity(90 * 24 * time.Hour)
	got = apikey.Diff(after, net)
	if len(got) != 2 || !reflect.DeepEqual(got["allowed_cidrs"], apikey.Change{Before: nil, After: []string{"10.0.0.0/8"}}) ||
		got["inactivity_expiry"] != (apikey.Change{Before: nil, After: "90d"}) {
		t.Errorf("Diff(allowlist, inactivity) = %+v", got)
	}
	test := after.Clone()
	test.Environment = apikey.EnvTest
	if got := apikey.Diff(after, test); got["environment"] != (apikey.Change{Before: nil, After: "test"}) {
		t.Errorf("Diff(environment) = %+v", got)
	}
}

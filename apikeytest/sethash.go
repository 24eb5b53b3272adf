package apikeytest

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-apikey/apikey"
)

// testConditionalSetHash checks SetHash with an oldHash: a stale one
// changes nothing (the upgrade lost a race) and returns nil, the current one
// replaces the digest, an empty one replaces it unconditionally, and an
// unknown id is still ErrNotFound.
func testConditionalSetHash(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	m := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, m, apikey.CreateParams{Name: "conditional"})
	current := lookup(t, h, k.ID).Hash
	stale := "sha256$" + strings.Repeat("1", 64)
	next := "sha256$" + strings.Repeat("2", 64)
	third := "sha256$" + strings.Repeat("3", 64)
	eventCount := func() int { return len(listEvents(t, h, apikey.EventQuery{KeyID: k.ID})) }
	events := eventCount()

	// A stale oldHash: nothing changes, no error, no audit entry.
	if err := h.Store.SetHash(ctx, k.ID, stale, next, nil); err != nil {
		t.Errorf("SetHash with a stale oldHash: err = %v, want nil (the upgrade lost a race)", err)
	}
	if err := h.Store.SetHash(ctx, k.ID, stale, next, &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: k.ID}); err != nil {
		t.Errorf("SetHash with a stale oldHash and an event: err = %v, want nil", err)
	}
	if got := lookup(t, h, k.ID).Hash; got != current {
		t.Errorf("SetHash with a stale oldHash changed the hash to %q, want it kept (%q)", got, current)
	}
	if got := eventCount(); got != events {
		t.Errorf("SetHash with a stale oldHash wrote %d audit entries, want none", got-events)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify after a stale SetHash: %v", err)
	}

	// The current oldHash: replaced.
	if err := h.Store.SetHash(ctx, k.ID, current, next, nil); err != nil {
		t.Fatalf("SetHash with the current oldHash: %v", err)
	}
	if got := lookup(t, h, k.ID).Hash; got != next {
		t.Errorf("SetHash with the current oldHash: Hash = %q, want %q", got, next)
	}
	// Now the first digest is the stale one.
	if err := h.Store.SetHash(ctx, k.ID, current, third, nil); err != nil {
		t.Errorf("SetHash with the replaced digest as oldHash: err = %v, want nil", err)
	}
	if got := lookup(t, h, k.ID).Hash; got != next {
		t.Errorf("SetHash with the replaced digest as oldHash: Hash = %q, want it kept (%q)", got, next)
	}
	// With an event, the conditional write records its entry.
	ev := &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: k.ID}
	if err := h.Store.SetHash(ctx, k.ID, next, third, ev); err != nil || ev.ID <= 0 {
		t.Errorf("SetHash with the current oldHash and an event: err = %v, event ID %d", err, ev.ID)
	}
	if got := lookup(t, h, k.ID).Hash; got != third {
		t.Errorf("SetHash with the current oldHash and an event: Hash = %q, want %q", got, third)
	}
	if got := eventCount(); got != events+1 {
		t.Errorf("SetHash with the current oldHash and an event wrote %d audit entries, want 1", got-events)
	}

	// Unconditional (oldHash ""): replaced whatever is stored.
	if err := h.Store.SetHash(ctx, k.ID, "", current, nil); err != nil {
		t.Fatalf("unconditional SetHash: %v", err)
	}
	if got := lookup(t, h, k.ID).Hash; got != current {
		t.Errorf("unconditional SetHash: Hash = %q, want %q", got, current)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify after restoring the hash: %v", err)
	}

	// An unknown id is ErrNotFound, conditional or not.
	const missing = "NoSuchKey000"
	wantErr(t, "conditional SetHash of an unknown key", h.Store.SetHash(ctx, missing, current, next, nil), apikey.ErrNotFound)
	wantErr(t, "conditional SetHash of an unknown key with an event",
		h.Store.SetHash(ctx, missing, current, next, &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: missing}), apikey.ErrNotFound)
	if n := len(listEvents(t, h, apikey.EventQuery{KeyID: missing})); n != 0 {
		t.Errorf("SetHash of an unknown key wrote %d audit entries", n)
	}
}

// testHashUpgradeRacingRoll runs a Roll between Verify's match of a digest
// under an old scheme and its hash upgrade (from the Usable hook): the
// upgrade must not bring the rolled-away secret back.
func testHashUpgradeRacingRoll(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	pepper := apikey.Pepper{Version: 7, Secret: []byte("racing pepper, 32 bytes long....")}
	k, oldToken := create(t, newManager(t, h, apikey.Config{Now: clk.Now}), apikey.CreateParams{Name: "raced"})
	roller := newManager(t, h, apikey.Config{Now: clk.Now, Peppers: []apikey.Pepper{pepper}})
	var calls atomic.Int32
	var newToken string
	verifier := newManager(t, h, apikey.Config{Now: clk.Now, Peppers: []apikey.Pepper{pepper},
		Usable: func(ctx context.Context, _ *apikey.Key) error {
			if calls.Add(1) == 1 {
				_, tok, err := roller.Roll(ctx, k.ID, apikey.RollOptions{})
				if err != nil {
					t.Errorf("Roll: %v", err)
				}
				newToken = tok
			}
			return nil
		}})
	if _, err := verifier.Verify(ctx, oldToken); err != nil {
		t.Fatalf("Verify racing a Roll: %v", err)
	}
	if newToken == "" {
		t.Fatal("the Usable hook did not roll the key")
	}
	if _, err := verifier.Verify(ctx, oldToken); !errors.Is(err, apikey.ErrInvalidKey) {
		t.Errorf("Verify of the rolled-away token after the raced upgrade: err = %v, want %v", err, apikey.ErrInvalidKey)
	}
	if got, err := verifier.Verify(ctx, newToken); err != nil || got.ID != k.ID {
		t.Errorf("Verify of the new token after the raced upgrade: %v, %v", got, err)
	}
}

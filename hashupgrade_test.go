package apikey_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-apikey/apikey"
)

// TestHashUpgradeRacingRoll reproduces, deterministically, a Roll that lands
// between Verify's match of an old-scheme digest and its hash upgrade. The
// upgrade must not write the digest of the rolled-away secret back: after
// Verify returns, the old token fails and the new one verifies.
func TestHashUpgradeRacingRoll(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pepper := apikey.Pepper{Version: 1, Secret: []byte("upgrade pepper, 16+ bytes")}

	// A key hashed without pepper: the peppered Manager will upgrade it.
	k, oldToken, err := mustManager(t, st, apikey.Config{}).Create(ctx, apikey.CreateParams{Name: "raced"})
	if err != nil {
		t.Fatal(err)
	}
	before, err := st.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(before.Hash, "sha256$") {
		t.Fatalf("stored hash = %q, want sha256$...", before.Hash)
	}

	// The Roll runs on another Manager over the same store, from inside the
	// verifying Manager's Usable hook: after the match, before the upgrade.
	roller := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{pepper}})
	var calls atomic.Int32
	var newToken string
	verifier := mustManager(t, st, apikey.Config{
		Peppers: []apikey.Pepper{pepper},
		Usable: func(ctx context.Context, _ *apikey.Key) error {
			if calls.Add(1) == 1 {
				_, tok, err := roller.Roll(ctx, k.ID, apikey.RollOptions{})
				if err != nil {
					t.Errorf("Roll inside Usable: %v", err)
				}
				newToken = tok
			}
			return nil
		},
	})
	// The old token matched before the Roll, so this one verification may
	// succeed; what matters is what it leaves in the store.
	if _, err := verifier.Verify(ctx, oldToken); err != nil {
		t.Fatalf("Verify of the old token, racing the Roll: %v", err)
	}
	if newToken == "" {
		t.Fatal("the Usable hook did not roll the key")
	}
	after, err := st.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if after.Hash == before.Hash {
		t.Errorf("the stored hash is still the pre-roll digest")
	}

	for _, m := range []*apikey.Manager{verifier, roller, mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{pepper}})} {
		if _, err := m.Verify(ctx, oldToken); !errors.Is(err, apikey.ErrInvalidKey) {
			t.Errorf("Verify of the rolled-away token after the raced upgrade: err = %v, want %v", err, apikey.ErrInvalidKey)
		}
		if got, err := m.Verify(ctx, newToken); err != nil || got.ID != k.ID {
			t.Errorf("Verify of the new token after the raced upgrade: %v, %v; want key %s", got, err, k.ID)
		}
	}
}

// TestHashUpgradeWithoutRace checks that the conditional upgrade still
// happens when nothing races it.
func TestHashUpgradeWithoutRace(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pepper := apikey.Pepper{Version: 3, Secret: []byte("upgrade pepper, 16+ bytes")}
	k, token, err := mustManager(t, st, apikey.Config{}).Create(ctx, apikey.CreateParams{Name: "plain"})
	if err != nil {
		t.Fatal(err)
	}
	m := mustManager(t, st, apikey.Config{Peppers: []apikey.Pepper{pepper}})
	if _, err := m.Verify(ctx, token); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	rec, err := st.Lookup(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.Hash, "hmac-sha256$3$") {
		t.Errorf("hash after verifying under pepper 3 = %q, want it upgraded to hmac-sha256$3$", rec.Hash)
	}
	if _, err := m.Verify(ctx, token); err != nil {
		t.Errorf("Verify after the upgrade: %v", err)
	}
}

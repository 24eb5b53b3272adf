package apikeytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/go-apikey/apikey"
)

// testSetHashRevoked checks that SetHash refuses a revoked key, conditional
// or not: ErrFrozen, the digest kept, no audit entry.
func testSetHashRevoked(t *testing.T, h Harness) {
	ctx := t.Context()
	m := newManager(t, h, apikey.Config{Now: newClock().Now})
	k, token := create(t, m, apikey.CreateParams{Name: "frozen digest"})
	if _, err := m.Revoke(ctx, k.ID); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	stored := lookup(t, h, k.ID).Hash
	events := len(listEvents(t, h, apikey.EventQuery{KeyID: k.ID}))
	next := "sha256$" + strings.Repeat("4", 64)
	ev := &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: k.ID}
	wantErr(t, "SetHash of a revoked key with an event", h.Store.SetHash(ctx, k.ID, "", next, ev), apikey.ErrFrozen)
	wantErr(t, "SetHash of a revoked key", h.Store.SetHash(ctx, k.ID, "", next, nil), apikey.ErrFrozen)
	wantErr(t, "conditional SetHash of a revoked key", h.Store.SetHash(ctx, k.ID, stored, next, nil), apikey.ErrFrozen)
	wantErr(t, "conditional SetHash of a revoked key with an event",
		h.Store.SetHash(ctx, k.ID, stored, next, &apikey.Event{Type: apikey.EventRolled, At: us(base), KeyID: k.ID}), apikey.ErrFrozen)
	if got := lookup(t, h, k.ID).Hash; got != stored {
		t.Errorf("SetHash of a revoked key changed the hash to %q, want it kept (%q)", got, stored)
	}
	if got := len(listEvents(t, h, apikey.EventQuery{KeyID: k.ID})); got != events {
		t.Errorf("SetHash of a revoked key wrote %d audit entries, want none", got-events)
	}
	_, err := m.Verify(ctx, token)
	wantErr(t, "Verify of the revoked key's token", err, apikey.ErrRevoked)
}

// revokeAfterLookup is a Store whose Lookup, once armed, revokes the key
// through another Manager right after reading it: a Roll then sees an
// unrevoked key and writes after the revocation.
type revokeAfterLookup struct {
	apikey.Store
	mu      sync.Mutex
	revoker *apikey.Manager
	armed   bool
}

func (s *revokeAfterLookup) Lookup(ctx context.Context, id string) (*apikey.Record, error) {
	rec, err := s.Store.Lookup(ctx, id)
	s.mu.Lock()
	armed := s.armed
	s.armed = false
	s.mu.Unlock()
	if armed {
		if _, rerr := s.revoker.Revoke(ctx, id); rerr != nil {
			return nil, fmt.Errorf("revoke between the read and the write of Roll: %w", rerr)
		}
	}
	return rec, err
}

// testRollRevokedMeanwhile revokes a key between Roll's read and its write:
// Roll must fail with ErrFrozen, write no digest and no key.rolled entry.
func testRollRevokedMeanwhile(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	revoker := newManager(t, h, apikey.Config{Now: clk.Now})
	k, token := create(t, revoker, apikey.CreateParams{Name: "rolled while revoked"})
	stored := lookup(t, h, k.ID).Hash
	hooked := &revokeAfterLookup{Store: h.Store, revoker: revoker, armed: true}
	roller, err := apikey.NewManager(hooked, apikey.Config{Now: clk.Now})
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	_, rolled, err := roller.Roll(ctx, k.ID, apikey.RollOptions{})
	wantErr(t, "Roll of a key revoked after Roll read it", err, apikey.ErrFrozen)
	if rolled != "" {
		t.Errorf("Roll of a key revoked meanwhile returned a token")
	}
	if got := lookup(t, h, k.ID); got.RevokedAt == nil || got.Hash != stored {
		t.Errorf("after the raced Roll: revoked_at %v, hash changed %v; want revoked and the hash kept", got.RevokedAt, got.Hash != stored)
	}
	for _, ev := range listEvents(t, h, apikey.EventQuery{KeyID: k.ID}) {
		if ev.Type == apikey.EventRolled {
			t.Errorf("the audit log has a %s entry (%d) for a Roll that lost to a Revoke", ev.Type, ev.ID)
		}
	}
	_, err = revoker.Verify(ctx, token)
	wantErr(t, "Verify of the original token", err, apikey.ErrRevoked)
}

// testRollRacingRevoke runs Roll and Revoke concurrently on many keys, on
// two Managers (two instances). For every key the audit log must never
// show key.rolled after key.revoked; a Roll that succeeded must have one
// key.rolled entry, before the revocation, and a failed one none; and
// neither the token a Roll returned nor the original one may verify.
func testRollRacingRevoke(t *testing.T, h Harness) {
	ctx := t.Context()
	clk := newClock()
	rollers := newManager(t, h, apikey.Config{Now: clk.Now})
	revokers := newManager(t, h, apikey.Config{Now: clk.Now})
	const n = 40
	type result struct {
		key             *apikey.Key
		original, token string
		rollErr         error
	}
	results := make([]*result, n)
	for i := range results {
		k, token := create(t, revokers, apikey.CreateParams{Name: fmt.Sprint("race ", i)})
		results[i] = &result{key: k, original: token}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, r := range results {
		wg.Go(func() {
			<-start
			_, r.token, r.rollErr = rollers.Roll(ctx, r.key.ID, apikey.RollOptions{})
		})
		wg.Go(func() {
			<-start
			if _, err := revokers.Revoke(ctx, r.key.ID); err != nil {
				t.Errorf("Revoke(%s): %v", r.key.ID, err)
			}
		})
	}
	close(start)
	wg.Wait()

	won := 0
	for _, r := range results {
		id := r.key.ID
		switch {
		case r.rollErr == nil:
			won++
		case !errors.Is(r.rollErr, apikey.ErrFrozen):
			t.Errorf("Roll(%s) racing Revoke: err = %v, want nil or %v", id, r.rollErr, apikey.ErrFrozen)
		}
		var rolledAt, revokedAt []int64
		for _, ev := range listEvents(t, h, apikey.EventQuery{KeyID: id}) {
			switch ev.Type {
			case apikey.EventRolled:
				rolledAt = append(rolledAt, ev.ID)
			case apikey.EventRevoked:
				revokedAt = append(revokedAt, ev.ID)
			}
		}
		if len(revokedAt) != 1 {
			t.Errorf("key %s: %d key.revoked entries, want 1", id, len(revokedAt))
			continue
		}
		for _, rolled := range rolledAt {
			if rolled > revokedAt[0] {
				t.Errorf("key %s: key.rolled (entry %d) after key.revoked (entry %d)", id, rolled, revokedAt[0])
			}
		}
		if want := map[bool]int{true: 1, false: 0}[r.rollErr == nil]; len(rolledAt) != want {
			t.Errorf("key %s: Roll err = %v and %d key.rolled entries, want %d", id, r.rollErr, len(rolledAt), want)
		}
		for _, tok := range []string{r.original, r.token} {
			if tok == "" {
				continue
			}
			if k, err := rollers.Verify(ctx, tok); err == nil {
				t.Errorf("key %s: a token verifies after the key was revoked (key %s)", id, k.ID)
			}
		}
		if r.rollErr == nil {
			_, err := revokers.Verify(ctx, r.token)
			wantErr(t, "Verify of the token of a Roll that won, after Revoke", err, apikey.ErrRevoked)
		}
	}
	t.Logf("%d of %d Rolls won the race", won, n)
}

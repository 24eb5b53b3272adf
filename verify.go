package apikey

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"
)

// Verify checks token and returns its key. The checks run in this order:
// shape and checksum (no store access), lookup by id, the issuer prefix,
// constant-time hash comparison, revocation, expiry at Now, inactivity
// (Key.InactiveAt; see Config.InactivityExpiry for how a lagging last use
// is handled; ErrInactive, which matches ErrExpired), disabling
// (ErrDisabled), the Manager's Config.Environment (ErrWrongEnvironment),
// and the Usable hook. During the grace window of a Roll (RollOptions),
// the previous secret verifies as the current one does, and the first use
// of the new secret starts a window that waits for it. The token's prefix
// must be the key's TokenPrefix: a test key's token with its "_test"
// marker removed, or a live key's with one added, is invalid. Verify does
// not check the key's network allowlist, which needs the client's address:
// Check does (CheckOptions.ClientAddr), apikeyhttp does, and Key.Permits
// does for other callers. A token may also be in DRF API Key's form,
// "<prefix>.<secret>" (ParseDRFToken), which only keys imported from DRF
// API Key accept; an
// imported key whose digest is in a legacy format (LegacyHasher) gets it
// replaced by the current form when it verifies. Malformed
// tokens, unknown ids and wrong secrets all return ErrInvalidKey; ErrRevoked,
// ErrExpired and ErrDisabled (in that order) are returned only after the
// secret matched; a store
// failure returns ErrUnavailable and never a key.
//
// The returned Key may share its Scopes and Metadata with the verification
// cache: treat them as read-only, or Clone the key before changing it. It
// carries no PreviousSecret (Get shows it).
func (m *Manager) Verify(ctx context.Context, token string) (*Key, error) {
	return m.verifyToken(ctx, token, false)
}

// VerifyShared is Verify without the copy of the key it returns: the Key
// is the verification cache's own record (with no cache, the one read for
// this call), shared with every caller that verifies the same key. It must
// be treated as read-only in all its fields; Clone it to change it. It is
// a snapshot: a later change of the key (a revocation, an update) is seen
// by the next verification, not in a Key already returned. A verification
// answered from the cache allocates nothing, unless a Usable hook is set
// (it gets a copy of its own).
func (m *Manager) VerifyShared(ctx context.Context, token string) (*Key, error) {
	return m.verifyToken(ctx, token, true)
}

func (m *Manager) verifyToken(ctx context.Context, token string, shared bool) (*Key, error) {
	// The one reading of the clock of a cache hit: it times the call for
	// the metrics, bounds the trust in the cache and, with the system
	// clock, is the instant of the expiry check and of the usage count.
	start := time.Now()
	k, _, id, err := m.verifyEntry(ctx, token, start, shared, nil, nil)
	m.metrics.verifiedSince(start, err)
	if err != nil && m.events != nil && !errors.Is(err, ErrUnavailable) {
		ev := m.event(ctx, EventVerifyRejected, id, m.clock())
		ev.Reason = string(CodeOf(err))
		m.emit(ev)
	}
	return k, err
}

// verifyEntry does the work of Verify and also returns the cache entry of
// the key and the id the token claimed. start is the caller's reading of
// time.Now (see verifyToken); shared returns the entry's own key (see
// VerifyShared). When at is not nil and the key was found, it sets *at to
// the time of the checks, so that Check reads the clock once. dst, when
// not nil and the key is not shared, is where the returned copy is made
// (Check's Result holds it), rather than in a new allocation.
func (m *Manager) verifyEntry(ctx context.Context, token string, start time.Time, shared bool, at *time.Time, dst *Key) (*Key, *CacheEntry, string, error) {
	t, err := ParseAnyToken(token)
	if err != nil {
		return nil, nil, "", err
	}
	e, hit, err := m.lookup(ctx, t.ID, start)
	if err != nil {
		return nil, nil, t.ID, unavailable("lookup", err)
	}
	if e == nil {
		m.hasher.burn(token)
		return nil, nil, t.ID, ErrInvalidKey
	}
	var ok, current bool
	if e.tokenPrefix == t.Prefix {
		ok, current = m.matchEntry(e, token)
	} else {
		// A token of another issuer prefix, or of the other form (dotted
		// for a native key, native for an imported one), never matches:
		// spend the time of a native digest, never a legacy one.
		m.hasher.burn(token)
	}
	var now time.Time
	if hit && m.systemClock {
		now = start.UTC().Truncate(time.Microsecond) // as m.clock() reads it, a few hundred ns earlier
	} else {
		now = m.clock() // after a store lookup, which may have taken long
	}
	if at != nil {
		*at = now
	}
	previous := false
	if !ok && e.prev != nil && e.key.Prefix == t.Prefix {
		// The previous secret of a roll with a grace window, while the
		// window lasts.
		if okPrev, _ := m.matchEntry(e.prev, token); okPrev && e.previous.ActiveAt(now) {
			ok, previous = true, true
		}
	}
	if !ok {
		m.recordUsage(e, useInvalid, now)
		return nil, nil, t.ID, ErrInvalidKey
	}
	if e.revoked {
		m.recordUsage(e, useRevoked, now)
		return nil, nil, t.ID, ErrRevoked
	}
	if e.expires && !now.Before(e.expiresAt) {
		m.recordUsage(e, useExpired, now)
		return nil, nil, t.ID, ErrExpired
	}
	if e.inactive && !now.Before(e.inactiveAt) {
		if err := m.inactiveNow(ctx, e, now); err != nil {
			if errors.Is(err, ErrInactive) {
				m.recordUsage(e, useExpired, now)
			}
			return nil, nil, t.ID, err
		}
	}
	if e.disabled {
		m.recordUsage(e, useDisabled, now)
		return nil, nil, t.ID, ErrDisabled
	}
	if m.env != "" && e.key.Env() != m.env {
		return nil, nil, t.ID, ErrWrongEnvironment
	}
	var k *Key
	if shared && m.usable == nil {
		k = &e.key // State is StateActive: see newEntry
	} else {
		if k = dst; k == nil {
			k = new(Key)
		}
		*k = e.key // Scopes and Metadata are shared with the cache: see Verify
		k.State = StateActive
	}
	if m.usable != nil {
		if err := m.usable(ctx, k); err != nil {
			if errors.Is(err, ErrUnavailable) {
				return nil, nil, t.ID, err
			}
			return nil, nil, t.ID, fmt.Errorf("%w: %w", ErrInvalidKey, err)
		}
	}
	if previous {
		m.recordUsage(e, usePrevious, now)
		return k, e, t.ID, nil
	}
	if e.awaitStart {
		// The first use of the new secret starts the grace window of the
		// previous one.
		m.startGrace(ctx, e, now)
	}
	if !current {
		// Upgrade to the current pepper, or from a legacy digest to the
		// current form. A failure only delays the upgrade to the next
		// verification; the key itself is valid. The write is
		// conditional on the digest that matched: if a Roll replaced it
		// meanwhile, the store changes nothing, rather than bring the
		// rolled-away secret back.
		if m.store.SetHash(ctx, k.ID, e.hash, m.hasher.hash(token), nil) == nil {
			m.changed(ctx, k.ID, nil)
		}
	}
	m.recordUsage(e, useValid, now)
	return k, e, t.ID, nil
}

// inactiveNow decides, for a key whose record (maybe an old copy in the
// cache) says it is inactive at now, whether it really is: it reads the
// record again from the store, takes the later of its LastUsedAt and this
// process's last use not yet written, and refuses only when that too is
// past the inactivity expiry plus the leeway. When the key is in use
// after all, the stale entry is evicted, so that the next verification
// caches the fresh record, and it returns nil. It returns ErrInactive, or
// for a key deleted meanwhile ErrInvalidKey, or when the store fails
// ErrUnavailable: the record in hand cannot tell disuse from a lagging
// copy, so the key is neither granted nor refused for good.
func (m *Manager) inactiveNow(ctx context.Context, e *CacheEntry, now time.Time) error {
	k := e.key // a copy: the fresh last use goes here
	rec, err := m.store.Lookup(ctx, k.ID)
	switch {
	case isNotFound(err):
		return ErrInvalidKey
	case err != nil:
		return unavailable("lookup", err)
	}
	k.LastUsedAt, k.CreatedAt = rec.LastUsedAt, rec.CreatedAt
	if c := e.usage; c != nil {
		c.mu.Lock()
		last := c.last
		c.mu.Unlock()
		if !last.IsZero() && (k.LastUsedAt == nil || last.After(*k.LastUsedAt)) {
			k.LastUsedAt = &last
		}
	}
	if at, ok := k.InactiveAt(m.inactivity); ok && !now.Before(at.Add(m.leeway)) {
		return ErrInactive
	}
	m.Invalidate(k.ID)
	return nil
}

func (m *Manager) recordUsage(e *CacheEntry, outcome int, now time.Time) {
	if e.usage != nil {
		m.usage.record(e.usage, outcome, now)
	}
}

// matchEntry compares the digest of token with the entry's in constant
// time and reports whether the entry uses the current hashing scheme.
func (m *Manager) matchEntry(e *CacheEntry, token string) (ok, current bool) {
	if !e.ok {
		// Unknown scheme or pepper: fall back to the general matcher, which
		// spends the same time and never matches what it cannot check.
		return m.hasher.match(e.hash, token)
	}
	if e.plain {
		sum := sha256.Sum256(stringBytes(token))
		ok = subtle.ConstantTimeCompare(sum[:], e.digest[:sha256.Size]) == 1
		return ok, ok && m.hasher.current == nil
	}
	if e.sha512 {
		// DRF API Key's digest, kept as it is: always current. Only one
		// token matches it, so once one did, its SHA-256 stands in for it.
		if memo := e.memo.Load(); memo != nil {
			sum := sha256.Sum256(stringBytes(token))
			ok = subtle.ConstantTimeCompare(sum[:], memo[:]) == 1
			return ok, ok
		}
		sum := sha512.Sum512(stringBytes(token))
		ok = subtle.ConstantTimeCompare(sum[:], e.digest[:]) == 1
		if ok {
			memo := sha256.Sum256(stringBytes(token))
			e.memo.Store(&memo)
		}
		return ok, ok
	}
	pool := &e.pepper.pool
	current = e.pepper == m.hasher.current
	d := pool.Get().(*digestState)
	d.h.Reset()
	d.h.Write(stringBytes(token))
	d.h.Sum(d.sum[:0])
	ok = subtle.ConstantTimeCompare(d.sum[:], e.digest[:sha256.Size]) == 1
	pool.Put(d)
	return ok, ok && current
}

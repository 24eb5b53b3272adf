package apikey

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"strconv"
	"time"
)

// CreateParams describes a new key.
type CreateParams struct {
	// Name is required: 1 to 200 characters, no control characters.
	Name string
	// Owner is optional: at most 200 characters, no control characters.
	Owner string
	// Scopes are optional; see ValidScope for their syntax.
	Scopes []string
	// Metadata is optional: at most 50 entries; names of 1 to 64
	// characters of A-Z a-z 0-9 _ . -; values of at most 512 characters.
	Metadata map[string]string
	// ExpiresAt is optional and must be in the future and ValidTime (the
	// years 1 to 9999 in UTC).
	ExpiresAt *time.Time
	// RateLimits are optional; see CheckRateLimits for the rules.
	RateLimits []RateLimit
	// Credits is an optional balance of usage credits; see CheckCredits.
	// Its NextRefillAt is set by the Manager.
	Credits *Credits
	// Environment is EnvLive or EnvTest; empty means EnvLive. It never
	// changes afterwards: the key's tokens carry it.
	Environment Environment
	// AllowedCIDRs is an optional network allowlist (see
	// Key.AllowedCIDRs); ParseCIDRs reads it from text. At most
	// MaxAllowedCIDRs ranges; the Manager normalises them.
	AllowedCIDRs []netip.Prefix
	// InactivityExpiry is optional: zero means the service's default,
	// NoInactivityExpiry none, and anything else must lie within
	// MinInactivityExpiry..MaxInactivityExpiry.
	InactivityExpiry time.Duration
}

// maxIDAttempts bounds retries when a fresh id collides with a stored one
// (with 71 random bits, a second attempt is already vanishingly rare).
const maxIDAttempts = 4

// Create generates a key, stores its record and digest, and returns the
// record together with the plaintext token. The plaintext exists only in
// this return value: nothing can show it again.
func (m *Manager) Create(ctx context.Context, p CreateParams) (*Key, string, error) {
	now := m.clock()
	k, err := newKey(m.prefix, p, now)
	if err != nil {
		return nil, "", err
	}
	for attempt := 1; ; attempt++ {
		rec, token, err := m.issue(k)
		if err != nil {
			return nil, "", err
		}
		ev := m.event(ctx, EventCreated, k.ID, now)
		err = m.store.Insert(ctx, rec, m.ownerLimit(k.Owner), ev)
		switch {
		case err == nil:
			m.emit(ev)
			m.stamp(k, now)
			return k, token, nil
		case errors.Is(err, ErrDuplicateID) && attempt < maxIDAttempts:
			continue
		case errors.Is(err, ErrTooManyKeys):
			lim := m.event(ctx, EventLimitReached, "", now)
			lim.Owner, lim.Reason = k.Owner, strconv.Itoa(m.maxKeys)
			m.emit(lim)
			return nil, "", fmt.Errorf("%w: owner %q already has %d active keys", ErrTooManyKeys, k.Owner, m.maxKeys)
		case errors.Is(err, ErrInvalidInput): // the database refused a value
			return nil, "", err
		default:
			return nil, "", unavailable("insert", err)
		}
	}
}

// NewRecord makes a key as Create does, without storing it: it checks p,
// draws an id and a secret from the Manager's Rand, and returns the record,
// created now by the Manager's clock and hashed with its current pepper,
// with the plaintext token. It is for bulk loading through a store's
// BulkInsert; what Create does with the store is left to the loader:
// retrying an id that already exists, the owner limit and the audit log.
func (m *Manager) NewRecord(p CreateParams) (*Record, string, error) {
	k, err := newKey(m.prefix, p, m.clock())
	if err != nil {
		return nil, "", err
	}
	return m.issue(k)
}

// newKey returns the key that p describes, created at now, or the
// validation error of p.
func newKey(prefix string, p CreateParams, now time.Time) (*Key, error) {
	k := &Key{
		Prefix:    prefix,
		Name:      p.Name,
		Owner:     p.Owner,
		Scopes:    NormalizeScopes(p.Scopes),
		Metadata:  maps.Clone(p.Metadata),
		CreatedAt: now,
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	if p.ExpiresAt != nil {
		t := p.ExpiresAt.UTC().Truncate(time.Microsecond)
		k.ExpiresAt = &t
	}
	if err := validate(k, now, true); err != nil {
		return nil, err
	}
	if err := CheckRateLimits(p.RateLimits); err != nil {
		return nil, err
	}
	k.RateLimits = cloneLimits(p.RateLimits)
	c, err := normalizeCredits(p.Credits, now)
	if err != nil {
		return nil, err
	}
	k.Credits = c
	if k.Environment, err = ParseEnvironment(string(p.Environment)); err != nil {
		return nil, err
	}
	if len(p.AllowedCIDRs) > 0 {
		if k.AllowedCIDRs, err = NormalizeCIDRs(p.AllowedCIDRs); err != nil {
			return nil, err
		}
	}
	if err := checkInactivity(p.InactivityExpiry); err != nil {
		return nil, err
	}
	k.InactivityExpiry = Inactivity(p.InactivityExpiry)
	return k, nil
}

// issue gives k a fresh id and secret and returns its record and token.
func (m *Manager) issue(k *Key) (*Record, string, error) {
	var id string
	for {
		var err error
		if id, err = randomBase62(m.rand, IDLength); err != nil {
			return nil, "", err
		}
		if !reservedID(id) { // the ids of imported keys (DRFKeyID)
			break
		}
	}
	secret, err := randomBase62(m.rand, m.secretLen)
	if err != nil {
		return nil, "", err
	}
	k.ID = id
	token := formatToken(k.TokenPrefix(), id, secret)
	return &Record{Key: *k, Hash: m.hasher.hash(token)}, token, nil
}

func (m *Manager) ownerLimit(owner string) int {
	if owner == "" {
		return 0
	}
	return m.maxKeys
}

// Update changes the name, scopes, metadata, expiry, rate limits, credits,
// network allowlist or inactivity expiry of a key and returns the result. A revoked key is frozen: Update returns
// ErrFrozen. The audit entry is EventLimitsChanged when only the rate
// limits change, EventCreditsChanged when only the credits do, and
// EventUpdated otherwise.
func (m *Manager) Update(ctx context.Context, id string, u KeyUpdate) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	if u.Empty() {
		return m.Get(ctx, id)
	}
	if u.ExpiresAt != nil && u.ClearExpiry {
		return nil, invalid("expires_at", "cannot both set and clear the expiry")
	}
	now := m.clock()
	probe := &Key{Name: "-"}
	if u.Name != nil {
		probe.Name = *u.Name
	}
	if u.Scopes != nil {
		s := NormalizeScopes(*u.Scopes)
		u.Scopes = &s
		probe.Scopes = s
	}
	if u.Metadata != nil {
		md := maps.Clone(*u.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		u.Metadata = &md
		probe.Metadata = md
	}
	if u.ExpiresAt != nil {
		t := u.ExpiresAt.UTC().Truncate(time.Microsecond)
		u.ExpiresAt = &t
		probe.ExpiresAt = &t
	}
	if err := validate(probe, now, u.ExpiresAt != nil); err != nil {
		return nil, err
	}
	if u.AllowedCIDRs != nil {
		l, err := NormalizeCIDRs(*u.AllowedCIDRs)
		if err != nil {
			return nil, err
		}
		u.AllowedCIDRs = &l
	}
	if u.InactivityExpiry != nil {
		if err := checkInactivity(*u.InactivityExpiry); err != nil {
			return nil, err
		}
	}
	typ, err := m.prepareLimits(&u, now)
	if err != nil {
		return nil, err
	}
	ev := m.event(ctx, typ, id, now)
	k, err := m.store.Update(ctx, id, u, ev)
	m.changed(ctx, id, err)
	if err != nil {
		return nil, m.storeErr("update", err)
	}
	m.emit(ev)
	m.stamp(k, now)
	return k, nil
}

// Revoke revokes a key for ever and returns it. Revoking a revoked key is
// not an error and keeps the first revocation time. No code path un-revokes
// a key.
//
// A strict Revoke (Config.StrictRevocation, or WithStrict) then waits, as
// WaitApplied does, until every live instance has applied the revocation.
// If the wait ends first, it returns the revoked key together with a
// *NotAcknowledgedError: the revocation is applied all the same. A strict
// Revoke without an InstanceRegistry returns ErrStrictUnsupported and
// changes nothing.
func (m *Manager) Revoke(ctx context.Context, id string) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	strict, err := m.strictCheck(ctx)
	if err != nil {
		return nil, err
	}
	now := m.clock()
	ev := m.event(ctx, EventRevoked, id, now)
	k, err := m.store.Revoke(ctx, id, now, ev)
	m.changed(ctx, id, err)
	if err != nil {
		return nil, m.storeErr("revoke", err)
	}
	if ev.ID != 0 {
		m.emit(ev) // only when this call revoked it (the store wrote the entry)
	}
	m.stamp(k, now)
	if strict {
		if _, err := m.WaitApplied(ctx); err != nil {
			return k, err
		}
	}
	return k, nil
}

// Delete removes a key for good. Unlike Revoke it leaves no record; a
// deleted key verifies as an unknown one. A strict Delete waits for the
// other instances as a strict Revoke does, and likewise returns a
// *NotAcknowledgedError, the key deleted, when the wait ends first.
func (m *Manager) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return ErrNotFound
	}
	strict, err := m.strictCheck(ctx)
	if err != nil {
		return err
	}
	ev := m.event(ctx, EventDeleted, id, m.clock())
	err = m.store.Delete(ctx, id, ev)
	m.changed(ctx, id, err)
	if err != nil {
		return m.storeErr("delete", err)
	}
	m.emit(ev)
	if strict {
		if _, err := m.WaitApplied(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Roll replaces the secret of a key and returns the key with the new
// plaintext token, shown once like at creation. The id, name, scopes and
// every other field stay. With zero options the old token stops verifying
// at once; with a Grace (see RollOptions) it keeps verifying until the
// grace window ends, and the key's PreviousSecret describes it. Only one
// previous secret is kept: rolling again drops the older one. Revoking the
// key ends both secrets at once. A key imported from DRF API Key keeps its
// form: its new token is its DRF API Key prefix, a dot and the new secret.
//
// A revoked key cannot be rolled (ErrFrozen), even when it is revoked
// while Roll runs: the store refuses the new digest of a revoked key in
// the same statement that would write it, so a Roll either happens before
// a Revoke (and its token stops working with the key) or not at all.
func (m *Manager) Roll(ctx context.Context, id string, opts RollOptions) (*Key, string, error) {
	opts, err := opts.Check()
	if err != nil {
		return nil, "", err
	}
	k, err := m.Get(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if k.Revoked() {
		return nil, "", ErrFrozen
	}
	secret, err := randomBase62(m.rand, m.secretLen)
	if err != nil {
		return nil, "", err
	}
	token := formatToken(k.TokenPrefix(), k.ID, secret)
	if k.Prefix == DRFIssuer {
		// An imported key keeps its form: the same DRF API Key prefix, a
		// new secret.
		if token, err = drfToken(k.ID, secret); err != nil {
			return nil, "", err
		}
	}
	now := m.clock()
	r := Rollover{Hash: m.hasher.hash(token)}
	if opts.Grace > 0 {
		r.Previous = &PreviousSecret{RolledAt: now, Grace: opts.Grace, GraceStarts: opts.GraceStarts,
			ExpiresAt: now.Add(opts.GraceMax)}
		if opts.GraceStarts == GraceNow {
			r.Previous.GraceStartedAt = &now
		}
	}
	ev := m.event(ctx, EventRolled, k.ID, now)
	k, err = m.store.Roll(ctx, k.ID, r, ev)
	m.changed(ctx, id, err)
	if errors.Is(err, ErrFrozen) {
		return nil, "", ErrFrozen // revoked since Get: nothing changed
	}
	if err != nil {
		return nil, "", m.storeErr("roll", err)
	}
	m.emit(ev)
	m.stamp(k, now)
	return k, token, nil
}

// changed evicts the key id, which a store call that returned err may have
// changed, from this Manager's cache, and has the Invalidator tell the
// other processes unless the store refused the change (a store failure
// leaves the outcome unknown: the change may have committed).
func (m *Manager) changed(ctx context.Context, id string, err error) {
	m.Invalidate(id)
	if err == nil || isStoreError(err) {
		m.inval.publish(ctx, id)
	}
}

package apikey

import (
	"encoding/json"
	"net/netip"
	"slices"
	"time"
)

// State is the derived lifecycle state of a key.
type State string

// The states a key can be in. A revoked key stays revoked even after its
// expiry passes.
const (
	StateActive State = "active"
	// StateDisabled is a key stopped by Manager.Disable, which
	// Manager.Enable undoes; an expired or revoked key is in those states
	// whether or not it is disabled.
	StateDisabled State = "disabled"
	StateExpired  State = "expired"
	StateRevoked  State = "revoked"
)

// States returns every state, in lifecycle order: active, disabled,
// expired, revoked. Filters and menus that offer a choice of states list
// these.
func States() []State { return []State{StateActive, StateDisabled, StateExpired, StateRevoked} }

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool { return slices.Contains(States(), s) }

// Key is the record of an API key. It never holds the secret or its hash.
// The JSON form uses snake_case names and RFC 3339 times, and writes empty
// Scopes and RateLimits as [] and empty Metadata as {}; the CLI and the HTTP API share it
// (see MarshalJSON).
//
// A Key is a plain value: the Manager hands out fresh copies, so callers may
// read and modify the ones they get without synchronisation.
type Key struct {
	// ID is the public key id: 12 base62 characters, unique, safe to log.
	ID string `json:"id"`
	// Prefix is the issuer prefix the key was created with.
	Prefix string `json:"prefix"`
	// Name is a human label; it need not be unique.
	Name string `json:"name"`
	// Owner is a free identifier of whom the key belongs to (a user, an
	// organisation); empty means none.
	Owner string `json:"owner"`
	// Scopes are the permissions granted to the key, sorted and unique.
	Scopes []string `json:"scopes"`
	// Metadata is free string data attached by the creator.
	Metadata map[string]string `json:"metadata"`
	// CreatedAt is when the key was created, in UTC.
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt, when set, is the first instant at which the key is expired.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// RevokedAt, when set, is when the key was revoked. It is never cleared.
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	// DisabledAt, when set, is when the key was disabled (Manager.Disable):
	// verification refuses it with ErrDisabled until Manager.Enable clears
	// it.
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// LastUsedAt, when set, is when the key's current secret last passed
	// verification, as recorded by the store. A Roll clears it: the new
	// secret has not been used yet.
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// PreviousSecret, when set, describes the secret that the last Roll
	// with a grace window replaced, which keeps verifying during the
	// window. It stays after the window ends, for its last use, until the
	// next Roll.
	PreviousSecret *PreviousSecret `json:"previous_secret,omitempty"`
	// RateLimits are the key's named rate limits (see RateLimit); the
	// owner's apply too. Written as [] when empty.
	RateLimits []RateLimit `json:"ratelimits"`
	// Credits is the key's balance of usage credits; nil means none, so
	// the key is not limited by credits (its owner's may still apply).
	Credits *Credits `json:"credits,omitempty"`
	// Environment is EnvLive or EnvTest, fixed at creation and visible in
	// the key's tokens (see Environment). Stores return EnvLive for the
	// records made before environments existed.
	Environment Environment `json:"environment"`
	// AllowedCIDRs, when not empty, are the only networks the key may be
	// used from (see Key.AllowsAddr and Permits), in their normalised form
	// (NormalizeCIDRs). Written as [] when empty, as text
	// ("203.0.113.0/24").
	AllowedCIDRs []netip.Prefix `json:"allowed_cidrs"`
	// allow is the compiled form of AllowedCIDRs that the verification
	// cache keeps beside its record (see allowIndex), nil elsewhere; it
	// lies beside AllowedCIDRs, which a check reads too.
	allow *allowIndex
	// InactivityExpiry is how long the key may go unused before it
	// expires (see InactiveAt): zero means the service's default
	// (Config.InactivityExpiry), NoInactivityExpiry means never. Its JSON
	// form is text ("90d", "never"), left out when zero.
	InactivityExpiry Inactivity `json:"inactivity_expiry,omitempty"`
	// State is StateAt(now) for the instant at which the Manager returned
	// the key. Stores leave it empty.
	State State `json:"state"`
}

// MarshalJSON encodes k in the JSON form shared by the HTTP API, its
// client and the CLI: the field names of the struct tags, times in
// RFC 3339, absent times and Credits left out, and Scopes, RateLimits and
// Metadata as [], [] and {} rather than null when they are empty.
func (k Key) MarshalJSON() ([]byte, error) {
	type plain Key // the same fields, without this method
	if k.Scopes == nil {
		k.Scopes = []string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	if k.RateLimits == nil {
		k.RateLimits = []RateLimit{}
	}
	if k.AllowedCIDRs == nil {
		k.AllowedCIDRs = []netip.Prefix{}
	}
	k.Environment = k.Env()
	return json.Marshal(plain(k))
}

// IssuedKey is a key together with its plaintext token, as Create and
// Roll return them. Its JSON form, the answer of the HTTP API's create and
// roll calls, is the key's with the token beside it under "key":
// {"key": "ak_...", "id": ..., "name": ...}.
type IssuedKey struct {
	// Token is the plaintext, shown this once.
	Token string `json:"key"`
	*Key
}

// MarshalJSON encodes the token under "key" followed by the fields of
// Key.MarshalJSON. Without it, the method promoted from the embedded Key
// would drop the token.
func (ik IssuedKey) MarshalJSON() ([]byte, error) {
	var k Key
	if ik.Key != nil {
		k = *ik.Key
	}
	body, err := k.MarshalJSON()
	if err != nil {
		return nil, err
	}
	token, err := json.Marshal(ik.Token)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(`{"key":,`)+len(token)+len(body))
	out = append(out, `{"key":`...)
	out = append(out, token...)
	out = append(out, ',')
	return append(out, body[1:]...), nil // body is an object with fields
}

// Revoked reports whether the key has been revoked.
func (k *Key) Revoked() bool { return k.RevokedAt != nil }

// Expired reports whether the key is expired at now: a key is expired at and
// after its ExpiresAt instant, so "expires at 12:00" never grants at 12:00.
func (k *Key) Expired(now time.Time) bool {
	return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)
}

// Disabled reports whether the key is disabled.
func (k *Key) Disabled() bool { return k.DisabledAt != nil }

// StateAt returns the key's state at now. Revocation wins over expiry, and
// expiry over disabling. A key past its own InactivityExpiry (InactiveAt
// without a service default) is expired too; the Manager's states also
// apply its default (see StateWith).
func (k *Key) StateAt(now time.Time) State { return k.StateWith(now, 0) }

// StateWith is StateAt with defaultPolicy as the service's default
// inactivity expiry (see InactiveAt).
func (k *Key) StateWith(now time.Time, defaultPolicy time.Duration) State {
	switch {
	case k.Revoked():
		return StateRevoked
	case k.Expired(now):
		return StateExpired
	}
	if at, ok := k.InactiveAt(defaultPolicy); ok && !now.Before(at) {
		return StateExpired
	}
	if k.Disabled() {
		return StateDisabled
	}
	return StateActive
}

// HasScope reports whether the key grants scope. A granted scope ending in
// ":*" covers every scope that starts with what precedes the star
// ("billing:*" covers "billing:read" and "billing:invoices:write"), and a
// granted "*" covers everything.
func (k *Key) HasScope(scope string) bool {
	for _, s := range k.Scopes {
		if ScopeCovers(s, scope) {
			return true
		}
	}
	return false
}

// ScopeCovers reports whether the granted scope covers the required one,
// with the wildcard rules of Key.HasScope.
func ScopeCovers(granted, required string) bool {
	if granted == required || granted == "*" {
		return true
	}
	if n := len(granted); n >= 2 && granted[n-2:] == ":*" {
		return len(required) > n-1 && required[:n-1] == granted[:n-1]
	}
	return false
}

// Clone returns a deep copy of k.
func (k *Key) Clone() *Key {
	c := *k
	c.Scopes = slices.Clone(k.Scopes)
	if k.Metadata != nil {
		c.Metadata = make(map[string]string, len(k.Metadata))
		for name, v := range k.Metadata {
			c.Metadata[name] = v
		}
	}
	c.ExpiresAt = cloneTime(k.ExpiresAt)
	c.RevokedAt = cloneTime(k.RevokedAt)
	c.LastUsedAt = cloneTime(k.LastUsedAt)
	c.DisabledAt = cloneTime(k.DisabledAt)
	c.PreviousSecret = k.PreviousSecret.Clone()
	c.RateLimits = cloneLimits(k.RateLimits)
	c.Credits = k.Credits.Clone()
	c.AllowedCIDRs = slices.Clone(k.AllowedCIDRs)
	c.allow = nil
	return &c
}

func cloneTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

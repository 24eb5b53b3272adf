package apikey

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// GraceStart says when the grace window of a Roll begins.
type GraceStart string

// The starts of a grace window.
const (
	// GraceFirstUse starts the window when the new secret first passes
	// verification, so that the old secret keeps working for as long as
	// the clients have not switched, up to RollOptions.GraceMax.
	GraceFirstUse GraceStart = "first_use"
	// GraceNow starts the window at the roll.
	GraceNow GraceStart = "now"
)

// Bounds of the grace window of a Roll.
const (
	// DefaultGraceMax is the upper bound of a grace window, counted from
	// the roll, when RollOptions.GraceMax is zero (and Grace is shorter).
	DefaultGraceMax = 7 * 24 * time.Hour
	// MaxGraceMax is the longest upper bound a Roll accepts: 90 days.
	MaxGraceMax = 90 * 24 * time.Hour
)

// RollOptions are the options of Manager.Roll. The zero value stops the
// old secret at once.
type RollOptions struct {
	// Grace is how long the old secret keeps verifying once the window
	// has started. Zero means no window: the old secret stops at once. It
	// may not be negative.
	Grace time.Duration
	// GraceStarts says when the window starts. Empty means GraceFirstUse
	// when Grace is set. It must be empty when Grace is zero.
	GraceStarts GraceStart
	// GraceMax bounds the window from the roll: the old secret stops at
	// the roll plus GraceMax whatever else happens, even if the new secret
	// has never been used. Zero means DefaultGraceMax (7 days), or Grace
	// when that is longer. It must be at least Grace, at most MaxGraceMax,
	// and zero when Grace is zero.
	GraceMax time.Duration
}

// Check validates o and returns it with its defaults filled in. Its errors
// are *ValidationError for the fields "grace", "grace_starts" and
// "grace_max".
func (o RollOptions) Check() (RollOptions, error) {
	switch {
	case o.Grace < 0:
		return o, invalid("grace", "must not be negative")
	case o.GraceMax < 0:
		return o, invalid("grace_max", "must not be negative")
	case o.Grace == 0 && o.GraceStarts != "":
		return o, invalid("grace_starts", "needs a grace")
	case o.Grace == 0 && o.GraceMax != 0:
		return o, invalid("grace_max", "needs a grace")
	case o.Grace == 0:
		return o, nil
	}
	switch o.GraceStarts {
	case "":
		o.GraceStarts = GraceFirstUse
	case GraceFirstUse, GraceNow:
	default:
		return o, invalid("grace_starts", "must be %s or %s", GraceFirstUse, GraceNow)
	}
	if o.Grace > MaxGraceMax {
		return o, invalid("grace", "must be at most %s", FormatGrace(MaxGraceMax))
	}
	if o.GraceMax == 0 {
		o.GraceMax = max(DefaultGraceMax, o.Grace)
	}
	if o.GraceMax < o.Grace {
		return o, invalid("grace_max", "must be at least the grace (%s)", FormatGrace(o.Grace))
	}
	if o.GraceMax > MaxGraceMax {
		return o, invalid("grace_max", "must be at most %s", FormatGrace(MaxGraceMax))
	}
	return o, nil
}

// ParseGrace reads a duration of a grace window as people write it: Go's
// syntax with leading day and week terms ("90s", "1h", "7d", "1w2d"). The
// error is a *ValidationError for field, which names the argument
// ("grace", "grace_max"). The value must be positive.
func ParseGrace(field, s string) (time.Duration, error) {
	d, err := parseDuration(s)
	if err != nil {
		return 0, invalid(field, "want a duration like 1h, 30m or 7d, not %q", s)
	}
	if d <= 0 {
		return 0, invalid(field, "must be positive, not %q", s)
	}
	return d, nil
}

// FormatGrace writes d as ParseGrace reads it: whole days as "7d", other
// durations in Go's syntax ("1h30m0s").
func FormatGrace(d time.Duration) string {
	const day = 24 * time.Hour
	if d > 0 && d%day == 0 {
		return strconv.FormatInt(int64(d/day), 10) + "d"
	}
	return d.String()
}

// PreviousSecret is the state of the secret that a Roll with a grace
// window replaced. The old secret verifies, as the key, while ActiveAt
// reports true: from the roll until EndsAt.
//
// Its JSON form is
//
//	{"rolled_at": "...", "grace": "1h0m0s", "grace_starts": "first_use",
//	 "grace_started_at": null, "grace_ends_at": null,
//	 "expires_at": "...", "last_used_at": null, "active": true}
//
// where grace_ends_at is set once the window has started, expires_at is
// the upper bound (the roll plus GraceMax) and active is ActiveAt the
// instant at which the Manager returned the key.
type PreviousSecret struct {
	// RolledAt is when the secret was replaced.
	RolledAt time.Time
	// Grace is how long the window runs once started.
	Grace time.Duration
	// GraceStarts says when the window starts.
	GraceStarts GraceStart
	// GraceStartedAt is when the window started: the roll for GraceNow,
	// the first use of the new secret for GraceFirstUse; nil while it has
	// not started.
	GraceStartedAt *time.Time
	// ExpiresAt is the upper bound: the roll plus GraceMax.
	ExpiresAt time.Time
	// LastUsedAt is when the old secret last passed verification, before
	// or after the roll; nil if never.
	LastUsedAt *time.Time
	// Active is ActiveAt(now) for the instant at which the Manager returned
	// the key. Stores leave it false.
	Active bool
}

// EndsAt returns the instant at which the old secret stops: the start of
// the window plus Grace, or ExpiresAt if that is earlier or the window has
// not started.
func (p *PreviousSecret) EndsAt() time.Time {
	if p.GraceStartedAt != nil {
		if end := p.GraceStartedAt.Add(p.Grace); end.Before(p.ExpiresAt) {
			return end
		}
	}
	return p.ExpiresAt
}

// ActiveAt reports whether the old secret still verifies at now.
func (p *PreviousSecret) ActiveAt(now time.Time) bool { return p != nil && now.Before(p.EndsAt()) }

// Clone returns a deep copy of p (nil for nil).
func (p *PreviousSecret) Clone() *PreviousSecret {
	if p == nil {
		return nil
	}
	c := *p
	c.GraceStartedAt = cloneTime(p.GraceStartedAt)
	c.LastUsedAt = cloneTime(p.LastUsedAt)
	return &c
}

type previousJSON struct {
	RolledAt       time.Time  `json:"rolled_at"`
	Grace          string     `json:"grace"`
	GraceStarts    GraceStart `json:"grace_starts"`
	GraceStartedAt *time.Time `json:"grace_started_at"`
	GraceEndsAt    *time.Time `json:"grace_ends_at"`
	ExpiresAt      time.Time  `json:"expires_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	Active         bool       `json:"active"`
}

// MarshalJSON writes the JSON form described on PreviousSecret.
func (p PreviousSecret) MarshalJSON() ([]byte, error) {
	j := previousJSON{RolledAt: p.RolledAt, Grace: p.Grace.String(), GraceStarts: p.GraceStarts,
		GraceStartedAt: p.GraceStartedAt, ExpiresAt: p.ExpiresAt, LastUsedAt: p.LastUsedAt, Active: p.Active}
	if p.GraceStartedAt != nil {
		end := p.EndsAt()
		j.GraceEndsAt = &end
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads the JSON form written by MarshalJSON.
func (p *PreviousSecret) UnmarshalJSON(b []byte) error {
	var j previousJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	g, err := time.ParseDuration(j.Grace)
	if err != nil {
		return err
	}
	*p = PreviousSecret{RolledAt: j.RolledAt, Grace: g, GraceStarts: j.GraceStarts, GraceStartedAt: j.GraceStartedAt,
		ExpiresAt: j.ExpiresAt, LastUsedAt: j.LastUsedAt, Active: j.Active}
	return nil
}

// Rollover is what Store.Roll writes.
type Rollover struct {
	// Hash is the digest of the new secret.
	Hash string
	// Previous, when set, keeps the digest being replaced as the previous
	// secret's, with these settings (the store sets its LastUsedAt to the
	// key's LastUsedAt, both in the same statement as the replacement);
	// nil drops any previous secret.
	Previous *PreviousSecret
}

// PreviousSubject is the id under which the lastUsed map of
// Store.RecordUsage carries the last use of the previous secret of key id.
func PreviousSubject(id string) string { return "previous:" + id }

// Disable stops a key until Enable: verification refuses it with
// ErrDisabled. Unlike Revoke it can be undone; a revoked key can be
// neither disabled nor enabled (ErrFrozen). Disabling a disabled key
// changes nothing and writes no audit entry. The change reaches the caches
// of other instances as a revocation does.
func (m *Manager) Disable(ctx context.Context, id string) (*Key, error) {
	return m.setDisabled(ctx, id, true)
}

// Enable undoes Disable. Enabling a key that is not disabled changes
// nothing and writes no audit entry; a revoked key returns ErrFrozen.
func (m *Manager) Enable(ctx context.Context, id string) (*Key, error) {
	return m.setDisabled(ctx, id, false)
}

func (m *Manager) setDisabled(ctx context.Context, id string, disabled bool) (*Key, error) {
	if !ValidID(id) {
		return nil, ErrNotFound
	}
	typ, op := EventEnabled, "enable"
	if disabled {
		typ, op = EventDisabled, "disable"
	}
	now := m.clock()
	ev := m.event(ctx, typ, id, now)
	k, err := m.store.SetDisabled(ctx, id, disabled, now, ev)
	m.changed(ctx, id, err)
	if err != nil {
		return nil, m.storeErr(op, err)
	}
	if ev.ID != 0 {
		m.emit(ev)
	}
	m.stamp(k, now)
	return k, nil
}

// stamp sets the fields of k that depend on the instant it is returned.
func (m *Manager) stamp(k *Key, now time.Time) {
	k.State = m.stateOf(k, now)
	if k.PreviousSecret != nil {
		k.PreviousSecret.Active = k.PreviousSecret.ActiveAt(now) && !k.Revoked()
	}
}

// startGrace records the first use of the new secret of the key of e,
// which starts the grace window of its previous secret. Only one caller
// per cache entry tries; a failure leaves it to the next verification.
func (m *Manager) startGrace(ctx context.Context, e *CacheEntry, now time.Time) {
	if !e.starting.CompareAndSwap(false, true) {
		return
	}
	wrote, err := m.store.StartGrace(ctx, e.key.ID, e.hash, now)
	switch {
	case err != nil && !errors.Is(err, ErrNotFound):
		e.starting.Store(false)
	case wrote:
		m.changed(ctx, e.key.ID, nil)
	default:
		m.Invalidate(e.key.ID) // started elsewhere: read its start
	}
}

package apikey_test

import (
	"testing"
	"time"

	"github.com/go-apikey/apikey"
)

// TestScheduleRulesWithInactivity checks the scheduler's rules against the
// inactivity policy itself (Key.InactiveAt): when each is due, and that a
// key gets one key.expired, at the earlier of its expiry and its
// inactivity deadline.
func TestScheduleRulesWithInactivity(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	const day = 24 * time.Hour
	def := 30 * day // the service's default
	inactiveAt := func(k *apikey.Key) (time.Time, bool) { return k.InactiveAt(def) }
	expired := apikey.ExpiredOrInactiveRule(inactiveAt)
	warning := apikey.InactiveWarningRule(inactiveAt, 7*day)
	for _, c := range []struct {
		name        string
		key         apikey.Key
		expiredDue  *time.Time // nil: not due
		warningDue  *time.Time
		plainExpiry *time.Time // ExpiredRule, which knows no inactivity
	}{
		{name: "used recently", key: apikey.Key{CreatedAt: now.Add(-90 * day), LastUsedAt: at(-day)}},
		{name: "default policy passed", key: apikey.Key{CreatedAt: now.Add(-31 * day)},
			expiredDue: at(-day)},
		{name: "default policy in 3 days", key: apikey.Key{CreatedAt: now.Add(-27 * day)},
			warningDue: at(3 * day)},
		{name: "own policy passed, last use counts", key: apikey.Key{CreatedAt: now.Add(-100 * day), LastUsedAt: at(-11 * day), InactivityExpiry: apikey.Inactivity(10 * day)},
			expiredDue: at(-day)},
		{name: "own policy never", key: apikey.Key{CreatedAt: now.Add(-400 * day), InactivityExpiry: apikey.Inactivity(apikey.NoInactivityExpiry)}},
		{name: "expiry before inactivity", key: apikey.Key{CreatedAt: now.Add(-31 * day), ExpiresAt: at(-2 * day)},
			expiredDue: at(-2 * day), plainExpiry: at(-2 * day)},
		{name: "inactivity before expiry", key: apikey.Key{CreatedAt: now.Add(-31 * day), ExpiresAt: at(day)},
			expiredDue: at(-day)},
		{name: "revoked before the inactivity deadline", key: apikey.Key{CreatedAt: now.Add(-31 * day), RevokedAt: at(-2 * day)}},
		{name: "revoked after the inactivity deadline", key: apikey.Key{CreatedAt: now.Add(-31 * day), RevokedAt: at(-time.Hour)},
			expiredDue: at(-day)},
		{name: "revoked, deadline ahead", key: apikey.Key{CreatedAt: now.Add(-27 * day), RevokedAt: at(-time.Hour)}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, r := range []struct {
				name string
				rule apikey.Rule
				want *time.Time
			}{{"expired", expired, c.expiredDue}, {"inactive warning", warning, c.warningDue}, {"plain expired", apikey.ExpiredRule(), c.plainExpiry}} {
				due, ok := r.rule.Due(&c.key, now)
				switch {
				case r.want == nil && ok:
					t.Errorf("%s: due at %v, want not due", r.name, due)
				case r.want != nil && (!ok || !due.Equal(*r.want)):
					t.Errorf("%s: Due = %v, %v; want %v, true", r.name, due, ok, *r.want)
				}
			}
		})
	}
	if expired.Type != apikey.EventExpired || warning.Type != apikey.EventInactiveWarning {
		t.Errorf("rule types %q, %q", expired.Type, warning.Type)
	}
}

package apikey

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// EventType names what happened to a key.
type EventType string

// Event types. All but the last two are recorded in the store's audit log in
// the same transaction as what they describe (a mutation, or a leak
// recorded); the last two are emitted to subscribers only.
const (
	EventCreated EventType = "key.created"
	// EventImported records a key imported from another system
	// (Manager.Import).
	EventImported EventType = "key.imported"
	EventUpdated  EventType = "key.updated"
	EventRevoked  EventType = "key.revoked"
	EventDeleted  EventType = "key.deleted"
	// EventRolled records a Roll; its Changes hold "previous_secret"
	// when the roll kept the old secret for a grace window, with the
	// window's settings.
	EventRolled EventType = "key.rolled"
	// EventDisabled and EventEnabled record Manager.Disable and
	// Manager.Enable.
	EventDisabled EventType = "key.disabled"
	EventEnabled  EventType = "key.enabled"
	// EventLeaked records a confirmed leak (Manager.ReportLeak): its URL
	// is where the key was found, its Reason the action taken.
	EventLeaked EventType = "key.leaked"
	// EventLimitsChanged records an Update that changed only a key's rate
	// limits.
	EventLimitsChanged EventType = "key.limits_changed"
	// EventCreditsChanged records a change of a key's credits: an Update
	// that changed only them, or an AdjustCredits (set, add, refund; its
	// Reason is the operation). Spends are counted, not audited.
	EventCreditsChanged EventType = "key.credits_changed"
	// EventOwnerUpdated records a change of an owner's record (SetOwner,
	// AdjustCredits of an owner): its KeyID is OwnerSubject(owner), its
	// Owner the owner.
	EventOwnerUpdated EventType = "owner.updated"
	// EventOwnerDeleted records Manager.DeleteOwner: the owner's record
	// (its limits and balance) is gone; its KeyID is OwnerSubject(owner),
	// its Owner the owner, its Changes what the record held.
	EventOwnerDeleted EventType = "owner.deleted"
	// EventExpiring records, once per key and expiry, that the key expires
	// within the warning period of the Scheduler (ExpiringRule); it is
	// written by the Scheduler, not by a mutation.
	EventExpiring EventType = "key.expiring"
	// EventExpired records, once per key and expiry, that the key's
	// ExpiresAt has passed (ExpiredRule), written by the Scheduler.
	EventExpired EventType = "key.expired"
	// EventInactiveWarning records, once per key and inactivity deadline,
	// that the key will expire for inactivity within the warning period
	// (InactiveWarningRule), written by the Scheduler.
	EventInactiveWarning EventType = "key.inactive_warning"
	// EventWebhookCreated, EventWebhookUpdated and EventWebhookDeleted
	// record changes of webhook endpoints (package outbox): their KeyID is
	// WebhookSubject(id), their Changes the endpoint's fields (never its
	// secret: a rotation shows as "secret": "rotated"). They are audited
	// but never delivered to webhooks.
	EventWebhookCreated EventType = "webhook.created"
	EventWebhookUpdated EventType = "webhook.updated"
	EventWebhookDeleted EventType = "webhook.deleted"
	EventLimitReached   EventType = "owner.limit_reached"
	EventVerifyRejected EventType = "verify.rejected"
)

// AuditedEventTypes returns the event types that stores record in their
// audit log (the mutations, and leaks), in lifecycle order. Manager.Events
// accepts these as a filter; the others are only emitted to OnEvent.
func AuditedEventTypes() []EventType {
	return []EventType{EventCreated, EventImported, EventUpdated, EventRevoked, EventDeleted, EventRolled,
		EventDisabled, EventEnabled, EventLeaked,
		EventLimitsChanged, EventCreditsChanged, EventOwnerUpdated, EventOwnerDeleted,
		EventExpiring, EventExpired, EventInactiveWarning,
		EventWebhookCreated, EventWebhookUpdated, EventWebhookDeleted}
}

// WebhookSubject returns the KeyID of the audit entries about a webhook
// endpoint: "webhook:" and its id. It never is a key id.
func WebhookSubject(id string) string { return "webhook:" + id }

// Event describes one lifecycle event. Events never carry a plaintext key
// or a hash.
type Event struct {
	// ID is the audit log's sequence number; zero for events that were not
	// (or not yet) stored.
	ID int64 `json:"id,omitempty"`
	// Type says what happened.
	Type EventType `json:"type"`
	// At is when it happened, in UTC.
	At time.Time `json:"at"`
	// Actor is who did it, as set with WithActor ("admin:alice@example.com",
	// "key:3fZ9q0LmA1bc", "cli"); empty when unknown.
	Actor string `json:"actor"`
	// KeyID is the key concerned; for EventVerifyRejected it is the id the
	// token claimed, which may not exist.
	KeyID string `json:"key_id,omitempty"`
	// Owner is the owner of the key concerned.
	Owner string `json:"owner,omitempty"`
	// Reason says why a verification was rejected, as a Code
	// (CodeInvalidKey, CodeKeyExpired or CodeKeyRevoked); for
	// EventLimitReached, the limit; for EventLeaked, the LeakAction taken.
	// Stores do not keep it.
	Reason string `json:"reason,omitempty"`
	// URL is, for EventLeaked, where the key was found, as reported (it may
	// be empty); stores keep it in the audit log.
	URL string `json:"url,omitempty"`
	// Changes holds the before and after values of changed fields, by their
	// JSON names.
	Changes map[string]Change `json:"changes,omitempty"`
}

// Change is the value of one field before and after a mutation; nil means
// absent.
type Change struct {
	Before any `json:"before"`
	After  any `json:"after"`
}

// Diff returns the fields that differ between before and after, by JSON
// name; either may be nil (creation, deletion). State and LastUsedAt are not
// compared, nor the NextRefillAt of Credits. Stores call it to fill the
// audit log.
func Diff(before, after *Key) map[string]Change {
	fields := func(k *Key) map[string]any {
		if k == nil {
			return map[string]any{}
		}
		m := map[string]any{
			"name": k.Name, "owner": k.Owner, "scopes": k.Scopes, "metadata": k.Metadata,
			"expires_at": k.ExpiresAt, "revoked_at": k.RevokedAt, "disabled_at": k.DisabledAt,
			"ratelimits": limitsValue(k.RateLimits), "credits": creditsValue(k.Credits),
			"previous_secret": previousValue(k.PreviousSecret),
			"environment":     environmentValue(k), "allowed_cidrs": cidrStrings(k.AllowedCIDRs),
			"inactivity_expiry": inactivityValue(time.Duration(k.InactivityExpiry)),
		}
		for name, v := range m {
			if t, ok := v.(*time.Time); ok {
				if t == nil {
					m[name] = nil
				} else {
					m[name] = t.UTC().Format(time.RFC3339Nano)
				}
			}
		}
		return m
	}
	b, a := fields(before), fields(after)
	out := map[string]Change{}
	for _, name := range []string{"name", "owner", "scopes", "metadata", "expires_at", "revoked_at", "disabled_at",
		"ratelimits", "credits", "previous_secret", "environment", "allowed_cidrs", "inactivity_expiry"} {
		if !reflect.DeepEqual(normalizeEmpty(b[name]), normalizeEmpty(a[name])) {
			out[name] = Change{Before: b[name], After: a[name]}
		}
	}
	return out
}

// previousValue is the audit form of a previous secret: the settings of
// its grace window, without its start and last use, or nil.
func previousValue(p *PreviousSecret) any {
	if p == nil {
		return nil
	}
	return map[string]any{
		"rolled_at": p.RolledAt.UTC().Format(time.RFC3339Nano), "grace": p.Grace.String(),
		"grace_starts": string(p.GraceStarts), "expires_at": p.ExpiresAt.UTC().Format(time.RFC3339Nano),
	}
}

// environmentValue is the audit form of an environment: nil for live, the
// default, so that the audit entries of live keys are what they were
// before environments existed.
func environmentValue(k *Key) any {
	if k.Env() == EnvLive {
		return nil
	}
	return string(k.Env())
}

// inactivityValue is the audit form of an inactivity expiry: its text
// ("90d", "never"), or nil for the default.
func inactivityValue(d time.Duration) any {
	if d == 0 {
		return nil
	}
	return FormatInactivityExpiry(d)
}

// limitsValue is the audit form of rate limits: nil when there are none.
func limitsValue(l []RateLimit) any {
	if len(l) == 0 {
		return nil
	}
	return cloneLimits(l)
}

// creditsValue is the audit form of credits: the balance and refill,
// without the next refill instant, or nil.
func creditsValue(c *Credits) any {
	if c == nil {
		return nil
	}
	v := c.Clone()
	v.NextRefillAt = nil
	return v
}

// OwnerSubject returns the KeyID of the audit entries and changes about an
// owner: "owner:" and the owner. It never is a key id.
func OwnerSubject(owner string) string { return "owner:" + owner }

func normalizeEmpty(v any) any {
	switch x := v.(type) {
	case []string:
		if len(x) == 0 {
			return nil
		}
	case map[string]string:
		if len(x) == 0 {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	}
	return v
}

// MarshalChanges encodes changes as JSON for storage; stores use it so that
// both backends store the same text.
func MarshalChanges(c map[string]Change) []byte {
	if len(c) == 0 {
		return []byte("{}")
	}
	b, _ := json.Marshal(c)
	return b
}

type actorKey struct{}

// WithActor returns a copy of ctx naming who performs the calls made with
// it; the Manager records the actor in events and the audit log.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorFrom returns the actor set with WithActor, or "".
func ActorFrom(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// dispatcher delivers events to a subscriber on its own goroutine, so that a
// slow or panicking subscriber can neither block nor break the Manager.
// When its buffer is full, events are dropped and counted.
type dispatcher struct {
	fn      func(Event)
	ch      chan Event
	dropped atomic.Int64
	mu      sync.RWMutex // guards closed against emit racing close
	closed  bool
	done    chan struct{}
}

func newDispatcher(fn func(Event), size int) *dispatcher {
	d := &dispatcher{fn: fn, ch: make(chan Event, size), done: make(chan struct{})}
	go d.run()
	return d
}

func (d *dispatcher) run() {
	defer close(d.done)
	for e := range d.ch {
		d.deliver(e)
	}
}

func (d *dispatcher) deliver(e Event) {
	defer func() { _ = recover() }() // a panicking subscriber loses only its event
	d.fn(e)
}

func (d *dispatcher) emit(e Event) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		d.dropped.Add(1)
		return
	}
	select {
	case d.ch <- e:
	default:
		d.dropped.Add(1)
	}
}

// close stops accepting events and waits until the pending ones are
// delivered or ctx is done, whichever comes first.
func (d *dispatcher) close(ctx context.Context) error {
	d.mu.Lock()
	if !d.closed {
		d.closed = true
		close(d.ch)
	}
	d.mu.Unlock()
	select {
	case <-d.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("apikey: event subscriber still busy: %w", ctx.Err())
	}
}

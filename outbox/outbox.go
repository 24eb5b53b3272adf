// Package outbox delivers the events of the audit log to webhook endpoints.
//
// Every audited event (apikey.AuditedEventTypes, but for the webhook.*
// entries about the endpoints themselves) becomes one Delivery per enabled
// Endpoint whose filter it matches, written by the database in the same
// transaction as the audit entry, hence as the change it records (sqlite
// and postgres do it with a trigger on the audit log): an event is never
// lost, nor announced for a change that was rolled back. A Worker, run by
// every instance of the service, claims due deliveries from the database
// for a lease, so that several instances share the work and each delivery
// is sent by one of them at a time, and POSTs each as a Standard Webhooks
// message signed with the endpoint's secret (package webhook). A failed
// attempt is retried with exponential back-off and jitter, up to a number
// of attempts, after which the delivery is failed; an instance that dies
// holding a lease leaves its deliveries to the others once it ends.
// Delivery is at least once: receivers drop the webhook-ids they have
// already processed.
package outbox

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
)

// Endpoint is a receiver of webhooks.
type Endpoint struct {
	// ID is "wh_" and 22 base64url characters.
	ID string `json:"id"`
	// URL is where deliveries are POSTed: http or https.
	URL string `json:"url"`
	// Events are the event types delivered; empty means all of them.
	Events []apikey.EventType `json:"events"`
	// Enabled endpoints get deliveries; a disabled one gets none for the
	// events of the time it is disabled, and its pending deliveries wait.
	Enabled bool `json:"enabled"`
	// CreatedAt and UpdatedAt are in UTC.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Secret is the signing secret, "whsec_..." (see package webhook). It
	// is the key that signs, kept as it is in the database (not hashed:
	// the sender needs it), and never encoded to JSON; the API shows it
	// once, when it is made.
	Secret string `json:"-"`
}

// EndpointUpdate is a patch of an Endpoint; nil fields are left alone.
type EndpointUpdate struct {
	URL     *string
	Events  *[]apikey.EventType
	Enabled *bool
	// Secret replaces the signing secret (a rotation).
	Secret *string
}

// State is where a delivery stands.
type State string

// The states of a delivery.
const (
	// StatePending: not delivered yet; it is sent when NextAttemptAt comes.
	StatePending State = "pending"
	// StateDelivered: an attempt got a 2xx answer.
	StateDelivered State = "delivered"
	// StateFailed: every attempt failed; Resend queues it again.
	StateFailed State = "failed"
)

// Delivery is one event to send to one endpoint.
type Delivery struct {
	// Seq orders the deliveries (newest has the highest); it is not shown.
	Seq int64 `json:"-"`
	// ID is the webhook-id of the message, "msg_..."; it stays the same
	// across the attempts and resends of the delivery.
	ID         string           `json:"id"`
	EndpointID string           `json:"endpoint_id"`
	EventID    int64            `json:"event_id"`
	Type       apikey.EventType `json:"type"`
	State      State            `json:"state"`
	// Attempts counts the attempts made since it was queued (or
	// resent).
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"`
	// LastStatus is the HTTP status of the last attempt, 0 for none or
	// when no answer came (see LastError).
	LastStatus int    `json:"last_status,omitempty"`
	LastError  string `json:"last_error,omitempty"`
	// Log holds the attempts, oldest first; only Store.Delivery fills it.
	Log []Attempt `json:"attempt_log,omitempty"`
}

// Attempt is one try at sending a delivery.
type Attempt struct {
	// N is the attempt's number since the delivery was queued or resent.
	N  int       `json:"n"`
	At time.Time `json:"at"`
	// Status is the HTTP status of the answer, 0 when none came.
	Status int `json:"status"`
	// Error says why the attempt failed; empty for a 2xx.
	Error string `json:"error,omitempty"`
	// Duration is how long the attempt took; its JSON form is
	// duration_ms, in milliseconds.
	Duration time.Duration `json:"-"`
}

type attemptJSON struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	Status     int       `json:"status"`
	Error      string    `json:"error,omitempty"`
	DurationMS float64   `json:"duration_ms"`
}

// MarshalJSON encodes the attempt with its duration in milliseconds.
func (a Attempt) MarshalJSON() ([]byte, error) {
	return json.Marshal(attemptJSON{a.N, a.At, a.Status, a.Error, float64(a.Duration.Microseconds()) / 1000})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (a *Attempt) UnmarshalJSON(b []byte) error {
	var j attemptJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*a = Attempt{N: j.N, At: j.At, Status: j.Status, Error: j.Error, Duration: time.Duration(j.DurationMS * float64(time.Millisecond))}
	return nil
}

// DeliveryQuery selects deliveries of one endpoint, newest first.
type DeliveryQuery struct {
	EndpointID string
	// State keeps those in that state; empty keeps all.
	State State
	// Before keeps those whose Seq is lower (the next page).
	Before int64
	// Limit is the most to return; always positive.
	Limit int
}

// Job is a claimed delivery with what sending it takes.
type Job struct {
	Delivery
	URL    string
	Secret string
	// Event is the audit entry delivered.
	Event apikey.Event
	// Payload is the body of an earlier attempt, nil before the first:
	// retries send the same body.
	Payload []byte
}

// Result is the outcome of sending a Job.
type Result struct {
	Seq     int64
	Attempt Attempt
	// State is StateDelivered, StatePending (retry at NextAt) or
	// StateFailed.
	State  State
	NextAt time.Time
	// Payload is the body sent, kept for the retries.
	Payload []byte
}

// Store is what package outbox needs of a database; the Webhooks() of
// sqlite.Store, postgres.Store and memstore.Store implement it, and
// apikeytest.TestOutbox checks it. Methods that change an endpoint take the audit entry to write in the
// same transaction (Type, At, Actor and KeyID set; the store fills its
// Changes with Diff and its ID).
type Store interface {
	// CreateEndpoint stores ep (ID, URL, Events, Enabled, CreatedAt,
	// UpdatedAt, Secret all set). An existing id is apikey.ErrDuplicateID.
	CreateEndpoint(ctx context.Context, ep *Endpoint, ev *apikey.Event) error
	// Endpoint returns the endpoint, secret included, or
	// apikey.ErrWebhookNotFound.
	Endpoint(ctx context.Context, id string) (*Endpoint, error)
	// Endpoints returns every endpoint, oldest first, secrets included.
	Endpoints(ctx context.Context) ([]*Endpoint, error)
	// UpdateEndpoint applies u, sets UpdatedAt to at and returns the
	// endpoint, or apikey.ErrWebhookNotFound.
	UpdateEndpoint(ctx context.Context, id string, u EndpointUpdate, at time.Time, ev *apikey.Event) (*Endpoint, error)
	// DeleteEndpoint removes the endpoint and its deliveries, or returns
	// apikey.ErrWebhookNotFound.
	DeleteEndpoint(ctx context.Context, id string, ev *apikey.Event) error

	// Deliveries lists deliveries of q.EndpointID, newest first.
	Deliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, error)
	// Delivery returns one delivery of the endpoint with its attempts, or
	// apikey.ErrDeliveryNotFound.
	Delivery(ctx context.Context, endpointID, id string) (*Delivery, error)
	// Resend queues the delivery again, due at at, with its attempts
	// counted from zero and its webhook-id unchanged, and returns it. It
	// ends any lease: an attempt in flight is logged when it ends but no
	// longer changes the delivery, which any worker may claim at once.
	Resend(ctx context.Context, endpointID, id string, at time.Time) (*Delivery, error)

	// Claim leases to owner, until now+lease, at most limit pending
	// deliveries of enabled endpoints that are due at now and not leased
	// (or whose lease ended), oldest due first, and counts an attempt for
	// each. Concurrent Claims never return the same delivery.
	Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*Job, error)
	// Finish records the attempts of results and, for the deliveries
	// owner still leases, their new state, ending the lease.
	Finish(ctx context.Context, owner string, results []Result) error
}

// Diff returns the audit form of an endpoint change: its url, events and
// enabled fields that differ, and "secret": "rotated" when the secret
// changed (never the secret). before or after may be nil.
func Diff(before, after *Endpoint) map[string]apikey.Change {
	fields := func(e *Endpoint) map[string]any {
		if e == nil {
			return map[string]any{"url": nil, "events": nil, "enabled": nil}
		}
		return map[string]any{"url": e.URL, "events": eventNames(e.Events), "enabled": e.Enabled}
	}
	b, a := fields(before), fields(after)
	out := map[string]apikey.Change{}
	for _, name := range []string{"url", "events", "enabled"} {
		if fmt.Sprint(b[name]) != fmt.Sprint(a[name]) {
			out[name] = apikey.Change{Before: b[name], After: a[name]}
		}
	}
	if before != nil && after != nil && before.Secret != after.Secret {
		out["secret"] = apikey.Change{Before: nil, After: "rotated"}
	}
	return out
}

func eventNames(ts []apikey.EventType) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = string(t)
	}
	return out
}

// EventTypes returns the event types that endpoints can receive: the
// audited ones but for webhook.*.
func EventTypes() []apikey.EventType {
	var out []apikey.EventType
	for _, t := range apikey.AuditedEventTypes() {
		if !strings.HasPrefix(string(t), "webhook.") {
			out = append(out, t)
		}
	}
	return out
}

// CheckURL reports whether u is an endpoint URL: absolute http or https,
// with a host, without credentials or fragment, at most 2,000 bytes. The
// error is a *apikey.ValidationError for the field "url".
func CheckURL(u string) error {
	bad := func(reason string) error { return &apikey.ValidationError{Field: "url", Reason: reason} }
	if u == "" {
		return bad("must not be empty")
	}
	if len(u) > 2000 {
		return bad("must be at most 2000 bytes")
	}
	p, err := url.Parse(u)
	if err != nil {
		return bad("not a URL")
	}
	switch {
	case p.Scheme != "http" && p.Scheme != "https":
		return bad("must be an http or https URL")
	case p.Host == "" || p.Hostname() == "":
		return bad("must name a host")
	case p.User != nil:
		return bad("must not hold credentials")
	case p.Fragment != "" || strings.Contains(u, "#"):
		return bad("must not have a fragment")
	}
	return nil
}

// CheckEvents validates and normalizes an event filter: nil, empty or
// ["*"] mean all events (an empty list); unknown names are a
// *apikey.ValidationError for the field "events" that lists the valid
// ones. Duplicates are removed and the order kept.
func CheckEvents(events []apikey.EventType) ([]apikey.EventType, error) {
	if len(events) == 1 && events[0] == "*" {
		return []apikey.EventType{}, nil
	}
	valid := EventTypes()
	out := []apikey.EventType{}
	for _, e := range events {
		if !slices.Contains(valid, e) {
			names := eventNames(valid)
			return nil, &apikey.ValidationError{Field: "events", Reason: fmt.Sprintf("unknown event type %q: want * or some of %s", string(e), strings.Join(names, ", "))}
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Cursor encodes the position after d in a listing of deliveries.
func Cursor(d *Delivery) string {
	return base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, uint64(d.Seq)))
}

// ParseCursor decodes a Cursor; a bad one is a *apikey.ValidationError for
// the field "cursor".
func ParseCursor(s string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 8 || int64(binary.BigEndian.Uint64(b)) <= 0 {
		return 0, &apikey.ValidationError{Field: "cursor", Reason: "not a cursor returned by a previous list call"}
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// validEndpointID reports whether id looks like an endpoint id.
func validEndpointID(id string) bool {
	if !strings.HasPrefix(id, "wh_") || len(id) != 3+22 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(id[3:])
	return err == nil
}

// validDeliveryID reports whether id looks like a delivery id.
func validDeliveryID(id string) bool {
	if !strings.HasPrefix(id, "msg_") || len(id) != 4+32 {
		return false
	}
	_, err := strconv.ParseUint(id[4:20], 16, 64)
	_, err2 := strconv.ParseUint(id[20:], 16, 64)
	return err == nil && err2 == nil
}

var errNoStore = errors.New("outbox: no Store")

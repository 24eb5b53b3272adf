package memstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

var _ outbox.Store = (*WebhookStore)(nil)

// WebhookStore keeps webhook endpoints and their deliveries in the Store
// (outbox.Store), under the Store's lock. As the SQL stores' triggers do,
// every audit entry the Store writes (but those about the endpoints
// themselves, webhook.*) queues one delivery per enabled endpoint whose
// filter matches, atomically with the entry, hence with the change it
// records.
type WebhookStore struct{ s *Store }

// Webhooks returns the store of webhook endpoints and deliveries.
func (s *Store) Webhooks() *WebhookStore { return &WebhookStore{s: s} }

// delivery is a queued delivery with what the outbox.Delivery it shows
// does not hold.
type delivery struct {
	outbox.Delivery
	nextAt     time.Time
	leaseOwner string
	leaseUntil time.Time
	payload    []byte
	log        []outbox.Attempt
}

// view returns a copy of d as outbox.Store hands deliveries out, with its
// attempts when withLog.
func (d *delivery) view(withLog bool) *outbox.Delivery {
	out := d.Delivery
	out.Log = nil
	if d.State == outbox.StatePending {
		next := d.nextAt
		out.NextAttemptAt = &next
	} else {
		out.NextAttemptAt = nil
	}
	if d.DeliveredAt != nil {
		t := *d.DeliveredAt
		out.DeliveredAt = &t
	}
	if withLog {
		out.Log = slices.Clone(d.log)
		if out.Log == nil {
			out.Log = []outbox.Attempt{}
		}
	}
	return &out
}

func cloneEndpoint(ep *outbox.Endpoint) *outbox.Endpoint {
	c := *ep
	c.Events = slices.Clone(ep.Events)
	if c.Events == nil {
		c.Events = []apikey.EventType{}
	}
	return &c
}

// queueLocked queues the deliveries of the audit entry ev, as the SQL
// stores' trigger on the audit log does. The caller holds s.mu for
// writing.
func (s *Store) queueLocked(ev *apikey.Event) {
	if strings.HasPrefix(string(ev.Type), "webhook.") || len(s.endpoints) == 0 {
		return
	}
	now := norm(time.Now())
	for _, ep := range s.endpointsLocked() {
		if !ep.Enabled || len(ep.Events) > 0 && !slices.Contains(ep.Events, ev.Type) {
			continue
		}
		s.deliverySeq++
		var id [16]byte
		_, _ = rand.Read(id[:]) // never fails (crypto/rand)
		s.deliveries = append(s.deliveries, &delivery{
			Delivery: outbox.Delivery{Seq: s.deliverySeq, ID: "msg_" + hex.EncodeToString(id[:]), EndpointID: ep.ID,
				EventID: ev.ID, Type: ev.Type, State: outbox.StatePending, CreatedAt: now},
			nextAt: now,
		})
	}
}

// endpointsLocked returns the endpoints oldest first, as stored (not
// copies). The caller holds s.mu.
func (s *Store) endpointsLocked() []*outbox.Endpoint {
	out := make([]*outbox.Endpoint, 0, len(s.endpoints))
	for _, ep := range s.endpoints {
		out = append(out, ep)
	}
	slices.SortFunc(out, func(a, b *outbox.Endpoint) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// CreateEndpoint implements outbox.Store.
func (w *WebhookStore) CreateEndpoint(ctx context.Context, ep *outbox.Endpoint, ev *apikey.Event) error {
	if err := w.s.usable(ctx); err != nil {
		return opErr("create webhook", err)
	}
	if err := checkEvent(ev); err != nil {
		return opErr("create webhook", err)
	}
	c := cloneEndpoint(ep)
	c.CreatedAt, c.UpdatedAt = norm(c.CreatedAt), norm(c.UpdatedAt)
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	if _, ok := w.s.endpoints[c.ID]; ok {
		return apikey.ErrDuplicateID
	}
	if w.s.endpoints == nil {
		w.s.endpoints = map[string]*outbox.Endpoint{}
	}
	w.s.endpoints[c.ID] = c
	w.s.writeEventLocked(ev, "", outbox.Diff(nil, c))
	return nil
}

// Endpoint implements outbox.Store.
func (w *WebhookStore) Endpoint(ctx context.Context, id string) (*outbox.Endpoint, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("get webhook", err)
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	ep, ok := w.s.endpoints[id]
	if !ok {
		return nil, apikey.ErrWebhookNotFound
	}
	return cloneEndpoint(ep), nil
}

// Endpoints implements outbox.Store.
func (w *WebhookStore) Endpoints(ctx context.Context) ([]*outbox.Endpoint, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("list webhooks", err)
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	out := []*outbox.Endpoint{}
	for _, ep := range w.s.endpointsLocked() {
		out = append(out, cloneEndpoint(ep))
	}
	return out, nil
}

// UpdateEndpoint implements outbox.Store.
func (w *WebhookStore) UpdateEndpoint(ctx context.Context, id string, u outbox.EndpointUpdate, at time.Time, ev *apikey.Event) (*outbox.Endpoint, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("update webhook", err)
	}
	if err := checkEvent(ev); err != nil {
		return nil, opErr("update webhook", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	before, ok := w.s.endpoints[id]
	if !ok {
		return nil, apikey.ErrWebhookNotFound
	}
	a := cloneEndpoint(before)
	if u.URL != nil {
		a.URL = *u.URL
	}
	if u.Events != nil {
		a.Events = slices.Clone(*u.Events)
		if a.Events == nil {
			a.Events = []apikey.EventType{}
		}
	}
	if u.Enabled != nil {
		a.Enabled = *u.Enabled
	}
	if u.Secret != nil {
		a.Secret = *u.Secret
	}
	a.UpdatedAt = norm(at)
	w.s.endpoints[id] = a
	w.s.writeEventLocked(ev, "", outbox.Diff(before, a))
	return cloneEndpoint(a), nil
}

// DeleteEndpoint implements outbox.Store.
func (w *WebhookStore) DeleteEndpoint(ctx context.Context, id string, ev *apikey.Event) error {
	if err := w.s.usable(ctx); err != nil {
		return opErr("delete webhook", err)
	}
	if err := checkEvent(ev); err != nil {
		return opErr("delete webhook", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	before, ok := w.s.endpoints[id]
	if !ok {
		return apikey.ErrWebhookNotFound
	}
	delete(w.s.endpoints, id)
	w.s.deliveries = slices.DeleteFunc(w.s.deliveries, func(d *delivery) bool { return d.EndpointID == id })
	w.s.writeEventLocked(ev, "", outbox.Diff(before, nil))
	return nil
}

// Deliveries implements outbox.Store.
func (w *WebhookStore) Deliveries(ctx context.Context, q outbox.DeliveryQuery) ([]*outbox.Delivery, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("list deliveries", err)
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	out := []*outbox.Delivery{}
	for i := len(w.s.deliveries) - 1; i >= 0 && len(out) < q.Limit; i-- {
		d := w.s.deliveries[i]
		if d.EndpointID != q.EndpointID || q.State != "" && d.State != q.State || q.Before > 0 && d.Seq >= q.Before {
			continue
		}
		out = append(out, d.view(false))
	}
	return out, nil
}

// findLocked returns the delivery id of the endpoint, or
// apikey.ErrWebhookNotFound or apikey.ErrDeliveryNotFound. The caller
// holds s.mu.
func (s *Store) findLocked(endpointID, id string) (*delivery, error) {
	for _, d := range s.deliveries {
		if d.EndpointID == endpointID && d.ID == id {
			return d, nil
		}
	}
	if _, ok := s.endpoints[endpointID]; !ok {
		return nil, apikey.ErrWebhookNotFound
	}
	return nil, apikey.ErrDeliveryNotFound
}

// Delivery implements outbox.Store.
func (w *WebhookStore) Delivery(ctx context.Context, endpointID, id string) (*outbox.Delivery, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("get delivery", err)
	}
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	d, err := w.s.findLocked(endpointID, id)
	if err != nil {
		return nil, err
	}
	return d.view(true), nil
}

// Resend implements outbox.Store.
func (w *WebhookStore) Resend(ctx context.Context, endpointID, id string, at time.Time) (*outbox.Delivery, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("resend delivery", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	d, err := w.s.findLocked(endpointID, id)
	if err != nil {
		return nil, err
	}
	d.State, d.Attempts, d.nextAt, d.DeliveredAt = outbox.StatePending, 0, norm(at), nil
	d.leaseOwner, d.leaseUntil = "", time.Time{}
	return d.view(true), nil
}

// Claim implements outbox.Store: the leases are taken under the Store's
// lock, so concurrent Claims never return the same delivery.
func (w *WebhookStore) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int) ([]*outbox.Job, error) {
	if err := w.s.usable(ctx); err != nil {
		return nil, opErr("claim deliveries", err)
	}
	now = norm(now)
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	var due []*delivery
	for _, d := range w.s.deliveries {
		ep := w.s.endpoints[d.EndpointID]
		if d.State == outbox.StatePending && ep != nil && ep.Enabled && !d.nextAt.After(now) &&
			(d.leaseUntil.IsZero() || !d.leaseUntil.After(now)) {
			due = append(due, d)
		}
	}
	slices.SortStableFunc(due, func(a, b *delivery) int { return a.nextAt.Compare(b.nextAt) })
	jobs := []*outbox.Job{}
	for _, d := range due[:min(len(due), max(limit, 0))] {
		d.leaseOwner, d.leaseUntil = owner, now.Add(lease)
		d.Attempts++
		ep := w.s.endpoints[d.EndpointID]
		j := &outbox.Job{Delivery: *d.view(false), URL: ep.URL, Secret: ep.Secret, Payload: slices.Clone(d.payload)}
		if d.EventID >= 1 && d.EventID <= int64(len(w.s.events)) {
			e := &w.s.events[d.EventID-1]
			j.Event = apikey.Event{ID: e.id, Type: e.typ, At: e.at, Actor: e.actor, KeyID: e.keyID, Owner: e.owner, URL: e.url}
			if err := json.Unmarshal(e.changes, &j.Event.Changes); err != nil {
				return nil, fmt.Errorf("memstore: claim deliveries: event %d: malformed changes: %w", e.id, err)
			}
			if len(j.Event.Changes) == 0 {
				j.Event.Changes = nil
			}
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// Finish implements outbox.Store.
func (w *WebhookStore) Finish(ctx context.Context, owner string, results []outbox.Result) error {
	if err := w.s.usable(ctx); err != nil {
		return opErr("finish deliveries", err)
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	bySeq := make(map[int64]*delivery, len(results))
	for _, d := range w.s.deliveries {
		bySeq[d.Seq] = d
	}
	for _, r := range results {
		d := bySeq[r.Seq]
		if d == nil {
			continue // deleted with its endpoint
		}
		a := r.Attempt
		a.At = norm(a.At)
		a.Duration = a.Duration.Truncate(time.Microsecond)
		d.log = append(d.log, a)
		if d.leaseOwner != owner {
			continue // resent, or claimed by another worker since
		}
		d.State = r.State
		if r.State == outbox.StatePending {
			d.nextAt = norm(r.NextAt)
		}
		d.DeliveredAt = nil
		if r.State == outbox.StateDelivered {
			t := norm(a.At.Add(a.Duration))
			d.DeliveredAt = &t
		}
		d.LastStatus, d.LastError = a.Status, a.Error
		if d.payload == nil {
			d.payload = slices.Clone(r.Payload)
		}
		d.leaseOwner, d.leaseUntil = "", time.Time{}
	}
	return nil
}

package outbox

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/webhook"
)

// Service manages endpoints and their deliveries over a Store: it checks
// input, makes ids and secrets, and audits every change of an endpoint
// (webhook.created, webhook.updated, webhook.deleted, by the actor of the
// context, see apikey.WithActor). The API, the CLI and the admin site all
// go through it. It is safe for concurrent use.
type Service struct {
	// Store persists endpoints and deliveries. Required.
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewEndpoint is the input of Service.Create.
type NewEndpoint struct {
	URL string
	// Events filters the event types delivered: nil, empty or ["*"] mean
	// all of them.
	Events []apikey.EventType
	// Disabled creates the endpoint disabled.
	Disabled bool
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Microsecond)
	}
	return time.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) event(ctx context.Context, t apikey.EventType, id string, at time.Time) *apikey.Event {
	return &apikey.Event{Type: t, At: at, Actor: apikey.ActorFrom(ctx), KeyID: apikey.WebhookSubject(id)}
}

// Create registers an endpoint and returns it with its signing secret,
// which is never shown again (Rotate makes a new one). Bad input is a
// *apikey.ValidationError naming the field.
func (s *Service) Create(ctx context.Context, p NewEndpoint) (*Endpoint, string, error) {
	if s.Store == nil {
		return nil, "", errNoStore
	}
	if err := CheckURL(p.URL); err != nil {
		return nil, "", err
	}
	events, err := CheckEvents(p.Events)
	if err != nil {
		return nil, "", err
	}
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, "", fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	now := s.now()
	ep := &Endpoint{ID: "wh_" + base64.RawURLEncoding.EncodeToString(id), URL: p.URL, Events: events, Enabled: !p.Disabled,
		CreatedAt: now, UpdatedAt: now, Secret: secret.String()}
	if err := s.Store.CreateEndpoint(ctx, ep, s.event(ctx, apikey.EventWebhookCreated, ep.ID, now)); err != nil {
		return nil, "", storeErr("create webhook", err)
	}
	return ep, ep.Secret, nil
}

// Get returns an endpoint, or apikey.ErrWebhookNotFound.
func (s *Service) Get(ctx context.Context, id string) (*Endpoint, error) {
	if !validEndpointID(id) {
		return nil, apikey.ErrWebhookNotFound
	}
	ep, err := s.Store.Endpoint(ctx, id)
	return ep, storeErr("get webhook", err)
}

// List returns every endpoint, oldest first.
func (s *Service) List(ctx context.Context) ([]*Endpoint, error) {
	eps, err := s.Store.Endpoints(ctx)
	return eps, storeErr("list webhooks", err)
}

// Update changes an endpoint: its URL, its filter (nil, empty or ["*"]:
// all events) or whether it is enabled. An update that changes nothing
// is refused as bad input.
func (s *Service) Update(ctx context.Context, id string, u EndpointUpdate) (*Endpoint, error) {
	if !validEndpointID(id) {
		return nil, apikey.ErrWebhookNotFound
	}
	if u.URL == nil && u.Events == nil && u.Enabled == nil && u.Secret == nil {
		return nil, &apikey.ValidationError{Field: "body", Reason: "no field to change: give url, events or enabled"}
	}
	if u.URL != nil {
		if err := CheckURL(*u.URL); err != nil {
			return nil, err
		}
	}
	if u.Events != nil {
		events, err := CheckEvents(*u.Events)
		if err != nil {
			return nil, err
		}
		u.Events = &events
	}
	now := s.now()
	ep, err := s.Store.UpdateEndpoint(ctx, id, u, now, s.event(ctx, apikey.EventWebhookUpdated, id, now))
	return ep, storeErr("update webhook", err)
}

// Rotate gives the endpoint a new signing secret and returns it (shown
// this once). Messages are signed with the new secret from the next
// attempt on; receivers should accept both secrets for a while (Verify
// takes several).
func (s *Service) Rotate(ctx context.Context, id string) (*Endpoint, string, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	text := secret.String()
	ep, err := s.Update(ctx, id, EndpointUpdate{Secret: &text})
	if err != nil {
		return nil, "", err
	}
	return ep, text, nil
}

// Delete removes an endpoint and its deliveries.
func (s *Service) Delete(ctx context.Context, id string) error {
	if !validEndpointID(id) {
		return apikey.ErrWebhookNotFound
	}
	return storeErr("delete webhook", s.Store.DeleteEndpoint(ctx, id, s.event(ctx, apikey.EventWebhookDeleted, id, s.now())))
}

// DeliveryPage is one page of deliveries.
type DeliveryPage struct {
	Deliveries []*Delivery `json:"deliveries"`
	// NextCursor continues the listing; empty on the last page.
	NextCursor string `json:"next_cursor,omitempty"`
}

// DeliveryFilter selects deliveries for Service.Deliveries.
type DeliveryFilter struct {
	// State keeps those in that state; empty keeps all.
	State State
	// Cursor continues a previous listing.
	Cursor string
	// Limit is the page size: 1 to 1000, zero means 100.
	Limit int
}

// Deliveries lists the deliveries of an endpoint, newest first.
func (s *Service) Deliveries(ctx context.Context, endpointID string, f DeliveryFilter) (*DeliveryPage, error) {
	if _, err := s.Get(ctx, endpointID); err != nil {
		return nil, err
	}
	switch f.State {
	case "", StatePending, StateDelivered, StateFailed:
	default:
		return nil, &apikey.ValidationError{Field: "state", Reason: "must be pending, delivered or failed"}
	}
	if f.Limit == 0 {
		f.Limit = 100
	}
	if f.Limit < 1 || f.Limit > 1000 {
		return nil, &apikey.ValidationError{Field: "limit", Reason: "must be between 1 and 1000"}
	}
	q := DeliveryQuery{EndpointID: endpointID, State: f.State, Limit: f.Limit + 1}
	if f.Cursor != "" {
		var err error
		if q.Before, err = ParseCursor(f.Cursor); err != nil {
			return nil, err
		}
	}
	ds, err := s.Store.Deliveries(ctx, q)
	if err != nil {
		return nil, storeErr("list deliveries", err)
	}
	page := &DeliveryPage{Deliveries: ds}
	if len(ds) > f.Limit {
		page.Deliveries = ds[:f.Limit]
		page.NextCursor = Cursor(ds[f.Limit-1])
	}
	return page, nil
}

// Delivery returns one delivery of an endpoint with its attempts.
func (s *Service) Delivery(ctx context.Context, endpointID, id string) (*Delivery, error) {
	if !validEndpointID(endpointID) {
		return nil, apikey.ErrWebhookNotFound
	}
	if !validDeliveryID(id) {
		if _, err := s.Get(ctx, endpointID); err != nil {
			return nil, err
		}
		return nil, apikey.ErrDeliveryNotFound
	}
	d, err := s.Store.Delivery(ctx, endpointID, id)
	return d, storeErr("get delivery", err)
}

// Resend queues a delivery again, at once, with the same webhook-id, its
// attempts counted anew.
func (s *Service) Resend(ctx context.Context, endpointID, id string) (*Delivery, error) {
	if _, err := s.Delivery(ctx, endpointID, id); err != nil {
		return nil, err
	}
	d, err := s.Store.Resend(ctx, endpointID, id, s.now())
	return d, storeErr("resend delivery", err)
}

// storeErr passes the answers of the Store contract through and wraps any
// other failure in apikey.ErrUnavailable.
func storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, apikey.ErrWebhookNotFound), errors.Is(err, apikey.ErrDeliveryNotFound),
		errors.Is(err, apikey.ErrInvalidInput), errors.Is(err, apikey.ErrDuplicateID), errors.Is(err, apikey.ErrUnavailable):
		return err
	}
	return fmt.Errorf("%w: %s: %w", apikey.ErrUnavailable, op, err)
}

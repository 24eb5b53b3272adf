package apikeyclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

// Webhook is a webhook endpoint as the service shows it; Secret is set
// only by CreateWebhook and RotateWebhookSecret, the only answers that
// carry it.
type Webhook struct {
	outbox.Endpoint
	Secret string `json:"secret,omitempty"`
}

// WebhookUpdate is a change of an endpoint for UpdateWebhook; nil fields
// are left alone. Events set to an empty list (or ["*"]) delivers every
// event type.
type WebhookUpdate struct {
	URL     *string
	Events  *[]apikey.EventType
	Enabled *bool
}

// hookErr makes the not_found answers of the webhook routes match
// apikey.ErrWebhookNotFound, or apikey.ErrDeliveryNotFound when the
// endpoint exists but not the delivery.
func hookErr(err error, delivery bool) error {
	var e *Error
	if errors.As(err, &e) && e.err == apikey.ErrNotFound {
		e.err = apikey.ErrWebhookNotFound
		if delivery && strings.Contains(e.Detail, "delivery") {
			e.err = apikey.ErrDeliveryNotFound
		}
	}
	return err
}

func hookPath(id string) string { return "/v1/webhooks/" + url.PathEscape(id) }

// CreateWebhook registers an endpoint that receives the events of types
// events (none, or "*": all of them) and returns it with its signing
// secret, which the service shows only this once.
func (c *Client) CreateWebhook(ctx context.Context, endpointURL string, events []apikey.EventType, enabled bool) (*Webhook, error) {
	body := map[string]any{"url": endpointURL, "enabled": enabled}
	if events != nil {
		body["events"] = events
	}
	var w Webhook
	if err := c.do(ctx, http.MethodPost, "/v1/webhooks", nil, body, &w, ""); err != nil {
		return nil, err
	}
	if w.ID == "" || w.Secret == "" {
		return nil, fmt.Errorf("%w: apikeyclient: create webhook answer without an endpoint or secret", apikey.ErrUnavailable)
	}
	return &w, nil
}

// Webhooks lists the endpoints, oldest first.
func (c *Client) Webhooks(ctx context.Context) ([]*Webhook, error) {
	var res struct {
		Webhooks []*Webhook `json:"webhooks"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/webhooks", nil, nil, &res, ""); err != nil {
		return nil, err
	}
	if res.Webhooks == nil {
		res.Webhooks = []*Webhook{}
	}
	return res.Webhooks, nil
}

// Webhook returns one endpoint; an unknown id yields an error matching
// apikey.ErrWebhookNotFound.
func (c *Client) Webhook(ctx context.Context, id string) (*Webhook, error) {
	var w Webhook
	if err := c.do(ctx, http.MethodGet, hookPath(id), nil, nil, &w, ""); err != nil {
		return nil, hookErr(err, false)
	}
	return &w, nil
}

// UpdateWebhook changes an endpoint's URL, event filter or whether it is
// enabled.
func (c *Client) UpdateWebhook(ctx context.Context, id string, u WebhookUpdate) (*Webhook, error) {
	body := map[string]any{}
	if u.URL != nil {
		body["url"] = *u.URL
	}
	if u.Events != nil {
		body["events"] = *u.Events
	}
	if u.Enabled != nil {
		body["enabled"] = *u.Enabled
	}
	return c.patchWebhook(ctx, id, body)
}

// RotateWebhookSecret gives an endpoint a new signing secret and returns
// the endpoint with it (shown only this once).
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (*Webhook, error) {
	return c.patchWebhook(ctx, id, map[string]any{"rotate_secret": true})
}

func (c *Client) patchWebhook(ctx context.Context, id string, body map[string]any) (*Webhook, error) {
	var w Webhook
	if err := c.do(ctx, http.MethodPatch, hookPath(id), nil, body, &w, ""); err != nil {
		return nil, hookErr(err, false)
	}
	return &w, nil
}

// DeleteWebhook removes an endpoint and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return hookErr(c.do(ctx, http.MethodDelete, hookPath(id), nil, nil, nil, ""), false)
}

// Deliveries returns one page of an endpoint's deliveries, newest first;
// pass the page's NextCursor as f.Cursor for the next one.
func (c *Client) Deliveries(ctx context.Context, id string, f outbox.DeliveryFilter) (*outbox.DeliveryPage, error) {
	q := url.Values{}
	if f.State != "" {
		q.Set("state", string(f.State))
	}
	if f.Cursor != "" {
		q.Set("cursor", f.Cursor)
	}
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page outbox.DeliveryPage
	if err := c.do(ctx, http.MethodGet, hookPath(id)+"/deliveries", q, nil, &page, ""); err != nil {
		return nil, hookErr(err, false)
	}
	if page.Deliveries == nil {
		page.Deliveries = []*outbox.Delivery{}
	}
	return &page, nil
}

// Delivery returns one delivery of an endpoint with its attempts.
func (c *Client) Delivery(ctx context.Context, id, delivery string) (*outbox.Delivery, error) {
	var d outbox.Delivery
	if err := c.do(ctx, http.MethodGet, hookPath(id)+"/deliveries/"+url.PathEscape(delivery), nil, nil, &d, ""); err != nil {
		return nil, hookErr(err, true)
	}
	return &d, nil
}

// ResendDelivery queues a delivery again, at once, with the same
// webhook-id.
func (c *Client) ResendDelivery(ctx context.Context, id, delivery string) (*outbox.Delivery, error) {
	var d outbox.Delivery
	if err := c.do(ctx, http.MethodPost, hookPath(id)+"/deliveries/"+url.PathEscape(delivery)+"/resend", nil, nil, &d, ""); err != nil {
		return nil, hookErr(err, true)
	}
	return &d, nil
}

package server

import (
	"net/http"
	"strconv"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
	"github.com/go-apikey/apikey/outbox"
)

// WebhookEndpoint is the JSON form of a webhook endpoint; Secret is set
// only in the answers that make one (create, and an update that rotates
// it): it is never shown again.
type WebhookEndpoint struct {
	*outbox.Endpoint
	Secret string `json:"secret,omitempty"`
}

type webhookCreateRequest struct {
	URL     string   `json:"url"`
	Events  []string `json:"events"`
	Enabled *bool    `json:"enabled"`
}

type webhookUpdateRequest struct {
	URL          optional[string]   `json:"url"`
	Events       optional[[]string] `json:"events"`
	Enabled      optional[bool]     `json:"enabled"`
	RotateSecret bool               `json:"rotate_secret"`
}

// noWebhooks answers the webhook routes of a server whose store keeps
// none.
func noWebhooks(w http.ResponseWriter, r *http.Request) {
	writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusNotFound, Code: apikey.CodeNotFound,
		Detail: "This server's store keeps no webhooks."})
}

func eventTypes(names []string) []apikey.EventType {
	if names == nil {
		return nil
	}
	out := make([]apikey.EventType, len(names))
	for i, n := range names {
		out[i] = apikey.EventType(n)
	}
	return out
}

// createWebhook serves POST /v1/webhooks.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	var req webhookCreateRequest
	if !decode(w, r, &req) {
		return
	}
	ep, secret, err := s.hooks.Create(r.Context(), outbox.NewEndpoint{URL: req.URL, Events: eventTypes(req.Events),
		Disabled: req.Enabled != nil && !*req.Enabled})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/webhooks/"+ep.ID)
	writeJSON(w, http.StatusCreated, WebhookEndpoint{Endpoint: ep, Secret: secret})
}

// listWebhooks serves GET /v1/webhooks.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	if _, ok := query(w, r, map[string]bool{}, "none"); !ok {
		return
	}
	eps, err := s.hooks.List(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"webhooks": eps})
}

// getWebhook serves GET /v1/webhooks/{id}.
func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	ep, err := s.hooks.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WebhookEndpoint{Endpoint: ep})
}

// updateWebhook serves PATCH /v1/webhooks/{id}: url, events (null, [] or
// ["*"]: every event), enabled, and rotate_secret (true: a new secret, in
// the answer only).
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	var req webhookUpdateRequest
	if !decode(w, r, &req) {
		return
	}
	var u outbox.EndpointUpdate
	switch {
	case req.URL.Null:
		invalidInput(w, r, "url", "cannot be null")
		return
	case req.Enabled.Null:
		invalidInput(w, r, "enabled", "cannot be null")
		return
	}
	if req.URL.Set {
		u.URL = &req.URL.Value
	}
	if req.Events.Set {
		ev := eventTypes(req.Events.Value)
		u.Events = &ev
	}
	if req.Enabled.Set {
		u.Enabled = &req.Enabled.Value
	}
	id := r.PathValue("id")
	var (
		ep     *outbox.Endpoint
		secret string
		err    error
	)
	if req.RotateSecret {
		if u.URL != nil || u.Events != nil || u.Enabled != nil {
			if _, err = s.hooks.Update(r.Context(), id, u); err != nil {
				s.fail(w, r, err)
				return
			}
		}
		ep, secret, err = s.hooks.Rotate(r.Context(), id)
	} else {
		ep, err = s.hooks.Update(r.Context(), id, u)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WebhookEndpoint{Endpoint: ep, Secret: secret})
}

// deleteWebhook serves DELETE /v1/webhooks/{id}.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	if err := s.hooks.Delete(r.Context(), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

var deliveryParams = map[string]bool{"state": true, "limit": true, "cursor": true}

// listDeliveries serves GET /v1/webhooks/{id}/deliveries.
func (s *Server) listDeliveries(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	q, ok := query(w, r, deliveryParams, "state, limit and cursor")
	if !ok {
		return
	}
	f := outbox.DeliveryFilter{State: outbox.State(q.Get("state")), Cursor: q.Get("cursor")}
	if q.Has("limit") {
		n, err := strconv.Atoi(q.Get("limit"))
		if err != nil || n < 1 || n > 1000 {
			invalidInput(w, r, "limit", "must be a whole number from 1 to 1000")
			return
		}
		f.Limit = n
	}
	page, err := s.hooks.Deliveries(r.Context(), r.PathValue("id"), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// getDelivery serves GET /v1/webhooks/{id}/deliveries/{delivery}: the
// delivery with its attempts.
func (s *Server) getDelivery(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	d, err := s.hooks.Delivery(r.Context(), r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// resendDelivery serves POST /v1/webhooks/{id}/deliveries/{delivery}/resend.
func (s *Server) resendDelivery(w http.ResponseWriter, r *http.Request) {
	if s.hooks == nil {
		noWebhooks(w, r)
		return
	}
	d, err := s.hooks.Resend(r.Context(), r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

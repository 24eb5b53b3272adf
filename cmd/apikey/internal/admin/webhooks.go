package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/outbox"
)

type webhooksData struct {
	Endpoints []*outbox.Endpoint
	Types     []apikey.EventType
	// The create form, after an error.
	URL    string
	Events []string
	Errors map[string]string
}

type webhookData struct {
	Endpoint   *outbox.Endpoint
	Deliveries []*outbox.Delivery
	State      string
	NextURL    string
	Paged      bool
	Errors     map[string]string
}

type deliveryData struct {
	Endpoint *outbox.Endpoint
	Delivery *outbox.Delivery
}

type secretData struct {
	ID, URL, Secret string
}

// noHooks answers the webhook pages of a site without webhooks.
func (h *handler) noHooks(w http.ResponseWriter, r *http.Request, s *session) bool {
	if h.hooks == nil {
		h.errorPage(w, r, s, http.StatusNotFound, "Not found", "This database keeps no webhooks.")
		return true
	}
	return false
}

// hookFail answers the errors of the webhook pages.
func (h *handler) hookFail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	switch {
	case errors.Is(err, apikey.ErrWebhookNotFound):
		h.errorPage(w, r, s, http.StatusNotFound, "Webhook not found", "No webhook endpoint has this id. It may have been deleted.")
	case errors.Is(err, apikey.ErrDeliveryNotFound):
		h.errorPage(w, r, s, http.StatusNotFound, "Delivery not found", "This endpoint has no delivery with this id.")
	default:
		h.fail(w, r, s, err)
	}
}

// listWebhooks serves GET /admin/webhooks: the endpoints and the form
// that registers one.
func (h *handler) listWebhooks(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	h.renderWebhooks(w, r, s, http.StatusOK, webhooksData{Errors: map[string]string{}})
}

func (h *handler) renderWebhooks(w http.ResponseWriter, r *http.Request, s *session, status int, d webhooksData) {
	eps, err := h.hooks.List(actor(r.Context(), s))
	if err != nil {
		h.fail(w, r, s, err)
		return
	}
	d.Endpoints, d.Types = eps, outbox.EventTypes()
	h.render(w, r, status, "webhooks", view{Title: "Webhooks", User: s.email, Nav: "webhooks", Data: d})
}

// createWebhook serves POST /admin/webhooks; the secret is shown once, on
// the page it redirects to.
func (h *handler) createWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, r, s, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	d := webhooksData{URL: strings.TrimSpace(r.PostForm.Get("url")), Events: r.PostForm["events"], Errors: map[string]string{}}
	var events []apikey.EventType
	for _, e := range d.Events {
		events = append(events, apikey.EventType(e))
	}
	ep, secret, err := h.hooks.Create(actor(r.Context(), s), outbox.NewEndpoint{URL: d.URL, Events: events})
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		d.Errors[ve.Field] = sentence(ve.Reason)
		h.renderWebhooks(w, r, s, http.StatusUnprocessableEntity, d)
		return
	case err != nil:
		h.fail(w, r, s, err)
		return
	}
	h.reveals.put(s.idHash, revealed{keyID: ep.ID, name: ep.URL, token: secret, at: h.now()})
	http.Redirect(w, r, "/admin/webhooks/"+ep.ID+"/secret", http.StatusSeeOther)
}

// webhookSecret shows a new signing secret once.
func (h *handler) webhookSecret(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	id := r.PathValue("id")
	d := secretData{ID: id}
	if k, ok := h.reveals.take(s.idHash, id, h.now()); ok {
		d.URL, d.Secret = k.name, k.token
	}
	h.render(w, r, http.StatusOK, "whsecret", view{Title: "Signing secret", User: s.email, Nav: "webhooks", Data: d})
}

// showWebhook serves GET /admin/webhooks/{id}: the endpoint and its
// deliveries, newest first.
func (h *handler) showWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	ctx := actor(r.Context(), s)
	ep, err := h.hooks.Get(ctx, r.PathValue("id"))
	if err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	q := r.URL.Query()
	d := webhookData{Endpoint: ep, State: q.Get("state"), Paged: q.Get("cursor") != "", Errors: map[string]string{}}
	status := http.StatusOK
	page, err := h.hooks.Deliveries(ctx, ep.ID, outbox.DeliveryFilter{State: outbox.State(d.State), Cursor: q.Get("cursor"), Limit: h.pageSize})
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		d.Errors[""] = "Invalid " + ve.Field + ": " + sentence(ve.Reason)
		status = http.StatusBadRequest
	case err != nil:
		h.hookFail(w, r, s, err)
		return
	default:
		d.Deliveries = page.Deliveries
		if page.NextCursor != "" {
			v := url.Values{"cursor": {page.NextCursor}}
			if d.State != "" {
				v.Set("state", d.State)
			}
			d.NextURL = "/admin/webhooks/" + ep.ID + "?" + v.Encode()
		}
	}
	h.render(w, r, status, "webhook", view{Title: "Webhook " + ep.URL, User: s.email, Nav: "webhooks", Data: d})
}

// toggleWebhook serves POST /admin/webhooks/{id}/enabled (enabled=true or
// false).
func (h *handler) toggleWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	on := r.PostFormValue("enabled") == "true"
	if _, err := h.hooks.Update(actor(r.Context(), s), r.PathValue("id"), outbox.EndpointUpdate{Enabled: &on}); err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+r.PathValue("id"), http.StatusSeeOther)
}

// rotateWebhook serves POST /admin/webhooks/{id}/rotate: a new secret,
// shown once.
func (h *handler) rotateWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	ep, secret, err := h.hooks.Rotate(actor(r.Context(), s), r.PathValue("id"))
	if err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	h.reveals.put(s.idHash, revealed{keyID: ep.ID, name: ep.URL, token: secret, at: h.now()})
	http.Redirect(w, r, "/admin/webhooks/"+ep.ID+"/secret", http.StatusSeeOther)
}

// deleteWebhook serves POST /admin/webhooks/{id}/delete.
func (h *handler) deleteWebhook(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	if err := h.hooks.Delete(actor(r.Context(), s), r.PathValue("id")); err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/webhooks", http.StatusSeeOther)
}

// showDelivery serves GET /admin/webhooks/{id}/deliveries/{delivery}: one
// delivery with its attempts and the Resend button.
func (h *handler) showDelivery(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	ctx := actor(r.Context(), s)
	ep, err := h.hooks.Get(ctx, r.PathValue("id"))
	if err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	d, err := h.hooks.Delivery(ctx, ep.ID, r.PathValue("delivery"))
	if err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	h.render(w, r, http.StatusOK, "delivery", view{Title: "Delivery " + d.ID, User: s.email, Nav: "webhooks", Data: deliveryData{Endpoint: ep, Delivery: d}})
}

// resendDelivery serves POST /admin/webhooks/{id}/deliveries/{delivery}/resend.
func (h *handler) resendDelivery(w http.ResponseWriter, r *http.Request, s *session) {
	if h.noHooks(w, r, s) {
		return
	}
	d, err := h.hooks.Resend(actor(r.Context(), s), r.PathValue("id"), r.PathValue("delivery"))
	if err != nil {
		h.hookFail(w, r, s, err)
		return
	}
	http.Redirect(w, r, "/admin/webhooks/"+r.PathValue("id")+"/deliveries/"+d.ID, http.StatusSeeOther)
}

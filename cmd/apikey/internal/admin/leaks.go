package admin

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/go-apikey/apikey"
)

type leaksData struct {
	KeyID   string
	Errors  map[string]string
	Leaks   []*apikey.Leak
	NextURL string
	Paged   bool
}

// listLeaks serves GET /admin/leaks: the leaks that leak reports
// confirmed (apikey.Manager.ReportLeak), newest first, optionally of one
// key.
func (h *handler) listLeaks(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	d := leaksData{KeyID: strings.TrimSpace(q.Get("key_id")), Errors: map[string]string{}, Paged: q.Get("cursor") != ""}
	status := http.StatusOK
	p, err := h.m.Leaks(actor(r.Context(), s), apikey.LeakFilter{KeyID: d.KeyID, Cursor: q.Get("cursor"), Limit: h.pageSize})
	var ve *apikey.ValidationError
	switch {
	case errors.As(err, &ve):
		field := ve.Field
		if field != "key_id" {
			field = ""
		}
		d.Errors[field] = sentence(ve.Reason)
		status = http.StatusBadRequest
	case errors.Is(err, errors.ErrUnsupported):
		d.Errors[""] = "This database keeps no leaks."
	case err != nil:
		h.fail(w, r, s, err)
		return
	default:
		d.Leaks = p.Leaks
		if p.NextCursor != "" {
			v := url.Values{"cursor": {p.NextCursor}}
			if d.KeyID != "" {
				v.Set("key_id", d.KeyID)
			}
			d.NextURL = "/admin/leaks?" + v.Encode()
		}
	}
	h.render(w, r, status, "leaks", view{Title: "Leaks", User: s.email, Nav: "leaks", Data: d})
}

// webURL returns u when it is an absolute http or https URL, which the
// pages may link to, and "" otherwise.
func webURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return u
}

package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// eventParams are the query parameters of GET /v1/events.
var eventParams = map[string]bool{"key_id": true, "actor": true, "type": true, "limit": true, "cursor": true}

// listEvents serves GET /v1/events: the audit log, newest first.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, eventParams, "key_id, actor, type, limit and cursor")
	if !ok {
		return
	}
	f := apikey.EventFilter{
		KeyID:  q.Get("key_id"),
		Actor:  q.Get("actor"),
		Type:   apikey.EventType(q.Get("type")),
		Cursor: q.Get("cursor"),
	}
	if q.Has("key_id") && !apikey.ValidID(f.KeyID) && !strings.HasPrefix(f.KeyID, "webhook:") {
		invalidInput(w, r, "key_id", "not a key id (12 base62 characters) nor webhook:<endpoint id>")
		return
	}
	if f.Limit, ok = limit(w, r, q); !ok {
		return
	}
	page, err := s.m.Events(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

// usageParams are the query parameters of GET /v1/keys/{id}/usage.
var usageParams = map[string]bool{"from": true, "to": true, "granularity": true}

// defaultUsageRange is the span of GET /v1/keys/{id}/usage without from.
const defaultUsageRange = 24 * time.Hour

// usageResponse is the answer of GET /v1/keys/{id}/usage.
type usageResponse struct {
	KeyID       string              `json:"key_id"`
	Granularity apikey.Granularity  `json:"granularity"`
	From        time.Time           `json:"from"`
	To          time.Time           `json:"to"`
	Usage       []apikey.UsageCount `json:"usage"`
}

// keyUsage serves GET /v1/keys/{id}/usage: the verification counts of a
// key by outcome, per minute, hour (the default) or UTC day, between from
// (default: 24 hours before to) and to (default: now). Counts reach the
// store when the Manager flushes, every 10 seconds by default.
func (s *Server) keyUsage(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, usageParams, "from, to and granularity")
	if !ok {
		return
	}
	g := apikey.ByHour
	if q.Has("granularity") {
		g = apikey.Granularity(q.Get("granularity"))
		if g != apikey.ByHour && g != apikey.ByMinute && g != apikey.ByDay {
			invalidInput(w, r, "granularity", "must be minute, hour or day")
			return
		}
	}
	to := s.m.Now()
	if q.Has("to") {
		t, err := queryTime(q, "to")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		to = t
	}
	from := to.Add(-defaultUsageRange)
	if q.Has("from") {
		t, err := queryTime(q, "from")
		if err != nil {
			s.fail(w, r, err)
			return
		}
		from = t
	} else if !apikey.ValidTime(from) {
		// The default range reaches before year 1: the fault is in to.
		invalidInput(w, r, "to", "must be at least one day after the start of year 1 when from is not given")
		return
	}
	id := r.PathValue("id")
	// Usage of an unknown id is empty, not an error: ask for the key
	// first so that a typo gets 404.
	if _, err := s.m.Get(r.Context(), id); err != nil {
		s.fail(w, r, err)
		return
	}
	counts, err := s.m.Usage(r.Context(), id, from, to, g)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if counts == nil {
		counts = []apikey.UsageCount{}
	}
	writeJSON(w, http.StatusOK, usageResponse{KeyID: id, Granularity: g, From: from, To: to, Usage: counts})
}

// metrics serves GET /metrics with Config.Metrics, or 404 when there is
// none.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	if s.metricsHandler == nil {
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusNotFound, Code: apikey.CodeNotFound,
			Detail: "Metrics are not enabled on this server."})
		return
	}
	s.metricsHandler.ServeHTTP(w, r)
}

package apikeyclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/go-apikey/apikey"
)

// Events returns one page of the audit log matching f, newest first (GET
// /v1/events); pass the page's NextCursor as f.Cursor to fetch the next
// one. It mirrors apikey.Manager.Events.
func (c *Client) Events(ctx context.Context, f apikey.EventFilter) (*apikey.EventPage, error) {
	q := url.Values{}
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("key_id", f.KeyID)
	set("actor", f.Actor)
	set("type", string(f.Type))
	set("cursor", f.Cursor)
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page apikey.EventPage
	if err := c.do(ctx, http.MethodGet, "/v1/events", q, nil, &page, ""); err != nil {
		return nil, err
	}
	if page.Events == nil {
		page.Events = []*apikey.Event{}
	}
	return &page, nil
}

// Usage returns the verification counts of a key by outcome between from
// (inclusive) and to (exclusive), by minute, hour or day, oldest first
// (GET /v1/keys/{id}/usage). It mirrors apikey.Manager.Usage; zero times
// and an empty granularity take the service's defaults (the 24 hours
// before now, by hour). Counts reach the service's store when its Manager
// flushes, every 10 seconds by default.
func (c *Client) Usage(ctx context.Context, id string, from, to time.Time, g apikey.Granularity) ([]apikey.UsageCount, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	q := url.Values{}
	if !from.IsZero() {
		q.Set("from", from.UTC().Format(time.RFC3339Nano))
	}
	if !to.IsZero() {
		q.Set("to", to.UTC().Format(time.RFC3339Nano))
	}
	if g != "" {
		q.Set("granularity", string(g))
	}
	var res struct {
		Usage []apikey.UsageCount `json:"usage"`
	}
	if err := c.do(ctx, http.MethodGet, "/v1/keys/"+id+"/usage", q, nil, &res, ""); err != nil {
		return nil, err
	}
	if res.Usage == nil {
		res.Usage = []apikey.UsageCount{}
	}
	return res.Usage, nil
}

// Health reports whether the service answers (GET /healthz): nil, or an
// error matching apikey.ErrUnavailable.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/healthz", nil, nil, nil, "")
}

// Ready reports whether the service can serve (GET /readyz: its store
// answers, and with --check-integrity its rules are intact): nil, or an
// error matching apikey.ErrUnavailable.
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil, "")
}

// OpenAPI returns the service's OpenAPI document (GET
// /v1/openapi.json), as JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var doc json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/v1/openapi.json", nil, nil, &doc, ""); err != nil {
		return nil, err
	}
	return doc, nil
}

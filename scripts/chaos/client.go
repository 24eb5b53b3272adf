package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// client calls the API of the instances and records every exchange.
type client struct {
	hc    *http.Client
	admin string // token of an apikey:admin key
	rec   *recorder
}

// newClient returns a client with keep-alive connections and timeout per
// request.
func newClient(admin string, timeout time.Duration, rec *recorder) *client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 1024
	tr.MaxIdleConnsPerHost = 512
	return &client{hc: &http.Client{Transport: tr, Timeout: timeout}, admin: admin, rec: rec}
}

// do sends a request with token as its key, records the outcome (fine if
// the status is one of want) and returns the status (0 for no response),
// the body and the instant the outcome was known.
func (c *client) do(ctx context.Context, method, url, token, body string, want ...int) (int, []byte, time.Time) {
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		panic(err) // the harness builds the URLs
	}
	req.Header.Set("Authorization", "Api-Key "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	status, data := 0, []byte(nil)
	resp, err := c.hc.Do(req)
	if err == nil {
		data, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			status = resp.StatusCode
		}
	}
	at := time.Now()
	if ctx.Err() == nil { // the end of the run is no failure
		c.rec.exchange(at, classify(status, want...))
	}
	return status, data, at
}

// whoami calls GET /v1/whoami on base with token, a request any valid
// key may make, and returns the status. A 401 is fine only when
// revoked is true.
func (c *client) whoami(ctx context.Context, base, token string, revoked bool) int {
	want := []int{http.StatusOK}
	if revoked {
		want = append(want, http.StatusUnauthorized)
	}
	status, _, _ := c.do(ctx, "GET", base+"/v1/whoami", token, "", want...)
	return status
}

// created is the part of POST /v1/keys's answer the harness uses.
type created struct {
	ID    string `json:"id"`
	Token string `json:"key"`
}

// createKey creates a key named name on base with the admin key.
func (c *client) createKey(ctx context.Context, base, name string) (created, error) {
	status, data, _ := c.do(ctx, "POST", base+"/v1/keys", c.admin, fmt.Sprintf(`{"name":%q}`, name), http.StatusCreated)
	var k created
	if status != http.StatusCreated {
		return k, fmt.Errorf("POST /v1/keys answered %d", status)
	}
	if err := json.Unmarshal(data, &k); err != nil || k.ID == "" || k.Token == "" {
		return k, fmt.Errorf("POST /v1/keys: unexpected answer %.200q", data)
	}
	return k, nil
}

// revokeKey revokes key id on base with the admin key and returns the
// instant the answer arrived.
func (c *client) revokeKey(ctx context.Context, base, id string) (time.Time, error) {
	status, _, at := c.do(ctx, "POST", base+"/v1/keys/"+id+"/revoke", c.admin, "", http.StatusOK)
	if status != http.StatusOK {
		return at, fmt.Errorf("POST /v1/keys/%s/revoke answered %d", id, status)
	}
	return at, nil
}

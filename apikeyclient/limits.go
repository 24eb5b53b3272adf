package apikeyclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/go-apikey/apikey"
)

type checkRequest struct {
	Key            string   `json:"key"`
	Scopes         []string `json:"scopes,omitempty"`
	RateLimit      string   `json:"ratelimit,omitempty"`
	Cost           int64    `json:"cost,omitempty"`
	Credits        int64    `json:"credits,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	Environment    string   `json:"environment,omitempty"`
	ClientIP       string   `json:"client_ip,omitempty"`
}

type limitResult struct {
	Name       string `json:"name"`
	Scope      string `json:"scope"`
	Limit      int64  `json:"limit"`
	Remaining  int64  `json:"remaining"`
	Reset      int64  `json:"reset"`
	RetryAfter int64  `json:"retry_after"`
	Allowed    bool   `json:"allowed"`
}

type checkResponse struct {
	verifyResponse
	RateLimits []limitResult         `json:"ratelimits"`
	Credits    *apikey.CreditsResult `json:"credits"`
}

// Check is the remote apikey.Manager.Check: it verifies token as Verify
// does, has the service hold the key against opts.Environment and
// opts.ClientAddr (its network allowlist; a key with one is refused when
// ClientAddr is not set) and apply the rate limits and credits of opts to
// the key and its owner (POST /v1/verify with environment, client_ip,
// ratelimit, cost, credits and idempotency_key). It returns the key with the outcome of each limit (their
// Reset in whole seconds) and the balance left; a valid key refused by a
// limit or for want of credits yields an *apikey.LimitError matching
// apikey.ErrRateLimited or apikey.ErrUsageExceeded, whose RetryAfter is
// the service's Retry-After. Other errors are those of Verify; bad opts
// yield an *Error wrapping an *apikey.ValidationError.
func (c *Client) Check(ctx context.Context, token string, opts apikey.CheckOptions) (*apikey.Result, error) {
	if _, err := apikey.ParseAnyToken(token); err != nil {
		return nil, err
	}
	var res checkResponse
	body := checkRequest{Key: token, RateLimit: opts.RateLimit, Cost: opts.Cost, Credits: opts.Credits, IdempotencyKey: opts.IdempotencyKey,
		Environment: string(opts.Environment)}
	if opts.ClientAddr.IsValid() {
		body.ClientIP = opts.ClientAddr.WithZone("").String()
	}
	err := c.do(ctx, http.MethodPost, "/v1/verify", nil, body, &res, token)
	var e *Error
	switch {
	case err == nil:
	case errors.As(err, &e) && (errors.Is(e, apikey.ErrRateLimited) || errors.Is(e, apikey.ErrUsageExceeded)):
		return nil, &apikey.LimitError{Err: e.err, RetryAfter: e.RetryAfter}
	case errors.As(err, &e) && e.Status == http.StatusBadRequest:
		return nil, e // bad options: the caller's mistake
	default:
		_, err := c.verifyAnswer(err, nil, nil)
		return nil, err
	}
	k, err := c.verifyAnswer(nil, &res.verifyResponse, nil)
	if err != nil {
		return nil, err
	}
	out := &apikey.Result{Key: k, Credits: res.Credits, RateLimits: make([]apikey.LimitResult, len(res.RateLimits))}
	for i, l := range res.RateLimits {
		out.RateLimits[i] = apikey.LimitResult{Name: l.Name, Scope: l.Scope, Limit: l.Limit, Remaining: l.Remaining,
			Reset: time.Duration(l.Reset) * time.Second, RetryAfter: time.Duration(l.RetryAfter) * time.Second, Allowed: l.Allowed}
	}
	return out, nil
}

type creditsRequest struct {
	Op             apikey.CreditOp `json:"op"`
	Amount         *int64          `json:"amount,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

// AdjustCredits sets, adds to or refunds the balance of a key (adj.KeyID)
// or of an owner (adj.Owner) and returns it; see
// apikey.Manager.AdjustCredits. A refund of a spend the service does not
// know yields an error matching apikey.ErrNotFound; an add that would
// take the balance below zero an *apikey.ValidationError on "amount".
func (c *Client) AdjustCredits(ctx context.Context, adj apikey.CreditAdjustment) (*apikey.Credits, error) {
	var path string
	switch {
	case (adj.KeyID == "") == (adj.Owner == ""):
		return nil, &apikey.ValidationError{Field: "credits", Reason: "name either a key or an owner"}
	case adj.KeyID != "":
		if !apikey.ValidID(adj.KeyID) {
			return nil, apikey.ErrNotFound
		}
		path = "/v1/keys/" + adj.KeyID + "/credits"
	default:
		path = "/v1/owners/" + url.PathEscape(adj.Owner) + "/credits"
	}
	body := creditsRequest{Op: adj.Op, IdempotencyKey: adj.IdempotencyKey}
	if adj.Op != apikey.CreditRefund {
		body.Amount = &adj.Amount
	}
	var cr apikey.Credits
	if err := c.do(ctx, http.MethodPost, path, nil, body, &cr, ""); err != nil {
		return nil, err
	}
	return &cr, nil
}

// Owner returns the rate limits and credits of an owner. An owner without
// a record yields an error matching apikey.ErrNotFound.
func (c *Client) Owner(ctx context.Context, id string) (*apikey.Owner, error) {
	if id == "" {
		return nil, &apikey.ValidationError{Field: "owner", Reason: "is required"}
	}
	var o apikey.Owner
	if err := c.do(ctx, http.MethodGet, "/v1/owners/"+url.PathEscape(id), nil, nil, &o, ""); err != nil {
		return nil, err
	}
	if o.ID == "" {
		return nil, fmt.Errorf("%w: apikeyclient: owner answer without an id", apikey.ErrUnavailable)
	}
	return &o, nil
}

// SetOwner applies u to the record of an owner, creating it when it has
// none, and returns it (PATCH /v1/owners/{owner}): nil fields are left as
// they are.
func (c *Client) SetOwner(ctx context.Context, id string, u apikey.OwnerUpdate) (*apikey.Owner, error) {
	if id == "" {
		return nil, &apikey.ValidationError{Field: "owner", Reason: "is required"}
	}
	body := map[string]any{}
	if u.RateLimits != nil {
		l := *u.RateLimits
		if l == nil {
			l = []apikey.RateLimit{}
		}
		body["ratelimits"] = l
	}
	switch {
	case u.Credits != nil && u.ClearCredits:
		return nil, &apikey.ValidationError{Field: "credits", Reason: "cannot both set and clear the credits"}
	case u.Credits != nil:
		body["credits"] = u.Credits
	case u.ClearCredits:
		body["credits"] = nil
	}
	var o apikey.Owner
	if err := c.do(ctx, http.MethodPatch, "/v1/owners/"+url.PathEscape(id), nil, body, &o, ""); err != nil {
		return nil, err
	}
	return &o, nil
}

// ReplaceOwner makes the record of the owner o.ID exactly o (PUT
// /v1/owners/{owner}): its rate limits become o.RateLimits (none when
// empty) and its credits o.Credits (no balance when nil), creating the
// record when there is none. It returns the record as stored.
func (c *Client) ReplaceOwner(ctx context.Context, o apikey.Owner) (*apikey.Owner, error) {
	if o.ID == "" {
		return nil, &apikey.ValidationError{Field: "owner", Reason: "is required"}
	}
	limits := o.RateLimits
	if limits == nil {
		limits = []apikey.RateLimit{}
	}
	body := map[string]any{"ratelimits": limits}
	if o.Credits != nil {
		body["credits"] = o.Credits
	}
	var got apikey.Owner
	if err := c.do(ctx, http.MethodPut, "/v1/owners/"+url.PathEscape(o.ID), nil, body, &got, ""); err != nil {
		return nil, err
	}
	return &got, nil
}

// DeleteOwner removes the record of an owner, its rate limits and its
// balance (DELETE /v1/owners/{owner}); the owner's keys stay. An owner
// without a record yields apikey.ErrNotFound.
func (c *Client) DeleteOwner(ctx context.Context, id string) error {
	if id == "" {
		return &apikey.ValidationError{Field: "owner", Reason: "is required"}
	}
	return c.do(ctx, http.MethodDelete, "/v1/owners/"+url.PathEscape(id), nil, nil, nil, "")
}

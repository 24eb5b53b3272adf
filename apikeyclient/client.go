package apikeyclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// DefaultTimeout bounds each request of a Client whose HTTPClient is nil.
const DefaultTimeout = 10 * time.Second

// defaultHTTPClient is used when Client.HTTPClient is nil. It does not
// follow redirects: the API never redirects, and a redirected POST would
// silently turn into a GET.
var defaultHTTPClient = &http.Client{
	Timeout: DefaultTimeout,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Client calls an apikey service. Create one with New. A Client is safe for
// concurrent use; set HTTPClient, if at all, before the first call.
type Client struct {
	// HTTPClient sends the requests. Nil means a client with a timeout of
	// DefaultTimeout (10 seconds) that does not follow redirects.
	HTTPClient *http.Client

	base  string // scheme://host[/path], without a trailing slash
	token string
}

var _ apikey.Verifier = (*Client)(nil)

// New returns a Client for the service at baseURL (for example
// "https://keys.example.com" or "http://127.0.0.1:8080/apikey"), which
// authenticates with token, a key with the scope apikey:admin (every
// method) or apikey:verify (Verify and VerifyScopes only). baseURL must be
// an absolute http or https URL without user information, query or
// fragment. The error never contains token.
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("apikeyclient: base URL %q does not parse", baseURL)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("apikeyclient: base URL %q: scheme must be http or https", baseURL)
	case u.Host == "":
		return nil, fmt.Errorf("apikeyclient: base URL %q has no host", baseURL)
	case u.User != nil:
		return nil, errors.New("apikeyclient: base URL must not contain user information")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("apikeyclient: base URL %q must not have a query or fragment", baseURL)
	}
	if token == "" {
		return nil, errors.New("apikeyclient: New needs a token")
	}
	for i := 0; i < len(token); i++ {
		if c := token[i]; c <= ' ' || c >= 0x7f {
			return nil, errors.New("apikeyclient: token contains a space, a control character or a non-ASCII byte")
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return &Client{base: u.String(), token: token}, nil
}

// BaseURL returns the base URL of the service, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// Verify asks the service to verify token and returns its key. Its errors
// follow the apikey.Verifier contract: they match apikey.ErrInvalidKey,
// apikey.ErrExpired or apikey.ErrRevoked when the service says so, and
// apikey.ErrUnavailable when it could not decide: the service is down or
// unreachable, answered 5xx or something that does not decode, or refused
// the client's own token (in which case errors.As finds an *Error
// describing the refusal). A malformed token is refused without a request.
//
// Verify makes *Client an apikey.Verifier, so apikeyhttp middleware can
// verify keys against a remote service. Like apikey.Manager.Verify, it
// leaves the key's network allowlist to its caller: the key comes back
// with its AllowedCIDRs, which apikeyhttp holds against the request's
// address (use Check with ClientAddr to have the service do it). A key of
// the environment the service refuses (apikey serve --environment) yields
// apikey.ErrWrongEnvironment.
func (c *Client) Verify(ctx context.Context, token string) (*apikey.Key, error) {
	return c.verify(ctx, token, nil)
}

// VerifyScopes is Verify that also requires the key to grant every one of
// scopes (with the wildcard rules of apikey.Key.HasScope). A valid key that
// lacks one yields an *apikeyhttp.ScopeError, which matches
// apikeyhttp.ErrInsufficientScope, and no key. A malformed scope yields an
// *Error wrapping an *apikey.ValidationError.
func (c *Client) VerifyScopes(ctx context.Context, token string, scopes ...string) (*apikey.Key, error) {
	if scopes == nil {
		scopes = []string{}
	}
	return c.verify(ctx, token, scopes)
}

type verifyRequest struct {
	Key    string   `json:"key"`
	Scopes []string `json:"scopes,omitempty"`
	// DeferAllowlist: Verify, like apikey.Manager.Verify, leaves the key's
	// network allowlist to its caller (apikeyhttp checks it).
	DeferAllowlist bool `json:"defer_allowlist"`
}

type verifyResponse struct {
	Valid *bool       `json:"valid"`
	Code  apikey.Code `json:"code"`
	Key   *apikey.Key `json:"key"`
}

func (c *Client) verify(ctx context.Context, token string, scopes []string) (*apikey.Key, error) {
	if _, err := apikey.ParseAnyToken(token); err != nil {
		return nil, err
	}
	var res verifyResponse
	err := c.do(ctx, http.MethodPost, "/v1/verify", nil, verifyRequest{Key: token, Scopes: scopes, DeferAllowlist: true}, &res, token)
	return c.verifyAnswer(err, &res, scopes)
}

// verifyAnswer reads the answer of POST /v1/verify: err from do, else
// res, the decoded body.
func (c *Client) verifyAnswer(err error, res *verifyResponse, scopes []string) (*apikey.Key, error) {
	if err != nil {
		var e *Error
		if !errors.As(err, &e) || e.Status >= 500 {
			return nil, err // already matches apikey.ErrUnavailable
		}
		var ve *apikey.ValidationError
		if errors.As(e.err, &ve) {
			if ve.Field == "key" {
				return nil, apikey.ErrInvalidKey
			}
			if scopes != nil {
				return nil, e // a bad scope: the caller's mistake
			}
		}
		// The service refused the request itself (most likely the client's
		// own token): that says nothing about the presented key.
		e.err = nil
		return nil, fmt.Errorf("%w: the service refused the verification request: %w", apikey.ErrUnavailable, e)
	}
	if res.Valid == nil {
		return nil, fmt.Errorf("%w: apikeyclient: verify answer without a valid member", apikey.ErrUnavailable)
	}
	if *res.Valid {
		if res.Key == nil || res.Code != "" {
			return nil, fmt.Errorf("%w: apikeyclient: inconsistent verify answer", apikey.ErrUnavailable)
		}
		return res.Key, nil
	}
	switch err := apikeyhttp.ErrorFor(http.StatusOK, res.Code); err {
	case apikey.ErrInvalidKey, apikey.ErrExpired, apikey.ErrRevoked, apikey.ErrDisabled, apikey.ErrWrongEnvironment, apikey.ErrIPNotAllowed:
		return nil, err
	case apikeyhttp.ErrInsufficientScope:
		if scopes != nil {
			return nil, &apikeyhttp.ScopeError{Required: slices.Clone(scopes)}
		}
	}
	return nil, fmt.Errorf("%w: apikeyclient: verify answered the unknown code %q", apikey.ErrUnavailable, res.Code)
}

// createRequest is the body of POST /v1/keys.
type createRequest struct {
	Name       string             `json:"name"`
	Owner      string             `json:"owner,omitempty"`
	Scopes     []string           `json:"scopes,omitempty"`
	Metadata   map[string]string  `json:"metadata,omitempty"`
	ExpiresAt  *time.Time         `json:"expires_at,omitempty"`
	RateLimits []apikey.RateLimit `json:"ratelimits,omitempty"`
	Credits    *apikey.Credits    `json:"credits,omitempty"`

	Environment      apikey.Environment `json:"environment,omitempty"`
	AllowedCIDRs     []netip.Prefix     `json:"allowed_cidrs,omitempty"`
	InactivityExpiry string             `json:"inactivity_expiry,omitempty"`
}

// Create creates a key and returns its record and its plaintext token,
// which the service shows only this once.
func (c *Client) Create(ctx context.Context, p apikey.CreateParams) (*apikey.Key, string, error) {
	var res apikey.IssuedKey
	body := createRequest{Name: p.Name, Owner: p.Owner, Scopes: p.Scopes, Metadata: p.Metadata, ExpiresAt: p.ExpiresAt,
		RateLimits: p.RateLimits, Credits: p.Credits, Environment: p.Environment, AllowedCIDRs: p.AllowedCIDRs,
		InactivityExpiry: apikey.FormatInactivityExpiry(p.InactivityExpiry)}
	if err := c.do(ctx, http.MethodPost, "/v1/keys", nil, body, &res, ""); err != nil {
		return nil, "", err
	}
	if res.Token == "" || res.Key == nil || res.ID == "" {
		return nil, "", fmt.Errorf("%w: apikeyclient: create answer without a key", apikey.ErrUnavailable)
	}
	return res.Key, res.Token, nil
}

// Get returns the key with the given id. An unknown id yields an error
// matching apikey.ErrNotFound.
func (c *Client) Get(ctx context.Context, id string) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	return c.key(ctx, http.MethodGet, "/v1/keys/"+id, nil)
}

// List returns one page of keys matching f, newest first; pass the page's
// NextCursor as f.Cursor to fetch the next one.
func (c *Client) List(ctx context.Context, f apikey.KeyFilter) (*apikey.Page, error) {
	q := url.Values{}
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("owner", f.Owner)
	set("state", string(f.State))
	set("environment", string(f.Environment))
	set("search", f.Search)
	set("cursor", f.Cursor)
	if f.Limit != 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var page apikey.Page
	if err := c.do(ctx, http.MethodGet, "/v1/keys", q, nil, &page, ""); err != nil {
		return nil, err
	}
	if page.Keys == nil {
		page.Keys = []*apikey.Key{}
	}
	return &page, nil
}

// Update changes the name, scopes, metadata, expiry, rate limits,
// credits, network allowlist or inactivity expiry of a key and returns the result. Changing a revoked key yields an
// error matching apikey.ErrFrozen; setting ExpiresAt together with
// ClearExpiry, or Credits with ClearCredits, an *apikey.ValidationError,
// without a request.
func (c *Client) Update(ctx context.Context, id string, u apikey.KeyUpdate) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	body := map[string]any{}
	if u.Name != nil {
		body["name"] = *u.Name
	}
	if u.Scopes != nil {
		s := *u.Scopes
		if s == nil {
			s = []string{}
		}
		body["scopes"] = s
	}
	if u.Metadata != nil {
		md := *u.Metadata
		if md == nil {
			md = map[string]string{}
		}
		body["metadata"] = md
	}
	switch {
	case u.ExpiresAt != nil && u.ClearExpiry:
		return nil, &apikey.ValidationError{Field: "expires_at", Reason: "cannot both set and clear the expiry"}
	case u.ExpiresAt != nil:
		body["expires_at"] = *u.ExpiresAt
	case u.ClearExpiry:
		body["expires_at"] = nil
	}
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
	if u.AllowedCIDRs != nil {
		l := *u.AllowedCIDRs
		if l == nil {
			l = []netip.Prefix{}
		}
		body["allowed_cidrs"] = l
	}
	if u.InactivityExpiry != nil {
		body["inactivity_expiry"] = apikey.FormatInactivityExpiry(*u.InactivityExpiry)
		if *u.InactivityExpiry == 0 {
			body["inactivity_expiry"] = "0"
		}
	}
	return c.key(ctx, http.MethodPatch, "/v1/keys/"+id, body)
}

// Revoke revokes a key for ever and returns it. Revoking a revoked key is
// not an error.
func (c *Client) Revoke(ctx context.Context, id string) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	return c.key(ctx, http.MethodPost, "/v1/keys/"+id+"/revoke", nil)
}

// Roll replaces the secret of a key and returns the key with its new
// plaintext token. With zero options the old token stops verifying at
// once; with a Grace it keeps verifying until the grace window ends (see
// apikey.RollOptions; the server checks the options). A revoked key
// cannot be rolled (apikey.ErrFrozen).
func (c *Client) Roll(ctx context.Context, id string, opts apikey.RollOptions) (*apikey.Key, string, error) {
	if !apikey.ValidID(id) {
		return nil, "", apikey.ErrNotFound
	}
	var body any
	if opts != (apikey.RollOptions{}) {
		req := map[string]string{}
		if opts.Grace != 0 {
			req["grace"] = apikey.FormatGrace(opts.Grace)
		}
		if opts.GraceStarts != "" {
			req["grace_starts"] = string(opts.GraceStarts)
		}
		if opts.GraceMax != 0 {
			req["grace_max"] = apikey.FormatGrace(opts.GraceMax)
		}
		body = req
	}
	var res apikey.IssuedKey
	if err := c.do(ctx, http.MethodPost, "/v1/keys/"+id+"/roll", nil, body, &res, ""); err != nil {
		return nil, "", err
	}
	if res.Token == "" || res.Key == nil || res.ID == "" {
		return nil, "", fmt.Errorf("%w: apikeyclient: roll answer without a key", apikey.ErrUnavailable)
	}
	return res.Key, res.Token, nil
}

// Disable stops a key until Enable: the service refuses it with
// apikey.ErrDisabled (403 key_disabled). A revoked key cannot be disabled
// (apikey.ErrFrozen).
func (c *Client) Disable(ctx context.Context, id string) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	return c.key(ctx, http.MethodPost, "/v1/keys/"+id+"/disable", nil)
}

// Enable undoes Disable. A revoked key cannot be enabled (apikey.ErrFrozen).
func (c *Client) Enable(ctx context.Context, id string) (*apikey.Key, error) {
	if !apikey.ValidID(id) {
		return nil, apikey.ErrNotFound
	}
	return c.key(ctx, http.MethodPost, "/v1/keys/"+id+"/enable", nil)
}

// Delete removes a key for good.
func (c *Client) Delete(ctx context.Context, id string) error {
	if !apikey.ValidID(id) {
		return apikey.ErrNotFound
	}
	return c.do(ctx, http.MethodDelete, "/v1/keys/"+id, nil, nil, nil, "")
}

// Whoami returns the record of the client's own key.
func (c *Client) Whoami(ctx context.Context) (*apikey.Key, error) {
	return c.key(ctx, http.MethodGet, "/v1/whoami", nil)
}

func (c *Client) key(ctx context.Context, method, path string, body any) (*apikey.Key, error) {
	var k apikey.Key
	if err := c.do(ctx, method, path, nil, body, &k, ""); err != nil {
		return nil, err
	}
	if k.ID == "" {
		return nil, fmt.Errorf("%w: apikeyclient: %s %s answered without a key", apikey.ErrUnavailable, method, path)
	}
	return &k, nil
}

// maxProblemSize bounds how much of an error body is read.
const maxProblemSize = 64 << 10

// do sends one request and decodes a 2xx answer into out (if not nil), or
// turns any other answer into an *Error. secret, when set, is scrubbed from
// error text besides the client's token.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any, secret string) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("apikeyclient: encoding the request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("apikeyclient: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json, application/problem+json")
	req.Header.Set("User-Agent", "go-apikey/apikeyclient")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL; neither carries a secret.
		return fmt.Errorf("%w: %w", apikey.ErrUnavailable, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxProblemSize))
		_ = resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.problem(resp, secret)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%w: apikeyclient: %s %s: undecodable answer: %w", apikey.ErrUnavailable, method, path, err)
	}
	return nil
}

// problem is the part of an RFC 9457 problem body the client reads.
type problem struct {
	Status         int         `json:"status"`
	Detail         string      `json:"detail"`
	Code           apikey.Code `json:"code"`
	Field          string      `json:"field"`
	RequiredScopes []string    `json:"required_scopes"`
}

func (c *Client) problem(resp *http.Response, secret string) error {
	var p problem
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxProblemSize))
	if ct := resp.Header.Get("Content-Type"); strings.Contains(ct, "json") {
		_ = json.Unmarshal(b, &p) // a body that does not decode leaves p empty
	}
	detail := scrub(scrub(p.Detail, c.token), secret)
	e := &Error{Status: resp.StatusCode, Code: p.Code, Detail: detail}
	if n, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64); err == nil && n > 0 && n < 1<<31 {
		e.RetryAfter = time.Duration(n) * time.Second
	}
	e.err = sentinel(e, &p)
	return e
}

func scrub(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}

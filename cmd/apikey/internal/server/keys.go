package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-apikey/apikey"
)

type createRequest struct {
	Name       string             `json:"name"`
	Owner      string             `json:"owner"`
	Scopes     []string           `json:"scopes"`
	Metadata   map[string]string  `json:"metadata"`
	ExpiresAt  *string            `json:"expires_at"`
	ExpiresIn  *string            `json:"expires_in"`
	RateLimits []apikey.RateLimit `json:"ratelimits"`
	Credits    *apikey.Credits    `json:"credits"`
	// Environment is live (the default) or test.
	Environment string `json:"environment"`
	// AllowedCIDRs are read with apikey.ParseCIDRs.
	AllowedCIDRs []string `json:"allowed_cidrs"`
	// InactivityExpiry is read with apikey.ParseInactivityExpiry.
	InactivityExpiry string `json:"inactivity_expiry"`
}

// createKey serves POST /v1/keys.
func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decode(w, r, &req) {
		return
	}
	exp, err := expiry(req.ExpiresAt, req.ExpiresIn, s.m.Now())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	env, err := apikey.ParseEnvironment(req.Environment)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cidrs, err := apikey.ParseCIDRs(req.AllowedCIDRs)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	inactivity, err := apikey.ParseInactivityExpiry(req.InactivityExpiry)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k, token, err := s.m.Create(r.Context(), apikey.CreateParams{
		Name:             req.Name,
		Owner:            req.Owner,
		Scopes:           req.Scopes,
		Metadata:         req.Metadata,
		ExpiresAt:        exp,
		RateLimits:       req.RateLimits,
		Credits:          req.Credits,
		Environment:      env,
		AllowedCIDRs:     cidrs,
		InactivityExpiry: inactivity,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/keys/"+k.ID)
	writeJSON(w, http.StatusCreated, apikey.IssuedKey{Token: token, Key: k})
}

// listParams are the query parameters of GET /v1/keys.
var listParams = map[string]bool{"owner": true, "state": true, "search": true, "limit": true, "cursor": true, "environment": true}

// listKeys serves GET /v1/keys.
func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	q, ok := query(w, r, listParams, "owner, state, environment, search, limit and cursor")
	if !ok {
		return
	}
	f := apikey.KeyFilter{
		Owner:       q.Get("owner"),
		State:       apikey.State(q.Get("state")),
		Environment: apikey.Environment(q.Get("environment")),
		Search:      q.Get("search"),
		Cursor:      q.Get("cursor"),
	}
	if f.Limit, ok = limit(w, r, q); !ok {
		return
	}
	page, err := s.m.List(r.Context(), f)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if page.Keys == nil {
		page.Keys = []*apikey.Key{}
	}
	writeJSON(w, http.StatusOK, page)
}

// query parses the query string of r, answering 400 invalid_input for a
// malformed one, a parameter not in allowed (whose names are listed in
// names), a repeated parameter or a value no store accepts.
func query(w http.ResponseWriter, r *http.Request, allowed map[string]bool, names string) (url.Values, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		invalidInput(w, r, "query", "not a valid query string")
		return nil, false
	}
	for name, values := range q {
		switch {
		case !allowed[name]:
			invalidInput(w, r, sanitize(name, 64), "unknown query parameter; the parameters are "+names)
			return nil, false
		case len(values) > 1:
			invalidInput(w, r, name, "given more than once")
			return nil, false
		}
		if why := checkText(values[0]); why != "" {
			invalidInput(w, r, name, why)
			return nil, false
		}
	}
	return q, true
}

// limit reads the limit parameter of a listing: zero when absent.
func limit(w http.ResponseWriter, r *http.Request, q url.Values) (int, bool) {
	if !q.Has("limit") {
		return 0, true
	}
	n, err := strconv.Atoi(q.Get("limit"))
	if err != nil || n < 1 || n > apikey.MaxPageSize {
		invalidInput(w, r, "limit", "must be a whole number from 1 to "+strconv.Itoa(apikey.MaxPageSize))
		return 0, false
	}
	return n, true
}

// getKey serves GET /v1/keys/{id}.
func (s *Server) getKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.m.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

type updateRequest struct {
	Name       optional[string]             `json:"name"`
	Scopes     optional[[]string]           `json:"scopes"`
	Metadata   optional[map[string]string]  `json:"metadata"`
	ExpiresAt  optional[string]             `json:"expires_at"`
	ExpiresIn  optional[string]             `json:"expires_in"`
	RateLimits optional[[]apikey.RateLimit] `json:"ratelimits"`
	Credits    optional[apikey.Credits]     `json:"credits"`
	// AllowedCIDRs replaces the allowlist ([] removes it).
	AllowedCIDRs optional[[]string] `json:"allowed_cidrs"`
	// InactivityExpiry replaces the key's own policy ("0" for the
	// default, "never").
	InactivityExpiry optional[string] `json:"inactivity_expiry"`
	// Environment is refused with a precise reason: it never changes.
	Environment optional[json.RawMessage] `json:"environment"`
}

// updateKey serves PATCH /v1/keys/{id}. Absent members are left alone;
// "expires_at": null removes the expiry and "credits": null the balance;
// null is refused for the others ("ratelimits": [] removes every limit).
func (s *Server) updateKey(w http.ResponseWriter, r *http.Request) {
	var req updateRequest
	if !decode(w, r, &req) {
		return
	}
	var u apikey.KeyUpdate
	switch {
	case req.Name.Null:
		invalidInput(w, r, "name", "cannot be null")
		return
	case req.Scopes.Null:
		invalidInput(w, r, "scopes", "cannot be null; send [] to remove every scope")
		return
	case req.Metadata.Null:
		invalidInput(w, r, "metadata", "cannot be null; send {} to remove every entry")
		return
	case req.ExpiresIn.Null:
		invalidInput(w, r, "expires_in", `cannot be null; send "expires_at": null to remove the expiry`)
		return
	case req.ExpiresAt.Set && req.ExpiresIn.Set:
		invalidInput(w, r, "expires_in", "cannot be combined with expires_at")
		return
	case req.RateLimits.Null:
		invalidInput(w, r, "ratelimits", "cannot be null; send [] to remove every limit")
		return
	case req.AllowedCIDRs.Null:
		invalidInput(w, r, "allowed_cidrs", "cannot be null; send [] to remove the allowlist")
		return
	case req.InactivityExpiry.Null:
		invalidInput(w, r, "inactivity_expiry", `cannot be null; send "0" for the service default`)
		return
	case req.Environment.Set:
		invalidInput(w, r, "environment", "cannot be changed: the key's tokens carry it; create a key in the other environment instead")
		return
	}
	if req.AllowedCIDRs.Set {
		cidrs, err := apikey.ParseCIDRs(req.AllowedCIDRs.Value)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		u.AllowedCIDRs = &cidrs
	}
	if req.InactivityExpiry.Set {
		d, err := apikey.ParseInactivityExpiry(req.InactivityExpiry.Value)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		u.InactivityExpiry = &d
	}
	if req.RateLimits.Set {
		if req.RateLimits.Value == nil {
			req.RateLimits.Value = []apikey.RateLimit{}
		}
		u.RateLimits = &req.RateLimits.Value
	}
	switch {
	case req.Credits.Null:
		u.ClearCredits = true
	case req.Credits.Set:
		u.Credits = &req.Credits.Value
	}
	if req.Name.Set {
		u.Name = &req.Name.Value
	}
	if req.Scopes.Set {
		if req.Scopes.Value == nil {
			req.Scopes.Value = []string{}
		}
		u.Scopes = &req.Scopes.Value
	}
	if req.Metadata.Set {
		if req.Metadata.Value == nil {
			req.Metadata.Value = map[string]string{}
		}
		u.Metadata = &req.Metadata.Value
	}
	switch {
	case req.ExpiresAt.Null:
		u.ClearExpiry = true
	case req.ExpiresAt.Set || req.ExpiresIn.Set:
		var at, in *string
		if req.ExpiresAt.Set {
			at = &req.ExpiresAt.Value
		} else {
			in = &req.ExpiresIn.Value
		}
		exp, err := expiry(at, in, s.m.Now())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		u.ExpiresAt = exp
	}
	k, err := s.m.Update(r.Context(), r.PathValue("id"), u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// revokeKey serves POST /v1/keys/{id}/revoke. Revoking a revoked key
// answers the key as it is. See strict for ?strict.
func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	strict, ok := s.strict(w, r)
	if !ok {
		return
	}
	k, err := s.m.Revoke(apikey.WithStrict(r.Context(), false), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if strict && !s.acknowledged(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// AcknowledgedHeader is the response header of a strict revoke or delete
// that every live instance acknowledged: how many instances did.
const AcknowledgedHeader = "Apikey-Acknowledged-Instances"

// strict reads the strict query parameter of a revoke or delete: true or
// false, else the Manager's default (Config.StrictRevocation, that is
// apikey serve --strict-revocation). Other parameters are ignored, as they
// were before this one existed. It answers 400 invalid_input for another
// value, or for true when the store cannot wait for the instances.
func (s *Server) strict(w http.ResponseWriter, r *http.Request) (strict, ok bool) {
	vs, given := r.URL.Query()["strict"]
	if !given {
		return s.m.Strict(r.Context()), true
	}
	strict, err := strconv.ParseBool(vs[0])
	switch {
	case err != nil || len(vs) > 1:
		invalidInput(w, r, "strict", "must be true or false, once")
		return false, false
	case strict && !s.m.StrictSupported():
		invalidInput(w, r, "strict", "the store keeps no instance registry to wait for")
		return false, false
	}
	return strict, true
}

// acknowledged waits, after a strict change, until every live instance has
// applied it, and sets AcknowledgedHeader; or answers 504
// not_acknowledged with the instances that had not, and returns false.
func (s *Server) acknowledged(w http.ResponseWriter, r *http.Request) bool {
	ack, err := s.m.WaitApplied(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return false
	}
	w.Header().Set(AcknowledgedHeader, strconv.Itoa(len(ack.Instances)))
	return true
}

// rollRequest is the optional body of POST /v1/keys/{id}/roll: the grace
// window of apikey.RollOptions, durations as apikey.ParseGrace reads them.
type rollRequest struct {
	Grace       *string `json:"grace"`
	GraceStarts *string `json:"grace_starts"`
	GraceMax    *string `json:"grace_max"`
}

// options returns the apikey.RollOptions of req, or the
// *apikey.ValidationError of its first bad member.
func (req rollRequest) options() (apikey.RollOptions, error) {
	var o apikey.RollOptions
	var err error
	if req.Grace != nil {
		if o.Grace, err = apikey.ParseGrace("grace", *req.Grace); err != nil {
			return o, err
		}
	}
	if req.GraceStarts != nil {
		o.GraceStarts = apikey.GraceStart(*req.GraceStarts)
		if o.GraceStarts != apikey.GraceFirstUse && o.GraceStarts != apikey.GraceNow {
			return o, &apikey.ValidationError{Field: "grace_starts", Reason: fmt.Sprintf("must be %q or %q", apikey.GraceFirstUse, apikey.GraceNow)}
		}
	}
	if req.GraceMax != nil {
		if o.GraceMax, err = apikey.ParseGrace("grace_max", *req.GraceMax); err != nil {
			return o, err
		}
	}
	_, err = o.Check()
	return o, err
}

// rollKey serves POST /v1/keys/{id}/roll. The body is optional: without
// one (or with {}), the old secret stops at once.
func (s *Server) rollKey(w http.ResponseWriter, r *http.Request) {
	var req rollRequest
	if r.ContentLength != 0 && !decode(w, r, &req) {
		return
	}
	opts, err := req.options()
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k, token, err := s.m.Roll(r.Context(), r.PathValue("id"), opts)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, apikey.IssuedKey{Token: token, Key: k})
}

// disableKey serves POST /v1/keys/{id}/disable.
func (s *Server) disableKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.m.Disable(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// enableKey serves POST /v1/keys/{id}/enable.
func (s *Server) enableKey(w http.ResponseWriter, r *http.Request) {
	k, err := s.m.Enable(r.Context(), r.PathValue("id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// deleteKey serves DELETE /v1/keys/{id}, strictly with ?strict=true (see
// strict).
func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	strict, ok := s.strict(w, r)
	if !ok {
		return
	}
	if err := s.m.Delete(apikey.WithStrict(r.Context(), false), r.PathValue("id")); err != nil {
		s.fail(w, r, err)
		return
	}
	if strict && !s.acknowledged(w, r) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

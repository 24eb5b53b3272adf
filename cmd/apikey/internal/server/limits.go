package server

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/go-apikey/apikey"
	"github.com/go-apikey/apikey/apikeyhttp"
)

// creditsRequest is the body of POST /v1/keys/{id}/credits and POST
// /v1/owners/{owner}/credits.
type creditsRequest struct {
	// Op is set, add or refund.
	Op string `json:"op"`
	// Amount is the balance to set or the amount to add (which may be
	// negative); a refund takes none.
	Amount *int64 `json:"amount"`
	// IdempotencyKey, for a refund, names the spend to undo.
	IdempotencyKey string `json:"idempotency_key"`
}

// adjustment reads a creditsRequest into adj, answering 400 and returning
// false when it does not make sense.
func (req *creditsRequest) adjustment(w http.ResponseWriter, r *http.Request, adj *apikey.CreditAdjustment) bool {
	adj.Op = apikey.CreditOp(req.Op)
	switch adj.Op {
	case apikey.CreditSet, apikey.CreditAdd:
		if req.Amount == nil {
			invalidInput(w, r, "amount", "is required for "+req.Op)
			return false
		}
		if req.IdempotencyKey != "" {
			invalidInput(w, r, "idempotency_key", "only a refund names an idempotency key")
			return false
		}
		adj.Amount = *req.Amount
	case apikey.CreditRefund:
		if req.Amount != nil {
			invalidInput(w, r, "amount", "a refund gives back what the spend took; it takes no amount")
			return false
		}
		adj.IdempotencyKey = req.IdempotencyKey
	default:
		invalidInput(w, r, "op", "must be set, add or refund")
		return false
	}
	return true
}

// keyCredits serves POST /v1/keys/{id}/credits: sets, adds to or refunds
// the balance of a key, and answers the balance.
func (s *Server) keyCredits(w http.ResponseWriter, r *http.Request) {
	var req creditsRequest
	if !decode(w, r, &req) {
		return
	}
	adj := apikey.CreditAdjustment{KeyID: r.PathValue("id")}
	if !req.adjustment(w, r, &adj) {
		return
	}
	c, err := s.m.AdjustCredits(r.Context(), adj)
	if err != nil {
		if errors.Is(err, apikey.ErrNotFound) && adj.Op == apikey.CreditRefund && apikey.ValidID(adj.KeyID) {
			if _, gerr := s.m.Get(r.Context(), adj.KeyID); gerr == nil {
				writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusNotFound, Code: apikey.CodeNotFound,
					Detail: "The key made no spend with this idempotency key within the idempotency window.", Field: "idempotency_key"})
				return
			}
		}
		s.creditsFail(w, r, err, adj)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// creditsFail answers the error of an adjustment: an add that would take
// the balance below zero (a bare apikey.ErrInvalidInput from the store)
// names the amount.
func (s *Server) creditsFail(w http.ResponseWriter, r *http.Request, err error, adj apikey.CreditAdjustment) {
	var ve *apikey.ValidationError
	if adj.Op == apikey.CreditAdd && errors.Is(err, apikey.ErrInvalidInput) && !errors.As(err, &ve) {
		invalidInput(w, r, "amount", "would take the balance below zero")
		return
	}
	if adj.Owner != "" {
		s.ownerFail(w, r, err)
		return
	}
	s.fail(w, r, err)
}

// ownerCredits serves POST /v1/owners/{owner}/credits.
func (s *Server) ownerCredits(w http.ResponseWriter, r *http.Request) {
	var req creditsRequest
	if !decode(w, r, &req) {
		return
	}
	adj := apikey.CreditAdjustment{Owner: r.PathValue("owner")}
	if !req.adjustment(w, r, &adj) {
		return
	}
	if adj.Op == apikey.CreditRefund {
		invalidInput(w, r, "op", "a refund undoes the spend of a key: use POST /v1/keys/{id}/credits")
		return
	}
	c, err := s.m.AdjustCredits(r.Context(), adj)
	if err != nil {
		s.creditsFail(w, r, err, adj)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// ownerFail answers the error of an owner call: not_found names the owner.
func (s *Server) ownerFail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, apikey.ErrNotFound) {
		writeProblem(w, r, &apikeyhttp.Problem{Status: http.StatusNotFound, Code: apikey.CodeNotFound,
			Detail: "The owner has no record: set its limits or credits first."})
		return
	}
	s.fail(w, r, err)
}

// getOwner serves GET /v1/owners/{owner}.
func (s *Server) getOwner(w http.ResponseWriter, r *http.Request) {
	o, err := s.m.Owner(r.Context(), r.PathValue("owner"))
	if err != nil {
		s.ownerFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// deleteOwner serves DELETE /v1/owners/{owner}: the owner's record (its
// limits and balance) goes, its keys stay; 204, or 404 without a record.
func (s *Server) deleteOwner(w http.ResponseWriter, r *http.Request) {
	if err := s.m.DeleteOwner(r.Context(), r.PathValue("owner")); err != nil {
		s.ownerFail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

type ownerRequest struct {
	RateLimits optional[[]apikey.RateLimit] `json:"ratelimits"`
	Credits    optional[apikey.Credits]     `json:"credits"`
}

// putOwner serves PUT /v1/owners/{owner}: the record becomes the body,
// an absent member meaning none.
func (s *Server) putOwner(w http.ResponseWriter, r *http.Request) {
	s.setOwner(w, r, true)
}

// patchOwner serves PATCH /v1/owners/{owner}: absent members are left
// alone, "credits": null removes the balance.
func (s *Server) patchOwner(w http.ResponseWriter, r *http.Request) {
	s.setOwner(w, r, false)
}

func (s *Server) setOwner(w http.ResponseWriter, r *http.Request, replace bool) {
	var req ownerRequest
	if !decode(w, r, &req) {
		return
	}
	var u apikey.OwnerUpdate
	switch {
	case req.RateLimits.Null:
		invalidInput(w, r, "ratelimits", "cannot be null; send [] to remove every limit")
		return
	case req.RateLimits.Set:
		if req.RateLimits.Value == nil {
			req.RateLimits.Value = []apikey.RateLimit{}
		}
		u.RateLimits = &req.RateLimits.Value
	case replace:
		u.RateLimits = &[]apikey.RateLimit{}
	}
	switch {
	case req.Credits.Set && !req.Credits.Null:
		u.Credits = &req.Credits.Value
	case req.Credits.Null || replace:
		u.ClearCredits = true
	}
	if !replace && u.RateLimits == nil && u.Credits == nil && !u.ClearCredits {
		invalidInput(w, r, "ratelimits", "the patch changes nothing: give ratelimits or credits")
		return
	}
	o, err := s.m.SetOwner(r.Context(), r.PathValue("owner"), u)
	if err != nil {
		s.ownerFail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// limitFail answers a refused Check or Enforce: 429 with Retry-After and
// the RateLimit headers for a *apikey.LimitError, else the error's
// problem.
func (s *Server) limitFail(w http.ResponseWriter, r *http.Request, err error) {
	var le *apikey.LimitError
	if errors.As(err, &le) {
		apikeyhttp.SetRateLimitHeaders(w.Header(), le.RateLimits)
		if le.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.FormatInt(apikey.Seconds(le.RetryAfter), 10))
		}
	}
	s.fail(w, r, err)
}
